//! [`Supervisor`]: the registry of repository sessions.

use std::collections::HashMap;

use actix::prelude::*;

use std::sync::Arc;

use crate::budget::{Budget, Footprint};
pub use crate::ids::RepoId;
use crate::repo_session::{Activity, CloseViewers, RepoSession, SessionConfig, Shutdown};

/// Why the supervisor cannot give a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// No repository is registered under this id.
    #[error("no repository {0}")]
    UnknownRepo(RepoId),
    /// Starting its session would pass the budget, and every running session has viewers.
    #[error("the server is at its limit of {sessions} repositories in memory, all of them watched")]
    Busy {
        /// Sessions running.
        sessions: usize,
    },
}

/// Makes a repository known (does not start its session).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Register {
    /// Its id.
    pub id: RepoId,
    /// Where it is and how to watch it.
    pub config: SessionConfig,
}

/// The running session of a repository, started (or restarted) if needed.
#[derive(Debug, Message)]
#[rtype(result = "Result<Addr<RepoSession>, SupervisorError>")]
pub struct GetSession(pub RepoId);

/// Stops a repository's session (memory freed; it starts again on the next [`GetSession`]).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct StopSession(pub RepoId);

/// Whether a repository's session is running (without starting it).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct Running(pub RepoId);

impl Handler<Running> for Supervisor {
    type Result = bool;

    fn handle(&mut self, Running(id): Running, _: &mut Context<Self>) -> bool {
        self.sessions.get(&id).is_some_and(|a| a.connected())
    }
}

/// Ids of the running sessions that have viewers, read from their published footprints (no
/// round trip to each session).
#[derive(Debug, Message)]
#[rtype(result = "Vec<RepoId>")]
pub struct Watched;

impl Handler<Watched> for Supervisor {
    type Result = Vec<RepoId>;

