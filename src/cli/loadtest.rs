//! `gitvista loadtest`: runs the harness, prints its report and writes it as JSON.

use crate::loadtest::{self, LoadConfig};

/// Runs the harness; the report goes to stdout (text) and to `config.json` if set.
pub fn run(config: &LoadConfig) -> anyhow::Result<()> {
    let report = loadtest::run(config)?;
    println!("{}", report.text());
    if let Some(path) = &config.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        println!("report written to {}", path.display());
    }
    Ok(())
}
