//! A private repository, to everyone who may not read it, is an unknown id on every route,
//! however its id is spelled. The routes come from the route table
//! ([`gitvista::routes::repository_routes`]), so a route added later is covered by this test
//! without anyone listing it; the requests are written byte for byte on a socket, so no client
//! library tidies a spelling (dot segments, `%36`) before the server sees it. The callers are a
//! visitor, another user, a reader whose access was revoked and a team member removed from the
//! team that shared it; a reader's own answers must say `private, no-cache` and `Vary: Cookie`.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use serde_json::{Value, json};

use crate::helpers::git;
use crate::signin::world;
use crate::teams::call;

/// An id nobody tracks.
const UNKNOWN: &str = "0123456789abcdef";

/// One answer as the socket saw it: the status, the headers that could tell two answers apart
/// (names lowercased, sorted; the date and session cookies left out), and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    /// The same answer with `id` written as `UNKNOWN`, in either case (an unknown id's answer
    /// names its id as the path spelled it).
    fn as_unknown(&self, id: &str) -> Answer {
        let swap = |s: &str| {
            s.replace(id, UNKNOWN)
                .replace(&id.to_ascii_uppercase(), &UNKNOWN.to_ascii_uppercase())
        };
        Answer {
            status: self.status,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), swap(v)))
                .collect(),
            body: swap(&self.body),
        }
    }
}