    fn handle(&mut self, _: Watched, _: &mut Context<Self>) -> Vec<RepoId> {
        self.footprints
            .iter()
            .filter(|(_, f)| f.viewers() > 0)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Ids of the sessions running now.
#[derive(Debug, Message)]
#[rtype(result = "Vec<RepoId>")]
pub struct RunningSessions;

/// The registry of repositories and their running sessions.
#[derive(Debug, Default)]
pub struct Supervisor {
    /// Known repositories; added by `Register`, kept for the supervisor's life.
    known: HashMap<RepoId, SessionConfig>,
    /// Running sessions; added on first `GetSession`, removed by `StopSession`, replaced when
    /// found dead.
    sessions: HashMap<RepoId, Addr<RepoSession>>,
    /// What each running session holds (shared with it); kept with `sessions`.
    footprints: HashMap<RepoId, Arc<Footprint>>,
    /// Bytes each repository held when its session last stopped: the estimate of what it will
    /// take when started again.
    last_size: HashMap<RepoId, u64>,
    /// The limits on running sessions; fixed.
    budget: Budget,
}

impl Supervisor {
    /// An empty registry without limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose sessions stay within `budget`.
    pub fn with_budget(budget: Budget) -> Self {
        Supervisor {
            budget,
            ..Self::default()
        }
    }

    /// Forgets a running session (it is told to stop); remembers its size.
    fn stop(&mut self, id: &RepoId) -> bool {
        if let Some(f) = self.footprints.remove(id) {
            self.last_size.insert(id.clone(), f.bytes());
        }
        match self.sessions.remove(id) {
            Some(addr) => {
                addr.do_send(Shutdown);
                true
            }
            None => false,
        }
    }

    /// Bytes the running sessions hold.
    fn held(&self) -> u64 {
        self.footprints.values().map(|f| f.bytes()).sum()
    }

    /// Stops least recently used sessions without viewers until one more session, expected to
    /// hold `incoming` bytes, fits the budget; false when it cannot.
    fn make_room(&mut self, incoming: u64) -> bool {
        loop {
            let over_count = self.sessions.len() >= self.budget.max_sessions;
            let over_bytes = self.held().saturating_add(incoming) > self.budget.memory_bytes
                && !self.sessions.is_empty();
            if !over_count && !over_bytes {
                return true;
            }
            let victim = self
                .footprints
                .iter()
                // Loading sessions have requests waiting for them: not victims either.
                .filter(|(_, f)| f.viewers() == 0 && !f.loading())
                .min_by_key(|(_, f)| f.last_use())
                .map(|(id, _)| id.clone());
            let Some(victim) = victim else {
                return false;
            };
            self.stop(&victim);
            metrics::counter!("gitvista_sessions_evicted_total", "reason" => "budget").increment(1);
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Register> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) {
        self.known.insert(msg.id, msg.config);
    }
}

impl Handler<GetSession> for Supervisor {
    type Result = Result<Addr<RepoSession>, SupervisorError>;

    fn handle(&mut self, GetSession(id): GetSession, _: &mut Context<Self>) -> Self::Result {
        if let Some(addr) = self.sessions.get(&id).filter(|a| a.connected()) {
            if let Some(f) = self.footprints.get(&id) {
                f.touch();
            }
            return Ok(addr.clone());
        }
        let config = self
            .known
            .get(&id)
            .cloned()
            .ok_or_else(|| SupervisorError::UnknownRepo(id.clone()))?;
        // Sessions that died are forgotten before counting.
        let dead: Vec<RepoId> = self
            .sessions
            .iter()
            .filter(|(_, a)| !a.connected())
            .map(|(i, _)| i.clone())
            .collect();
        for d in dead {
            self.stop(&d);
        }
        let incoming = self.last_size.get(&id).copied().unwrap_or(0);
        if !self.make_room(incoming) {
            metrics::counter!("gitvista_sessions_refused_total").increment(1);
            return Err(SupervisorError::Busy {
                sessions: self.sessions.len(),
            });
        }
        // A session that died (its actor stopped) is replaced by a fresh one.
        let footprint = Arc::new(Footprint::default());
        let addr = RepoSession::with_footprint(config, Arc::clone(&footprint)).start();
        self.sessions.insert(id.clone(), addr.clone());
        self.footprints.insert(id, footprint);
        Ok(addr)
    }
}

impl Handler<StopSession> for Supervisor {
    type Result = bool;

    fn handle(&mut self, StopSession(id): StopSession, _: &mut Context<Self>) -> bool {
        self.stop(&id)
    }
}

/// Stops a repository's session and forgets its configuration: it is no longer served until
/// registered again (a deleted or evicted hosted repository).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct Forget(pub RepoId);

impl Handler<Forget> for Supervisor {
    type Result = bool;

    fn handle(&mut self, Forget(id): Forget, _: &mut Context<Self>) -> bool {
        let known = self.known.remove(&id).is_some();
        self.stop(&id);
        self.last_size.remove(&id);
        known
    }
}

/// Stops sessions without viewers that nobody used for `idle` (their memory is freed; the next
/// request starts them again from disk); answers which.
#[derive(Debug, Message)]
#[rtype(result = "Vec<RepoId>")]
pub struct StopIdle {
    /// How long without use.
    pub idle: std::time::Duration,
}

impl Handler<StopIdle> for Supervisor {
    type Result = ResponseActFuture<Self, Vec<RepoId>>;

    fn handle(&mut self, msg: StopIdle, _: &mut Context<Self>) -> Self::Result {
        let sessions: Vec<(RepoId, Addr<RepoSession>)> = self
            .sessions
            .iter()
            .map(|(id, a)| (id.clone(), a.clone()))
            .collect();
        let probe = async move {
            let mut idle = Vec::new();
            for (id, addr) in sessions {
                if let Ok((viewers, since)) = addr.send(Activity).await
                    && viewers == 0
                    && since >= msg.idle
                {
                    idle.push(id);
                }
            }
            idle
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(probe).map(|idle, act, _| {
                for id in &idle {
                    act.stop(id);
                }
                idle
            }),
        )
    }
}

/// Every running session described (for the admin API), by id.
#[derive(Debug, Message)]
#[rtype(result = "Vec<(RepoId, crate::repo_session::SessionInfo)>")]
pub struct Inspect;

impl Handler<Inspect> for Supervisor {
    type Result = ResponseFuture<Vec<(RepoId, crate::repo_session::SessionInfo)>>;

    fn handle(&mut self, _: Inspect, _: &mut Context<Self>) -> Self::Result {
        let mut sessions: Vec<(RepoId, Addr<RepoSession>)> = self
            .sessions
            .iter()
            .filter(|(_, a)| a.connected())
            .map(|(id, a)| (id.clone(), a.clone()))
            .collect();
        sessions.sort_by(|a, b| a.0.cmp(&b.0));
        Box::pin(async move {
            let mut out = Vec::with_capacity(sessions.len());
            for (id, addr) in sessions {
                if let Ok(info) = addr.send(crate::repo_session::Describe).await {
                    out.push((id, info));
                }
            }
            out
        })
    }
}

/// Sends every viewer of every session a close ("going away"); answers how many viewers were told.
/// The server sends it before a graceful shutdown.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CloseAllViewers;

impl Handler<CloseAllViewers> for Supervisor {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, _: CloseAllViewers, _: &mut Context<Self>) -> Self::Result {
        let sessions: Vec<Addr<RepoSession>> = self.sessions.values().cloned().collect();
        Box::pin(async move {
            let mut told = 0;
            for s in sessions {
                told += s.send(CloseViewers).await.unwrap_or(0);
            }
            told
        })
    }
}

impl Handler<RunningSessions> for Supervisor {
    type Result = Vec<RepoId>;

    fn handle(&mut self, _: RunningSessions, _: &mut Context<Self>) -> Vec<RepoId> {
        let mut ids: Vec<RepoId> = self
            .sessions
            .iter()
            .filter(|(_, a)| a.connected())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}
