//! `gitvista open`: local mode.

use std::process::{Command, Stdio};

use crate::config::Config;
use crate::startup::Application;

/// Serves the repository until SIGINT/SIGTERM, printing the URL and (unless told not to)
/// opening it in the browser.
pub fn run(config: Config, open_browser: bool) -> anyhow::Result<()> {
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
