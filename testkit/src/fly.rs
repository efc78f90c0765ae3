//! A fake of Fly's proxy on loopback: one listener per edge region, each delivering requests to
//! the app's machines by region, and honouring `fly-replay` answers as Fly documents them
//! (superfly/docs, networking/dynamic-request-routing): the answer is dropped and the original
//! request is delivered again where its fields say (`region` as a code or a quoted list in
//! order of preference with `any`, `instance`, `prefer_instance`, `elsewhere=true`, `state`),
//! carrying `fly-replay-src: instance=...;region=...;t=...;state=...`. A request is replayed at
//! most once, and one whose body is over 1 MB is not replayed at all.
//!
//! Each delivery adds the headers Fly's proxy adds (`Fly-Region`: the edge region that took
//! the connection; `Fly-Client-IP`, `X-Forwarded-For`, `Fly-Forwarded-Port`). A client picks a
//! region with `fly-prefer-region` or a machine with `fly-force-instance-id`, as on Fly.
//! WebSocket upgrades are delivered, replayed and then tunnelled both ways. One request per
//! client connection (the proxy answers `Connection: close`).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest body Fly replays.
pub const MAX_REPLAYED_BODY: usize = 1_000_000;

/// Largest request head and body the fake takes.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 << 20;

/// One of the app's machines.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Its id (`FLY_MACHINE_ID`).
    pub id: String,
    /// Its region (`FLY_REGION`).
    pub region: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// What the proxy did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The edge region that took the connection.
    pub edge: String,
    /// The request's method and path.
    pub method: String,
    pub path: String,
    /// The machine it was delivered to first.
    pub first: String,
    /// The machine it was replayed to, if it was.
    pub replayed_to: Option<String>,
    /// Why a replay asked for was not made (a second replay, a body over 1 MB, no machine).
    pub refused: Option<String>,
    /// The status the client got.
    pub status: u16,
}

#[derive(Debug)]
struct Shared {
    /// Behind the proxy: given at start, or added once they run ([`FlyProxy::add`]).
    machines: Mutex<Vec<Machine>>,
    next: AtomicUsize,
    log: Mutex<Vec<Delivery>>,
}

/// The running fake proxy.
#[derive(Debug, Clone)]
pub struct FlyProxy {
    edges: Vec<(String, u16)>,
    shared: Arc<Shared>,
}

impl FlyProxy {
    /// Starts a proxy for `machines` with one listener on 127.0.0.1 for each region of `edges`.
    /// A request is delivered to a machine of its edge's region, or (none there) of the first
    /// region in `machines` that has one.
    pub fn start(machines: Vec<Machine>, edges: &[&str]) -> FlyProxy {
        let shared = Arc::new(Shared {
            machines: Mutex::new(machines),
            next: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let mut ports = Vec::new();
        for edge in edges {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Fly edge");
            ports.push((
                edge.to_string(),
                listener.local_addr().expect("addr").port(),
            ));
            let (shared, edge) = (Arc::clone(&shared), edge.to_string());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let (shared, edge) = (Arc::clone(&shared), edge.clone());
                    std::thread::spawn(move || {
                        let _ = serve(&shared, &edge, conn);
                    });
                }
            });
        }
        FlyProxy {
            edges: ports,
            shared,
        }
    }

    /// `http://127.0.0.1:<port>` of the edge in `region`.
    pub fn url(&self, region: &str) -> String {
        let port = self
            .edges
            .iter()
            .find(|(r, _)| r == region)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no edge in {region}"));
        format!("http://127.0.0.1:{port}")
    }

    /// Puts `machine` behind the proxy: a node told its public address (an edge's URL) before
    /// it starts joins after the proxy is listening.
    pub fn add(&self, machine: Machine) {
        self.shared.machines().push(machine);
    }

    /// Every request handled so far, in the order they ended.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.log.lock().expect("log").clone()
    }
}

