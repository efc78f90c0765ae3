//! The job model: what a job does, its shape, priority and progress, and how a failure is told
//! to users (a few classes, each with a sentence) apart from git's own words (for logs and
//! admins only).

use actix::prelude::*;

use crate::ids::RepoId;

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// `git clone --bare` of `url`, of the objects `shape` says. A filtered clone of a server
    /// that does not filter fails at once with [`JobError::NoFilter`] (git would fetch
    /// everything instead).
    Clone {
        /// The canonical remote URL (already checked by the caller).
        url: String,
        /// With [`CloneShape::Everything`]: only this many commits of each branch first.
        depth: Option<u32>,
        /// Which objects.
        shape: CloneShape,
    },
    /// Makes a partial clone whole: a fresh clone of its remote (with every object when
    /// `blobs`, else commits and trees) in `tmp/`, moved into place over the partial one. One
    /// clone was measured cheapest: `fetch --refetch` moves the same bytes and leaves two packs
    /// that git 2.47's `repack` mishandles (objects outside promisor packs are dropped).
    Hydrate {
        /// File contents too (else trees only).
        blobs: bool,
    },
    /// Fetches named objects into a partial clone (what one request needs: a commit's trees,
    /// a file's two versions), as git's own lazy fetch does: no negotiation, trees with their
    /// subtrees and no blobs but those named, into a promisor pack. Runs beside the
    /// repository's other job (a hydration may take minutes); at most [`OBJECT_JOBS`] at once.
    /// Ask for trees and blobs in separate jobs: a blob under a tree asked for in the same
    /// fetch is filtered out with the tree's other blobs, and the fetch fails.
    Objects {
        /// The objects, as 40 (SHA-1) or 64 (SHA-256) hex digits.
        ids: Vec<String>,
    },
    /// `git fetch --prune` of branches and tags.
    Fetch,
    /// Fetch the rest of a shallow clone's history.
    Deepen,
    /// `git commit-graph write --reachable --split --changed-paths`: gitcore then reads the
    /// topology without inflating a single commit, and path searches use the Bloom filters.
    CommitGraph,
    /// `git repack -a -d -l`: merges the small packs fetches leave behind.
    Repack,
    /// Points the clone at the repository's new URL (renamed or transferred on its forge);
    /// the next fetch checks it like any URL.
    SetUrl {
        /// The new canonical URL (already checked by the caller).
        url: String,
    },
}

impl JobKind {
    pub(super) fn same_job(&self, other: &JobKind) -> bool {
        matches!(
            (self, other),
            (JobKind::Clone { .. }, JobKind::Clone { .. })
                | (JobKind::Hydrate { .. }, JobKind::Hydrate { .. })
                | (JobKind::Fetch, JobKind::Fetch)
                | (JobKind::Deepen, JobKind::Deepen)
                | (JobKind::CommitGraph, JobKind::CommitGraph)
                | (JobKind::Repack, JobKind::Repack)
                | (JobKind::SetUrl { .. }, JobKind::SetUrl { .. })
        )
    }

    /// Whether it talks to the remote (the low-speed limit applies).
    pub(super) fn networked(&self) -> bool {
        matches!(
            self,
            JobKind::Clone { .. }
                | JobKind::Fetch
                | JobKind::Deepen
                | JobKind::Hydrate { .. }
                | JobKind::Objects { .. }
        )
    }

    /// Whether it runs beside the repository's other job (in the objects lane).
    pub(super) fn beside(&self) -> bool {
        matches!(self, JobKind::Objects { .. })
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            JobKind::Clone { .. } => "clone",
            JobKind::Fetch => "fetch",
            JobKind::Deepen => "deepen",
            JobKind::Hydrate { .. } => "hydrate",
            JobKind::Objects { .. } => "objects",
            JobKind::CommitGraph => "commit-graph",
            JobKind::Repack => "repack",
            JobKind::SetUrl { .. } => "set-url",
        }
    }
}

/// Which objects a clone asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneShape {
    /// Commits only (`--filter=tree:0`): what a graph needs. Fails with
    /// [`JobError::RefToTree`] when a ref names a tree (Linux's `v2.6.11-tree`): the filter
    /// leaves out even a tree asked for by name.
    CommitsOnly,
    /// Commits and trees (`--filter=blob:none`).
    NoBlobs,
    /// Every object.
    Everything,
}

