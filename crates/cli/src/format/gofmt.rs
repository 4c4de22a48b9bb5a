//! Go's `%v` for what a template prints: gtmpl prints maps and lists with Rust's debug text
//! (`{"k": String("v")}`), where Go's text/template prints `map[k:v]` and `[sleep 1000]`.
//! Every output action of a template is given a last command, `__print`, that renders its
//! value as Go would; gtmpl then prints a string. Written by hand: gtmpl offers no hook for
//! how values print, and no crate formats a gtmpl value as Go's fmt does.
//!
//! A JSON object stands for a Go struct when every key is an exported Go identifier (`State`,
//! `Config`), and prints as `{v1 v2 …}`; otherwise it stands for a map and prints as
//! `map[k1:v1 k2:v2]`, keys sorted as Go sorts them. Go prints a struct's fields in their
//! declaration order, which JSON does not keep: berth prints them in key order (the
//! difference is listed in docs/cli.md).

use gtmpl::{FuncError, Value as TValue};

/// `len` as Go's: of a string (its bytes), a list, a map or an object (gtmpl's own refuses
/// maps).
pub(super) fn f_len(args: &[TValue]) -> Result<TValue, FuncError> {
    let n = match args {
        [TValue::String(s)] => s.len(),
        [TValue::Array(a)] => a.len(),
        [TValue::Map(m)] | [TValue::Object(m)] => m.len(),
        [other] => return Err(FuncError::Generic(format!("len of {}", go_value(other)))),
        _ => return Err(FuncError::ExactlyXArgs("len".into(), 1)),
    };
    Ok(TValue::from(n as u64))
}

/// The template function that renders its argument as Go's `%v`.
pub(super) fn f_print(args: &[TValue]) -> Result<TValue, FuncError> {
    Ok(TValue::String(match args.first() {
        Some(TValue::String(s)) => s.clone(),
        Some(v) => go_value(v),
        None => String::new(),
    }))
}

fn exported(k: &str) -> bool {
    let mut c = k.chars();
    c.next().is_some_and(|f| f.is_ascii_uppercase()) && c.all(|x| x.is_ascii_alphanumeric())
}

/// `v` as Go's fmt prints it with `%v`.
pub(super) fn go_value(v: &TValue) -> String {
    match v {
        TValue::NoValue => "<no value>".into(),
        TValue::Nil => "<nil>".into(),
        TValue::Function(_) => String::new(),
        TValue::Bool(_) | TValue::String(_) | TValue::Number(_) => v.to_string(),
        TValue::Array(a) => {
            let items: Vec<String> = a.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        TValue::Object(m) | TValue::Map(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            if !keys.is_empty() && keys.iter().all(|k| exported(k)) {
                let fields: Vec<String> = keys.iter().map(|k| go_value(&m[*k])).collect();
                format!("{{{}}}", fields.join(" "))
            } else {
                let pairs: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k}:{}", go_value(&m[*k])))
                    .collect();
                format!("map[{}]", pairs.join(" "))
            }
        }
    }
}

/// Template keywords whose actions print nothing of their own.
const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// `text` with ` | __print` appended to the pipeline of every action that prints a value
/// (not control actions, comments or variable declarations). An unterminated action is left
/// as it is, for the parser to report.
pub(super) fn print_actions(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    while let Some(p) = text[i..].find("{{") {
        let start = i + p;
        out.push_str(&text[i..start]);
        let Some(end) = action_end(b, start + 2) else {
            out.push_str(&text[start..]);
            return out;
        };
        out.push_str("{{");
        out.push_str(&rewrite(&text[start + 2..end]));
        out.push_str("}}");
        i = end + 2;
    }
    out.push_str(&text[i..]);
    out
}