/// A parsed request or answer head.
#[derive(Debug)]
struct Head {
    first_line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn without(&mut self, names: &[&str]) {
        self.headers
            .retain(|(k, _)| !names.iter().any(|n| k.eq_ignore_ascii_case(n)));
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.first_line);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// Reads a head from `s`; answers it and the bytes read past it.
fn read_head(s: &mut TcpStream) -> std::io::Result<(Head, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("head too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = text.split("\r\n");
    let first_line = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((
        Head {
            first_line,
            headers,
        },
        buf[end + 4..].to_vec(),
    ))
}

/// Answers the client with a plain-text error of the fake's own.
fn refuse(client: &mut TcpStream, status: u16, why: &str) {
    let _ = client.write_all(
        format!(
            "HTTP/1.1 {status} Fake Fly\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}",
            why.len()
        )
        .as_bytes(),
    );
}

/// The fields of a `fly-replay` value.
#[derive(Debug, Default, PartialEq, Eq)]
struct Replay {
    regions: Vec<String>,
    instance: Option<String>,
    prefer_instance: Option<String>,
    elsewhere: bool,
    state: Option<String>,
}

fn parse_replay(value: &str) -> Replay {
    let mut r = Replay::default();
    for field in value.split(';') {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim() {
            "region" => {
                r.regions = v.split(',').map(|s| s.trim().to_string()).collect();
            }
            "instance" => r.instance = Some(v.to_string()),
            "prefer_instance" => r.prefer_instance = Some(v.to_string()),
            "elsewhere" => r.elsewhere = v == "true",
            "state" => r.state = Some(v.to_string()),
            _ => {}
        }
    }
    r
}

impl Shared {
    fn machines(&self) -> std::sync::MutexGuard<'_, Vec<Machine>> {
        self.machines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A machine of `region` (in turn), other than `not`.
    fn in_region(&self, region: &str, not: Option<&str>) -> Option<Machine> {
        let machines = self.machines();
        let here: Vec<&Machine> = machines
            .iter()
            .filter(|m| (region == "any" || m.region == region) && Some(m.id.as_str()) != not)
            .collect();
        if here.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(here[i % here.len()].clone())
    }

    fn by_id(&self, id: &str) -> Option<Machine> {
        self.machines().iter().find(|m| m.id == id).cloned()
    }

    /// Where a request arriving at `edge` goes first.
    fn first_machine(&self, edge: &str, head: &Head) -> Option<Machine> {
        if let Some(id) = head.get("fly-force-instance-id") {
            return self.by_id(id);
        }
        let preferred = head.get("fly-prefer-region");
        preferred
            .and_then(|r| self.in_region(r, None))
            .or_else(|| self.in_region(edge, None))
            .or_else(|| {
                let first = self.machines().first()?.region.clone();
                self.in_region(&first, None)
            })
    }

    /// Where `replay` (answered by `from`) sends the request.
    fn replay_target(&self, replay: &Replay, from: &Machine) -> Option<Machine> {
        if let Some(id) = &replay.instance {
            return self.by_id(id);
        }
        if let Some(m) = replay
            .prefer_instance
            .as_deref()
            .and_then(|id| self.by_id(id))
        {
            return Some(m);
        }
        let not = replay.elsewhere.then_some(from.id.as_str());
        replay.regions.iter().find_map(|r| self.in_region(r, not))
    }
}

/// Delivers `head` and `body` to `machine`; answers the connection and its answer's head.
fn deliver(
    machine: &Machine,
    head: &Head,
    body: &[u8],
) -> std::io::Result<(TcpStream, Head, Vec<u8>)> {
    let mut up = TcpStream::connect_timeout(&machine.addr, Duration::from_secs(5))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(&head.bytes())?;
    // A machine may answer before it reads the whole body (and close): its answer counts.
    let _ = up.write_all(body);
    let (answer, rest) = read_head(&mut up)?;
    Ok((up, answer, rest))
}

fn status_of(head: &Head) -> u16 {
    head.first_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn serve(shared: &Shared, edge: &str, mut client: TcpStream) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let peer = client.peer_addr()?;
    let (mut head, mut body) = read_head(&mut client)?;
    let mut parts = head.first_line.split(' ');
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    if head.get("transfer-encoding").is_some() {
        refuse(
            &mut client,
            411,
            "the fake Fly proxy takes bodies with a length only",
        );
        return Ok(());
    }
    let length: usize = head
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        refuse(&mut client, 413, "body too large for the fake Fly proxy");
        return Ok(());
    }
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let upgrade = head
        .get("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    head.without(&[
        "fly-region",
        "fly-client-ip",
        "fly-forwarded-port",
        "x-forwarded-for",
        "fly-replay-src",
    ]);
    if !upgrade {
        head.without(&["connection", "keep-alive"]);
        head.headers.push(("connection".into(), "close".into()));
    }
    head.headers.push(("fly-region".into(), edge.to_string()));
    head.headers
        .push(("fly-client-ip".into(), peer.ip().to_string()));
    head.headers
        .push(("x-forwarded-for".into(), peer.ip().to_string()));
    head.headers
        .push(("fly-forwarded-port".into(), peer.port().to_string()));

