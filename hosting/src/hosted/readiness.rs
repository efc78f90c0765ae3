//! Whether this node can serve now (`/readyz`), for Fly's checks and load balancers: the
//! database reachable and migrated to this release's schema, Redis answering on cluster nodes,
//! and, on nodes that run git, free disk above the floor and the git binary runnable.
//!
//! Each check is bounded (a database or Redis that hangs makes the check fail after
//! [`CHECK_TIMEOUT`], not the probe hang), the whole answer is reused for [`REUSED_FOR`] so a
//! flood of probes costs one set of checks a second, and the git binary is run at most once
//! every [`GIT_CHECKED_EVERY`]. A visitor sees only each check's one-word outcome; what went
//! wrong is logged once when a check starts or stops failing.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::hosted::Hosted;

/// How long one check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an answer is reused.
pub const REUSED_FOR: Duration = Duration::from_secs(1);

/// How often the git binary is run to see that it still runs.
pub const GIT_CHECKED_EVERY: Duration = Duration::from_secs(60);

/// One check's outcome: `"ok"` or a word saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `database`, `redis`, `disk` or `git`.
    pub name: &'static str,
    /// `ok`, or `unreachable`, `migrations_pending`, `low`, `not_runnable`.
    pub outcome: &'static str,
}

/// Every check of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// In a fixed order.
    pub checks: Vec<Check>,
}

impl Readiness {
    /// Whether every check is `ok`.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.outcome == "ok")
    }

    /// The names of the failing checks.
    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.outcome != "ok")
            .map(|c| c.name)
            .collect()
    }
}

/// What the checks remember between probes.
#[derive(Debug, Default)]
pub struct ReadinessMemo {
    last: Option<(Instant, Readiness)>,
    git: Option<(Instant, bool)>,
}

/// The answer under construction: a check's outcome, with what is logged when it changes.
fn check(name: &'static str, result: Result<(), (&'static str, String)>) -> (Check, String) {
    match result {
        Ok(()) => (
            Check {
                name,
                outcome: "ok",
            },
            String::new(),
        ),
        Err((outcome, detail)) => (Check { name, outcome }, detail),
    }
}

impl Hosted {
    /// Whether this node can serve now (see the module documentation).
    pub async fn readiness(&self) -> Readiness {
        let (reuse, git_due) = {
            let memo = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
            let reuse = memo
                .last
                .as_ref()
                .filter(|(at, _)| at.elapsed() < REUSED_FOR)
                .map(|(_, r)| r.clone());
            let git_due = match memo.git {
                Some((at, ok)) if at.elapsed() < GIT_CHECKED_EVERY => Some(ok),
                _ => None,
            };
            (reuse, git_due)
        };
        if let Some(r) = reuse {
            return r;
        }
        let mut found = Vec::new();
        let store = self.store.clone();
        let database = tokio::time::timeout(
            CHECK_TIMEOUT,
            tokio::task::spawn_blocking(move || store.pending_migrations()),
        )
        .await;
        found.push(check(
            "database",
            match database {
                Ok(Ok(Ok(0))) => Ok(()),
                Ok(Ok(Ok(n))) => Err((
                    "migrations_pending",
                    format!("{n} migrations of this release have not run"),
                )),
                Ok(Ok(Err(e))) => Err(("unreachable", e.to_string())),
                Ok(Err(e)) => Err(("unreachable", e.to_string())),
                Err(_) => Err((
                    "unreachable",
                    format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
                )),
            },
        ));
        if let Some(limits) = &self.limits {
            let redis = tokio::time::timeout(CHECK_TIMEOUT, limits.reachable()).await;
            found.push(check(
                "redis",
                match redis {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(("unreachable", e.to_string())),
                    Err(_) => Err((
                        "unreachable",
                        format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
                    )),
                },
            ));
        }
        if self.role.runs_git() {
            let free = self.free_bytes();
            let floor = self.config.min_free;
            found.push(check(
                "disk",
                if free >= floor {
                    Ok(())
                } else {
                    Err((
                        "low",
                        format!("{free} bytes free on the data directory's filesystem, under the floor of {floor}"),
                    ))
                },
            ));
            let git_ok = match git_due {
                Some(ok) => ok,
                None => {
                    let ok = git_runs(&self.config.git).await;
                    let mut memo = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
                    memo.git = Some((Instant::now(), ok));
                    ok
                }
            };
            found.push(check(
                "git",
                if git_ok {
                    Ok(())
                } else {
                    Err((
                        "not_runnable",
                        format!("{} --version did not run", self.config.git.display()),
                    ))
                },
            ));
        }
        let readiness = Readiness {
            checks: found.iter().map(|(c, _)| c.clone()).collect(),
        };
        let mut memo = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        let before = memo.last.as_ref().map(|(_, r)| r.clone());
        for (c, detail) in &found {
            let was = before
                .as_ref()
                .and_then(|b| b.checks.iter().find(|x| x.name == c.name))
                .map_or("ok", |x| x.outcome);
            if was != c.outcome {
                if c.outcome == "ok" {
                    tracing::info!(check = c.name, "readiness check passes again");
                } else {
                    tracing::warn!(check = c.name, outcome = c.outcome, detail = %detail, "readiness check fails");
                }
            }
        }
        memo.last = Some((Instant::now(), readiness.clone()));
        readiness
    }
}

/// Whether `git --version` runs and succeeds within [`CHECK_TIMEOUT`].
async fn git_runs(git: &std::path::Path) -> bool {
    let child = tokio::process::Command::new(git)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, child).await,
        Ok(Ok(status)) if status.success()
    )
}
