//! `gitvista serve` (hosted mode) and `gitvista migrate`.

use crate::config::{Config, HostedConfig};
use crate::startup::Application;
use crate::store::Store;

/// Serves hosted mode until SIGINT/SIGTERM, printing the URL. Refuses to start when sign-in
/// is configured (`GITHUB_CLIENT_ID`) without the secrets it needs, or with weak ones.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    let public_url = config.public_url.clone();
    config.github = crate::auth::settings::GitHubAuth::from_settings(|name| match name {
        // `--public-url` or its environment variable, whichever gave it.
        "GITVISTA_PUBLIC_URL" => public_url.clone(),
        _ => std::env::var(name).ok(),
    })
    .map_err(anyhow::Error::msg)?
    .map(std::sync::Arc::new);
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
