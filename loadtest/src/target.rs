//! The server under test: the harness's own [`Fleet`] or a `--target`, the repositories its
//! viewers watch, and its `/metrics`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use super::LoadConfig;
use super::fleet::Fleet;
use super::stats::metric;

/// A repository the viewers watch.
#[derive(Debug, Clone)]
pub(super) struct Watched {
    /// Its id on the server.
    pub(super) id: String,
    /// Rows in its graph.
    pub(super) rows: u64,
}

/// The server under test.
#[derive(Debug)]
pub(super) struct Target {
    /// `http://host:port`.
    pub(super) base: String,
    /// Bearer token for `/metrics` and the admin API.
    pub(super) token: Option<String>,
    /// Where viewers connect: every web node's base URL and address (the server's, alone).
    pub(super) webs: Vec<(String, SocketAddr)>,
    /// What they watch.
    pub(super) repos: Vec<Watched>,
    /// The harness's own server, when it started one.
    pub(super) fleet: Option<Fleet>,
}

/// Checks a `--target` URL: plain http, loopback unless `allow_remote`; returns the base URL and
/// the address to connect sockets to.
pub(super) async fn check_target(
    target: &str,
    allow_remote: bool,
) -> anyhow::Result<(String, SocketAddr)> {
    let url = url::Url::parse(target).with_context(|| format!("--target {target} is not a URL"))?;
    if url.scheme() != "http" {
        bail!(
            "--target must be an http:// URL (the harness speaks plain HTTP and WebSocket; reach a TLS deployment through a tunnel to loopback)"
        );
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let host_for_lookup = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addr = tokio::net::lookup_host((host_for_lookup.as_str(), port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    if !addr.ip().is_loopback() && !allow_remote {
        bail!(
            "--target {target} is not a loopback address: the harness only loads this machine unless --allow-remote is given"
        );
    }
    let base = format!("http://{}:{port}", url.host_str().unwrap_or_default());
    Ok((base, addr))
}

/// Waits until every repository is ready (bounded); returns their ids in order.
pub(super) async fn register(
    client: &reqwest::Client,
    base: &str,
    urls: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(urls.len());
    for url in urls {
        let resp = client
            .post(format!("{base}/api/repos"))
            .json(&json!({ "url": url }))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let Some(id) = body["id"].as_str() else {
            bail!("POST /api/repos {url}: {status} {body}");
        };
        ids.push(id.to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60 + urls.len() as u64);
    for id in &ids {
        loop {
            let body = get_json(client, &format!("{base}/api/repos/{id}/status")).await?;
            match body["state"].as_str() {
                Some("ready") => break,
                Some("error") => bail!("cloning {id} failed: {}", body["error"]),
                _ if Instant::now() > deadline => bail!("{id} was not cloned in time: {body}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(ids)
}

/// Repositories an existing server serves: `local` in local mode, else the ready ones it lists.
pub(super) async fn served_repos(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<Vec<String>> {
    let local = client
        .get(format!("{base}/api/repos/local/repository"))
        .send()
        .await?;
    if local.status().is_success() {
        return Ok(vec!["local".into()]);
    }
    let list = get_json(client, &format!("{base}/api/repos"))
        .await
        .context("the target lists no repositories (is it a GitVista server?)")?;
    let repos = list["repos"].as_array().cloned().unwrap_or_default();
    Ok(repos
        .iter()
        .filter(|r| r["state"] == "ready")
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect())
}

/// Rows in repository `id`'s graph.
pub(super) async fn rows(client: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<u64> {
    let body = get_json(client, &format!("{base}/api/repos/{id}/repository")).await?;
    Ok(body["rows"].as_u64().unwrap_or(0))
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<serde_json::Value> {
    Ok(client.get(url).send().await?.json().await?)
}

pub(super) async fn scrape(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
) -> Option<String> {
    let mut req = client
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.text().await.ok()
}

pub(super) async fn server_rss(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
) -> Option<u64> {
    scrape(client, base, token)
        .await
        .and_then(|t| metric(&t, "gitvista_process_resident_bytes"))
        .map(|v| v as u64)
}

/// Sets up the target: the harness's own fleet, or the `--target` server's repositories.
pub(super) async fn prepare(
    config: &LoadConfig,
    client: &reqwest::Client,
) -> anyhow::Result<Target> {
    let Some(target) = &config.target else {
        let (repos, commits, tiers) = (config.repos, config.commits, config.tiers.clone());
        let fleet =
            tokio::task::spawn_blocking(move || Fleet::start(repos, commits, tiers)).await??;
        let (base, addr) = check_target(&fleet.base, false).await?;
        let mut webs = vec![(base.clone(), addr)];
        for node in fleet.nodes.iter().filter(|n| n.role == "web").skip(1) {
            webs.push(check_target(&node.base, false).await?);
        }
        let ids = register(client, &base, &fleet.urls).await?;
        let mut repos = Vec::new();
        for id in ids {
            repos.push(Watched {
                rows: rows(client, &base, &id).await?,
                id,
            });
        }
        return Ok(Target {
            base,
            token: Some(fleet.admin_token.clone()),
            webs,
            repos,
            fleet: Some(fleet),
        });
    };
    // Several web nodes of one cluster: viewers are spread over them; the first lists the
    // repositories and answers the window load.
    let mut webs = Vec::new();
    for one in target.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        webs.push(check_target(one, config.allow_remote).await?);
    }
    let Some((base, _)) = webs.first().cloned() else {
        bail!("--target names no URL");
    };
    let ids = served_repos(client, &base).await?;
    if ids.is_empty() {
        bail!("{base} serves no ready repository to watch");
    }
    let mut repos = Vec::new();
    for id in ids.into_iter().take(config.repos) {
        repos.push(Watched {
            rows: rows(client, &base, &id).await?,
            id,
        });
    }
    let token = config.admin_token.clone();
    if scrape(client, &base, token.as_deref()).await.is_none() {
        eprintln!(
            "loadtest: {base}/metrics does not answer (does it need --admin-token?); memory will read 0"
        );
    }
    Ok(Target {
        webs,
        base,
        token,
        repos,
        fleet: None,
    })
}
