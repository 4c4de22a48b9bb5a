//! The Dockerfile parser: parser directives, logical lines, here-documents and instructions.
//!
//! Hand-written because no well-kept crate covers the current syntax: `dockerfile-parser`
//! predates here-documents and parser directives such as `# check`, and BuildKit's parser is
//! Go. The grammar, after the directives:
//!
//! ```text
//! file        = { blank | comment | instruction }
//! instruction = keyword ws args { escape NL [ comment NL ]* args } NL { heredoc-body }
//! keyword     = letter { letter }                      (case-insensitive)
//! args        = [ flag ws ]* ( json-array | rest-of-line )
//! flag        = "--" name [ "=" value ]                (FROM, RUN, COPY, ADD, HEALTHCHECK)
//! heredoc     = "<<" [ "-" ] ( word | "'" word "'" | '"' word '"' )   (RUN, COPY, ADD)
//! ```
//!
//! A line is continued when its last non-blank character is the escape character (`\` or,
//! with `# escape=``, a backtick). Comment lines inside a continued instruction are dropped,
//! as docker does. Every error names the file, line and column.

use std::fmt;

/// A parse error, pointing at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// The parser directives at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=…`: the frontend image a BuildKit build would use (kept, not used).
    pub syntax: Option<String>,
    /// `# escape=` — `\` (the default) or a backtick.
    pub escape: char,
    /// `# check=…` (kept, not used).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A here-document of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// Variables are expanded in the body unless the word was quoted.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped.
    pub strip_tabs: bool,
}

/// An instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// The exec (JSON array) form.
    Json(Vec<String>),
    /// The shell form or any other text, as written (continuations joined).
    Text(String),
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper case (`RUN`).
    pub keyword: String,
    /// `--name=value` flags before the arguments, in order (`--mount` may repeat).
    pub flags: Vec<(String, Option<String>)>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// Where the instruction starts (1-based).
    pub line: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
}

/// The instructions docker knows.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions whose arguments may be a JSON array.
const JSON_FORMS: &[&str] = &[
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
    "COPY",
    "ADD",
    "VOLUME",
    "HEALTHCHECK",
];

/// Instructions that take `--flags` before their arguments.
const FLAGGED: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];

/// Instructions that may carry here-documents.
const HEREDOCS: &[&str] = &["RUN", "COPY", "ADD"];

struct Parser<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    pos: usize,
    escape: char,
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, column: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

fn is_comment(l: &str) -> bool {
    l.trim_start().starts_with('#')
}

/// Parses the directives at the top: `# key=value` lines before anything else.
fn directives(lines: &[&str], file: &str) -> Result<(Directives, usize), ParseError> {
    let mut d = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        let Some(body) = l.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphabetic()) {
            break;
        }
        let v = v.trim().to_string();
        if seen.contains(&k) {
            return Err(ParseError {
                file: file.into(),
                line: i + 1,
                column: 1,
                message: format!("only one {k} parser directive can be used"),
            });
        }
        seen.push(k.clone());
        match k.as_str() {
            "escape" => {
                d.escape = match v.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError {
                            file: file.into(),
                            line: i + 1,
                            column: 1,
                            message: format!("invalid escape token '{v}' does not match ` or \\"),
                        })
                    }
                }
            }
            "syntax" => d.syntax = Some(v),
            "check" => d.check = Some(v),
            // An unknown directive is a comment, and ends the directives.
            _ => break,
        }
        i += 1;
    }
    Ok((d, i))
}

/// Strips a trailing escape character (after trailing blanks): whether the line continues.
fn continues(l: &str, escape: char) -> Option<&str> {
    let t = l.trim_end();
    t.strip_suffix(escape)
}

