//! Detach keys: a client attached with stdin (`attach`, `exec`) leaves the container running
//! by typing the detach sequence (`ctrl-p,ctrl-q` unless `detachKeys` says otherwise), as with
//! dockerd, which watches the client's input for it. The bytes of a partial match are held
//! back and sent on if the sequence breaks off; the sequence itself never reaches the
//! container. Written here because the rule is Docker's own small grammar (`a`, `ctrl-x`,
//! comma-separated), which no crate implements.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Docker's default sequence, `ctrl-p,ctrl-q`.
pub const DEFAULT: [u8; 2] = [0x10, 0x11];

/// The bytes of a detach sequence (`ctrl-p,ctrl-q`, `ctrl-x`, `a,b`); `None` when it is not
/// Docker's grammar. An empty text is the default.
pub fn parse(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() {
        return Some(DEFAULT.to_vec());
    }
    s.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let c = c.as_bytes();
                if c.len() != 1 {
                    return None;
                }
                match c[0].to_ascii_lowercase() {
                    b @ b'a'..=b'z' => Some(b - b'a' + 1),
                    b'@' => Some(0),
                    b @ (b'[' | b'\\' | b']' | b'^' | b'_') => Some(b - b'@'),
                    _ => None,
                }
            } else if k.len() == 1 {
                Some(k.as_bytes()[0])
            } else {
                None
            }
        })
        .collect()
}

/// How a client's input ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// End of file, or an error on either side.
    Closed,
    /// The client typed the detach sequence.
    Detached,
}

/// Copies `from` to `to` until end of file or the detach sequence `keys` (none: a plain
/// copy).
pub async fn copy<R, W>(from: &mut R, to: &mut W, keys: &[u8]) -> Ended
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    let mut matched = 0usize;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // Not a byte lost: a partial sequence at the end goes through.
                if matched > 0 {
                    let _ = to.write_all(&keys[..matched]).await;
                }
                return Ended::Closed;
            }
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    if !out.is_empty() {
                        let _ = to.write_all(&out).await;
                    }
                    return Ended::Detached;
                }
                continue;
            }
            // The sequence broke off: what was held back goes through, then this byte is
            // looked at afresh.
            out.extend_from_slice(&keys[..matched]);
            matched = 0;
            if !keys.is_empty() && b == keys[0] {
                matched = 1;
                if keys.len() == 1 {
                    if !out.is_empty() {
                        let _ = to.write_all(&out).await;
                    }
                    return Ended::Detached;
                }
            } else {
                out.push(b);
            }
        }
        if !out.is_empty() && to.write_all(&out).await.is_err() {
            return Ended::Closed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_grammar() {
        assert_eq!(parse("").unwrap(), DEFAULT);
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), DEFAULT);
        assert_eq!(parse("ctrl-x").unwrap(), [0x18]);
        assert_eq!(parse("a,ctrl-@,ctrl-_").unwrap(), [b'a', 0, 0x1f]);
        assert!(parse("ctrl-").is_none());
        assert!(parse("ctrl-1").is_none());
        assert!(parse("abc").is_none());
    }

    async fn run(input: &[u8], keys: &[u8]) -> (Vec<u8>, Ended) {
        let mut from = input;
        let mut to = Vec::new();
        let e = copy(&mut from, &mut to, keys).await;
        (to, e)
    }

    #[tokio::test]
    async fn the_sequence_detaches_and_never_reaches_the_container() {
        assert_eq!(
            run(b"ab\x10\x11cd", &DEFAULT).await,
            (b"ab".to_vec(), Ended::Detached)
        );
        // A partial match is sent on when it breaks off.
        assert_eq!(
            run(b"a\x10b\x10\x10\x11", &DEFAULT).await,
            (b"a\x10b\x10".to_vec(), Ended::Detached)
        );
        assert_eq!(
            run(b"plain\x10", &DEFAULT).await,
            (b"plain\x10".to_vec(), Ended::Closed)
        );
        assert_eq!(
            run(b"x\x18y", &[0x18]).await,
            (b"x".to_vec(), Ended::Detached)
        );
        assert_eq!(
            run(b"\x10\x11", &[]).await,
            (b"\x10\x11".to_vec(), Ended::Closed)
        );
    }
}
