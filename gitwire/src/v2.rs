//! Protocol v2 (`gitprotocol-v2(5)`) messages: the capability advertisement, `ls-refs` and
//! `fetch` requests, and their responses.

use gitcore::ObjectId;
use gitcore::oid::HashKind;

use crate::pktline::{self, Decoder, Packet, PktError};

/// Errors of a protocol v2 exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The framing is wrong, or the server sent an error.
    #[error(transparent)]
    Pkt(#[from] PktError),
    /// The server does not speak protocol v2 (its first packet is not `version 2`).
    #[error("the server does not speak protocol version 2 (it said {0:?})")]
    NotV2(String),
    /// A line the protocol does not allow where it is.
    #[error("at byte {offset}: unexpected {line:?}")]
    Unexpected {
        /// Where the packet starts in the stream.
        offset: u64,
        /// The line, lossily, cut at 200 characters.
        line: String,
    },
    /// The server lacks a capability the request needs.
    #[error("the server does not offer {0}")]
    Missing(&'static str),
    /// More of something than a client should hold (refs, shallow lines).
    #[error("the server sent more than {limit} {what}")]
    TooMany {
        /// What.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The stream ended before the message did.
    #[error("the stream ended before the end of the {0}")]
    Ended(&'static str),
    /// The server's `object-format` names a hash git does not know.
    #[error("the server's object format {0:?} is not one git knows (sha1, sha256)")]
    ObjectFormat(String),
}

fn unexpected(offset: u64, line: &[u8]) -> ProtocolError {
    ProtocolError::Unexpected {
        offset,
        line: pktline::text(line).chars().take(200).collect(),
    }
}

/// What a server offers (`version 2`, then `key[=value]` lines up to a flush).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    caps: Vec<(String, Option<String>)>,
    /// `version 2` was read (parse state).
    version: bool,
    /// The flush that ends the advertisement was read.
    complete: bool,
}

impl Capabilities {
    /// Reads the advertisement from `dec` (fed by the caller) into `self`, started empty:
    /// `Ok(false)` until the flush that ends it has arrived (call again with more bytes). A
    /// smart-HTTP `# service=...` preamble and its flush are skipped.
    pub fn read(&mut self, dec: &mut Decoder) -> Result<bool, ProtocolError> {
        while !self.complete {
            let offset = dec.offset();
            let Some(p) = dec.next_packet()? else {
                return Ok(false);
            };
            match p {
                Packet::Data(line) => {
                    let line = trim_lf(line);
                    if !self.version {
                        if line.starts_with(b"# service=") {
                            continue;
                        }
                        if line != b"version 2" {
                            return Err(ProtocolError::NotV2(pktline::text(line)));
                        }
                        self.version = true;
                        continue;
                    }
                    if self.caps.len() >= 256 {
                        return Err(ProtocolError::TooMany {
                            what: "capabilities",
                            limit: 256,
                        });
                    }
                    let line = std::str::from_utf8(line).map_err(|_| unexpected(offset, line))?;
                    let (k, v) = match line.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (line.to_string(), None),
                    };
                    self.caps.push((k, v));
                }
                // The HTTP preamble's flush.
                Packet::Flush if !self.version => continue,
                Packet::Flush => self.complete = true,
                Packet::Delim | Packet::ResponseEnd => return Err(unexpected(offset, b"0001")),
            }
        }
        Ok(true)
    }

    /// Whether `key` is offered.
    pub fn has(&self, key: &str) -> bool {
        self.caps.iter().any(|(k, _)| k == key)
    }

    /// The value of `key` (`fetch=shallow wait-for-done filter` gives `shallow wait-for-done
    /// filter`).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.caps
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether the `fetch` command takes `feature` (`filter`, `shallow`, ...).
    pub fn fetch_has(&self, feature: &str) -> bool {
        self.value("fetch")
            .is_some_and(|v| v.split(' ').any(|f| f == feature))
    }

    /// The hash that names the server's objects: its `object-format` (SHA-1 when it names
    /// none, as `gitprotocol-v2(5)` says).
    pub fn object_format(&self) -> Result<HashKind, ProtocolError> {
        match self.value("object-format") {
            None => Ok(HashKind::Sha1),
            Some(name) => {
                HashKind::from_name(name).ok_or_else(|| ProtocolError::ObjectFormat(name.into()))
            }
        }
    }

    /// Whether `ls-refs` takes `feature` (`unborn`, ...).
    pub fn ls_refs_has(&self, feature: &str) -> bool {
        self.value("ls-refs")
            .is_some_and(|v| v.split(' ').any(|f| f == feature))
    }
}

fn trim_lf(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// The first part of every command request: `command=`, our agent, the object format.
fn command(name: &str, caps: &Capabilities, out: &mut Vec<u8>) {
    pktline::encode(format!("command={name}\n").as_bytes(), out);
    pktline::encode(b"agent=gitvista/1\n", out);
    if let Some(f) = caps.value("object-format") {
        pktline::encode(format!("object-format={f}\n").as_bytes(), out);
    }
    out.extend_from_slice(pktline::DELIM);
}

/// One ref as `ls-refs` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// Its name (`refs/heads/main`, `HEAD`).
    pub name: String,
    /// What it points at (`None`: an unborn HEAD).
    pub id: Option<ObjectId>,
    /// For a symbolic ref, its target.
    pub symref_target: Option<String>,
    /// For an annotated tag, the object it peels to.
    pub peeled: Option<ObjectId>,
}

/// An `ls-refs` request for the refs under `prefixes` (`refs/heads/`, ...; empty: all), with
/// symrefs and peeled tags.
pub fn ls_refs_request(caps: &Capabilities, prefixes: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    command("ls-refs", caps, &mut out);
    pktline::encode(b"peel\n", &mut out);
    pktline::encode(b"symrefs\n", &mut out);
    if caps.ls_refs_has("unborn") {
        pktline::encode(b"unborn\n", &mut out);
    }
    for p in prefixes {
        pktline::encode(format!("ref-prefix {p}\n").as_bytes(), &mut out);
    }
    out.extend_from_slice(pktline::FLUSH);
    out
}

/// Refs a listing may hold at most (the Linux kernel has about 1,000; busy forges' mirrors with
/// pull refs, a few hundred thousand).
pub const MAX_REFS: usize = 1_000_000;

/// Reads an `ls-refs` response from `dec`, whose ids are of `hash` (the server's object
/// format): `Ok(None)` until its flush has arrived.
pub fn read_ls_refs(
    dec: &mut Decoder,
    hash: HashKind,
    refs: &mut Vec<RemoteRef>,
) -> Result<Option<()>, ProtocolError> {
    loop {
        let offset = dec.offset();
        let Some(p) = dec.next_packet()? else {
            return Ok(None);
        };
        let line = match p {
            Packet::Data(line) => trim_lf(line),
            Packet::Flush | Packet::ResponseEnd => return Ok(Some(())),
            Packet::Delim => return Err(unexpected(offset, b"0001")),
        };
        if refs.len() >= MAX_REFS {
            return Err(ProtocolError::TooMany {
                what: "refs",
                limit: MAX_REFS,
            });
        }
        refs.push(parse_ref(line, hash).ok_or_else(|| unexpected(offset, line))?);
    }
}

fn parse_ref(line: &[u8], hash: HashKind) -> Option<RemoteRef> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let first = parts.next()?;
    let name = parts.next()?.to_string();
    if name.is_empty() {
        return None;
    }
    let id = if first == "unborn" {
        None
    } else {
        Some(ObjectId::from_hex_of(hash, first.as_bytes())?)
    };
    let mut r = RemoteRef {
        name,
        id,
        symref_target: None,
        peeled: None,
    };
    for attr in parts {
        if let Some(t) = attr.strip_prefix("symref-target:") {
            r.symref_target = Some(t.to_string());
        } else if let Some(p) = attr.strip_prefix("peeled:") {
            r.peeled = Some(ObjectId::from_hex_of(hash, p.as_bytes())?);
        }
    }
    Some(r)
}