/// Where the `}}` closing the action that starts at `j` is, skipping quoted text and comments.
fn action_end(b: &[u8], mut j: usize) -> Option<usize> {
    while j < b.len() {
        match b[j] {
            q @ (b'"' | b'\'') => {
                j += 1;
                while j < b.len() && b[j] != q {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                j += 1;
            }
            b'`' => {
                j += 1;
                while j < b.len() && b[j] != b'`' {
                    j += 1;
                }
                j += 1;
            }
            b'/' if b.get(j + 1) == Some(&b'*') => {
                let rest = std::str::from_utf8(&b[j + 2..]).ok()?;
                j += 2 + rest.find("*/")? + 2;
            }
            b'}' if b.get(j + 1) == Some(&b'}') => return Some(j),
            _ => j += 1,
        }
    }
    None
}

fn rewrite(inner: &str) -> String {
    let trims = |s: &str| s.starts_with(|c: char| c.is_ascii_whitespace());
    let lead = inner.len() > 1 && inner.starts_with('-') && trims(&inner[1..]);
    let trail = inner.len() > 1
        && inner.ends_with('-')
        && inner[..inner.len() - 1].ends_with(|c: char| c.is_ascii_whitespace());
    let body = &inner[usize::from(lead)..inner.len() - usize::from(trail)];
    let t = body.trim();
    // The leading word: `range.Config.Env` (no space) is a range too.
    let first = t
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    let declaration = t.starts_with('$') && {
        let rest = t[1..].trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
        let rest = rest.trim_start();
        rest.starts_with(":=") || (rest.starts_with('=') && !rest.starts_with("=="))
    };
    if t.is_empty() || t.starts_with("/*") || KEYWORDS.contains(&first) || declaration {
        return inner.to_string();
    }
    format!(
        "{}{} | __print {}",
        if lead { "-" } else { "" },
        body.trim_end(),
        if trail { "-" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_printing_actions_get_the_printer() {
        for (t, want) in [
            ("{{.A}}", "{{.A | __print }}"),
            ("a{{- .A -}}b", "a{{- .A | __print -}}b"),
            ("{{if .A}}x{{else}}y{{end}}", "{{if .A}}x{{else}}y{{end}}"),
            (
                "{{range .L}}{{.}} {{end}}",
                "{{range .L}}{{. | __print }} {{end}}",
            ),
            ("{{$x := .A}}{{$x}}", "{{$x := .A}}{{$x | __print }}"),
            ("{{/* c }} */}}", "{{/* c }} */}}"),
            ("{{\"}}\"}}", "{{\"}}\" | __print }}"),
            ("{{json .A | upper}}", "{{json .A | upper | __print }}"),
            ("{{-3}}", "{{-3 | __print }}"),
            ("{{.A", "{{.A"),
            ("{{range.L}}{{end}}", "{{range.L}}{{end}}"),
            ("{{ending}}", "{{ending | __print }}"),
        ] {
            assert_eq!(print_actions(t), want, "{t}");
        }
    }

    #[test]
    fn values_print_as_go_prints_them() {
        let v = crate::format::to_tvalue(&serde_json::json!({
            "Labels": {"b": "2", "a": "1"},
            "Cmd": ["sleep", "1000"],
            "State": {"Status": "running", "Pid": 42, "Health": null},
            "Empty": {},
        }));
        let TValue::Map(m) = v else { panic!() };
        assert_eq!(go_value(&m["Labels"]), "map[a:1 b:2]");
        assert_eq!(go_value(&m["Cmd"]), "[sleep 1000]");
        assert_eq!(go_value(&m["State"]), "{<nil> 42 running}");
        assert_eq!(go_value(&m["Empty"]), "map[]");
        assert_eq!(f_len(&[m["Labels"].clone()]).unwrap().to_string(), "2");
        assert_eq!(f_len(&[m["Cmd"].clone()]).unwrap().to_string(), "2");
        assert!(f_len(&[TValue::Nil]).is_err());
    }

    /// Through the patched gtmpl (third_party/gtmpl): maps range in key order, `else` only
    /// for an empty range; and values print as Go's.
    #[test]
    fn templates_range_and_print_as_go() {
        let v = serde_json::json!({
            "L": {"e": "5", "b": "2", "d": "4", "a": "1", "c": "3"},
            "E": [], "One": [7], "Cmd": ["sleep", "1000"],
        });
        let r = |t: &str| crate::format::render(t, &v).unwrap();
        for _ in 0..5 {
            assert_eq!(
                r("{{range $k, $v := .L}}{{$k}}={{$v}};{{end}}"),
                "a=1;b=2;c=3;d=4;e=5;"
            );
        }
        assert_eq!(r("{{range .E}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(r("{{range .One}}{{.}}{{else}}empty{{end}}"), "7");
        assert_eq!(r("{{range .Missing}}x{{else}}none{{end}}"), "none");
        assert_eq!(
            r("{{.Cmd}} {{len .L}} {{.L}}"),
            "[sleep 1000] 5 map[a:1 b:2 c:3 d:4 e:5]"
        );
    }
}
