//! `gitvista serve` (hosted mode) and `gitvista migrate`.

use crate::config::{Config, HostedConfig};
use crate::startup::Application;
use crate::store::Store;

/// Serves hosted mode until SIGINT/SIGTERM, printing the URL. Refuses to start when sign-in
/// is configured (a forge's client id) without the secrets it needs, or with weak ones.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    let public_url = config.public_url.clone();
    config.auth = crate::auth::settings::AuthSettings::from_settings(|name| match name {
        // `--public-url` or its environment variable, whichever gave it.
        "GITVISTA_PUBLIC_URL" => public_url.clone(),
        _ => std::env::var(name).ok(),
    })
    .map_err(anyhow::Error::msg)?
    .map(std::sync::Arc::new);
    if let crate::config::Mode::Hosted(h) = &mut config.mode {
        h.webhooks =
            crate::webhooks::WebhookSettings::from_settings(|name| std::env::var(name).ok())
                .map_err(anyhow::Error::msg)?;
        h.billing = crate::billing::BillingSettings::from_settings(
            |name| std::env::var(name).ok(),
            config.auth.is_some(),
        )
        .map_err(anyhow::Error::msg)?;
        if let Ok(secs) = std::env::var("GITVISTA_BILLING_SWEEP_SECS") {
            let secs: u64 = secs.trim().parse().map_err(|_| {
                anyhow::anyhow!("GITVISTA_BILLING_SWEEP_SECS {secs:?} is not a number of seconds")
            })?;
            h.billing_sweep = std::time::Duration::from_secs(secs.max(1));
        }
        h.cluster = crate::cluster::settings::ClusterSettings::from_settings(
            h.cluster.role,
            h.database_url.as_deref(),
            |name| std::env::var(name).ok(),
        )
        .map_err(anyhow::Error::msg)?;
    }
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
    let config = config.clone().with_absolute_paths()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store = Store::connect(&config.database(), 1)?;
    let ran = store.migrate()?;
    println!(
        "gitvista: the {} database is up to date ({ran} migrations ran now)",
        store.backend()
    );
    Ok(())
}

/// `gitvista backup --to FILE`: a consistent copy of the SQLite store while the server runs.
pub fn backup(config: &HostedConfig, to: &std::path::Path) -> anyhow::Result<()> {
    let config = config.clone().with_absolute_paths()?;
    let db = config.data_dir.join("gitvista.db");
    if !db.exists() {
        anyhow::bail!("there is no database at {} to back up", db.display());
    }
    let started = std::time::Instant::now();
    Store::connect(&config.database(), 1)?.backup_to(to)?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    println!(
        "gitvista: backed up {} to {} ({bytes} bytes, {} ms)",
        db.display(),
        to.display(),
        started.elapsed().as_millis()
    );
    Ok(())
}

/// `gitvista restore --from FILE`: the backup in place of the data directory's database.
pub fn restore(config: &HostedConfig, from: &std::path::Path) -> anyhow::Result<()> {
    let config = config.clone().with_absolute_paths()?;
    let db = config.data_dir.join("gitvista.db");
    let restored = crate::store::backup::restore_sqlite(from, &db)?;
    println!(
        "gitvista: restored {} from {}",
        db.display(),
        from.display()
    );
    if let Some(previous) = restored.previous {
        println!(
            "gitvista: the database it replaced is kept as {}",
            previous.display()
        );
    }
    if let Some(id) = restored.node_id {
        println!(
            "gitvista: this data directory is node {id} again: its repositories are cloned anew when it starts"
        );
    }
    Ok(())
}

/// Re-encrypts every stored token under the current key (`GITVISTA_ENCRYPTION_KEY`), reading
/// them with any key in `GITVISTA_ENCRYPTION_KEY_PREVIOUS`; says how many users' tokens were
/// rewritten and how many were current already. A token under a key not configured stops it,
/// naming the key id (nothing is half-rotated: each user's pair is rewritten in one update).
pub fn rotate_key(config: &HostedConfig) -> anyhow::Result<()> {
    use crate::auth::cipher::{TokenCipher, parse_key};
    let get = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let key = parse_key(
        "GITVISTA_ENCRYPTION_KEY",
        &get("GITVISTA_ENCRYPTION_KEY")
            .ok_or_else(|| anyhow::anyhow!("GITVISTA_ENCRYPTION_KEY is required"))?,
    )?;
    let previous = get("GITVISTA_ENCRYPTION_KEY_PREVIOUS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| parse_key("GITVISTA_ENCRYPTION_KEY_PREVIOUS", k))
        .collect::<Result<Vec<_>, _>>()?;
    let previous: Vec<&[u8; 32]> = previous.iter().map(|k| &**k).collect();
    let cipher = TokenCipher::new(&key, &previous);
    let config = config.clone().with_absolute_paths()?;
    let store = Store::open(&config.database(), 1)?;
    let (mut rewritten, mut current) = (0, 0);
    for (user, provider, access, refresh) in store.all_tokens()? {
        if cipher.is_current(&access) && refresh.as_deref().is_none_or(|r| cipher.is_current(r)) {
            current += 1;
            continue;
        }
        let plain = cipher.decrypt(&user, &access)?;
        let new_access = cipher.encrypt(&user, &plain)?;
        let new_refresh = match &refresh {
            Some(r) => {
                let plain = cipher.decrypt(&user, r)?;
                Some(cipher.encrypt(&user, &plain)?)
            }
            None => None,
        };
        if store.reencrypt_tokens(
            &user,
            &provider,
            &access,
            &new_access,
            new_refresh.as_deref(),
        )? {
            rewritten += 1;
        } else {
            anyhow::bail!(
                "user {user}'s {provider} tokens changed while rotating (a sign-in or refresh); run rotate-key again"
            );
        }
    }
    println!(
        "gitvista: {rewritten} forge connections' tokens re-encrypted under key {}, {current} were current already",
        cipher.key_id()
    );
    Ok(())
}
