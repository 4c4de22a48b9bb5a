//! `.dockerignore`, with docker's pattern rules (moby's patternmatcher):
//!
//! - one pattern a line; blank lines and lines starting with `#` are skipped; surrounding
//!   blanks are trimmed;
//! - a pattern is cleaned like a path (`./a//b/` is `a/b`), a leading `/` is dropped;
//! - `*` is any run of characters but `/`, `?` one character but `/`, `[...]` a class (`[^...]`
//!   or `[!...]` negated, ranges), `\` makes the next character literal, and `**` any number
//!   of directories (none included);
//! - a pattern matches a path or any directory above it (`build` excludes `build/out.o`);
//! - `!pattern` re-includes; the last pattern that matches decides.
//!
//! The file for a Dockerfile named `X` is `X.dockerignore` when that exists, else
//! `.dockerignore` at the context's root. Hand-written: the `ignore` and `globset` crates
//! follow gitignore's rules, which differ (gitignore matches a bare name at any depth; docker
//! anchors every pattern at the context's root).

use std::path::Path;

/// One pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    pub exclusion: bool,
}

/// The patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    pub patterns: Vec<Pattern>,
}

/// Cleans a path the way Go's `filepath.Clean` does, without a leading `/`.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !p.starts_with('/') {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    out.join("/")
}

impl Ignore {
    /// Parses the file's text. A pattern that is not valid is an error naming its line.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match l.strip_prefix('!') {
                Some(b) => (true, b.trim()),
                None => (false, l),
            };
            let text = clean(body);
            if text.is_empty() {
                continue;
            }
            // Invalid classes are found now, not at the first match.
            if let Err(e) = glob_match(&text, "") {
                return Err(format!(".dockerignore line {}: {e}: {l}", n + 1));
            }
            patterns.push(Pattern { text, exclusion });
        }
        Ok(Ignore { patterns })
    }

    /// Reads the ignore file that goes with `dockerfile` in `context` (none: nothing ignored).
    pub fn for_context(context: &Path, dockerfile: &Path) -> Result<Ignore, String> {
        let specific = {
            let mut s = dockerfile.as_os_str().to_owned();
            s.push(".dockerignore");
            std::path::PathBuf::from(s)
        };
        for p in [specific, context.join(".dockerignore")] {
            match std::fs::read_to_string(&p) {
                Ok(t) => return Ignore::parse(&t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("read {}: {e}", p.display())),
            }
        }
        Ok(Ignore::default())
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let mut out = false;
        for p in &self.patterns {
            if matches_or_parent(&p.text, &path) {
                out = !p.exclusion;
            }
        }
        out
    }
}

fn matches_or_parent(pattern: &str, path: &str) -> bool {
    if glob_match(pattern, path).unwrap_or(false) {
        return true;
    }
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if glob_match(pattern, p).unwrap_or(false) {
            return true;
        }
    }
    false
}

/// Matches a whole path against a pattern. Errors on a malformed class.
pub fn glob_match(pattern: &str, path: &str) -> Result<bool, String> {
    let pat: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    validate(&pat)?;
    Ok(m(&pat, &s))
}

