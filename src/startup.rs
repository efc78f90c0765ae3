//! Building and running the server: production and tests start it the same way.

use std::net::TcpListener;

use actix::Actor;
use actix_web::dev::Server;
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{App, HttpServer, web};
use gitvista_actors::supervisor::Register;
use gitvista_actors::{RepoId, SessionConfig, Supervisor};

use crate::config::Config;
use crate::error::ApiError;
use crate::routes::{self, AppState};

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Binds `config.host:config.port` (port 0: any free port) and registers the local repository.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let supervisor = Supervisor::new().start();
        let local = RepoId::parse("local").ok_or_else(|| anyhow::anyhow!("invalid repo id"))?;
        supervisor
            .send(Register {
                id: local,
                config: SessionConfig::local(&config.repo_path),
            })
            .await?;
        let listener = TcpListener::bind((config.host, config.port))?;
        let port = listener.local_addr()?.port();
        let state = AppState { supervisor };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::bad_request(format!("invalid query: {e}"), "invalid_query").into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    ApiError::bad_request(format!("invalid path: {e}"), "invalid_path").into()
                }))
                .wrap(Compress::default())
                .wrap(
                    DefaultHeaders::new()
                        .add(("Content-Security-Policy", "default-src 'self'"))
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "no-referrer")),
                )
                .configure(routes::configure)
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::NoRoute)
                }))
        })
        .listen(listener)?
        .run();
        Ok(Application { port, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM stop it gracefully).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