/// Who is waiting: a timer (background), viewers of a served repository (watched), or a user
/// at a progress bar (interactive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Timers: fetches, deepening.
    Background,
    /// A fetch of a repository people are watching: one slot is kept for these, so pasted
    /// clones (however slow their remotes) cannot starve them.
    Watched,
    /// Someone is looking at a progress bar.
    Interactive,
}

/// Progress parsed from git's stderr.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct JobProgress {
    /// The repository.
    pub id: RepoId,
    /// The phase as git names it ("Receiving objects", "Resolving deltas", ...).
    pub phase: String,
    /// Percent of the phase, when git gives one.
    pub percent: Option<u8>,
    /// The whole line, for people.
    pub text: String,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// git exited with an error; its last stderr lines say why.
    #[error("git {kind} failed: {message}")]
    Git {
        /// clone, fetch or deepen.
        kind: &'static str,
        /// The end of git's stderr.
        message: String,
    },
    /// The wall-clock limit passed; the process group was killed.
    #[error("git {kind} took longer than {secs} s and was stopped")]
    Timeout {
        /// clone, fetch or deepen.
        kind: &'static str,
        /// The limit.
        secs: u64,
    },
    /// The repository grew past the disk cap; the process group was killed.
    #[error("the repository is larger than the {limit}-byte limit")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// The job could not start or its files could not be moved.
    #[error("{0}")]
    Io(String),
    /// A fetch or deepen for a repository that is not cloned.
    #[error("repository {0} is not cloned")]
    NotCloned(RepoId),
    /// The queue stopped.
    #[error("the clone queue stopped")]
    Stopped,
    /// The remote's address is not allowed (checked before git ran).
    #[error("{0}")]
    Refused(String),
    /// The job was cancelled (its repository was deleted).
    #[error("the job was cancelled")]
    Cancelled,
    /// A filtered clone's server does not filter objects (it would send everything).
    #[error("the server does not support partial clones")]
    NoFilter,
    /// A commits-only clone could not be completed: a ref names a tree, which the filter left
    /// out.
    #[error("a ref names a tree, which a commits-only clone cannot hold")]
    RefToTree,
    /// [`MAX_QUEUED_OBJECTS`] object fetches wait already.
    #[error("too many object fetches are waiting")]
    Busy,
    /// The repository needs a credential and no user's works any more.
    #[error("no credential: {0}")]
    NoCredential(String),
    /// The clone is in a format gitcore refuses (a SHA-256 repository); nothing is kept.
    #[error("{0}")]
    Unreadable(String),
    /// The remote sent less than the low-speed limit for the whole window; the process group
    /// was killed.
    #[error("git {kind} received under {limit} bytes a second for {secs} s and was stopped")]
    Stalled {
        /// clone, fetch or deepen.
        kind: &'static str,
        /// Bytes a second required.
        limit: u64,
        /// The window.
        secs: u64,
    },
}

/// Why the queue will not take another job now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueFull {
    /// This client has this many jobs queued or running already.
    #[error("this address has {0} clones waiting or running already; wait for one to finish")]
    Client(usize),
    /// The queue holds this many waiting jobs.
    #[error("{0} clones are waiting already; try again in a few minutes")]
    Total(usize),
}

impl QueueFull {
    /// Whether one more job of a client may wait, with `waiting` jobs queued in all and `mine`
    /// of the client's queued or running: at most `max_waiting` and `per_client`. The rule of
    /// this queue and of the cluster's shared one (whose counts the store reads).
    pub fn admit(
        waiting: usize,
        mine: usize,
        per_client: usize,
        max_waiting: usize,
    ) -> Result<(), QueueFull> {
        if waiting >= max_waiting {
            return Err(QueueFull::Total(waiting));
        }
        if mine >= per_client {
            return Err(QueueFull::Client(mine));
        }
        Ok(())
    }
}

/// Asks whether a new job for `client` would be accepted (checked before a clone is promised).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), QueueFull>")]
pub struct Admit {
    /// The client asking.
    pub client: String,
}

/// What users are told about a failed job: a few classes, each with a sentence. git's own text
/// (which would turn the page into a port scanner: "connection refused" vs "timed out") is for
/// the logs and the admin API only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// No repository at that URL (or it is private).
    NotFound,
    /// The remote wants credentials.
    AuthRequired,
    /// The remote could not be reached or did not speak git.
    Unreachable,
    /// It took too long.
    Timeout,
    /// The repository is over the size limit.
    TooLarge,
    /// The URL's address is not allowed.
    Refused,
    /// The repository is in a format GitVista does not read (yet).
    Unsupported,
    /// Anything else (the server's own trouble, a cancelled job).
    Failed,
}

