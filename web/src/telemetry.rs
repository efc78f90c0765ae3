//! Logs: `tracing` events and spans, as text (default) or JSON lines
//! (`GITVISTA_LOG_FORMAT=json`), filtered by `RUST_LOG` (default `info`). One span per HTTP
//! request (tracing-actix-web) and per git job. Nothing secret is logged: URLs with credentials
//! are refused before they are logged, tokens travel in headers and bodies that are not logged.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call does nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("GITVISTA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A request or job span is logged once, when it closes, with its fields and duration.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        // Colours only on a terminal.
        builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
