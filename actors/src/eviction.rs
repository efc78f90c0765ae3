//! [`EvictionActor`]: frees what nobody uses. Every `interval` it stops sessions without viewers
//! that were not used for `session_idle` (their snapshot's memory goes; the next request loads
//! the repository again from disk) and hands the caller's `on_tick` a chance to delete clones
//! unused for longer (hosted mode keeps that in its store).

use std::time::Duration;

use actix::prelude::*;

use crate::supervisor::{RunningSessions, StopIdle, Supervisor};

/// Said after each sweep, with the sessions it stopped.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Swept {
    /// Sessions stopped in this sweep.
    pub stopped: Vec<crate::supervisor::RepoId>,
    /// Sessions still running (in use recently).
    pub active: Vec<crate::supervisor::RepoId>,
}

/// Periodic eviction of idle sessions.
#[derive(Debug)]
pub struct EvictionActor {
    supervisor: Addr<Supervisor>,
    interval: Duration,
    session_idle: Duration,
    on_sweep: Option<Recipient<Swept>>,
}

impl EvictionActor {
    /// Sweeps every `interval`, stopping sessions idle for `session_idle`; `on_sweep` hears of
    /// each sweep (hosted mode deletes old clones then).
    pub fn new(
        supervisor: Addr<Supervisor>,
        interval: Duration,
        session_idle: Duration,
        on_sweep: Option<Recipient<Swept>>,
    ) -> Self {
        EvictionActor {
            supervisor,
            interval,
            session_idle,
            on_sweep,
        }
    }
}

impl Actor for EvictionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, ctx| {
            let supervisor = act.supervisor.clone();
            let idle = act.session_idle;
            let on_sweep = act.on_sweep.clone();
            let sweep = async move {
                let stopped = supervisor.send(StopIdle { idle }).await.unwrap_or_default();
                metrics::counter!("gitvista_sessions_evicted_total")
                    .increment(stopped.len() as u64);
                let active = supervisor.send(RunningSessions).await.unwrap_or_default();
                if let Some(r) = on_sweep {
                    let _ = r.try_send(Swept { stopped, active });
                }
            };
            ctx.spawn(actix::fut::wrap_future::<_, Self>(sweep));
        });
    }
}