/// Sends `method target` as written (a WebSocket handshake for a `/ws` target) with `cookie`,
/// and reads the answer (for a 101, its head only).
async fn raw(port: u16, method: &str, target: &str, cookie: Option<&str>) -> Answer {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    if let Some(c) = cookie {
        head.push_str(&format!("Cookie: {c}\r\n"));
    }
    if target.split('?').next().is_some_and(|p| p.ends_with("/ws")) {
        head.push_str(&format!(
            "Origin: http://127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        ));
    } else {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16384];
    // Read until the answer is whole: its head, then the body its head announces (the
    // connection may stay open: a refused WebSocket handshake is an ordinary answer).
    let whole = |bytes: &[u8]| -> bool {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let body = &bytes[end + 4..];
        if head.starts_with("http/1.1 101") || head.starts_with("http/1.1 304") {
            return true;
        }
        if let Some(n) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            return method == "HEAD" || body.len() >= n;
        }
        if head.contains("transfer-encoding: chunked") {
            return method == "HEAD" || body.ends_with(b"0\r\n\r\n");
        }
        false
    };
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{method} {target}: no answer within 20 s"))
            .expect("read");
        bytes.extend_from_slice(&buf[..n]);
        if n == 0 || whole(&bytes) {
            break;
        }
    }
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {target}: no head in {bytes:?}"));
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "set-cookie"))
        // Each request's own id, made afresh for every request: its presence is compared, its
        // value says nothing of the repository.
        .map(|(k, v)| {
            let v = if k == "x-request-id" {
                "<id>".into()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    headers.sort();
    let mut body = bytes[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A chunked body's bytes.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&rest[..line_end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
    out
}

/// Every spelling of `id` in `pattern`'s path (with `arguments` in place of the other
/// placeholders), with what each is: the canonical one first.
fn spellings(pattern: &str, id: &str, fill: &dyn Fn(&str) -> String) -> Vec<(String, String)> {
    let path = |id_text: &str| fill(&pattern.replace("{id}", id_text));
    let mut out = vec![("canonical".to_string(), path(id))];
    for i in 0..id.len() {
        let encoded = format!("{}%{:02X}{}", &id[..i], id.as_bytes()[i], &id[i + 1..]);
        out.push((format!("character {i} percent-encoded"), path(&encoded)));
    }
    out.push(("upper case".into(), path(&id.to_ascii_uppercase())));
    let canonical = path(id);
    let (p, q) = canonical.split_once('?').unwrap_or((&canonical, ""));
    let q = if q.is_empty() {
        String::new()
    } else {
        format!("?{q}")
    };
    out.push(("a trailing slash".into(), format!("{p}/{q}")));
    out.push((
        "a double slash".into(),
        canonical.replacen("/api/repos/", "/api/repos//", 1),
    ));
    out.push((
        "dot segments".into(),
        canonical.replacen("/api/repos/", "/api/repos/x/../", 1),
    ));
    out.push((
        "an encoded dot segment".into(),
        canonical.replacen("/api/repos/", "/api/repos/x/%2E%2E/", 1),
    ));
    out
}

/// Arguments of the repository routes that succeed for a reader of the repository whose
/// source is the work tree `source`: HEAD for `{hash}` (a blob HEAD changed for `/blob/`, the
/// work tree's `logo.png` for `/raw` when it has one, HEAD and its parent for `/compare/`), and
/// the query each route takes. A refusal is then never the argument's fault.
pub(crate) struct ReaderArgs {
    head: String,
    file: String,
    blob: String,
    image: String,
    compared: String,
}

impl ReaderArgs {
    pub(crate) fn of(source: &std::path::Path) -> ReaderArgs {
        let head = git(source, &["rev-parse", "HEAD"]);
        let file = git(
            source,
            &["diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"],
        )
        .lines()
        .next()
        .expect("HEAD changes a file")
        .to_string();
        let blob = git(source, &["rev-parse", &format!("HEAD:{file}")]);
        let image = if source.join("logo.png").exists() {
            git(source, &["rev-parse", "HEAD:logo.png"])
        } else {
            blob.clone()
        };
        // A comparison of HEAD with its parent, which differ in `file`.
        let compared = format!("{}...{head}", git(source, &["rev-parse", "HEAD~1"]));
        ReaderArgs {
            head,
            file,
            blob,
            image,
            compared,
        }
    }

    /// `path` (a route's pattern with its `{id}` filled in) with its `{hash}` and query.
    pub(crate) fn fill(&self, path: &str) -> String {
        let hash = if path.ends_with("/raw") {
            &self.image
        } else if path.contains("/blob/") {
            &self.blob
        } else if path.contains("/compare/") {
            &self.compared
        } else {
            &self.head
        };
        let path = path.replace("{hash}", hash);
        let query = if path.ends_with("/graph") {
            "?offset=0&limit=50".to_string()
        } else if path.ends_with("/search") {
            "?q=commit".to_string()
        } else if path.ends_with("/file")
            || path.ends_with("/index/diff")
            || path.ends_with("/working-tree/diff")
            || path.contains("/tree/blame/")
        {
            format!("?path={}", self.file)
        } else {
            String::new()
        };
        format!("{path}{query}")
    }
}

#[actix_rt::test]
async fn a_private_repository_is_an_unknown_id_on_every_route_and_spelling_to_all_who_may_not_read_it()
 {
    let w = world(&[
        // Revoked access shows within a second; budgets out of the way of 3,000 requests.
        ("GITVISTA_ACCESS_RECHECK", "1"),
        ("GITVISTA_WORK_MS_PER_SECOND", "1000000"),
    ]);
    w.gh.add_user(3, "carol", "Carol");
    w.gh.add_reader("alice/secret", "carol");
    // An image, for the preview route, under a last change to a text file.
    let source = w.root.join("alice/secret");
    std::fs::write(source.join("logo.png"), crate::images::PNG).expect("write");
    git(&source, &["add", "logo.png"]);
    git(&source, &["commit", "-q", "-m", "a logo"]);
    std::fs::write(source.join("file0.txt"), "changed after the logo\n").expect("write");
    git(&source, &["commit", "-q", "-am", "after the logo"]);
    let alice = w.sign_in("alice").await;
    let id = w.track(&alice, &w.repo_url("secret")).await;
    let bob = w.sign_in("bob").await;
    let carol = w.sign_in("carol").await;
    let (status, body) = w
        .post(
            "/api/repos",
            Some(&carol),
            serde_json::json!({"url": w.repo_url("secret")}),
        )
        .await;
    assert_eq!(status, 200, "carol tracks it too: {body}");
    let (status, _) = w.get(&format!("/api/repos/{id}/graph"), Some(&carol)).await;
    assert_eq!(status, 200, "carol reads it while she may");
    w.gh.revoke("alice/secret", "carol");

    // Dan read it through Alice's team (his own GitHub account may read it too) until she
    // removed him from the team.
    w.gh.add_user(4, "dan", "Dan");
    w.gh.add_reader("alice/secret", "dan");
    let dan = w.sign_in("dan").await;
    let (status, made) = call(&w, "POST", "/api/teams", &alice, json!({"name": "Core"})).await;
    assert_eq!(status, 201, "{made}");
    let team = made["team"]["id"].as_str().expect("team").to_string();
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/{team}/repos"),
        &alice,
        json!({"id": id}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let link = crate::teams::invite_token(&w, &team, &alice).await;
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/teams/join/{link}"),
        &dan,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = w.get(&format!("/api/repos/{id}/graph"), Some(&dan)).await;
    assert_eq!(status, 200, "dan reads it through the team");
    let dan_id = w.get("/api/user", Some(&dan)).await.1["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, body) = call(
        &w,
        "DELETE",
        &format!("/api/teams/{team}/members/{dan_id}"),
        &alice,
        Value::Null,
    )
    .await;
    assert!(matches!(status, 200 | 204), "{status} {body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Arguments that succeed for a reader, so a refusal is never the argument's fault.
    let args = ReaderArgs::of(&source);
    let fill = |path: &str| args.fill(path);

    let routes = gitvista::routes::repository_routes();
    assert!(routes.len() >= 14, "the route table: {routes:?}");
    let port = w.port;
    let mut checked = 0;
    for (method, pattern) in &routes {
        // A reader's own answer to the canonical spelling: what the others must not get.
        let methods: &[&str] = if *method == "GET" && !pattern.ends_with("/ws") {
            &["GET", "HEAD"]
        } else {
            std::slice::from_ref(method)
        };
        for method in methods {
            if *method == "DELETE" {
                // Alice's own DELETE would untrack it; the others' are compared below.
            } else {
                let own = raw(
                    port,
                    method,
                    &fill(&pattern.replace("{id}", &id)),
                    Some(&alice),
                )
                .await;
                let local_only = pattern.contains("working-tree")
                    || pattern.contains("index/")
                    || pattern.ends_with("/lifecycle");
                assert!(
                    local_only || matches!(own.status, 200 | 101),
                    "{method} {pattern}: alice reads her repository: {own:?}"
                );
                // No shared cache may keep it, and her browser asks again before each use.
                if own.status == 200 {
                    let values = |name: &str| -> Vec<String> {
                        own.headers
                            .iter()
                            .filter(|(k, _)| k == name)
                            .map(|(_, v)| v.to_ascii_lowercase())
                            .collect()
                    };
                    let cache = values("cache-control").join(", ");
                    assert!(
                        (cache.contains("private") && cache.contains("no-cache"))
                            || cache.contains("no-store"),
                        "{method} {pattern}: Cache-Control {cache:?}"
                    );
                    assert!(
                        !cache.contains("public") && !cache.contains("immutable"),
                        "{method} {pattern}: Cache-Control {cache:?}"
                    );
                    assert!(
                        values("vary").iter().any(|v| v.contains("cookie")),
                        "{method} {pattern}: Vary {:?}",
                        values("vary")
                    );
                }
            }
            let unknowns = spellings(pattern, UNKNOWN, &fill);
            for ((spelling, target), (_, unknown_target)) in
                spellings(pattern, &id, &fill).into_iter().zip(unknowns)
            {
                for (who, cookie) in [
                    ("a visitor", None),
                    ("bob, who may not read it", Some(bob.as_str())),
                    ("carol, whose access was revoked", Some(carol.as_str())),
                    ("dan, removed from the team", Some(dan.as_str())),
                ] {
                    let want = raw(port, method, &unknown_target, cookie).await;
                    let got = raw(port, method, &target, cookie).await;
                    assert_eq!(
                        got.as_unknown(&id),
                        want,
                        "{method} {target} ({spelling}) for {who}: not an unknown id's answer"
                    );
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} answers compared over {} routes", routes.len());
}
