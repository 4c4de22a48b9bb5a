//! `--format`: Go templates as the docker CLI takes them (gtmpl implements Go's text/template),
//! with docker's extra functions (`json`, `join`, `lower`, `upper`, `title`, `split`,
//! `truncate`, `pad`) and the `table` prefix, laid out like Go's tabwriter (docker's
//! minwidth 10, padding 3).

use std::collections::HashMap;

use gtmpl::{FuncError, Template, Value as TValue};
use serde_json::Value;

/// serde_json → template value.
pub fn to_tvalue(v: &Value) -> TValue {
    match v {
        Value::Null => TValue::Nil,
        Value::Bool(b) => TValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                TValue::from(i)
            } else if let Some(u) = n.as_u64() {
                TValue::from(u)
            } else {
                TValue::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => TValue::String(s.clone()),
        Value::Array(a) => TValue::Array(a.iter().map(to_tvalue).collect()),
        Value::Object(o) => TValue::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), to_tvalue(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// Template value → serde_json (maps sorted by key).
fn to_json(v: &TValue) -> Value {
    match v {
        TValue::NoValue | TValue::Nil | TValue::Function(_) => Value::Null,
        TValue::Bool(b) => Value::Bool(*b),
        TValue::String(s) => Value::String(s.clone()),
        TValue::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0))
                    .map_or(Value::Null, Value::Number)
            }
        }
        TValue::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        TValue::Object(m) | TValue::Map(m) => {
            // Methods (`Label`) are not data: `json .` leaves them out, as Go's encoder does.
            let sorted: std::collections::BTreeMap<_, _> = m
                .iter()
                .filter(|(_, v)| !matches!(v, TValue::Function(_)))
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
    }
}

