//! Reading values from a git config file (`.git/config`): sections, quoted subsections, the
//! legacy `[section.sub]` form, comments, quoted values with escapes and line continuations,
//! and keys without `=` (true). `include` and `includeIf` are not followed and `insteadOf`
//! rewriting is not applied.

use std::path::Path;

/// Files larger than this are not read (a config is a few KB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// One `section.subsection.key = value` entry, in file order. Section and key names are
/// lowercased (git's names are case-insensitive); subsections keep their case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Section name, lowercased.
    pub section: String,
    /// Subsection (`[remote "origin"]`), case kept.
    pub subsection: Option<String>,
    /// Key name, lowercased.
    pub key: String,
    /// The value; `None` for a key written without `=` (boolean true).
    pub value: Option<String>,
}

/// The entries of a config file's text. Lines git would reject are skipped, not fatal: a
/// viewer reads the config only for hints such as the `origin` remote.
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut section: Option<(String, Option<String>)> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut rest = line.trim_start();
        if rest.is_empty() || rest.starts_with('#') || rest.starts_with(';') {
            continue;
        }
        if let Some(header) = rest.strip_prefix('[') {
            section = parse_header(header);
            let Some(end) = header_end(header) else {
                continue;
            };
            // `[section] key = value` on one line.
            rest = header[end + 1..].trim_start();
            if rest.is_empty() || rest.starts_with('#') || rest.starts_with(';') {
                continue;
            }
        }
        let Some((name, sub)) = section.clone() else {
            continue;
        };
        let key_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() || !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let after = rest[key_end..].trim_start();
        let value = if after.is_empty() || after.starts_with('#') || after.starts_with(';') {
            None
        } else if let Some(v) = after.strip_prefix('=') {
            match parse_value(v, &mut lines) {
                Some(v) => Some(v),
                None => continue,
            }
        } else {
            continue;
        };
        out.push(Entry {
            section: name,
            subsection: sub,
            key: key.to_ascii_lowercase(),
            value,
        });
    }
    out
}

/// Where the `]` closing a section header is (after any quoted subsection).
fn header_end(header: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in header.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_header(header: &str) -> Option<(String, Option<String>)> {
    let end = header_end(header)?;
    let inner = &header[..end];
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if let Some((name, quoted)) = inner.split_once(char::is_whitespace) {
        let quoted = quoted.trim_start();
        let body = quoted.strip_prefix('"')?.strip_suffix('"')?;
        let mut sub = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                // In a subsection a backslash keeps the next character, whatever it is.
                '\\' => sub.push(chars.next()?),
                '"' => return None,
                c => sub.push(c),
            }
        }
        valid_name(name).then(|| (name.to_ascii_lowercase(), Some(sub)))
    } else if valid_name(inner) {
        // Legacy `[section.Sub]`: the subsection is lowercased.
        match inner.split_once('.') {
            Some((name, sub)) => Some((name.to_ascii_lowercase(), Some(sub.to_ascii_lowercase()))),
            None => Some((inner.to_ascii_lowercase(), None)),
        }
    } else {
        None
    }
}

/// A value after `=`, read as git reads it: leading and trailing whitespace outside quotes is
/// dropped (inner runs are kept), quotes group, `\` escapes `"`, `\`, `n`, `t` and `b`, `#` or
/// `;` outside quotes starts a comment, and a `\` at the end of a line continues the value on
/// the next. `None` for an unknown escape or an unclosed quote.
fn parse_value<'a>(first: &'a str, lines: &mut impl Iterator<Item = &'a str>) -> Option<String> {
    let mut out = String::new();
    let (mut quote, mut comment) = (false, false);
    // Where trailing whitespace outside quotes began, if the value ends there.
    let mut trim: Option<usize> = None;
    let mut line = first;
    loop {
        let mut chars = line.chars();
        loop {
            let Some(c) = chars.next() else {
                if quote {
                    return None;
                }
                if let Some(t) = trim {
                    out.truncate(t);
                }
                return Some(out);
            };
            if comment {
                continue;
            }
            if c.is_whitespace() && !quote {
                if trim.is_none() && !out.is_empty() {
                    trim = Some(out.len());
                }
                if !out.is_empty() {
                    out.push(c);
                }
                continue;
            }
            if !quote && (c == '#' || c == ';') {
                comment = true;
                continue;
            }
            trim = None;
            match c {
                '\\' => match chars.next() {
                    // A line continuation.
                    None => break,
                    Some('t') => out.push('\t'),
                    Some('b') => out.push('\u{8}'),
                    Some('n') => out.push('\n'),
                    Some(e @ ('\\' | '"')) => out.push(e),
                    Some(_) => return None,
                },
                '"' => quote = !quote,
                c => out.push(c),
            }
        }
        line = lines.next()?;
    }
}

