//! Syntax highlighting on the server, so the browser runs no third-party code: file contents are
//! parsed with syntect's bundled Sublime grammars and answered as spans per line (start and end in
//! UTF-16 code units, which is how the browser indexes strings, and a short class name the
//! stylesheet colours). Large files and very long lines are left plain, and highlighting stops at
//! a time budget (a hostile grammar-and-file pair must not hold a core for seconds); what was cut
//! is said in the answer.

use std::sync::LazyLock;

use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

/// Files larger than this are not highlighted.
pub const MAX_BYTES: usize = 256 * 1024;
/// Highlighting stops after this long; the rest of the file is plain.
pub const TIME_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);
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

/// Highlighting of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlighted {
    /// Spans per line; lines past a stop have none.
    pub lines: Vec<Vec<Span>>,
    /// Every line was highlighted (false: stopped at a line too long, or at the time budget).
    pub complete: bool,
}

/// How much of a file was highlighted, as the answers say it: `full`, `partial` (stopped at the
/// time budget or a line too long), `plain` (unknown language, or larger than [`MAX_BYTES`]).
pub fn coverage(h: Option<&Highlighted>) -> &'static str {
    match h {
        Some(h) if h.complete => "full",
        Some(_) => "partial",
        None => "plain",
    }
}

/// Spans for every line of `text` (a file at `path`), or `None` when it is not highlighted
/// (unknown language, too large). Lines after one too long to parse, or after the time budget
/// ran out, get no spans.
pub fn highlight(path: &str, text: &str) -> Option<Highlighted> {
    highlight_within(path, text, TIME_BUDGET)
}

/// [`highlight`] with a time budget of `budget`.
pub fn highlight_within(
    path: &str,
    text: &str,
    budget: std::time::Duration,
) -> Option<Highlighted> {
    if text.len() > MAX_BYTES {
        return None;
    }
    let syntax = syntax_for(path, text)?;
    let started = std::time::Instant::now();
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut out = Vec::new();
    let mut stopped = false;
    for (n, line) in LinesWithEndings::from(text).enumerate() {
        if !stopped && n % 16 == 0 && started.elapsed() >= budget {
            stopped = true;
        }
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
    Some(Highlighted {
        lines: out,
        complete: !stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(path: &str, text: &str) -> Vec<(String, &'static str)> {
        let lines = highlight(path, text).expect("highlighted").lines;
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
        let h = highlight("a.rs", &long).expect("rust");
        assert!(!h.lines[0].is_empty() && h.lines[2].is_empty());
        assert!(!h.complete);
        assert_eq!(coverage(Some(&h)), "partial");
    }

    #[test]
    fn highlighting_stops_at_its_time_budget_and_says_so() {
        // Regression: a 450 KB file with a grammar the client picked took 6.7-8.3 s a request.
        let text = "key: [a, {b: 'c'}]\n".repeat(2000);
        let none_left =
            highlight_within("x.yaml", &text, std::time::Duration::ZERO).expect("yaml is known");
        assert!(!none_left.complete);
        assert!(
            none_left.lines.iter().all(Vec::is_empty),
            "nothing after the budget"
        );
        assert_eq!(
            none_left.lines.len(),
            2000,
            "every line is still there, plain"
        );
        let whole = highlight("x.yaml", "key: [a, {b: 'c'}]\n").expect("yaml");
        assert!(whole.complete);
        assert_eq!(coverage(Some(&whole)), "full");
        assert_eq!(coverage(None), "plain");
    }
}