    let mut entry = Delivery {
        edge: edge.to_string(),
        method,
        path,
        first: String::new(),
        replayed_to: None,
        refused: None,
        status: 0,
    };
    let record = |entry: Delivery| shared.log.lock().expect("log").push(entry);
    let Some(first) = shared.first_machine(edge, &head) else {
        refuse(&mut client, 503, "no machine to deliver to");
        entry.status = 503;
        record(entry);
        return Ok(());
    };
    entry.first = first.id.clone();
    let (mut up, mut answer, mut rest) = match deliver(&first, &head, &body) {
        Ok(a) => a,
        Err(_) => {
            refuse(&mut client, 502, "the machine did not answer");
            entry.status = 502;
            record(entry);
            return Ok(());
        }
    };
    if let Some(value) = answer.get("fly-replay").map(str::to_string) {
        let replay = parse_replay(&value);
        let target = shared.replay_target(&replay, &first);
        let refused = if body.len() > MAX_REPLAYED_BODY {
            Some("a body over 1 MB is not replayed")
        } else if target.is_none() {
            Some("no machine where the replay asks")
        } else {
            None
        };
        if let Some(why) = refused {
            refuse(&mut client, 502, why);
            entry.refused = Some(why.to_string());
            entry.status = 502;
            record(entry);
            return Ok(());
        }
        let target = target.expect("checked");
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let mut source = format!("instance={};region={};t={micros}", first.id, first.region);
        if let Some(state) = &replay.state {
            source.push_str(&format!(";state={state}"));
        }
        head.headers.push(("fly-replay-src".into(), source));
        entry.replayed_to = Some(target.id.clone());
        (up, answer, rest) = match deliver(&target, &head, &body) {
            Ok(a) => a,
            Err(_) => {
                refuse(&mut client, 502, "the machine replayed to did not answer");
                entry.status = 502;
                record(entry);
                return Ok(());
            }
        };
        if answer.get("fly-replay").is_some() {
            refuse(
                &mut client,
                508,
                "a replayed request asked to be replayed again",
            );
            entry.refused = Some("replayed twice".into());
            entry.status = 508;
            record(entry);
            return Ok(());
        }
    }
    entry.status = status_of(&answer);
    let switching = entry.status == 101;
    record(entry);
    client.write_all(&answer.bytes())?;
    client.write_all(&rest)?;
    if switching {
        // A WebSocket: both ways until either side closes.
        client.set_read_timeout(None)?;
        up.set_read_timeout(None)?;
        let (mut c2, mut u2) = (client.try_clone()?, up.try_clone()?);
        let back = std::thread::spawn(move || {
            let _ = std::io::copy(&mut u2, &mut c2);
            let _ = c2.shutdown(Shutdown::Both);
        });
        let _ = std::io::copy(&mut client, &mut up);
        let _ = up.shutdown(Shutdown::Both);
        let _ = back.join();
        return Ok(());
    }
    let _ = std::io::copy(&mut up, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    rest.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_fields_are_read_as_fly_documents_them() {
        assert_eq!(
            parse_replay(r#"region="sjc,any";state=x"#),
            Replay {
                regions: vec!["sjc".into(), "any".into()],
                state: Some("x".into()),
                ..Replay::default()
            }
        );
        let r = parse_replay("instance=e82d;elsewhere=true");
        assert_eq!(r.instance.as_deref(), Some("e82d"));
        assert!(r.elsewhere);
        assert_eq!(parse_replay("region=iad").regions, vec!["iad".to_string()]);
    }

    /// A machine on loopback answering every request with `answer(request head)`.
    fn machine(id: &str, region: &str, answer: fn(&str, &str) -> String) -> Machine {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let me = id.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let me = me.clone();
                std::thread::spawn(move || {
                    let Ok((head, _)) = read_head(&mut conn) else {
                        return;
                    };
                    let text = head.bytes();
                    let out = answer(&me, &String::from_utf8_lossy(&text));
                    let _ = conn.write_all(out.as_bytes());
                });
            }
        });
        Machine {
            id: id.into(),
            region: region.into(),
            addr,
        }
    }

    fn ok(me: &str, head: &str) -> String {
        let src = head
            .lines()
            .find(|l| l.starts_with("fly-replay-src"))
            .unwrap_or("none");
        let body = format!("{me} {src}");
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn to_iad(me: &str, head: &str) -> String {
        if head.contains("fly-replay-src") {
            return ok(me, head);
        }
        "HTTP/1.1 421 Elsewhere\r\nfly-replay: region=iad;state=s1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
    }

    fn always_elsewhere(_: &str, _: &str) -> String {
        "HTTP/1.1 421 Elsewhere\r\nfly-replay: region=\"lhr,any\";elsewhere=true\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
    }

    fn get(url: &str, body: usize) -> (u16, String) {
        get_with(url, body, "")
    }

    /// [`get`] with `headers` (whole lines, each ending in CRLF).
    fn get_with(url: &str, body: usize, headers: &str) -> (u16, String) {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("connect");
        let req = format!(
            "POST /x HTTP/1.1\r\nhost: {addr}\r\n{headers}content-length: {body}\r\n\r\n{}",
            "a".repeat(body)
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (
            status,
            out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
        )
    }

    #[test]
    fn a_replay_is_delivered_once_where_it_asks_with_its_source() {
        let proxy = FlyProxy::start(
            vec![
                machine("ams-1", "ams", to_iad),
                machine("iad-1", "iad", ok),
                machine("lhr-1", "lhr", always_elsewhere),
                machine("lhr-2", "lhr", always_elsewhere),
            ],
            &["ams", "iad", "lhr"],
        );
        let (status, body) = get(&proxy.url("ams"), 10);
        assert_eq!(status, 200);
        assert!(
            body.starts_with("iad-1 fly-replay-src: instance=ams-1;region=ams;t="),
            "{body}"
        );
        assert!(body.ends_with(";state=s1"), "{body}");
        let (status, body) = get(&proxy.url("iad"), 10);
        assert_eq!((status, body.as_str()), (200, "iad-1 none"));
        // Replayed to the other lhr machine, which asks again: refused rather than looped.
        let (status, _) = get(&proxy.url("lhr"), 10);
        assert_eq!(status, 508);
        // Over 1 MB: not replayed.
        let (status, _) = get(&proxy.url("ams"), MAX_REPLAYED_BODY + 1);
        assert_eq!(status, 502);
        let log = proxy.deliveries();
        assert_eq!(log.len(), 4);
        assert_eq!(log[0].replayed_to.as_deref(), Some("iad-1"));
        assert_eq!(log[1].replayed_to, None);
        assert_eq!(log[2].refused.as_deref(), Some("replayed twice"));
        assert_eq!(
            log[3].refused.as_deref(),
            Some("a body over 1 MB is not replayed")
        );
    }

    #[test]
    fn a_preferred_region_or_a_forced_machine_chooses_where_a_request_goes_first() {
        let proxy = FlyProxy::start(vec![machine("ams-1", "ams", ok)], &["ams", "iad"]);
        // Machines joining after the proxy listens (their addresses are known only then).
        proxy.add(machine("iad-1", "iad", ok));
        proxy.add(machine("iad-2", "iad", ok));
        assert_eq!(get(&proxy.url("iad"), 0).0, 200);
        let first = |headers: &str| {
            let (status, body) = get_with(&proxy.url("ams"), 0, headers);
            assert_eq!(status, 200, "{body}");
            body.split(' ').next().unwrap_or_default().to_string()
        };
        assert_eq!(first(""), "ams-1");
        assert!(first("fly-prefer-region: iad\r\n").starts_with("iad-"));
        // A preferred region without machines: the edge's own.
        assert_eq!(first("fly-prefer-region: syd\r\n"), "ams-1");
        for _ in 0..3 {
            assert_eq!(first("fly-force-instance-id: iad-2\r\n"), "iad-2");
        }
        let (status, _) = get_with(&proxy.url("ams"), 0, "fly-force-instance-id: nowhere\r\n");
        assert!(status >= 500, "{status}");
    }
}
