//! How often a repository may be fetched, as the layer above decides it: a session fetches at
//! its adaptive pace (faster while watched, slower when cold), no faster than a [`Pace`] allows,
//! and trusts a live webhook ([`HookClock`]) to say when the remote changed. Why a repository is
//! slowed or stopped (a plan, a freeze) is not the actors' business.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ids::RepoId;

/// How often one repository may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// At the session's adaptive pace.
    Adaptive,
    /// At the adaptive pace, but at most once per this long.
    AtMost(Duration),
    /// Not at all.
    Never,
}

/// Answers each repository's [`Pace`] when a session asks (before each fetch).
#[derive(Clone)]
pub struct PaceRule(pub Arc<dyn Fn(&RepoId) -> Pace + Send + Sync>);

impl std::fmt::Debug for PaceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaceRule")
    }
}

/// When each repository's webhook last delivered (shared by the receivers and the sessions).
#[derive(Debug, Default)]
pub struct HookClock {
    seen: Mutex<HashMap<RepoId, Instant>>,
}

impl HookClock {
    /// Records a delivery for `id` now.
    pub fn heard(&self, id: &RepoId) {
        self.heard_at(id, Instant::now());
    }

    /// Records a delivery for `id` at `at` (start-up reads the last ones from the store).
    pub fn heard_at(&self, id: &RepoId, at: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(id.clone()).or_insert(at);
        *entry = (*entry).max(at);
    }

    /// How long ago `id`'s hook last delivered, if it ever did (since the process started or
    /// as the store remembered).
    pub fn since(&self, id: &RepoId) -> Option<Duration> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(id).map(Instant::elapsed)
    }

    /// Whether `id`'s hook delivered within `window`.
    pub fn live(&self, id: &RepoId, window: Duration) -> bool {
        self.since(id).is_some_and(|s| s < window)
    }

    /// Forgets hooks quiet for longer than `window` (bounded memory); answers how many remain.
    pub fn forget_quiet(&self, window: Duration) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| at.elapsed() < window);
        seen.len()
    }
}
