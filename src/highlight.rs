//! Syntax highlighting on the server, so the browser runs no third-party code: file contents are
//! parsed with syntect's bundled Sublime grammars and answered as spans per line (start and end in
//! UTF-16 code units, which is how the browser indexes strings, and a short class name the
//! stylesheet colours). Large files and very long lines are left plain.

use std::sync::LazyLock;

use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

/// Files larger than this are not highlighted.
pub const MAX_BYTES: usize = 512 * 1024;
/// Highlighting stops at a line longer than this (minified code).
const MAX_LINE: usize = 4000;

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// Scope prefixes to classes, most specific first.
static CLASSES: LazyLock<Vec<(Scope, &'static str)>> = LazyLock::new(|| {
    [
        ("comment", "com"),
        ("string", "str"),
        ("constant.character.escape", "esc"),
        ("constant.numeric", "num"),
        ("constant", "con"),
        ("keyword", "kw"),
        ("storage", "kw"),
        ("entity.name.function", "fn"),
        ("support.function", "fn"),
        ("entity.name", "ty"),
        ("support.type", "ty"),
        ("support.class", "ty"),
        ("entity.other.attribute-name", "attr"),
        ("variable.parameter", "var"),
        ("markup.heading", "kw"),
        ("markup.inserted", "str"),
        ("markup.deleted", "kw"),
    ]
    .into_iter()
    .filter_map(|(s, c)| Some((Scope::new(s).ok()?, c)))
    .collect()
});

/// One highlighted run: `[start, end)` in UTF-16 code units, and its class.
pub type Span = (u32, u32, &'static str);

/// The grammar for a path: by extension (or whole name: `Makefile`), else by the first line
/// (`#!/bin/sh`).
fn syntax_for(path: &str, text: &str) -> Option<&'static SyntaxReference> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map_or(name, |(_, e)| e);
    let s = SYNTAXES
        .find_syntax_by_extension(ext)
        .or_else(|| SYNTAXES.find_syntax_by_extension(name))
        .or_else(|| SYNTAXES.find_syntax_by_first_line(text.lines().next().unwrap_or("")))?;
    (s.name != "Plain Text").then_some(s)
}

fn class_of(stack: &ScopeStack) -> Option<&'static str> {
    stack.as_slice().iter().rev().find_map(|scope| {
        CLASSES
            .iter()
            .find(|(prefix, _)| prefix.is_prefix_of(*scope))
            .map(|(_, c)| *c)
    })
}

/// Spans for every line of `text` (a file at `path`), or `None` when it is not highlighted
/// (unknown language, too large). Lines after one too long to parse get no spans.
pub fn highlight(path: &str, text: &str) -> Option<Vec<Vec<Span>>> {
    if text.len() > MAX_BYTES {
        return None;
    }
    let syntax = syntax_for(path, text)?;
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut out = Vec::new();
    let mut stopped = false;
    for line in LinesWithEndings::from(text) {
        if stopped || line.len() > MAX_LINE {
            stopped = true;
            out.push(Vec::new());
            continue;
        }
        let Ok(ops) = state.parse_line(line, &SYNTAXES) else {
            stopped = true;
            out.push(Vec::new());
            continue;
        };
        let mut spans: Vec<Span> = Vec::new();
        let mut units = 0u32;
        let mut at = 0usize;
        let mut emit = |from: usize, to: usize, stack: &ScopeStack, units: &mut u32| {
            let piece = line[from..to].trim_end_matches(['\n', '\r']);
            let len = piece.encode_utf16().count() as u32;
            if len > 0
                && let Some(class) = class_of(stack)
            {
                match spans.last_mut() {
                    Some(last) if last.1 == *units && last.2 == class => last.1 += len,
                    _ => spans.push((*units, *units + len, class)),
                }
            }
            *units += len;
        };
        for (pos, op) in ops {
            let pos = pos.min(line.len());
            if pos > at && line.is_char_boundary(pos) {
                emit(at, pos, &stack, &mut units);
                at = pos;
            }
            if stack.apply(&op).is_err() {
                stopped = true;
                break;
            }
        }
        emit(at, line.len(), &stack, &mut units);
        out.push(spans);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(path: &str, text: &str) -> Vec<(String, &'static str)> {
        let lines = highlight(path, text).expect("highlighted");
        let text_lines: Vec<&str> = text.lines().collect();
        lines
            .iter()
            .zip(text_lines)
            .flat_map(|(spans, line)| {
                let units: Vec<u16> = line.encode_utf16().collect();
                spans
                    .iter()
                    .map(|&(a, b, c)| (String::from_utf16_lossy(&units[a as usize..b as usize]), c))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn rust_keywords_strings_and_comments() {
        let got = classes("src/x.rs", "fn main() {\n    let s = \"hé\"; // note\n}\n");
        assert!(got.contains(&("fn".to_string(), "kw")), "{got:?}");
        assert!(
            got.iter().any(|(t, c)| t.contains("hé") && *c == "str"),
            "{got:?}"
        );
        assert!(
            got.iter().any(|(t, c)| t.contains("note") && *c == "com"),
            "{got:?}"
        );
    }

    #[test]
    fn utf16_offsets_survive_astral_characters() {
        let got = classes("a.py", "x = '😀' # c\n");
        assert!(
            got.iter().any(|(t, c)| t.contains('😀') && *c == "str"),
            "{got:?}"
        );
        assert!(
            got.iter().any(|(t, c)| t.contains('c') && *c == "com"),
            "{got:?}"
        );
    }

    #[test]
    fn unknown_large_and_shebang_files() {
        assert!(highlight("notes.unknownext", "hello\n").is_none());
        assert!(highlight("a.rs", &"x".repeat(MAX_BYTES + 1)).is_none());
        assert!(highlight("run", "#!/bin/sh\necho hi\n").is_some());
        let long = format!("let a = 1;\n{}\nlet b = 2;\n", "x".repeat(MAX_LINE + 1));
        let spans = highlight("a.rs", &long).expect("rust");
        assert!(!spans[0].is_empty() && spans[2].is_empty());
    }
}
