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
            let sorted: std::collections::BTreeMap<_, _> =
                m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
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

fn f_json(args: &[TValue]) -> Result<TValue, FuncError> {
    let v = args.first().map(to_json).unwrap_or(Value::Null);
    Ok(TValue::String(
        serde_json::to_string(&v).unwrap_or_default(),
    ))
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
            .unwrap_or(0) as usize
    };
    Ok(TValue::String(format!(
        "{}{}{}",
        " ".repeat(num(1)),
        s,
        " ".repeat(num(2))
    )))
}

/// Docker's template text: `\t` and `\n` escapes as typed on a command line are made real.
fn unescape(t: &str) -> String {
    t.replace("\\t", "\t").replace("\\n", "\n")
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
    ]);
    let text = unescape(tmpl);
    // gtmpl 0.7's lexer never returns on an action left open at the end of the text when
    // whitespace follows it (`{{ `, `x {{.Name} `), found by fuzzing: refused here first, as
    // Go's parser refuses it.
    if let Some(last) = text.rfind("{{") {
        if !text[last + 2..].contains("}}") {
            anyhow::bail!("template parsing error: template: :1: unclosed action");
        }
    }
    // Its lexer (on a thread of its own) also panics on some non-ASCII characters inside an
    // action, which aborts the CLI: they are refused there (text outside actions is free).
    let mut rest = text.as_str();
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}").unwrap_or(after.len());
        if !after[..close].is_ascii() {
            anyhow::bail!(
                "template parsing error: non-ASCII characters inside {{{{ }}}} are not supported"
            );
        }
        rest = &after[close..];
    }
    t.parse(text)
        .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    let ctx = gtmpl::Context::from(to_tvalue(v));
    t.render(&ctx).map_err(|e| anyhow::anyhow!("template: {e}"))
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
            println!("{}", serde_json::to_string(r)?);
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
    fn table_layout() {
        let out = tabwrite(&["NAMES\tSTATUS".into(), "web\tUp 2 seconds".into()]);
        assert_eq!(out, "NAMES     STATUS\nweb       Up 2 seconds\n");
    }
}