/// The here-document openers in an instruction's text: (word, quoted, strip tabs), in order.
fn heredoc_openers(text: &str, escape: char) -> Vec<(String, bool, bool)> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut quote) = (0usize, None::<char>);
    while i < b.len() {
        let c = b[i];
        if c == escape && quote != Some('\'') {
            i += 2;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '<' && b.get(i + 1) == Some(&'<') && b.get(i + 2) != Some(&'<') => {
                let mut j = i + 2;
                let strip = b.get(j) == Some(&'-');
                if strip {
                    j += 1;
                }
                let q = b.get(j).copied().filter(|c| *c == '\'' || *c == '"');
                if q.is_some() {
                    j += 1;
                }
                let start = j;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_' || b[j] == '-') {
                    j += 1;
                }
                if j > start {
                    let word: String = b[start..j].iter().collect();
                    if let Some(q) = q {
                        if b.get(j) == Some(&q) {
                            j += 1;
                        }
                    }
                    out.push((word, q.is_some(), strip));
                    i = j;
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// Splits leading `--flag[=value]` words off an instruction's text.
fn split_flags(text: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    let mut rest = text.trim_start();
    while let Some(f) = rest.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        if word.is_empty() {
            break;
        }
        match word.split_once('=') {
            Some((k, v)) => flags.push((k.to_string(), Some(v.to_string()))),
            None => flags.push((word.to_string(), None)),
        }
        rest = f[end..].trim_start();
    }
    (flags, rest)
}

/// Parses `text` (the file's contents) named `file` in errors.
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (directives, start) = directives(&lines, file)?;
    let mut p = Parser {
        file,
        lines,
        pos: start,
        escape: directives.escape,
    };
    let mut instructions = Vec::new();
    while p.pos < p.lines.len() {
        let l = p.lines[p.pos];
        if l.trim().is_empty() || is_comment(l) {
            p.pos += 1;
            continue;
        }
        instructions.push(p.instruction()?);
    }
    Ok(Dockerfile {
        directives,
        instructions,
    })
}

impl Parser<'_> {
    fn instruction(&mut self) -> Result<Instruction, ParseError> {
        let first = self.pos;
        // The logical line: continuations joined, comment lines inside dropped.
        let mut text = String::new();
        while let Some(l) = self.lines.get(self.pos).copied() {
            self.pos += 1;
            if self.pos - 1 > first && is_comment(l) {
                continue;
            }
            match continues(l, self.escape) {
                Some(head) => {
                    text.push_str(head);
                    if self.pos >= self.lines.len() {
                        break;
                    }
                }
                None => {
                    text.push_str(l);
                    break;
                }
            }
        }
        let trimmed = text.trim_start();
        let indent = text.len() - trimmed.len();
        let kw_end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let keyword = trimmed[..kw_end].to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(self.err(
                first + 1,
                indent + 1,
                format!("unknown instruction: {}", &trimmed[..kw_end]),
            ));
        }
        let rest = trimmed[kw_end..].trim();
        let (flags, rest) = if FLAGGED.contains(&keyword.as_str()) {
            split_flags(rest)
        } else {
            (Vec::new(), rest)
        };
        let mut heredocs = Vec::new();
        if HEREDOCS.contains(&keyword.as_str()) {
            for (name, quoted, strip) in heredoc_openers(rest, self.escape) {
                let opened = self.pos;
                let mut content = String::new();
                let mut closed = false;
                while let Some(l) = self.lines.get(self.pos).copied() {
                    self.pos += 1;
                    let l2 = if strip { l.trim_start_matches('\t') } else { l };
                    if l2 == name {
                        closed = true;
                        break;
                    }
                    content.push_str(l2);
                    content.push('\n');
                }
                if !closed {
                    return Err(self.err(
                        opened,
                        1,
                        format!("unterminated here-document: no line {name:?} ends it"),
                    ));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand: !quoted,
                    strip_tabs: strip,
                });
            }
        }
        let args = if JSON_FORMS.contains(&keyword.as_str()) && rest.starts_with('[') {
            match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => Args::Json(v),
                // Not valid JSON: docker takes it as the shell form.
                Err(_) => Args::Text(rest.to_string()),
            }
        } else {
            Args::Text(rest.to_string())
        };
        if rest.is_empty()
            && heredocs.is_empty()
            && !matches!(keyword.as_str(), "CMD" | "ENTRYPOINT" | "RUN")
        {
            return Err(self.err(
                first + 1,
                indent + kw_end + 1,
                format!("{keyword} requires at least one argument"),
            ));
        }
        Ok(Instruction {
            keyword,
            flags,
            args,
            heredocs,
            line: first + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Instruction {
        let d = parse(s, "Dockerfile").unwrap();
        assert_eq!(d.instructions.len(), 1, "{d:?}");
        d.instructions[0].clone()
    }

    #[test]
    fn directives_and_escape() {
        let d = parse(
            "# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM scratch\nRUN echo a `\n  b\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.directives.escape, '`');
        assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
        assert_eq!(d.instructions[1].args, Args::Text("echo a   b".into()));
        // Directives after an instruction are comments.
        let d = parse("FROM scratch\n# escape=`\nRUN a \\\n b\n", "f").unwrap();
        assert_eq!(d.directives.escape, '\\');
        assert_eq!(d.instructions[1].args, Args::Text("a  b".into()));
        let e = parse("# escape=x\nFROM scratch\n", "Dockerfile").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e
            .to_string()
            .starts_with("Dockerfile:1:1: invalid escape token"));
        assert!(parse("# escape=`\n# escape=\\\nFROM a\n", "f").is_err());
    }

    #[test]
    fn continuations_comments_and_forms() {
        let i = one("RUN apt-get update && \\\n# a comment inside\n    apt-get install x\n");
        assert_eq!(
            i.args,
            Args::Text("apt-get update &&     apt-get install x".into())
        );
        let i = one("cmd [\"sh\", \"-c\", \"echo hi\"]\n");
        assert_eq!(i.keyword, "CMD");
        assert_eq!(
            i.args,
            Args::Json(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        let i = one("CMD [not json\n");
        assert_eq!(i.args, Args::Text("[not json".into()));
        let i = one("COPY --from=build --chown=1:2 --link /a /b\n");
        assert_eq!(
            i.flags,
            vec![
                ("from".into(), Some("build".into())),
                ("chown".into(), Some("1:2".into())),
                ("link".into(), None)
            ]
        );
        assert_eq!(i.args, Args::Text("/a /b".into()));
    }

    #[test]
    fn heredocs() {
        let d = parse(
            "FROM scratch\nRUN <<EOF\necho $HOME\nEOF\nCOPY <<-'A' <<B /dst/\n\tliteral $x\nA\nb\nB\nRUN echo done\n",
            "Dockerfile",
        )
        .unwrap();
        let run = &d.instructions[1];
        assert_eq!(run.heredocs.len(), 1);
        assert_eq!(run.heredocs[0].content, "echo $HOME\n");
        assert!(run.heredocs[0].expand);
        let copy = &d.instructions[2];
        assert_eq!(copy.heredocs[0].name, "A");
        assert_eq!(copy.heredocs[0].content, "literal $x\n");
        assert!(!copy.heredocs[0].expand && copy.heredocs[0].strip_tabs);
        assert_eq!(copy.heredocs[1].content, "b\n");
        assert_eq!(d.instructions[3].line, 10);
        // "<<" inside quotes is no here-document.
        let i = one("RUN echo '<<EOF'\n");
        assert!(i.heredocs.is_empty());
        let e = parse("FROM a\nRUN <<EOF\nnever closed\n", "Dockerfile").unwrap_err();
        assert!(e.message.contains("unterminated here-document"), "{e}");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn errors_point_at_the_place() {
        let e = parse("FROM a\n\n  FORM b\n", "ctx/Dockerfile").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ctx/Dockerfile:3:3: unknown instruction: FORM"
        );
        let e = parse("FROM a\nWORKDIR\n", "Dockerfile").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        assert!(e.message.contains("requires at least one argument"));
    }
}