impl FailureClass {
    /// The stable code (`not_found`, ...).
    pub fn code(self) -> &'static str {
        match self {
            FailureClass::NotFound => "not_found",
            FailureClass::AuthRequired => "auth_required",
            FailureClass::Unreachable => "unreachable",
            FailureClass::Timeout => "timeout",
            FailureClass::TooLarge => "too_large",
            FailureClass::Refused => "refused",
            FailureClass::Unsupported => "unsupported_format",
            FailureClass::Failed => "failed",
        }
    }

    /// The sentence users see.
    pub fn sentence(self) -> &'static str {
        match self {
            FailureClass::NotFound => {
                "No repository was found at this URL. Check the address; a private repository needs you signed in with an account that can read it."
            }
            FailureClass::AuthRequired => {
                "The repository's server asks for a sign-in: sign in with an account that can read this repository."
            }
            FailureClass::Unreachable => {
                "The repository's server could not be reached or did not answer as a Git server."
            }
            FailureClass::Timeout => {
                "The repository's server took too long to answer; try again later."
            }
            FailureClass::TooLarge => "The repository is larger than this server accepts.",
            FailureClass::Refused => "This address is not one GitVista may reach.",
            FailureClass::Unsupported => {
                "The repository is in a format GitVista does not read yet."
            }
            FailureClass::Failed => "GitVista could not read the repository; try again later.",
        }
    }
}

impl JobError {
    /// Whether this only says which shape of clone the remote takes ([`JobError::NoFilter`],
    /// [`JobError::RefToTree`]): the caller clones again in another shape, so it is neither
    /// logged as a failure nor counted as one.
    pub fn is_fallback(&self) -> bool {
        matches!(self, JobError::NoFilter | JobError::RefToTree)
    }

    /// The `reason` label of a fallback (`no_filter`, `ref_to_tree`); empty for anything else.
    pub fn fallback_reason(&self) -> &'static str {
        match self {
            JobError::NoFilter => "no_filter",
            JobError::RefToTree => "ref_to_tree",
            _ => "",
        }
    }

    /// Which class of failure this is, for users.
    pub fn class(&self) -> FailureClass {
        match self {
            JobError::Timeout { .. } | JobError::Stalled { .. } => FailureClass::Timeout,
            JobError::TooLarge { .. } => FailureClass::TooLarge,
            JobError::Refused(_) => FailureClass::Refused,
            JobError::NoCredential(_) => FailureClass::AuthRequired,
            JobError::Unreadable(_) => FailureClass::Unsupported,
            JobError::Git { message, .. } => classify_git(message),
            JobError::Io(_)
            | JobError::NotCloned(_)
            | JobError::Stopped
            | JobError::Cancelled
            | JobError::NoFilter
            | JobError::RefToTree
            | JobError::Busy => FailureClass::Failed,
        }
    }

    /// What users are told: the class's sentence (the policy's own sentence for a refusal, which
    /// names only what the user typed).
    pub fn public_message(&self) -> String {
        match self {
            JobError::Refused(why) => why.clone(),
            // gitcore's sentence names the setting, never a path.
            JobError::Unreadable(why) => format!("The repository cannot be shown: {why}."),
            JobError::TooLarge { limit } => {
                format!("The repository is larger than this server's limit of {limit} bytes.")
            }
            other => other.class().sentence().to_string(),
        }
    }
}

/// Sorts git's last words into a class.
pub(super) fn classify_git(message: &str) -> FailureClass {
    let m = message.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if any(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "returned error: 401",
        "returned error: 403",
        "permission denied",
    ]) {
        FailureClass::AuthRequired
    } else if any(&[
        "not found",
        "does not appear to be a git repository",
        "returned error: 404",
        "no such repository",
        "does not exist",
        "access denied",
    ]) {
        FailureClass::NotFound
    } else if any(&["timed out", "timeout"]) {
        FailureClass::Timeout
    } else {
        FailureClass::Unreachable
    }
}

/// git's text made safe to log and show to admins: control characters and terminal escape
/// sequences removed, at most 500 characters.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(500));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte (CSI), or ESC and one more character.
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        if c.is_control() || ('\u{80}'..='\u{9f}').contains(&c) {
            continue;
        }
        if out.chars().count() >= 500 {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}
