//! `gitvista open`: local mode.

use std::process::{Command, Stdio};

use crate::config::{Config, Mode};
use crate::startup::Application;

/// Serves the repository until SIGINT/SIGTERM, printing the URL and (unless told not to)
/// opening it in the browser. A path that holds no repository is refused before anything is
/// bound, with the sentence `gitvista log` gives (one that disappears later is served as
/// unavailable until it is back).
pub fn run(config: Config, open_browser: bool) -> anyhow::Result<()> {
    if let Mode::Local { repo_path, .. } = &config.mode {
        super::discover(repo_path)?;
    }
    actix_web::rt::System::new().block_on(async move {
        let host = config.host;
        let app = Application::build(config).await?;
        let url = format!("http://{}:{}/", host, app.port());
        println!("GitVista is serving at {url}");
        if open_browser {
            // Best effort: a machine without a desktop just has no browser to open.
            let _ = Command::new("xdg-open")
                .arg(&url)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
        }
        app.run_until_stopped().await?;
        Ok(())
    })
}
