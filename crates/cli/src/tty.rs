//! The local terminal for `run -t`, `start -a` and `attach`: raw mode while attached, the
//! container's terminal resized on SIGWINCH, and docker's detach keys.

use std::os::fd::AsFd;

use nix::sys::termios::{self, SetArg, Termios};

/// Raw mode on stdin while this lives; restored on drop.
#[derive(Debug)]
pub struct Raw {
    saved: Termios,
}

impl Raw {
    /// Puts stdin in raw mode if it is a terminal.
    pub fn enable() -> Option<Raw> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(Raw { saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// The terminal's (rows, columns), if stdout is one.
pub fn size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize struct passed by pointer.
    let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sends the terminal's size now and on every SIGWINCH.
pub fn watch_size(api: crate::api::Api, id: String) {
    tokio::spawn(async move {
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        loop {
            if let Some((h, w)) = size() {
                let _ = api
                    .call(
                        hyper::Method::POST,
                        &format!("/containers/{id}/resize?h={h}&w={w}"),
                        None,
                    )
                    .await;
            }
            if sig.recv().await.is_none() {
                return;
            }
        }
    });
}

/// Docker's detach key spec (`ctrl-p,ctrl-q`, `a`, `ctrl-@`) as bytes.
pub fn detach_sequence(spec: &str) -> Vec<u8> {
    spec.split(',')
        .filter_map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let c = c.chars().next()?;
                match c {
                    'a'..='z' => Some(c as u8 - b'a' + 1),
                    '@' => Some(0),
                    '[' => Some(27),
                    '\\' => Some(28),
                    ']' => Some(29),
                    '^' => Some(30),
                    '_' => Some(31),
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

/// Docker's refusal of `-it` when stdin is no terminal; `Some(1)`, the exit code, after saying
/// so, or `None` when there is nothing to refuse.
pub fn refuse_non_tty_input(interactive: bool, tty: bool) -> Option<i32> {
    use std::io::IsTerminal;
    (interactive && tty && !std::io::stdin().is_terminal()).then(|| {
        eprintln!("the input device is not a TTY");
        1
    })
}

/// Docker's refusal to write an archive to a terminal (`save`, `export` without `-o`).
pub fn refuse_archive_to_terminal(output: Option<&std::path::Path>) -> Option<i32> {
    use std::io::IsTerminal;
    (output.is_none() && std::io::stdout().is_terminal()).then(|| {
        eprintln!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        1
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn detach_keys() {
        assert_eq!(super::detach_sequence("ctrl-p,ctrl-q"), [16, 17]);
        assert_eq!(super::detach_sequence("a,ctrl-@"), [b'a', 0]);
    }
}
