use super::*;

fn preds(q: &str) -> Vec<(bool, Predicate)> {
    Query::parse(q, 1_000_000_000)
        .expect("parses")
        .terms
        .into_iter()
        .map(|t| (t.negated, t.predicate))
        .collect()
}

#[test]
fn parses_qualifiers_quotes_and_negation() {
    assert_eq!(
        preds(r#"Fix author:"Ada L" -merge:only path:src/x.rs "two words" fix:"#),
        vec![
            (false, Predicate::Text("fix".into())),
            (false, Predicate::Author("ada l".into())),
            (true, Predicate::Merge(true)),
            (
                false,
                Predicate::Path {
                    parts: vec![b"src".to_vec(), b"x.rs".to_vec()],
                    full: false
                }
            ),
            (false, Predicate::Text("two words".into())),
            (false, Predicate::Text("fix:".into())),
        ]
    );
    assert_eq!(preds("   "), vec![]);
}

#[test]
fn rejects_what_it_cannot_mean() {
    for q in [
        "\"open",
        "author:",
        "merge:sometimes",
        "hash:xyz",
        "path:../etc",
        "after:yesterday-ish",
        "before:2024-13-01",
        "after:2024-01-01T25:00",
        "-",
    ] {
        assert!(Query::parse(q, 0).is_err(), "{q}");
    }
    assert!(Query::parse(&"a ".repeat(17), 0).is_err());
    assert!(Query::parse(&"a".repeat(2000), 0).is_err());
    // Regression: 16 negated path: terms read objects 16 times over (6.4 s).
    let many: String = (0..16).map(|i| format!("-path:d{i} ")).collect();
    let err = Query::parse(&many, 0).expect_err("too many object-reading terms");
    assert!(err.0.contains("message:, path: and fullpath:"), "{}", err.0);
    assert!(Query::parse("path:a -path:b message:c author:x", 0).is_ok());
    assert!(Query::parse("path:a path:b message:c message:d", 0).is_err());
}

#[test]
fn dates() {
    assert_eq!(parse_date("1970-01-01", 0), Ok(0));
    assert_eq!(parse_date("2024-05-01", 0), Ok(1_714_521_600));
    assert_eq!(parse_date("2024-05-01T12:30", 0), Ok(1_714_566_600));
    assert_eq!(parse_date("2024-05-01T12:30:15Z", 0), Ok(1_714_566_615));
    assert_eq!(parse_date("2000-02-29", 0), Ok(951_782_400));
    assert_eq!(parse_date("@123", 0), Ok(123));
    assert_eq!(parse_date("2w", 1_000_000), Ok(1_000_000 - 14 * 86_400));
    assert!(parse_date("2x", 0).is_err());
}

#[test]
fn case_insensitive_contains() {
    assert!(contains_ci("Hello World", "world"));
    assert!(!contains_ci("Hello", "world"));
    assert!(contains_ci("ÉCOLE", "école"));
}
