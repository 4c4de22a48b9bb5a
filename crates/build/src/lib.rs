//! berth's Dockerfile builder.
//!
//! Modules:
//! - [`cache`]: the build cache's key for a step.
//! - [`dockerfile`]: the parser (directives, continuations, here-documents, instructions),
//!   errors with file, line and column.
//! - [`ignore`]: `.dockerignore` with docker's pattern rules.
//! - [`steps`]: instructions checked and typed (flags, argument counts, forms, `RUN --mount`).
//! - [`words`]: per-instruction word semantics (durations, port keys, JSON-form variables,
//!   quoting, an instruction's history text).
//! - [`shell`]: docker's word rules: quotes, escapes, `${v:-x}` substitution, words and
//!   `key=value` pairs.
//!
//! [`stages`] turns a parsed file into its build stages, with `ARG`s before the first `FROM`
//! applied to the `FROM` lines as docker applies them. The execution (steps as containers,
//! the cache, `POST /build`) is issue 8's next part.

pub mod cache;
pub mod dockerfile;
pub mod ignore;
pub mod shell;
pub mod steps;
pub mod words;

use dockerfile::{Args, Dockerfile, Instruction, ParseError};
use shell::Env;

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lower case.
    pub name: Option<String>,
    /// The base: an image reference, `scratch`, or an earlier stage's name (expanded).
    pub base: String,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
    pub line: usize,
}

impl Stage {
    /// The index of the earlier stage this one builds on, if its base names one.
    pub fn base_stage(&self, stages: &[Stage]) -> Option<usize> {
        stages[..self.index]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(self.base.to_ascii_lowercase().as_str()))
            .map(|s| s.index)
    }
}

/// The stages of `df`. `build_args` (`--build-arg`) override the defaults of the `ARG`s before
/// the first `FROM`, which are the only variables a `FROM` line sees.
pub fn stages(df: &Dockerfile, build_args: &Env, file: &str) -> Result<Vec<Stage>, ParseError> {
    let esc = df.directives.escape;
    let err = |line: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        column: 1,
        message,
    };
    let mut meta = Env::new();
    let mut out: Vec<Stage> = Vec::new();
    for i in &df.instructions {
        match (i.keyword.as_str(), out.last_mut()) {
            ("FROM", _) => {
                let Args::Text(text) = &i.args else {
                    return Err(err(i.line, "FROM takes an image, not a JSON array".into()));
                };
                let words: Vec<&str> = text.split_whitespace().collect();
                let (image, name) = match words.as_slice() {
                    [image] => (*image, None),
                    [image, kw, name] if kw.eq_ignore_ascii_case("as") => (*image, Some(*name)),
                    _ => {
                        return Err(err(
                            i.line,
                            format!("FROM requires either one or three arguments: {text}"),
                        ))
                    }
                };
                let base =
                    shell::expand(image, esc, &meta).map_err(|e| err(i.line, e.to_string()))?;
                if base.is_empty() {
                    return Err(err(
                        i.line,
                        format!("base name ({image}) should not be blank"),
                    ));
                }
                let name = name.map(|n| n.to_ascii_lowercase());
                if let Some(n) = &name {
                    let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                    if !ok {
                        return Err(err(i.line, format!("invalid name for build stage: {n:?}, name can't start with a number or contain symbols")));
                    }
                    if out.iter().any(|s| s.name.as_ref() == Some(n)) {
                        return Err(err(i.line, format!("duplicate stage name {n:?}")));
                    }
                }
                let mut platform = None;
                for (k, v) in &i.flags {
                    match (k.as_str(), v) {
                        ("platform", Some(v)) => {
                            platform = Some(
                                shell::expand(v, esc, &meta)
                                    .map_err(|e| err(i.line, e.to_string()))?,
                            )
                        }
                        (k, _) => {
                            return Err(err(i.line, format!("unknown flag: {k}")));
                        }
                    }
                }
                out.push(Stage {
                    index: out.len(),
                    name,
                    base,
                    platform,
                    instructions: Vec::new(),
                    line: i.line,
                });
            }
            ("ARG", None) => {
                let Args::Text(text) = &i.args else {
                    return Err(err(i.line, "ARG takes name[=default]".into()));
                };
                for (k, v) in
                    shell::pairs(text, esc, &meta, false).map_err(|e| err(i.line, e.to_string()))?
                {
                    let value = build_args.get(&k).cloned().or(v).unwrap_or_default();
                    meta.insert(k, value);
                }
            }
            (kw, None) => {
                return Err(err(
                    i.line,
                    format!("no build stage in current context: {kw} before the first FROM"),
                ))
            }
            (_, Some(stage)) => stage.instructions.push(i.clone()),
        }
    }
    if out.is_empty() {
        return Err(err(1, "the Dockerfile has no FROM: no build stage".into()));
    }
    Ok(out)
}

/// The stage a `--from`/`from=` value names, if any: a stage name, or an index before
/// `before`.
pub fn stage_named(stages: &[Stage], name: &str, before: usize) -> Option<usize> {
    let l = name.to_ascii_lowercase();
    if let Some(s) = stages[..before]
        .iter()
        .find(|s| s.name.as_deref() == Some(&l))
    {
        return Some(s.index);
    }
    name.parse::<usize>().ok().filter(|i| *i < before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_and_meta_args() {
        let text = "ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest} AS Build\nARG BASE\nRUN echo $BASE\nFROM --platform=linux/amd64 build\nCOPY --from=build /a /b\nFROM scratch\n";
        let df = dockerfile::parse(text, "Dockerfile").unwrap();
        let s = stages(&df, &Env::new(), "Dockerfile").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].base, "busybox:latest");
        assert_eq!(s[0].name.as_deref(), Some("build"));
        assert_eq!(s[0].instructions.len(), 2);
        assert_eq!(s[1].platform.as_deref(), Some("linux/amd64"));
        assert_eq!(s[1].base_stage(&s), Some(0));
        assert_eq!(s[2].base, "scratch");
        let args = Env::from([("TAG".to_string(), "1.36".to_string())]);
        let s = stages(&df, &args, "Dockerfile").unwrap();
        assert_eq!(
            s[0].base, "busybox:1.36",
            "--build-arg overrides the default"
        );
    }

    #[test]
    fn stage_errors_name_the_line() {
        let bad = |t: &str, words: &str| {
            let df = dockerfile::parse(t, "Dockerfile").unwrap();
            let e = stages(&df, &Env::new(), "Dockerfile").unwrap_err();
            assert!(e.message.contains(words), "{t:?}: {e}");
            e.line
        };
        assert_eq!(bad("RUN true\nFROM a\n", "before the first FROM"), 1);
        assert_eq!(bad("FROM a AS x\nFROM b AS X\n", "duplicate stage name"), 2);
        assert_eq!(bad("FROM a AS 1x\n", "invalid name for build stage"), 1);
        assert_eq!(bad("FROM a b\n", "one or three arguments"), 1);
        assert_eq!(bad("ARG B\nFROM $B\n", "should not be blank"), 2);
        assert_eq!(bad("FROM --bogus=1 a\n", "unknown flag"), 1);
        assert_eq!(bad("ARG A\n", "no FROM"), 1);
    }
}