fn validate(p: &[char]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => i += 2,
            '[' => {
                let end = class_end(p, i).ok_or("syntax error in pattern: unclosed [")?;
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index of the `]` closing the class that starts at `i`.
fn class_end(p: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if matches!(p.get(j), Some('^') | Some('!')) {
        j += 1;
    }
    if p.get(j) == Some(&']') {
        j += 1;
    }
    while j < p.len() {
        match p[j] {
            '\\' => j += 2,
            ']' => return Some(j),
            _ => j += 1,
        }
    }
    None
}

fn class_matches(p: &[char], start: usize, end: usize, c: char) -> bool {
    let mut j = start + 1;
    let negated = matches!(p.get(j), Some('^') | Some('!'));
    if negated {
        j += 1;
    }
    let mut hit = false;
    let mut first = true;
    while j < end {
        let mut lo = p[j];
        if lo == '\\' && j + 1 < end {
            j += 1;
            lo = p[j];
        } else if lo == ']' && !first {
            break;
        }
        first = false;
        if j + 2 < end && p[j + 1] == '-' {
            let hi = p[j + 2];
            if lo <= c && c <= hi {
                hit = true;
            }
            j += 3;
        } else {
            if lo == c {
                hit = true;
            }
            j += 1;
        }
    }
    hit != negated && c != '/'
}

fn m(p: &[char], s: &[char]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        '*' if p.get(1) == Some(&'*') => {
            // `**/` or a trailing `**`: any number of whole directories (or everything).
            let rest = if p.get(2) == Some(&'/') {
                &p[3..]
            } else {
                &p[2..]
            };
            if rest.is_empty() {
                return true;
            }
            if m(rest, s) {
                return true;
            }
            (0..s.len()).any(|i| s[i] == '/' && m(rest, &s[i + 1..]))
                || (p.get(2) != Some(&'/') && (0..=s.len()).any(|i| m(rest, &s[i..])))
        }
        '*' => {
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if m(rest, &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        '?' => !s.is_empty() && s[0] != '/' && m(&p[1..], &s[1..]),
        '[' => match class_end(p, 0) {
            Some(end) => {
                !s.is_empty() && class_matches(p, 0, end, s[0]) && m(&p[end + 1..], &s[1..])
            }
            None => false,
        },
        '\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && m(&p[2..], &s[1..]),
        c => !s.is_empty() && s[0] == c && m(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_pattern_rules() {
        let ig = Ignore::parse(
            "# comment\n\n  *.log  \n/build\n!build/keep.txt\n**/node_modules\ndocs/**/*.md\n!docs/README.md\ntmp?\n[ab]c\n./x/../y//z/\n",
        )
        .unwrap();
        let ex = |p: &str| ig.excluded(p);
        assert!(ex("app.log") && !ex("logs/app.log"), "* does not cross /");
        assert!(
            ex("build") && ex("build/out.o"),
            "a directory takes what is under it"
        );
        assert!(!ex("build/keep.txt"), "an exception re-includes");
        assert!(
            ex("node_modules") && ex("a/b/node_modules/x.js"),
            "** any depth, none too"
        );
        assert!(ex("docs/a.md") && ex("docs/x/y/a.md") && !ex("docs/README.md"));
        assert!(!ex("docs/a.txt"));
        assert!(ex("tmp1") && !ex("tmp") && !ex("tmp12"));
        assert!(ex("ac") && ex("bc") && !ex("cc"));
        assert!(ex("y/z") && ex("y/z/w"), "patterns are cleaned");
        assert!(!ex("src/main.rs"));

        // The last match decides.
        let ig = Ignore::parse("*\n!keep\nkeep/secret\n").unwrap();
        assert!(ig.excluded("other") && !ig.excluded("keep") && ig.excluded("keep/secret"));
        assert!(Ignore::parse("ok\n[unclosed\n")
            .unwrap_err()
            .contains("line 2"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(glob_match("[a-c]x", "bx").unwrap());
        assert!(!glob_match("[^a-c]x", "bx").unwrap());
        assert!(glob_match("[!a-c]x", "dx").unwrap());
        assert!(glob_match("a\\*b", "a*b").unwrap() && !glob_match("a\\*b", "axb").unwrap());
        assert!(!glob_match("a?b", "a/b").unwrap());
        assert!(glob_match("**", "any/thing").unwrap());
        assert!(glob_match("a/**", "a/b/c").unwrap());
    }

    #[test]
    fn the_dockerfile_specific_file_wins() {
        let d = tempfile_dir();
        std::fs::write(d.join(".dockerignore"), "general\n").unwrap();
        std::fs::write(d.join("Dockerfile.dockerignore"), "specific\n").unwrap();
        let ig = Ignore::for_context(&d, &d.join("Dockerfile")).unwrap();
        assert!(ig.excluded("specific") && !ig.excluded("general"));
        let ig = Ignore::for_context(&d, &d.join("Other")).unwrap();
        assert!(ig.excluded("general"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berth-ignore-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