/// What a `fetch` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRequest {
    /// Objects wanted (commits, or any object the server lets one ask for).
    pub wants: Vec<ObjectId>,
    /// Objects the client has (the server leaves out what they reach).
    pub haves: Vec<ObjectId>,
    /// A partial-clone filter spec (`tree:0`, `blob:none`).
    pub filter: Option<String>,
    /// Only this many commits from each want.
    pub deepen: Option<u32>,
    /// Only commits newer than this (seconds since the epoch).
    pub deepen_since: Option<i64>,
    /// Shallow commits the client holds already (their parents are not there).
    pub shallow: Vec<ObjectId>,
}

/// The `fetch` request for `req`, with `done` (no negotiation rounds), side-band progress and
/// offset deltas. Refused when the server lacks what it needs (`filter`, `shallow`).
pub fn fetch_request(caps: &Capabilities, req: &FetchRequest) -> Result<Vec<u8>, ProtocolError> {
    if req.filter.is_some() && !caps.fetch_has("filter") {
        return Err(ProtocolError::Missing("filter"));
    }
    if (req.deepen.is_some() || req.deepen_since.is_some() || !req.shallow.is_empty())
        && !caps.fetch_has("shallow")
    {
        return Err(ProtocolError::Missing("shallow"));
    }
    let mut out = Vec::new();
    command("fetch", caps, &mut out);
    pktline::encode(b"ofs-delta\n", &mut out);
    for w in &req.wants {
        pktline::encode(format!("want {w}\n").as_bytes(), &mut out);
    }
    for h in &req.haves {
        pktline::encode(format!("have {h}\n").as_bytes(), &mut out);
    }
    for s in &req.shallow {
        pktline::encode(format!("shallow {s}\n").as_bytes(), &mut out);
    }
    if let Some(d) = req.deepen {
        pktline::encode(format!("deepen {d}\n").as_bytes(), &mut out);
    }
    if let Some(t) = req.deepen_since {
        pktline::encode(format!("deepen-since {t}\n").as_bytes(), &mut out);
    }
    if let Some(f) = &req.filter {
        pktline::encode(format!("filter {f}\n").as_bytes(), &mut out);
    }
    pktline::encode(b"done\n", &mut out);
    out.extend_from_slice(pktline::FLUSH);
    Ok(out)
}

