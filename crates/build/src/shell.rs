//! Docker's word rules for instruction arguments: quotes, the escape character, and variable
//! substitution (`$v`, `${v}`, `${v:-x}`, `${v-x}`, `${v:+x}`, `${v+x}`, `${v:?msg}`,
//! `${v?msg}`), and the splitting of a line into words and `key=value` pairs.
//!
//! Rules, as BuildKit's shell lexer has them: inside single quotes everything is literal;
//! inside double quotes the escape character escapes only `"`, `$` and itself; outside quotes
//! it makes the next character literal. An unset variable is empty. Words are split at
//! unquoted blanks, and so are the values of unquoted variables.

use std::collections::BTreeMap;

/// A substitution error (`${v:?message}` of an unset variable, an unclosed brace or quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError(pub String);

impl std::fmt::Display for ShellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShellError {}

/// Variables in scope.
pub type Env = BTreeMap<String, String>;

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a Env,
}

/// One piece of output: a character, and whether it may split words (from an unquoted
/// variable's value).
type Piece = (char, bool);

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// The whole input; `stop` ends a nested word (the `}` of `${v:-word}`).
    fn word(&mut self, stop: Option<char>, out: &mut Vec<Piece>) -> Result<(), ShellError> {
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                return Ok(());
            }
            self.pos += 1;
            match c {
                '\'' => {
                    loop {
                        match self.next() {
                        Some('\'') => break,
                        Some(x) => out.push((x, false)),
                        None => return Err(ShellError("unexpected end of statement while looking for matching single-quote".into())),
                    }
                    }
                }
                '"' => {
                    loop {
                        match self.next() {
                        Some('"') => break,
                        Some('$') => self.dollar(out, false)?,
                        Some(x) if x == self.escape => match self.next() {
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                out.push((n, false))
                            }
                            Some(n) => {
                                out.push((x, false));
                                out.push((n, false));
                            }
                            None => out.push((x, false)),
                        },
                        Some(x) => out.push((x, false)),
                        None => return Err(ShellError("unexpected end of statement while looking for matching double-quote".into())),
                    }
                    }
                }
                '$' => self.dollar(out, true)?,
                x if x == self.escape => match self.next() {
                    Some(n) => out.push((n, false)),
                    None => out.push((x, false)),
                },
                x if x.is_whitespace() => out.push((x, true)),
                x => out.push((x, false)),
            }
        }
        match stop {
            Some(_) => Err(ShellError("missing '}'".into())),
            None => Ok(()),
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    fn push_value(out: &mut Vec<Piece>, v: &str, splits: bool) {
        out.extend(v.chars().map(|c| (c, splits && c.is_whitespace())));
    }

    /// After a `$`.
    fn dollar(&mut self, out: &mut Vec<Piece>, splits: bool) -> Result<(), ShellError> {
        if self.peek() != Some('{') {
            let n = self.name();
            if n.is_empty() {
                out.push(('$', false));
            } else {
                let v = self.env.get(&n).cloned().unwrap_or_default();
                Self::push_value(out, &v, splits);
            }
            return Ok(());
        }
        self.pos += 1;
        let n = self.name();
        if n.is_empty() {
            return Err(ShellError(
                "bad substitution: a ${} needs a variable name".into(),
            ));
        }
        let value = self.env.get(&n).cloned();
        match self.next() {
            Some('}') => {
                Self::push_value(out, &value.unwrap_or_default(), splits);
                Ok(())
            }
            Some(c) => {
                let colon = c == ':';
                let op = if colon { self.next() } else { Some(c) };
                let mut word = Vec::new();
                self.word(Some('}'), &mut word)?;
                self.pos += 1; // the `}`
                let word: String = word.into_iter().map(|(c, _)| c).collect();
                // With a colon an empty value counts as unset.
                let set = match &value {
                    Some(v) => !(colon && v.is_empty()),
                    None => false,
                };
                match op {
                    Some('-') => {
                        let v = if set { value.unwrap_or_default() } else { word };
                        Self::push_value(out, &v, splits);
                    }
                    Some('+') => {
                        if set {
                            Self::push_value(out, &word, splits);
                        }
                    }
                    Some('?') => {
                        if !set {
                            return Err(ShellError(if word.is_empty() {
                                format!("{n}: is not allowed to be unset")
                            } else {
                                format!("{n}: {word}")
                            }));
                        }
                        Self::push_value(out, &value.unwrap_or_default(), splits);
                    }
                    other => {
                        return Err(ShellError(format!(
                            "unsupported modifier ({}) in substitution",
                            other.map(String::from).unwrap_or_default()
                        )))
                    }
                }
                Ok(())
            }
            None => Err(ShellError("missing '}'".into())),
        }
    }
}

fn pieces(text: &str, escape: char, env: &Env) -> Result<Vec<Piece>, ShellError> {
    let mut l = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        env,
    };
    let mut out = Vec::new();
    l.word(None, &mut out)?;
    Ok(out)
}

