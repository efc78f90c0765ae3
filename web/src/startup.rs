//! Building and running the server: production and tests start it the same way.

use std::net::TcpListener;

use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{App, HttpServer, web};
use gitvista_actors::supervisor::{CloseAllViewers, Register};
use gitvista_actors::{RepoId, SessionConfig, Supervisor};

use crate::config::{Config, Mode};
use crate::routes::{self, AppState};
use gitvista_errors::ApiError;
use gitvista_hosting::hosted::Hosted;

/// How long viewers get to receive their close frame before the server stops.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    stopper: Stopper,
}

/// Stops a running [`Application`] gracefully: new WebSockets are refused, every viewer gets a
/// close frame (1012 "service restart" in hosted mode, so it connects again to another node;
/// 1001 "going away" for `gitvista open`), then the server stops accepting and finishes its
/// in-flight requests.
#[derive(Clone)]
pub struct Stopper {
    supervisor: Addr<Supervisor>,
    server: ServerHandle,
    draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A hosted node: its job runner drains before the server stops.
    hosted: Option<std::sync::Arc<gitvista_hosting::hosted::Hosted>>,
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stopper")
    }
}

impl Stopper {
    /// Closes every viewer, lets running jobs end (handing back those that do not end within
    /// `GITVISTA_JOB_DRAIN`), then stops the server (waiting for in-flight requests).
    pub async fn stop(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let told = self.supervisor.send(CloseAllViewers).await.unwrap_or(0);
        if told > 0 {
            // The writer tasks send the close frames; give them a moment.
            actix_web::rt::time::sleep(CLOSE_GRACE).await;
        }
        if let Some(h) = &self.hosted {
            // A worker's jobs can go to another worker once handed back: let them end first. A
            // single node's wait would only delay its own stop (it takes them back at start).
            let within = if h.role == gitvista_cluster::settings::Role::Worker {
                h.config.job_drain
            } else {
                Duration::ZERO
            };
            h.drain_jobs(within).await;
        }
        self.server.stop(true).await;
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Binds `config.host:config.port` (port 0: any free port); in local mode registers the
    /// repository as `local`, in hosted mode opens the store and serves what is cloned.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.validate().map_err(anyhow::Error::msg)?;
        let config = config
            .with_absolute_paths()
            .map_err(|e| anyhow::anyhow!("cannot make the configured paths absolute: {e}"))?;
        // This node's id in a cluster (a node that keeps clones keeps its id in its data
        // directory); every metric is labelled with it.
        let node_id = match &config.mode {
            Mode::Hosted(h) if h.cluster.role.runs_git() => {
                std::fs::create_dir_all(&h.data_dir)?;
                gitvista_cluster::data_node_id(&h.data_dir)?
            }
            _ => gitvista_cluster::new_node_id(),
        };
        // The recorder is installed before any actor counts anything.
        let clustered = matches!(&config.mode, Mode::Hosted(h) if h.cluster.role != gitvista_cluster::settings::Role::All);
        let _ = crate::metrics::install(clustered.then_some(node_id.as_str()));
        let budget = match &config.mode {
            Mode::Local { .. } => gitvista_actors::budget::Budget::UNLIMITED,
            Mode::Hosted(h) => gitvista_actors::budget::Budget {
                max_sessions: h.max_sessions.max(1),
                memory_bytes: h.memory_budget,
            },
        };
        let supervisor = Supervisor::with_budget(budget).start();
        let local_name = match &config.mode {
            Mode::Local { repo_path, .. } => gitcore::discover::GitDir::discover(repo_path)
                .ok()
                .map(|dirs| crate::routes::repository::local_name(&dirs)),
            Mode::Hosted(_) => None,
        };
        let hosted = match &config.mode {
            Mode::Local {
                repo_path,
                commit_graph_hint_after,
                first_screen,
            } => {
                let local =
                    RepoId::parse("local").ok_or_else(|| anyhow::anyhow!("invalid repo id"))?;
                supervisor
                    .send(Register {
                        id: local,
                        config: SessionConfig {
                            commit_graph_hint_after: Some(*commit_graph_hint_after),
                            first_screen: Some(*first_screen),
                            ..SessionConfig::local(repo_path)
                        },
                    })
                    .await?;
                None
            }
            Mode::Hosted(h) => Some(Hosted::start(
                (**h).clone(),
                node_id,
                supervisor.clone(),
                config.auth.clone(),
                config.public_https(),
            )?),
        };
        // A worker listens on its internal address only: web nodes are its only clients.
        let worker_secret = hosted
            .as_ref()
            .filter(|h| h.role == gitvista_cluster::settings::Role::Worker)
            .and_then(|h| h.config.cluster.secret.clone());
        let listener = match hosted
            .as_ref()
            .filter(|_| worker_secret.is_some())
            .and_then(|h| h.config.cluster.internal_addr)
        {
            Some(addr) => TcpListener::bind(addr)?,
            None => TcpListener::bind((config.host, config.port))?,
        };
        let port = listener.local_addr()?.port();
        let state_supervisor = supervisor.clone();
        let stopper_hosted = hosted.clone();
        let draining = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = std::sync::Arc::new(crate::guard::Guard {
            host: matches!(config.mode, Mode::Local { .. })
                .then(|| crate::guard::HostCheck::local(config.host, port)),
            origin: crate::guard::OriginCheck {
                public_origin: config.public_origin(),
            },
            proxy_hint: crate::proxy_hint::ProxyHint::new(
                config.public_https(),
                config.trusted_proxy.is_some(),
            ),
        });
        let admin = config.admin_token.as_deref().map(|token| {
            std::sync::Arc::new(gitvista_accounts::admin::AdminAuth::new(
                token,
                hosted.as_ref().map(|h| h.store.clone()),
            ))
        });
        // A web node forwards repository reads to their owners.
        let forwarder = hosted
            .as_ref()
            .filter(|h| h.role == gitvista_cluster::settings::Role::Web)
            .and_then(|h| h.config.cluster.secret.clone())
            .map(|s| std::sync::Arc::new(crate::routes::forward::Forwarder::new(s)));
        let state = AppState {
            forwarder,
            clients: std::sync::Arc::new(crate::client::Clients::new(
                config.trusted_proxy.clone(),
                config.ws.per_client,
                config.work_ms_per_second,
            )),
            guard: std::sync::Arc::clone(&guard),
            public_https: config.public_https(),
            supervisor,
            ws: crate::config::WsSettings {
                stop_is_restart: hosted.is_some(),
                ..config.ws
            },
            hosted,
            admin,
            local_name,
            draining: std::sync::Arc::clone(&draining),
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|_, _| ApiError::unreadable_query().into()),
                )
                .app_data(
                    web::JsonConfig::default()
                        .limit(16 * 1024)
                        .error_handler(|e, _| ApiError::unreadable_json(&e).into()),
                )
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| ApiError::unreadable_path().into()),
                )
                .wrap(Compress::default())
                // The request path, in one layer and in this order: the repository it names
                // (parsed once from the decoded path), who it is from and what they may see,
                // where the repository lives (a web node forwards reads to their owner), then the
                // handler (`routes::admission`). Inside the origin check (a cross-site POST is
                // refused before any lookup) and a worker's signature check (a node of the
                // cluster may see all); outside compression, which encodes this node's own
                // answers only (an owner's answer arrives encoded).
                .wrap(actix_web::middleware::from_fn(
                    crate::routes::admission::admit,
                ))
                // A worker answers signed requests from the cluster only.
                .wrap(actix_web::middleware::Condition::new(
                    worker_secret.is_some(),
                    actix_web::middleware::from_fn({
                        let secret = worker_secret.clone();
                        move |req, next| {
                            let secret = secret.clone();
                            async move {
                                match secret {
                                    Some(s) => crate::routes::forward::internal_only(s, req, next)
                                        .await
                                        .map(|r| r.map_into_left_body()),
                                    None => next.call(req).await.map(|r| r.map_into_right_body()),
                                }
                            }
                        }
                    }),
                ))
                .wrap(actix_web::middleware::from_fn({
                    let guard = std::sync::Arc::clone(&guard);
                    move |req, next| crate::guard::check(std::sync::Arc::clone(&guard), req, next)
                }))
                .wrap(actix_web::middleware::from_fn(crate::metrics::track))
                .wrap(actix_web::middleware::from_fn(
                    crate::routes::methods::head_as_get,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::routes::request_id::carry,
                ))
                .wrap(tracing_actix_web::TracingLogger::<crate::routes::request_span::RedactingRootSpan>::new())
                .wrap(
                    DefaultHeaders::new()
                        // Avatars of signed-in users come from GitHub's avatar host.
                        .add((
                            "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' https://avatars.githubusercontent.com",
                        ))
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "no-referrer")),
                )
                .configure(routes::configure)
                .default_service(web::to(|req: actix_web::HttpRequest| async move {
                    match crate::routes::methods::allowed(req.path()) {
                        Some(allow) => {
                            Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed(allow))
                        }
                        None => Err(ApiError::NoRoute),
                    }
                }))
        })
        .listen(listener)?
        // Signals are ours (see `run_until_stopped`): viewers must hear 1012 or 1001 first.
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        let stopper = Stopper {
            supervisor: state_supervisor,
            server: server.handle(),
            draining,
            hosted: stopper_hosted,
        };
        Ok(Application {
            port,
            server,
            stopper,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server gracefully (what SIGINT and SIGTERM do).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Serves until stopped: by a [`Stopper`], or by SIGINT/SIGTERM, which close every viewer
    /// with 1001 and then stop gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper.clone();
        let signals = actix_web::rt::spawn(async move {
            wait_for_signal().await;
            stopper.stop().await;
        });
        let result = self.server.await;
        signals.abort();
        result
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = actix_web::rt::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = actix_web::rt::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = actix_web::rt::signal::ctrl_c().await;
    }
}
