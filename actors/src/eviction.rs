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
    pub stopped: Vec<crate::ids::RepoId>,
    /// Sessions still running (in use recently).
    pub active: Vec<crate::ids::RepoId>,
}

/// What the sweeps did, for the admin page.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvictionInfo {
    /// Seconds between sweeps.
    pub interval_secs: u64,
    /// Sessions without viewers unused this long are stopped.
    pub session_idle_secs: u64,
    /// Sweeps so far.
    pub sweeps: u64,
    /// Sessions stopped by all sweeps.
    pub stopped_total: u64,
    /// Seconds since the last sweep ended, if one did.
    pub last_sweep_secs_ago: Option<u64>,
    /// Sessions the last sweep stopped.
    pub last_stopped: Vec<String>,
    /// Sessions it left running.
    pub last_active: usize,
}

/// Asks for [`EvictionInfo`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "EvictionInfo")]
pub struct GetEviction;

/// Periodic eviction of idle sessions.
#[derive(Debug)]
pub struct EvictionActor {
    /// Whose sessions it stops.
    supervisor: Addr<Supervisor>,
    /// Time between sweeps.
    interval: Duration,
    /// Idle time after which a session without viewers is stopped.
    session_idle: Duration,
    /// Told after each sweep (hosted mode deletes old clones then).
    on_sweep: Option<Recipient<Swept>>,
    /// Sweeps so far and sessions they stopped.
    sweeps: u64,
    stopped_total: u64,
    /// The last sweep: when it ended, what it stopped, how many sessions it left.
    last: Option<(std::time::Instant, Swept)>,
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
            sweeps: 0,
            stopped_total: 0,
            last: None,
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
                let swept = Swept { stopped, active };
                if let Some(r) = on_sweep {
                    let _ = r.try_send(swept.clone());
                }
                swept
            };
            ctx.spawn(
                actix::fut::wrap_future::<_, Self>(sweep).map(|swept, act, _| {
                    act.sweeps += 1;
                    act.stopped_total += swept.stopped.len() as u64;
                    act.last = Some((std::time::Instant::now(), swept));
                }),
            );
        });
    }
}

impl Handler<GetEviction> for EvictionActor {
    type Result = MessageResult<GetEviction>;

    fn handle(&mut self, _: GetEviction, _: &mut Context<Self>) -> Self::Result {
        MessageResult(EvictionInfo {
            interval_secs: self.interval.as_secs(),
            session_idle_secs: self.session_idle.as_secs(),
            sweeps: self.sweeps,
            stopped_total: self.stopped_total,
            last_sweep_secs_ago: self.last.as_ref().map(|(t, _)| t.elapsed().as_secs()),
            last_stopped: self.last.as_ref().map_or_else(Vec::new, |(_, s)| {
                s.stopped.iter().map(|i| i.as_str().to_string()).collect()
            }),
            last_active: self.last.as_ref().map_or(0, |(_, s)| s.active.len()),
        })
    }
}