/// What a fetch response delivers, in order: shallow and unshallow lines, then the pack in
/// pieces and the server's progress text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// A commit the result holds without its parents (`shallow <id>`).
    Shallow(ObjectId),
    /// A commit that no longer is shallow (`unshallow <id>`).
    Unshallow(ObjectId),
    /// The next bytes of the pack.
    Pack(Vec<u8>),
    /// A line of the server's progress (`Counting objects:  12% (3/25)`).
    Progress(String),
    /// The response ended (the flush after the pack).
    End,
}

/// Where a fetch response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Section {
    /// Before a section header.
    #[default]
    Header,
    /// In `shallow-info`.
    Shallow,
    /// In a section we skip (`acknowledgments`, `wanted-refs`, `packfile-uris`).
    Skipped,
    /// In `packfile`: side-band packets.
    Packfile,
    /// After the final flush.
    Done,
}

/// Reads a fetch response as it arrives (see [`FetchEvent`]).
#[derive(Debug, Default)]
pub struct FetchResponse {
    section: Section,
    /// Progress text not yet ended by `\r` or `\n`.
    progress: Vec<u8>,
    /// Shallow lines seen (bounded).
    shallow_lines: usize,
}

/// Shallow lines a response may hold at most (one per shallow commit: a deepen of 2,000 over
/// 100,000 branches is still under it).
pub const MAX_SHALLOW: usize = 1_000_000;

