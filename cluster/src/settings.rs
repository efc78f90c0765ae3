//! What a node is (`--role all|web|worker`) and what it needs to be it. `all` is the single node
//! (SQLite or PostgreSQL, no Redis); `web` and `worker` share PostgreSQL and Redis/Valkey and talk
//! to each other over an internal address, every request signed with the cluster secret.

use std::net::SocketAddr;

/// What this node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Everything in one process: HTTP, WebSockets, clones, sessions (the default).
    #[default]
    All,
    /// HTTP, WebSockets, sign-in and the API; repository reads go to the owning worker.
    Web,
    /// Clones, fetches and parsed repositories; serves reads to web nodes on its internal
    /// address only.
    Worker,
}

impl Role {
    /// Its name in the `nodes` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Web => "web",
            Role::Worker => "worker",
        }
    }

    /// Whether it clones and serves repositories (owns them).
    pub fn runs_git(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }

    /// Whether it serves viewers (public HTTP and WebSockets).
    pub fn serves_viewers(self) -> bool {
        matches!(self, Role::All | Role::Web)
    }
}

/// The header that carries a node-to-node request's signature.
pub const CLUSTER_HEADER: &str = "x-gitvista-cluster";

pub use super::signature::ClusterSecret;

/// A node's place in the cluster, from `--role` and the environment.
#[derive(Debug, Clone, Default)]
pub struct ClusterSettings {
    /// What it does.
    pub role: Role,
    /// `GITVISTA_REDIS_URL` (web and worker): viewer events go through its pub/sub.
    pub redis_url: Option<String>,
    /// `GITVISTA_CLUSTER_SECRET` (web and worker).
    pub secret: Option<ClusterSecret>,
    /// `GITVISTA_INTERNAL_ADDR` (worker: where it listens for web nodes and what it registers;
    /// a name is resolved at start).
    pub internal_addr: Option<SocketAddr>,
    /// Where it runs and how it routes across regions (any role).
    pub regions: super::regions::Regions,
}