/// The entries of the config file at `path`; `None` when it is unreadable or too large.
pub fn read(path: &Path) -> Option<Vec<Entry>> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_CONFIG_BYTES {
        return None;
    }
    let text = std::fs::read(path).ok()?;
    Some(parse(&String::from_utf8_lossy(&text)))
}

/// The last value of `section.subsection.key` in the config file at `path`, as
/// `git config --file path --get` gives it; `None` when unset, unreadable or too large.
pub fn get(path: &Path, section: &str, subsection: Option<&str>, key: &str) -> Option<String> {
    last(&read(path)?, section, subsection, key)
        .map(|e| e.value.clone().unwrap_or_else(|| "true".to_string()))
}

/// The entry that sets `section.subsection.key` in `entries` (the last one, as git reads a
/// setting), if any.
pub fn last<'a>(
    entries: &'a [Entry],
    section: &str,
    subsection: Option<&str>,
    key: &str,
) -> Option<&'a Entry> {
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    entries
        .iter()
        .rev()
        .find(|e| e.section == section && e.subsection.as_deref() == subsection && e.key == key)
}

/// The config files outside the repository that `git` reads before the repository's own, in
/// its order: the system file (`GIT_CONFIG_SYSTEM`, else `/etc/gitconfig`; none with
/// `GIT_CONFIG_NOSYSTEM`), then the global ones (`GIT_CONFIG_GLOBAL` alone when set, else
/// `$XDG_CONFIG_HOME/git/config` or `~/.config/git/config`, then `~/.gitconfig`).
pub fn user_files() -> Vec<std::path::PathBuf> {
    use std::path::PathBuf;
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut files = Vec::new();
    let no_system = var("GIT_CONFIG_NOSYSTEM").is_some_and(|v| {
        let v = v.to_string_lossy().to_ascii_lowercase();
        !matches!(v.as_str(), "0" | "false" | "no" | "off")
    });
    if !no_system {
        files.push(
            var("GIT_CONFIG_SYSTEM").map_or_else(|| PathBuf::from("/etc/gitconfig"), PathBuf::from),
        );
    }
    if let Some(global) = var("GIT_CONFIG_GLOBAL") {
        files.push(PathBuf::from(global));
        return files;
    }
    let home = var("HOME").map(PathBuf::from);
    match (var("XDG_CONFIG_HOME"), &home) {
        (Some(xdg), _) => files.push(PathBuf::from(xdg).join("git/config")),
        (None, Some(home)) => files.push(home.join(".config/git/config")),
        (None, None) => {}
    }
    if let Some(home) = home {
        files.push(home.join(".gitconfig"));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_skipped_and_oversized_or_missing_files_read_as_unset() {
        // An unknown escape, an unclosed quote, a key outside any section, a broken header: each
        // line is dropped and the rest still reads.
        let text =
            "k = outside\n[ok]\n\ta = \\q bad\n\tb = \"open\n\tc = fine\n[bro ken\n\td = after\n";
        let e = parse(text);
        let names: Vec<(&str, Option<&str>)> = e
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(names, [("c", Some("fine"))]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let big = tmp.path().join("config");
        let mut text = String::from("[remote \"origin\"]\n\turl = https://example.com/r\n");
        text.push_str(&"# padding\n".repeat((MAX_CONFIG_BYTES as usize) / 10 + 1));
        std::fs::write(&big, text).expect("write");
        assert_eq!(
            get(&big, "remote", Some("origin"), "url"),
            None,
            "too large"
        );
        assert_eq!(
            get(&tmp.path().join("missing"), "remote", Some("origin"), "url"),
            None
        );
    }

    #[test]
    fn reads_sections_quotes_escapes_and_continuations() {
        let text = "# comment\n[core]\n\tbare = false ; trailing\n[remote \"or\\\"igin\"]\n  url = \"git@github.com:o/r.git\"  # c\n[Section.Sub]\nKey\n[a] b = one \\\n  two\n";
        let e = parse(text);
        assert_eq!(e[0].value.as_deref(), Some("false"));
        assert_eq!(e[1].subsection.as_deref(), Some("or\"igin"));
        assert_eq!(e[1].value.as_deref(), Some("git@github.com:o/r.git"));
        assert_eq!(
            (
                e[2].section.as_str(),
                e[2].subsection.as_deref(),
                e[2].key.as_str(),
                e[2].value.as_deref()
            ),
            ("section", Some("sub"), "key", None)
        );
        assert_eq!(e[3].value.as_deref(), Some("one   two"));
    }
}