impl FetchResponse {
    /// A reader at the start of a response.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next event from what `dec` holds (`Ok(None)`: feed it more).
    pub fn next_event(&mut self, dec: &mut Decoder) -> Result<Option<FetchEvent>, ProtocolError> {
        loop {
            if self.section == Section::Done {
                return Ok(Some(FetchEvent::End));
            }
            let offset = dec.offset();
            let Some(p) = dec.next_packet()? else {
                return Ok(None);
            };
            match (self.section, p) {
                (Section::Header, Packet::Data(line)) => {
                    self.section = match trim_lf(line) {
                        b"shallow-info" => Section::Shallow,
                        b"packfile" => Section::Packfile,
                        b"acknowledgments" | b"wanted-refs" | b"packfile-uris" => Section::Skipped,
                        other => return Err(unexpected(offset, other)),
                    };
                }
                (Section::Shallow, Packet::Data(line)) => {
                    let line = trim_lf(line);
                    self.shallow_lines += 1;
                    if self.shallow_lines > MAX_SHALLOW {
                        return Err(ProtocolError::TooMany {
                            what: "shallow lines",
                            limit: MAX_SHALLOW,
                        });
                    }
                    let id = |hex: &[u8]| {
                        ObjectId::from_hex(hex).ok_or_else(|| unexpected(offset, line))
                    };
                    if let Some(h) = line.strip_prefix(b"shallow ") {
                        return Ok(Some(FetchEvent::Shallow(id(h)?)));
                    }
                    if let Some(h) = line.strip_prefix(b"unshallow ") {
                        return Ok(Some(FetchEvent::Unshallow(id(h)?)));
                    }
                    return Err(unexpected(offset, line));
                }
                (Section::Skipped, Packet::Data(_)) => {}
                (Section::Shallow | Section::Skipped, Packet::Delim) => {
                    self.section = Section::Header;
                }
                (Section::Packfile, Packet::Data(data)) => match pktline::band(data, offset)? {
                    pktline::Band::Pack(bytes) => {
                        return Ok(Some(FetchEvent::Pack(bytes.to_vec())));
                    }
                    pktline::Band::Progress(text) => {
                        if let Some(line) = self.progress_line(text) {
                            return Ok(Some(FetchEvent::Progress(line)));
                        }
                    }
                },
                (Section::Packfile, Packet::Flush | Packet::ResponseEnd) => {
                    self.section = Section::Done;
                    return Ok(Some(FetchEvent::End));
                }
                // A response without a pack (nothing wanted was new).
                (Section::Header | Section::Shallow | Section::Skipped, Packet::Flush) => {
                    self.section = Section::Done;
                    return Ok(Some(FetchEvent::End));
                }
                (_, p) => {
                    let shown: &[u8] = match p {
                        Packet::Data(d) => d,
                        Packet::Flush => b"0000",
                        Packet::Delim => b"0001",
                        Packet::ResponseEnd => b"0002",
                    };
                    return Err(unexpected(offset, shown));
                }
            }
        }
    }

    /// The last complete progress line in `text` (git ends them with `\r` while they update),
    /// keeping an unfinished one for the next packet; at most 1 KiB is kept.
    fn progress_line(&mut self, text: &[u8]) -> Option<String> {
        let mut last = None;
        for &b in text {
            if b == b'\r' || b == b'\n' {
                if !self.progress.is_empty() {
                    last = Some(pktline::text(&self.progress));
                }
                self.progress.clear();
            } else if self.progress.len() < 1024 {
                self.progress.push(b);
            }
        }
        last
    }

    /// Whether the response has ended.
    pub fn ended(&self) -> bool {
        self.section == Section::Done
    }
}

/// The first message of a git:// connection: which service, for which path, on which host,
/// asking for protocol v2.
pub fn git_daemon_request(path: &str, host: &str) -> Vec<u8> {
    let mut out = Vec::new();
    pktline::encode(
        format!("git-upload-pack {path}\0host={host}\0\0version=2\0").as_bytes(),
        &mut out,
    );
    out
}