impl ClusterSettings {
    /// The settings of a node with `role`, reading `get` (the environment) and checking them
    /// against the metadata database `database_url`. A web or worker node refuses to start,
    /// with a sentence, without PostgreSQL, Redis/Valkey, the cluster secret or (a worker) its
    /// internal address.
    pub fn from_settings(
        role: Role,
        database_url: Option<&str>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<ClusterSettings, String> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        // A name (`fly-local-6pn:9090`, `worker-1:9090`) is resolved now: the address is what
        // the node listens on and registers for the others.
        let internal_addr = get("GITVISTA_INTERNAL_ADDR")
            .map(|a| {
                use std::net::ToSocketAddrs;
                a.parse::<SocketAddr>()
                    .ok()
                    .or_else(|| a.to_socket_addrs().ok()?.next())
                    .ok_or_else(|| {
                        format!("GITVISTA_INTERNAL_ADDR must be an address and port such as 10.0.0.5:9090, or a name that resolves here (got {a:?})")
                    })
            })
            .transpose()?;
        let regions = super::regions::Regions::from_settings(get)?;
        if role == Role::All {
            return Ok(ClusterSettings {
                role,
                internal_addr,
                regions,
                ..ClusterSettings::default()
            });
        }
        let name = role.as_str();
        let postgres = database_url
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
        if !postgres {
            return Err(format!(
                "a {name} node shares its metadata with the other nodes: set DATABASE_URL=postgres://..."
            ));
        }
        let redis_url = get("GITVISTA_REDIS_URL").ok_or_else(|| {
            format!("a {name} node needs Redis or Valkey for viewer events and shared limits: set GITVISTA_REDIS_URL=redis://...")
        })?;
        let parsed = url::Url::parse(&redis_url)
            .map_err(|_| "GITVISTA_REDIS_URL must be a redis:// or rediss:// URL".to_string())?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err("GITVISTA_REDIS_URL must be a redis:// or rediss:// URL".into());
        }
        let secret = ClusterSecret::new(&get("GITVISTA_CLUSTER_SECRET").ok_or_else(|| {
            format!("a {name} node signs what it asks of the other nodes: set GITVISTA_CLUSTER_SECRET (32 bytes or more)")
        })?)?;
        if role == Role::Worker && internal_addr.is_none() {
            return Err(
                "a worker node serves web nodes on its internal address: set GITVISTA_INTERNAL_ADDR=host:port"
                    .into(),
            );
        }
        Ok(ClusterSettings {
            role,
            redis_url: Some(redis_url),
            secret: Some(secret),
            internal_addr,
            regions,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Settings read from `pairs` instead of the environment.
    pub(crate) fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const PG: Option<&str> = Some("postgres://127.0.0.1/test");
    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn all_needs_nothing() {
        let s = ClusterSettings::from_settings(Role::All, None, env(&[])).expect("valid");
        assert_eq!(s.role, Role::All);
        assert!(s.redis_url.is_none() && s.secret.is_none());
    }

    #[test]
    fn web_and_worker_refuse_what_is_missing_with_a_sentence() {
        let full = [
            ("GITVISTA_REDIS_URL", "redis://127.0.0.1:6379"),
            ("GITVISTA_CLUSTER_SECRET", SECRET),
            ("GITVISTA_INTERNAL_ADDR", "127.0.0.1:9191"),
        ];
        for role in [Role::Web, Role::Worker] {
            let e = ClusterSettings::from_settings(role, None, env(&full)).expect_err("refused");
            assert!(e.contains("DATABASE_URL=postgres://"), "{e}");
            let e = ClusterSettings::from_settings(role, Some("/tmp/x.db"), env(&full))
                .expect_err("refused");
            assert!(e.contains("DATABASE_URL"), "{e}");
            let e = ClusterSettings::from_settings(role, PG, env(&full[1..])).expect_err("refused");
            assert!(e.contains("GITVISTA_REDIS_URL"), "{e}");
            let e = ClusterSettings::from_settings(
                role,
                PG,
                env(&[full[0], ("GITVISTA_CLUSTER_SECRET", "short"), full[2]]),
            )
            .expect_err("refused");
            assert!(e.contains("at least 32 bytes"), "{e}");
            let e = ClusterSettings::from_settings(role, PG, env(&[full[0], full[2]]))
                .expect_err("refused");
            assert!(e.contains("GITVISTA_CLUSTER_SECRET"), "{e}");
            let e = ClusterSettings::from_settings(
                role,
                PG,
                env(&[("GITVISTA_REDIS_URL", "http://x"), full[1], full[2]]),
            )
            .expect_err("refused");
            assert!(e.contains("redis://"), "{e}");
            let s = ClusterSettings::from_settings(role, PG, env(&full)).expect("valid");
            assert_eq!(s.role, role);
            assert_eq!(
                s.internal_addr,
                Some("127.0.0.1:9191".parse().expect("valid"))
            );
        }
        let e =
            ClusterSettings::from_settings(Role::Worker, PG, env(&full[..2])).expect_err("refused");
        assert!(e.contains("GITVISTA_INTERNAL_ADDR"), "{e}");
        assert!(ClusterSettings::from_settings(Role::Web, PG, env(&full[..2])).is_ok());
        let e = ClusterSettings::from_settings(
            Role::Worker,
            PG,
            env(&[full[0], full[1], ("GITVISTA_INTERNAL_ADDR", "nowhere")]),
        )
        .expect_err("refused");
        assert!(e.contains("address and port"), "{e}");
        // A name is resolved to the address the node registers.
        let s = ClusterSettings::from_settings(
            Role::Worker,
            PG,
            env(&[
                full[0],
                full[1],
                ("GITVISTA_INTERNAL_ADDR", "localhost:9191"),
            ]),
        )
        .expect("a name");
        assert!(
            s.internal_addr
                .is_some_and(|a| a.ip().is_loopback() && a.port() == 9191)
        );
    }
}