fn s_arg(args: &[TValue], i: usize) -> String {
    match args.get(i) {
        Some(TValue::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// JSON as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped (the docker
/// CLI's `json` function and `--format json` both go through it). These characters appear
/// only inside strings, so escaping the text is escaping the strings.
pub fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn f_json(args: &[TValue]) -> Result<TValue, FuncError> {
    let v = args.first().map(to_json).unwrap_or(Value::Null);
    Ok(TValue::String(go_json(&v)))
}
fn f_lower(args: &[TValue]) -> Result<TValue, FuncError> {
    Ok(TValue::String(s_arg(args, 0).to_lowercase()))
}
fn f_upper(args: &[TValue]) -> Result<TValue, FuncError> {
    Ok(TValue::String(s_arg(args, 0).to_uppercase()))
}
fn f_title(args: &[TValue]) -> Result<TValue, FuncError> {
    let s = s_arg(args, 0);
    let mut c = s.chars();
    Ok(TValue::String(match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => s,
    }))
}
fn f_join(args: &[TValue]) -> Result<TValue, FuncError> {
    let sep = s_arg(args, 1);
    let items: Vec<String> = match args.first() {
        Some(TValue::Array(a)) => a
            .iter()
            .map(|v| match v {
                TValue::String(s) => s.clone(),
                o => o.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(TValue::String(items.join(&sep)))
}
fn f_split(args: &[TValue]) -> Result<TValue, FuncError> {
    let (s, sep) = (s_arg(args, 0), s_arg(args, 1));
    Ok(TValue::Array(
        s.split(sep.as_str())
            .map(|x| TValue::String(x.into()))
            .collect(),
    ))
}
fn f_truncate(args: &[TValue]) -> Result<TValue, FuncError> {
    let s = s_arg(args, 0);
    let n = args
        .get(1)
        .and_then(|v| {
            if let TValue::Number(n) = v {
                n.as_u64()
            } else {
                None
            }
        })
        .unwrap_or(0) as usize;
    Ok(TValue::String(s.chars().take(n).collect()))
}
/// The widest `pad` allowed on either side: far beyond any terminal.
const MAX_PAD: u64 = 4096;

fn f_pad(args: &[TValue]) -> Result<TValue, FuncError> {
    let s = s_arg(args, 0);
    let num = |i: usize| {
        args.get(i)
            .and_then(|v| {
                if let TValue::Number(n) = v {
                    n.as_u64()
                } else {
                    None
                }
            })
            .unwrap_or(0)
    };
    // Found by fuzzing: `{{pad . 808888888888 0}}` asked for 800 GB of spaces.
    if num(1) > MAX_PAD || num(2) > MAX_PAD {
        return Err(FuncError::Generic(format!(
            "pad: at most {MAX_PAD} spaces on a side"
        )));
    }
    let num = |i| num(i) as usize;
    Ok(TValue::String(format!(
        "{}{}{}",
        " ".repeat(num(1)),
        s,
        " ".repeat(num(2))
    )))
}

/// `printf` with its widths and precisions bounded by [`MAX_PAD`], then gtmpl's own. gtmpl
/// pads to any width asked for, the fault fuzzing found in `pad` (not found by the fuzzer
/// here, but read in gtmpl's printf after it).
fn f_printf(args: &[TValue]) -> Result<TValue, FuncError> {
    if let Some(TValue::String(f)) = args.first() {
        let mut chars = f.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                continue;
            }
            let mut n: u64 = 0;
            while let Some(&d) = chars.peek() {
                match d {
                    '0'..='9' => n = n * 10 + u64::from(d.to_digit(10).unwrap_or(0)),
                    '.' | '#' | '+' | '-' | ' ' => n = 0,
                    '*' => {
                        return Err(FuncError::Generic(
                            "printf: `*` widths are not supported".into(),
                        ))
                    }
                    _ => break,
                }
                if n > MAX_PAD {
                    return Err(FuncError::Generic(format!(
                        "printf: widths and precisions go up to {MAX_PAD}"
                    )));
                }
                chars.next();
            }
            chars.next();
        }
    }
    gtmpl::funcs::printf(args)
}

/// Docker's template text: `\t` and `\n` escapes as typed on a command line are made real.
fn unescape(t: &str) -> String {
    t.replace("\\t", "\t").replace("\\n", "\n")
}

/// Refuses, before gtmpl sees them, the templates on which gtmpl 0.7.1's lexer misbehaves.
/// Its `backup` steps back one byte whatever it last read: after the end of the text it
/// steps back into it, so whitespace that runs to the end of an unclosed action loops for
/// ever (`{{ `); after a multi-byte character it lands inside that character and its thread
/// panics (`{{ é}}`, `{{1é}}`). Its `{{-` trim miscounts when the text before ends in a
/// multi-byte character (`é{{- .X}}`). All found by fuzzing (`fuzz/regressions/format_template`).
///
/// So this walks the template as gtmpl's lexer does (text, comments, actions, and inside
/// actions its quoted, raw and character literals, with its own escape rule) and refuses:
/// an action that reaches the end of the text outside a literal (Go says "unclosed action"
/// too); a non-ASCII character in an action outside a literal (Go allows Unicode letters in
/// names; docker's fields are ASCII); and a `{{-` after text whose last non-space
/// character is non-ASCII. Anything else reaches gtmpl, whose lexer then only steps back
/// over ASCII characters it has just read. Where gtmpl's lexer would stop with an error of
/// its own (an unterminated literal or comment), this stops too and lets gtmpl report it.
/// No crate lexes Go templates apart from gtmpl itself, hence a walk of our own.
///
/// gtmpl's unquoting of literals has its own faults: `\x`, `\u` and `\U` with too few
/// digits loop for ever, and a backslash before a multi-byte character or at the end of a
/// raw string panics; so [`literal_escapes`] is applied to every literal's content.
fn lexer_guard(text: &str) -> Result<(), String> {
    let mut i = 0;
    while let Some(found) = text[i..].find("{{") {
        let open = i + found;
        let mut k = open + 2;
        if text[k..].starts_with("- ") {
            if text[i..open]
                .trim_end()
                .chars()
                .last()
                .is_some_and(|c| !c.is_ascii())
            {
                return Err("a non-ASCII character right before {{- is not supported".into());
            }
            k += 2;
        }
        if text[k..].starts_with("/*") {
            let Some(end) = text[k + 2..].find("*/") else {
                return Ok(());
            };
            let after = k + 2 + end + 2;
            i = if text[after..].starts_with("}}") {
                after + 2
            } else if text[after..].starts_with(" -}}") {
                after + 4
            } else {
                return Ok(());
            };
            continue;
        }
        i = loop {
            let rest = &text[k..];
            if rest.starts_with("}}") {
                break k + 2;
            }
            if rest.starts_with(" -}}") {
                break k + 4;
            }
            let Some(c) = rest.chars().next() else {
                return Err("template: :1: unclosed action".into());
            };
            k += c.len_utf8();
            match c {
                '"' | '\'' => {
                    let from = k;
                    let mut escaped = false;
                    loop {
                        let Some(l) = text[k..].chars().next() else {
                            return Ok(());
                        };
                        k += l.len_utf8();
                        match l {
                            '\\' => escaped = true,
                            '\n' => return Ok(()),
                            _ if l == c && !escaped => break,
                            _ => escaped = false,
                        }
                    }
                    literal_escapes(&text[from..k - 1])?;
                }
                '`' => match text[k..].find('`') {
                    Some(end) => {
                        literal_escapes(&text[k..k + end])?;
                        k += end + 1;
                    }
                    None => return Ok(()),
                },
                _ if !c.is_ascii() => {
                    return Err(format!(
                    "non-ASCII character {c:?} inside {{{{ }}}} outside a string is not supported"
                ))
                }
                _ => {}
            }
        };
    }
    Ok(())
}

/// The escapes a template literal may hold: gtmpl decodes them in quoted, character and
/// raw literals alike. `\x`, `\u` and `\U` are refused, as gtmpl 0.7.1 decodes them
/// wrongly or not at all.
fn literal_escapes(content: &str) -> Result<(), String> {
    let mut chars = content.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && !matches!(
                chars.next(),
                Some('b' | 'f' | 'n' | 'r' | 't' | '\'' | '"' | '\\')
            )
        {
            return Err(
                r#"only the escapes \b \f \n \r \t \' \" and \\ are supported in template strings"#
                    .into(),
            );
        }
    }
    Ok(())
}

/// Renders `tmpl` for one value.
pub fn render(tmpl: &str, v: &Value) -> anyhow::Result<String> {
    let mut t = Template::default();
    t.add_funcs(&[
        ("json", f_json as gtmpl::Func),
        ("lower", f_lower),
        ("upper", f_upper),
        ("title", f_title),
        ("join", f_join),
        ("split", f_split),
        ("truncate", f_truncate),
        ("pad", f_pad),
        ("printf", f_printf),
    ]);
    let text = unescape(tmpl);
    lexer_guard(&text).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    t.parse(text)
        .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    let ctx = gtmpl::Context::from(with_row_methods(to_tvalue(v)));
    t.render(&ctx).map_err(|e| anyhow::anyhow!("template: {e}"))
}

/// docker's row method `{{.Label "key"}}` on a list row whose `Labels` is docker's
/// `k=v,k2=v2` text (ps, images, volume ls, network ls): the value, or empty.
fn with_row_methods(v: TValue) -> TValue {
    match v {
        TValue::Map(mut m) if matches!(m.get("Labels"), Some(TValue::String(_))) => {
            m.insert(
                "Label".into(),
                TValue::Function(gtmpl::Function { f: row_label }),
            );
            TValue::Map(m)
        }
        other => other,
    }
}

fn row_label(args: &[TValue]) -> Result<TValue, FuncError> {
    let labels = match args.first() {
        Some(TValue::Map(m)) => match m.get("Labels") {
            Some(TValue::String(s)) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let key = s_arg(args, 1);
    let value = labels
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| v);
    Ok(TValue::String(value.to_string()))
}

/// Lays out tab-separated lines as Go's tabwriter with docker's settings.
pub fn tabwrite(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let ncol = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncol];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count() + 3).max(10);
            }
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints rows with a format: `table ...` (a header row from `headers`, tab layout), a plain
/// template (one line per row), or the default table.
pub fn print_rows(
    format: Option<&str>,
    default_table: &str,
    rows: &[Value],
    headers: &Value,
) -> anyhow::Result<()> {
    let f = format.unwrap_or(default_table);
    if f == "json" {
        for r in rows {
            println!("{}", go_json(r));
        }
        return Ok(());
    }
    if let Some(t) = f.strip_prefix("table") {
        let t = t.trim_start();
        let t = if t.is_empty() {
            default_table.trim_start_matches("table").trim_start()
        } else {
            t
        };
        let mut lines = vec![render(t, headers)?];
        for r in rows {
            lines.push(render(t, r)?);
        }
        print!("{}", tabwrite(&lines));
    } else {
        for r in rows {
            println!("{}", render(f, r)?);
        }
    }
    Ok(())
}

/// What the inspect commands print: each document through `--format` (`json`: one line
/// each), or all of them as one indented JSON array.
pub fn print_inspected(format: Option<&str>, docs: Vec<Value>) -> anyhow::Result<()> {
    match format {
        Some("json") => {
            for d in &docs {
                println!("{}", serde_json::to_string(d)?);
            }
        }
        Some(f) => {
            for d in &docs {
                println!("{}", render(f, d)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_templates() {
        let v = serde_json::json!({"State": {"Status": "running", "Pid": 42}, "Config": {"Env": ["A=1"], "Tty": false}, "Name": "/web"});
        assert_eq!(
            render("{{.State.Status}} {{.State.Pid}}", &v).unwrap(),
            "running 42"
        );
        assert_eq!(
            render("{{json .Config}}", &v).unwrap(),
            r#"{"Env":["A=1"],"Tty":false}"#
        );
        assert_eq!(render("{{join .Config.Env \",\"}}", &v).unwrap(), "A=1");
        assert_eq!(render("{{upper .Name}}", &v).unwrap(), "/WEB");
        assert!(render("{{.State.Status", &v).is_err());
    }

    #[test]
    fn lexer_guard_refuses_what_gtmpl_mislexes() {
        let v = serde_json::json!({"Name": "/wéb", "L": {"ü": "x"}});
        // Each of these hangs or panics gtmpl 0.7.1's lexer; each must come back as an error.
        for bad in [
            "{{ ",
            "x {{.Name} ",
            "{{upt \"a,b\" \"}} {\u{1}\0\0tusplit \"a,biq.Cmd ",
            "{{ é}}",
            "{{1é}}",
            "{{.Aé}}",
            "é{{- .Name}}",
            "{{\"a\\\\\" \t",
            "{{\"\\u\"}}",
            "{{\"\\x1\"}}",
            "{{'\\é'}}",
            "{{`\\`}}",
            "{{`a\\u`}}",
        ] {
            assert!(render(bad, &v).is_err(), "{bad:?}");
        }
        // Non-ASCII in text, in strings and raw strings, trims and comments still work.
        assert_eq!(render("é {{.Name}} ü", &v).unwrap(), "é /wéb ü");
        assert_eq!(render("{{index .L \"ü\"}}", &v).unwrap(), "x");
        assert_eq!(render("{{`é`}}", &v).unwrap(), "é");
        assert_eq!(render("{{pad .Name 1 2}}|", &v).unwrap(), " /wéb  |");
        assert!(render("{{pad .Name 808888888888 0}}", &v).is_err());
        assert_eq!(
            render("{{printf \"%5d|%-3s|%.2f\" 42 \"a\" 1.5}}", &v).unwrap(),
            "   42|a  |1.50"
        );
        assert!(render("{{printf \"%99999999999d\" 1}}", &v).is_err());
        assert!(render("{{printf \"%.99999999s\" .Name}}", &v).is_err());
        assert_eq!(render("{{\"a\\\"b\\'\"}}", &v).unwrap(), "a\"b'");
        assert_eq!(render("a  {{- .Name -}}  b", &v).unwrap(), "a/wébb");
        assert_eq!(render("{{/* é */}}{{.Name}}", &v).unwrap(), "/wéb");
        assert_eq!(render("{{- /* é */ -}} {{.Name}}", &v).unwrap(), "/wéb");
    }

    #[test]
    fn table_layout() {
        let out = tabwrite(&["NAMES\tSTATUS".into(), "web\tUp 2 seconds".into()]);
        assert_eq!(out, "NAMES     STATUS\nweb       Up 2 seconds\n");
    }

    /// Through the patched gtmpl (third_party/gtmpl/PATCHES.md): values print as Go's `%v`
    /// (maps with sorted keys, lists, nil, struct-like objects), `len` takes maps, maps range
    /// in key order, and `else` runs only for an empty range.
    #[test]
    fn values_print_and_range_as_go() {
        let v = serde_json::json!({
            "L": {"e": "5", "b": "2", "d": "4", "a": "1", "c": "3"},
            "E": [], "One": [7], "Cmd": ["sleep", "1000"],
            "State": {"Status": "running", "Pid": 42, "Health": null},
            "Empty": {},
        });
        let r = |t: &str| render(t, &v).unwrap();
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
        assert_eq!(
            r("{{.State}} {{.Empty}} {{.State.Health}}"),
            "{<nil> 42 running} map[] <nil>"
        );
        assert_eq!(r("{{range.Cmd}}[{{.}}]{{end}}"), "[sleep][1000]");
        assert_eq!(
            r("{{if .One}}y{{end}}{{$x := .Cmd}}{{$x}}"),
            "y[sleep 1000]"
        );
        assert!(render("{{len .State.Pid}}", &v).is_err());
    }
}
