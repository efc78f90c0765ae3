//! `gitvista serve` (hosted mode) and `gitvista migrate`.

use crate::config::{Config, HostedConfig};
use crate::startup::Application;
use crate::store::Store;

/// Serves hosted mode until SIGINT/SIGTERM, printing the URL.
pub fn run(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let host = config.host;
        let app = Application::build(config).await?;
        println!(
            "GitVista (hosted) is serving at http://{}:{}/",
            host,
            app.port()
        );
        app.run_until_stopped().await?;
        Ok(())
    })
}

/// Runs the store's pending migrations and says how many ran.
pub fn migrate(config: &HostedConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store = Store::connect(&config.database(), 1)?;
    let ran = store.migrate()?;
    println!(
        "gitvista: the {} database is up to date ({ran} migrations ran now)",
        store.backend()
    );
    Ok(())
}
