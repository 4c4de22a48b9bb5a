//! Per-instruction word semantics the builder applies: HEALTHCHECK durations, EXPOSE port
//! keys, variables in JSON-form words, shell quoting of `ARG`s in RUN's history, and the
//! text of an instruction as docker's history shows it.

use crate::dockerfile::{self, Instruction};
use crate::shell::Env;

/// Docker's duration words (`30s`, `1m30s`, `500ms`) in nanoseconds.
pub fn duration_ns(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let mul = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mul;
        any = true;
    }
    if !num.is_empty() {
        return None;
    }
    any.then_some(total as i64)
}

/// `80`, `80/udp`, `8000-8002/tcp` → docker's `port/proto` keys.
pub fn expose_keys(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let (a, b): (u16, u16) = match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) if a <= b => (a, b),
        _ => return Err(format!("invalid containerPort: {ports}")),
    };
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// `$v` and `${v}` substituted in a JSON-form word, nothing else touched.
pub fn expand_json_word(w: &str, vars: &Env) -> String {
    let mut out = String::new();
    let b: Vec<char> = w.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' && i + 1 < b.len() {
            let (name, next) = if b[i + 1] == '{' {
                match b[i + 2..].iter().position(|c| *c == '}') {
                    Some(end) => (
                        b[i + 2..i + 2 + end].iter().collect::<String>(),
                        i + 3 + end,
                    ),
                    None => (String::new(), i),
                }
            } else {
                let end = b[i + 1..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
                    .map_or(b.len(), |p| i + 1 + p);
                (b[i + 1..end].iter().collect::<String>(), end)
            };
            if !name.is_empty() && next > i {
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
                i = next;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A word as a shell would need it quoted (bare when it is plain).
pub fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
        && !s.is_empty()
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The instruction as docker's history shows it: keyword, flags, arguments.
pub fn instruction_text(i: &Instruction) -> String {
    let mut s = i.keyword.clone();
    for (k, v) in &i.flags {
        match v {
            Some(v) => s.push_str(&format!(" --{k}={v}")),
            None => s.push_str(&format!(" --{k}")),
        }
    }
    match &i.args {
        dockerfile::Args::Text(t) => {
            if !t.is_empty() {
                s.push(' ');
                s.push_str(t);
            }
        }
        dockerfile::Args::Json(v) => {
            s.push(' ');
            s.push_str(&serde_json::to_string(v).unwrap_or_default());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ports() {
        assert_eq!(duration_ns("30s"), Some(30_000_000_000));
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("5"), None);
        assert_eq!(duration_ns("x"), None);
        assert_eq!(expose_keys("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expose_keys("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expose_keys("8000-8002").unwrap().len(), 3);
        assert!(expose_keys("http").is_err());
    }

    #[test]
    fn stage_names_and_indexes() {
        let df = dockerfile::parse("FROM a AS one\nFROM b\nFROM c\n", "D").unwrap();
        let s = crate::stages(&df, &Env::new(), "D").unwrap();
        assert_eq!(crate::stage_named(&s, "ONE", 2), Some(0));
        assert_eq!(crate::stage_named(&s, "1", 2), Some(1));
        assert_eq!(crate::stage_named(&s, "2", 2), None);
        assert_eq!(crate::stage_named(&s, "busybox", 2), None);
    }

    #[test]
    fn json_words_quoting_and_instruction_text() {
        let mut env = Env::new();
        env.insert("A".into(), "x y".into());
        assert_eq!(expand_json_word("$A-${A}-$B-$", &env), "x y-x y--$");
        assert_eq!(shell_quote("plain/-_.:"), "plain/-_.:");
        assert_eq!(shell_quote("a b\"c"), "\"a b\\\"c\"");
        assert_eq!(shell_quote(""), "\"\"");
        let df =
            dockerfile::parse("RUN --network=none echo hi\nCMD [\"a\", \"b\"]\n", "D").unwrap();
        assert_eq!(
            instruction_text(&df.instructions[0]),
            "RUN --network=none echo hi"
        );
        assert_eq!(instruction_text(&df.instructions[1]), "CMD [\"a\",\"b\"]");
    }
}
