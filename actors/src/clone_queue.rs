//! [`CloneQueue`]: the only place GitVista runs `git`.
//!
//! Jobs (a clone, a fetch, a deepen) run at most `concurrency` at a time, one per repository;
//! a request for a repository whose job of the same kind is queued or running joins it;
//! interactive jobs go ahead of background ones. Every git process runs hardened: a cleared
//! environment, no system or user configuration (a global file the server owns), no terminal
//! prompts, only the allowed protocols, no hooks, no redirects, stdin closed, the URL after
//! `--`, in its own process group, which is killed whole at the wall-clock timeout or when the
//! clone grows past the disk cap. A clone goes into a temporary directory that is renamed into
//! `repos/<id>` only on success and removed otherwise. Progress lines on stderr become
//! [`JobProgress`] messages.
//!
//! Here: how the queue runs git ([`CloneConfig`], credentials, the pinned target); beside it,
//! `jobs` (the job model and failure wording), `queue` (the actor) and `git` (the hardened
//! runner).

use std::path::PathBuf;
use std::time::Duration;

use crate::ids::RepoId;

mod git;
mod jobs;
mod queue;

pub use git::*;
pub use jobs::*;
pub use queue::*;

/// How the queue runs git.
#[derive(Debug, Clone)]
pub struct CloneConfig {
    /// The data directory: clones live in `repos/<id>`, work in progress in `tmp/`.
    pub data_dir: PathBuf,
    /// The git executable.
    pub git: PathBuf,
    /// Jobs running at once.
    pub concurrency: usize,
    /// Wall-clock limit of a clone (and of a deepen).
    pub clone_timeout: Duration,
    /// Wall-clock limit of a fetch.
    pub fetch_timeout: Duration,
    /// Largest repository on disk, in bytes.
    pub max_bytes: u64,
    /// Protocols git may use (`GIT_ALLOW_PROTOCOL`): https, plus http/git/ssh when allowlisted
    /// hosts need them.
    pub protocols: Vec<String>,
    /// Checks a remote URL before every git run that reaches it and says where git may connect
    /// (the hosted layer's address policy); `None` runs git on the URL as given.
    pub target: Option<TargetCheck>,
    /// A job that receives fewer than this many bytes a second (objects on disk plus progress
    /// text), averaged over `low_speed_time`, is stalled and killed (also git's
    /// `http.lowSpeedLimit`).
    pub low_speed_limit: u64,
    /// The window `low_speed_limit` is measured over (also `http.lowSpeedTime`).
    pub low_speed_time: Duration,
    /// Jobs waiting at most, over all clients.
    pub max_waiting: usize,
    /// Jobs queued or running at most per client.
    pub per_client: usize,
    /// Where a job that reaches a remote gets its credential (private repositories); `None`:
    /// every remote is read anonymously.
    pub credentials: Option<Credentials>,
}

/// An HTTP `Authorization` header git sends to the remote for one job. It reaches git only
/// through the environment of that one process (`GIT_CONFIG_COUNT`, `http.extraHeader`): never
/// argv, the URL, the clone's config or a log line. Zeroed when dropped; `Debug` hides it.
pub struct Credential {
    header: zeroize::Zeroizing<String>,
}

impl Credential {
    /// HTTP Basic with `user` and `password` (GitHub: `x-access-token` and the user's token).
    pub fn basic(user: &str, password: &str) -> Credential {
        use base64::Engine as _;
        let pair = zeroize::Zeroizing::new(format!("{user}:{password}"));
        let encoded = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()),
        );
        Credential {
            header: zeroize::Zeroizing::new(format!("Authorization: Basic {}", encoded.as_str())),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

/// What a credential lookup answers: `Ok(None)` to read anonymously, `Err` with the sentence
/// why nobody's credential can read the repository (the job fails as `auth_required`).
pub type CredentialFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Credential>, String>> + Send>>;

/// The lookup [`CloneConfig::credentials`] runs before every job that reaches a remote.
#[derive(Clone)]
pub struct Credentials(pub std::sync::Arc<dyn Fn(RepoId) -> CredentialFuture + Send + Sync>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials")
    }
}

/// Where git may connect for one run: the URL to give it and `-c` settings that pin it (e.g.
/// `http.curloptResolve=host:443:addr`, so git cannot resolve the name again to elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitTarget {
    /// The URL git is given.
    pub url: String,
    /// `name=value` settings passed with `-c`.
    pub config: Vec<String>,
}

/// The check [`CloneConfig::target`] runs (blocking: it resolves names); `Err` is the sentence
/// why the URL is refused.
#[derive(Clone)]
pub struct TargetCheck(pub std::sync::Arc<TargetFn>);

/// The function inside a [`TargetCheck`].
pub type TargetFn = dyn Fn(&str) -> Result<GitTarget, String> + Send + Sync;

impl std::fmt::Debug for TargetCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetCheck")
    }
}

impl CloneConfig {
    /// Defaults under `data_dir`: 2 at a time, 10 min per clone, 2 min per fetch, 2 GiB, https.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CloneConfig {
            data_dir: data_dir.into(),
            git: PathBuf::from("git"),
            concurrency: 2,
            clone_timeout: Duration::from_secs(600),
            fetch_timeout: Duration::from_secs(120),
            max_bytes: 2 << 30,
            protocols: vec!["https".into()],
            target: None,
            low_speed_limit: 1024,
            low_speed_time: Duration::from_secs(120),
            max_waiting: 200,
            per_client: 3,
            credentials: None,
        }
    }

    /// Where repository `id` lives once cloned.
    pub fn repo_dir(&self, id: &RepoId) -> PathBuf {
        self.data_dir.join("repos").join(id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_progress, sanitize};

    #[test]
    fn gits_words_lose_escape_sequences_and_control_characters() {
        let hostile = "fatal: \u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}bell\r\u{8}back \u{9b}csi";
        let clean = sanitize(hostile);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert!(clean.starts_with("fatal: red"), "{clean:?}");
        assert_eq!(
            sanitize(&"x".repeat(2000)).chars().count(),
            501,
            "500 and an ellipsis"
        );
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress("Receiving objects:  72% (1450/2013), 1.20 MiB | 3.00 MiB/s"),
            Some(("Receiving objects".into(), Some(72)))
        );
        assert_eq!(
            parse_progress("remote: Counting objects: 100% (5/5), done."),
            Some(("Counting objects".into(), Some(100)))
        );
        assert_eq!(parse_progress("Cloning into bare repository '/x'..."), None);
        assert_eq!(parse_progress("fatal: repository 'x' not found"), None);
    }
}