/// `text` with quotes and escapes removed and variables substituted, as one word
/// (`WORKDIR`, `USER`, `FROM`'s image, an `ENV` value).
pub fn expand(text: &str, escape: char, env: &Env) -> Result<String, ShellError> {
    Ok(pieces(text, escape, env)?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}

/// `text` split into words at unquoted blanks, then expanded (`COPY`, `EXPOSE`, `VOLUME`).
pub fn words(text: &str, escape: char, env: &Env) -> Result<Vec<String>, ShellError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    for (c, splits) in pieces(text, escape, env)? {
        if splits {
            if in_word {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
        } else {
            cur.push(c);
            in_word = true;
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The `key=value` pairs of `ENV`, `LABEL` and `ARG` (values expanded; `ARG name` has none),
/// or docker's older `ENV key value with spaces` form.
pub fn pairs(
    text: &str,
    escape: char,
    env: &Env,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>, ShellError> {
    let text = text.trim();
    let first_end = text.find(char::is_whitespace).unwrap_or(text.len());
    if legacy && !text[..first_end].contains('=') && first_end < text.len() {
        let value = expand(text[first_end..].trim_start(), escape, env)?;
        return Ok(vec![(text[..first_end].to_string(), Some(value))]);
    }
    // Split at unquoted blanks without expanding, then expand each value.
    let mut raw: Vec<String> = Vec::new();
    let (mut cur, mut quote, mut esc) = (String::new(), None::<char>, false);
    for c in text.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        if c == escape && quote != Some('\'') {
            cur.push(c);
            esc = true;
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c)
            }
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                cur.push(c)
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    raw.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(ShellError(
            "unexpected end of statement while looking for matching quote".into(),
        ));
    }
    if !cur.is_empty() {
        raw.push(cur);
    }
    let mut out = Vec::new();
    for w in raw {
        match w.split_once('=') {
            Some((k, v)) => {
                let k = expand(k, escape, env)?;
                if k.is_empty() {
                    return Err(ShellError(format!("invalid key-value pair: {w}")));
                }
                out.push((k, Some(expand(v, escape, env)?)));
            }
            None => out.push((expand(&w, escape, env)?, None)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from([
            ("HOME".into(), "/root".into()),
            ("EMPTY".into(), String::new()),
            ("PORTS".into(), "80 443".into()),
        ])
    }

    #[test]
    fn substitution_forms() {
        let e = env();
        let x = |s: &str| expand(s, '\\', &e).unwrap();
        assert_eq!(x("$HOME/x"), "/root/x");
        assert_eq!(x("${HOME}x"), "/rootx");
        assert_eq!(x("${NOPE:-dflt}"), "dflt");
        assert_eq!(x("${EMPTY:-dflt}"), "dflt");
        assert_eq!(x("${EMPTY-dflt}"), "");
        assert_eq!(x("${HOME:+set}"), "set");
        assert_eq!(x("${NOPE:+set}"), "");
        assert_eq!(x("${EMPTY+set}"), "set");
        assert_eq!(x("${NOPE:-${HOME}/d}"), "/root/d");
        assert_eq!(x("'$HOME'"), "$HOME");
        assert_eq!(x("\"$HOME is\""), "/root is");
        assert_eq!(x("\\$HOME"), "$HOME");
        assert_eq!(x("\"a\\\"b\""), "a\"b");
        assert_eq!(x("$"), "$");
        assert_eq!(expand("`$HOME", '`', &e).unwrap(), "$HOME");
        assert!(expand("${NOPE:?must be set}", '\\', &e)
            .unwrap_err()
            .0
            .contains("must be set"));
        assert!(expand("${HOME", '\\', &e).is_err());
        assert!(expand("'open", '\\', &e).is_err());
        assert!(expand("${HOME/a/b}", '\\', &e).is_err());
    }

    #[test]
    fn words_and_pairs() {
        let e = env();
        assert_eq!(
            words("a \"b c\" $PORTS '$x y'", '\\', &e).unwrap(),
            vec!["a", "b c", "80", "443", "$x y"]
        );
        assert_eq!(words("\"$PORTS\"", '\\', &e).unwrap(), vec!["80 443"]);
        assert_eq!(
            pairs("a=1 b=\"two words\" c=$HOME d", '\\', &e, true).unwrap(),
            vec![
                ("a".into(), Some("1".into())),
                ("b".into(), Some("two words".into())),
                ("c".into(), Some("/root".into())),
                ("d".into(), None)
            ]
        );
        assert_eq!(
            pairs("key value with $HOME", '\\', &e, true).unwrap(),
            vec![("key".into(), Some("value with /root".into()))]
        );
        assert!(pairs("=x", '\\', &e, false).is_err());
    }

    /// A small deterministic generator (xorshift), so the property tests need no crate.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn text(&mut self, alphabet: &[char], max: usize) -> String {
            let n = (self.next() % max as u64) as usize;
            (0..n)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn property_any_input_is_an_answer_or_an_error_never_a_panic() {
        let e = env();
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let alphabet = [
            '$', '{', '}', ':', '-', '+', '?', '\'', '"', '\\', '`', ' ', 'a', 'H', 'O', 'M', 'E',
            '_', '1', '=', '\t',
        ];
        for _ in 0..20_000 {
            let s = g.text(&alphabet, 24);
            let _ = expand(&s, '\\', &e);
            let _ = expand(&s, '`', &e);
            let _ = words(&s, '\\', &e);
            let _ = pairs(&s, '\\', &e, true);
        }
    }

    #[test]
    fn property_plain_words_are_unchanged_and_split_at_blanks() {
        let e = env();
        let mut g = Gen(42);
        let plain: Vec<char> = ('a'..='z').chain(['/', '.', '_', '-', ' ']).collect();
        for _ in 0..5_000 {
            let s = g.text(&plain, 40);
            assert_eq!(expand(&s, '\\', &e).unwrap(), s);
            let want: Vec<String> = s.split_whitespace().map(String::from).collect();
            assert_eq!(words(&s, '\\', &e).unwrap(), want, "{s:?}");
            // Single quotes make anything literal.
            let q = format!("'{}'", s.replace('\'', ""));
            assert_eq!(expand(&q, '\\', &e).unwrap(), s.replace('\'', ""));
        }
    }
}
