//! Hosted and local mode tried as an attacker would: each test performs one attack against the
//! real server and checks it fails with the documented error while everything else stays served.

use std::io::{Read, Write};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, fixture, git, rss_kib, spawn_app_with, spawn_binary_with, spawn_hosted,
    spawn_serve_binary, test_ws,
};
use crate::hosted::{add_ready, get, served};
use gitvista_testkit::{dripping_remote, full_clone_count};

/// The `merges` fixture served by `git daemon` (`serve/merges`), a hosted server with the test
/// settings on `data`, and the repository added and ready as `id`. Destructure it whole, naming
/// `_tmp`, `_server` and `d`: they must live as long as the test (`..` or `_` drops them at once).
struct MergesReady {
    _tmp: tempfile::TempDir,
    serve: std::path::PathBuf,
    d: crate::helpers::GitDaemon,
    data: std::path::PathBuf,
    base: String,
    id: String,
    _server: (
        gitvista::startup::Stopper,
        actix_rt::task::JoinHandle<std::io::Result<()>>,
    ),
}

async fn merges_ready() -> MergesReady {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    let (port, stopper, server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://127.0.0.1:{}/merges", d.port)).await;
    MergesReady {
        _tmp: tmp,
        serve,
        d,
        data,
        base,
        id,
        _server: (stopper, server),
    }
}

/// Asserts an answer is the documented error: `status`, `code`, and a sentence saying `says`.
fn assert_error(status: u16, body: &Value, want: u16, code: &str, says: &str) {
    assert_eq!(
        (status, body["code"].as_str()),
        (want, Some(code)),
        "{body}"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains(says)),
        "{says:?} in {body}"
    );
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[actix_rt::test]
async fn visitors_cannot_delete_list_or_act_from_another_site() {
    let MergesReady {
        serve: _,
        d,
        data,
        base,
        id,
        _tmp,
        _server,
    } = merges_ready().await;
    let client = reqwest::Client::new();

    // Many DELETEs without the token: every one refused, nothing lost.
    for _ in 0..25 {
        let (status, body) = send(client.delete(format!("{base}/api/repos/{id}"))).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    }
    // Forged admin cookies: the token itself (the cookie carries its digest, never the token),
    // a digest of something else, garbage.
    for forged in [ADMIN_TOKEN.to_string(), "0".repeat(64), "x".repeat(64)] {
        let (status, _) = send(
            client
                .delete(format!("{base}/api/repos/{id}"))
                .header("cookie", format!("gitvista_admin={forged}")),
        )
        .await;
        assert_eq!(status, 401, "cookie {forged}");
        let (status, _) = send(
            client
                .get(format!("{base}/api/admin/repos"))
                .header("cookie", format!("gitvista_admin={forged}")),
        )
        .await;
        assert_eq!(status, 401, "cookie {forged}");
    }
    assert!(data.join("repos").join(&id).join("HEAD").is_file());
    let (status, _) = get(&format!("{base}/api/repos/{id}/graph?limit=5")).await;
    assert_eq!(status, 200, "still served");

    // The full list is an admin's; visitors get what they name, and nothing by default.
    let (_, list) = get(&format!("{base}/api/repos")).await;
    assert_eq!(list["repos"], json!([]));
    let (_, list) = get(&format!("{base}/api/repos?ids={id},0123456789abcdef")).await;
    assert_eq!(list["repos"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["repos"][0]["id"], id.as_str());
    let (status, _) = get(&format!("{base}/api/repos?ids=../../etc")).await;
    assert_eq!(status, 400);
    let (status, _) = get(&format!("{base}/api/admin/repos")).await;
    assert_eq!(status, 401);

    // A page on another site cannot make an admin's browser act: Origin and Sec-Fetch-Site.
    let from_elsewhere = [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ];
    for (header, value) in from_elsewhere {
        let (status, body) = send(
            client
                .delete(format!("{base}/api/repos/{id}"))
                .bearer_auth(ADMIN_TOKEN)
                .header(header, value),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{header}: {value}"
        );
        let (status, _) = send(
            client
                .post(format!("{base}/api/admin/repos/{id}/evict"))
                .bearer_auth(ADMIN_TOKEN)
                .header(header, value),
        )
        .await;
        assert_eq!(status, 403, "admin action with {header}: {value}");
        let (status, _) = send(
            client
                .post(format!("{base}/api/repos"))
                .header(header, value)
                .json(&json!({ "url": format!("git://127.0.0.1:{}/other", d.port) })),
        )
        .await;
        assert_eq!(status, 403, "paste with {header}: {value}");
    }
    let (_, all) = send(
        client
            .get(format!("{base}/api/admin/repos"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(all["repos"].as_array().map(Vec::len), Some(1), "{all}");

    // The server's own pages may: same Origin, or Sec-Fetch-Site same-origin.
    let (status, _) = send(
        client
            .delete(format!("{base}/api/repos/{id}"))
            .bearer_auth(ADMIN_TOKEN)
            .header("origin", &base)
            .header("sec-fetch-site", "same-origin"),
    )
    .await;
    assert_eq!(status, 204);
    assert!(!data.join("repos").join(&id).exists());
}

#[actix_rt::test]
async fn local_mode_refuses_a_rebound_host_for_files_and_websockets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    std::fs::write(repo.join(".gitignore"), ".env\n").expect("write");
    std::fs::write(repo.join(".env"), "API_KEY=hunter2\n").expect("write");
    let (port, _stopper, _server) = spawn_app_with(&repo, test_ws()).await;
    let client = reqwest::Client::new();
    let diff = format!("http://127.0.0.1:{port}/api/repos/local/working-tree/diff?path=.env");
    for host in [
        format!("rebind.attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        let resp = client
            .get(&diff)
            .header("host", &host)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 403, "{host}");
        let text = resp.text().await.expect("body");
        assert!(!text.contains("hunter2"), "{host}: {text}");
        let body: Value = serde_json::from_str(&text).expect("JSON error");
        assert_eq!(body["code"], "forbidden");
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let resp = client
            .get(format!(
                "http://127.0.0.1:{port}/api/repos/local/repository"
            ))
            .header("host", &host)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{host}");
    }
    // The WebSocket too, even with an Origin that matches the rebound Host.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{port}/api/repos/local/ws")
        .into_client_request()
        .expect("request");
    let evil = format!("rebind.attacker.example:{port}");
    req.headers_mut()
        .insert("host", evil.parse().expect("header"));
    req.headers_mut()
        .insert("origin", format!("http://{evil}").parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        other => panic!("a rebound WebSocket was accepted: {:?}", other.map(|_| ())),
    }
}

#[actix_rt::test]
async fn admin_sign_in_is_rate_limited_expires_signs_out_and_needs_a_long_token() {
    // A short token is refused at start-up, with a sentence.
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let mut config = gitvista::config::Config::new(
        "127.0.0.1".parse().expect("ip"),
        0,
        gitvista::config::Mode::local(&repo),
    );
    config.admin_token = Some("short-token".into());
    let err = gitvista::startup::Application::build(config)
        .await
        .expect_err("a short token is refused");
    assert!(err.to_string().contains("at least 32"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .args(["open", "--no-browser", "--port", "0"])
        .arg(&repo)
        .env("GITVISTA_ADMIN_TOKEN", "hunter2")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GITVISTA_ADMIN_TOKEN") && stderr.contains("at least 32"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the token is never printed");

    // Behind https (the public URL says so), the cookie is Secure, with a lifetime.
    let (_child, base) = spawn_binary_with(&repo, |c| {
        c.env("GITVISTA_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GITVISTA_PUBLIC_URL", "https://gitvista.example");
    });
    let client = reqwest::Client::new();
    let login = |token: &'static str| {
        client
            .post(format!("{base}/api/admin/login"))
            .json(&json!({ "token": token }))
            .send()
    };
    let resp = login(ADMIN_TOKEN).await.expect("login");
    assert_eq!(resp.status().as_u16(), 204);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Max-Age=43200",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let value = cookie.split(';').next().expect("pair").to_string();
    let (status, _) = send(
        client
            .get(format!("{base}/api/admin/sessions"))
            .header("cookie", &value),
    )
    .await;
    assert_eq!(status, 200);
    // Signing out clears it.
    let resp = client
        .post(format!("{base}/api/admin/logout"))
        .header("cookie", &value)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status().as_u16(), 204);
    let cleared = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a clearing cookie");
    assert!(
        cleared.starts_with("gitvista_admin=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // Guessing: five attempts a minute, then 429 with Retry-After, even for the right token.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(login("wrong-guess").await.expect("login").status().as_u16());
    }
    let limited = login(ADMIN_TOKEN).await.expect("login");
    let status = limited.status().as_u16();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(statuses, [401, 401, 401, 401]);
    assert_eq!(status, 429, "the sixth attempt within a minute");

    // Plain http without a public URL: no Secure (the browser would drop the cookie).
    let (_child, base) = spawn_binary_with(&repo, |c| {
        c.env("GITVISTA_ADMIN_TOKEN", ADMIN_TOKEN);
    });
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/admin/login"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .expect("login");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );
}

/// Opens a raw WebSocket to `path` on `port` (the handshake by hand, so frames can lie).
fn raw_socket(port: u16, path: &str) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("response");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// A masked client frame header: `fin`, `opcode`, payload `len` (mask key zero).
fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![(if fin { 0x80 } else { 0 }) | opcode];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= 0xffff {
        h.push(0x80 | 126);
        h.extend((len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend(len.to_be_bytes());
    }
    h.extend([0, 0, 0, 0]);
    h
}

/// Reads server frames until a close; answers its code (`None` if the socket ended without one).
fn close_code_raw(s: &mut std::net::TcpStream) -> Option<u16> {
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).ok()?;
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                s.read_exact(&mut b).ok()?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                s.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).ok()?;
        if h[0] & 0x0f == 8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
}

#[actix_rt::test]
async fn a_frame_header_declaring_a_terabyte_is_closed_with_1009_before_buffering() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (child, base) = spawn_binary_with(&repo, |_| {});
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    reqwest::get(format!("{base}/api/repos/local/repository"))
        .await
        .expect("load");
    let pid = child.id();
    let baseline = rss_kib(pid);
    let attack = tokio::task::spawn_blocking(move || {
        let mut results = Vec::new();
        // Four sockets, each announcing 2^40 bytes of text and then streaming 64 MiB of it.
        for _ in 0..4 {
            let mut s = raw_socket(port, "/api/repos/local/ws");
            s.write_all(&frame_header(true, 1, 1 << 40))
                .expect("header");
            let chunk = vec![b'a'; 1 << 20];
            let mut sent = 0usize;
            for _ in 0..64 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len();
            }
            results.push((close_code_raw(&mut s), sent));
        }
        // A fragmented message whose parts are each small but whose sum is not.
        let mut s = raw_socket(port, "/api/repos/local/ws");
        let part = vec![b'a'; 40 * 1024];
        s.write_all(&frame_header(false, 1, part.len() as u64))
            .expect("first");
        s.write_all(&part).expect("payload");
        let _ = s.write_all(&frame_header(true, 0, part.len() as u64));
        let _ = s.write_all(&part);
        results.push((close_code_raw(&mut s), 0));
        results
    })
    .await
    .expect("attack");
    let after = rss_kib(pid);
    for (code, sent) in &attack {
        // The close may be lost if the server reset the connection while we still wrote; either
        // way it must not have read the 64 MiB.
        assert!(
            matches!(code, Some(1009) | None),
            "closed with {code:?} after {sent} bytes"
        );
    }
    assert!(
        attack.iter().any(|(code, _)| *code == Some(1009)),
        "at least one socket read its 1009: {attack:?}"
    );
    assert!(
        after < baseline + 32 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
    // The server still serves everyone else.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/local/ws"))
            .await
            .expect("a normal viewer connects");
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(matches!(first, Ok(Some(Ok(_)))), "{first:?}");
}

#[actix_rt::test]
async fn one_client_cannot_hold_more_websockets_than_its_share() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let settings = gitvista::config::WsSettings {
        per_client: 3,
        ..gitvista::config::WsSettings::default()
    };
    let (port, _stopper, _server) = spawn_app_with(&repo, settings).await;
    let url = format!("ws://127.0.0.1:{port}/api/repos/local/ws");
    let mut held = Vec::new();
    for _ in 0..3 {
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connects");
        held.push(ws);
    }
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).expect("json");
            assert_eq!(body["code"], "too_many_connections");
        }
        other => panic!("a fourth socket was accepted: {:?}", other.map(|_| ())),
    }
    // Closing one gives its place back.
    let mut first = held.remove(0);
    let _ = first.close(None).await;
    drop(first);
    let mut ok = false;
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(&url).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "a closed socket frees its place");
}

/// A remote that accepts connections and never answers (a clone of it hangs until its timeout).
fn silent_remote() -> u16 {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept() {
            held.push(s);
            if held.len() > 64 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    port
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

async fn metric(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[actix_rt::test]
async fn closed_clone_progress_sockets_stop_at_once_and_share_one_feed() {
    let silent = silent_remote();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (child, base) = spawn_serve_binary(&data, |c| {
        c.env("GITVISTA_ALLOWED_HOSTS", "127.0.0.1");
    });
    let pid = child.id();
    let (status, created) =
        crate::hosted::post(&base, &format!("git://127.0.0.1:{silent}/hang")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let ws_url = format!("{}/api/repos/{id}/ws", base.replacen("http", "ws", 1));
    // Settle the server's threads and files with one socket first.
    {
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("ws");
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        let _ = ws.close(None).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = open_fds(pid);
    // 300 progress sockets, 50 at a time, each closed after its first status.
    for _ in 0..6 {
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let url = ws_url.clone();
                tokio::spawn(async move {
                    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("ws");
                    let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
                    let _ = ws.close(None).await;
                    first.ok().flatten().and_then(Result::ok).is_some()
                })
            })
            .collect();
        // While a batch is open, one feed serves them all.
        for b in batch {
            assert!(b.await.expect("task"), "each socket got its status");
        }
    }
    // Closed sockets end at once: no feed left running, files back to where they were.
    let mut feeds = f64::NAN;
    for _ in 0..40 {
        feeds = metric(&base, "gitvista_progress_feeds").await;
        if feeds == 0.0 && open_fds(pid) <= fds_before + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(feeds, 0.0, "a feed still runs for nobody");
    assert!(
        open_fds(pid) <= fds_before + 2,
        "{} files open, {fds_before} before",
        open_fds(pid)
    );
    // An open progress socket is pinged like a viewer's.
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("ws");
    let mut pinged = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if msg.is_ping() {
            pinged = true;
            break;
        }
    }
    assert!(pinged, "the progress socket heartbeats");
    let concurrent = metric(&base, "gitvista_progress_feeds").await;
    assert_eq!(concurrent, 1.0);
}

/// A resolver that answers `first` for the first lookup of every name and `later` after.
fn two_faced(first: &str, later: &str) -> gitvista::remote::Resolver {
    let (first, later): (std::net::IpAddr, std::net::IpAddr) =
        (first.parse().expect("ip"), later.parse().expect("ip"));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    gitvista::remote::Resolver(std::sync::Arc::new(move |_: &str, _: u16| {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(vec![if n == 0 { first } else { later }])
    }))
}

#[actix_rt::test]
async fn a_name_that_resolves_elsewhere_at_clone_time_is_refused_before_git_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            resolver: two_faced("93.184.216.34", "127.0.0.1"),
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, created) = crate::hosted::post(&base, "https://rebind.example/owner/repo").await;
    assert_eq!(status, 201, "public when pasted: {created}");
    let id = created["id"].as_str().expect("id").to_string();
    let failed = crate::hosted::wait_state(&base, &id, &["error", "ready"]).await;
    assert_eq!(failed["state"], "error", "{failed}");
    assert_eq!(failed["errorCode"], "refused", "{failed}");
    let said = failed["error"].as_str().unwrap_or_default();
    assert!(said.contains("private or local network"), "{said}");
    assert!(!data.join("repos").join(&id).exists());
}

#[actix_rt::test]
async fn git_connects_to_the_checked_address_not_a_new_lookup() {
    // `.invalid` never resolves: a clone works only if git used the address GitVista pinned.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, d) = served(tmp.path());
    let http = crate::hosted::served_http(tmp.path());
    let data = tmp.path().join("data");
    let name = "gitvista-pinned.invalid";
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            allowed_hosts: name.to_string(),
            resolver: two_faced("127.0.0.1", "127.0.0.1"),
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    for url in [
        format!("git://{name}:{}/merges", d.port),
        format!("http://{name}:{}/linear.git", http.port),
    ] {
        let id = add_ready(&base, &url).await;
        let (_, s) = get(&format!("{base}/api/repos/{id}/status")).await;
        assert_eq!(
            s["url"],
            url.trim_end_matches(".git"),
            "the canonical URL is kept"
        );
        // A fetch checks and pins again.
        assert_eq!(crate::hosted::admin_fetch(&base, &id).await, 202);
    }
}

#[actix_rt::test]
async fn users_see_a_class_of_failure_not_gits_words() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_serve, d) = served(tmp.path());
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let data = tmp.path().join("data");
    let (port, _stopper, _server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    for (url, code) in [
        (
            format!("git://127.0.0.1:{}/no-such-repo", d.port),
            "not_found",
        ),
        (format!("git://127.0.0.1:{closed}/x"), "unreachable"),
    ] {
        let (_, created) = crate::hosted::post(&base, &url).await;
        let id = created["id"].as_str().expect("id").to_string();
        let s = crate::hosted::wait_state(&base, &id, &["error", "ready"]).await;
        assert_eq!(
            (s["state"].as_str(), s["errorCode"].as_str()),
            (Some("error"), Some(code)),
            "{s}"
        );
        let said = s["error"].as_str().unwrap_or_default().to_ascii_lowercase();
        for leak in [
            "refused",
            "fatal",
            "errno",
            "127.0.0.1",
            "remote error",
            "connect",
        ] {
            assert!(!said.contains(leak), "{leak} in {said:?}");
        }
        // Admins get git's own words.
        let (_, all) = crate::hosted::admin_get(&format!("{base}/api/admin/repos")).await;
        let row = all["repos"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == id.as_str()))
            .cloned()
            .unwrap_or_default();
        assert!(
            row["errorDetail"]
                .as_str()
                .is_some_and(|t| t.contains("git clone failed")),
            "{row}"
        );
    }
}

#[actix_rt::test]
async fn a_delete_during_a_clone_cancels_it_and_leaves_nothing() {
    let silent = silent_remote();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (port, stopper, server) = spawn_hosted(&data, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, created) = crate::hosted::post(&base, &format!("git://127.0.0.1:{silent}/slow")).await;
    let id = created["id"].as_str().expect("id").to_string();
    crate::hosted::wait_state(&base, &id, &["cloning"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = reqwest::Client::new()
        .delete(format!("{base}/api/repos/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    // The job is gone from the queue at once, and nothing is on disk.
    let mut jobs = Value::Null;
    for _ in 0..40 {
        let (_, actors) = crate::hosted::admin_get(&format!("{base}/api/admin/actors")).await;
        jobs = actors["cloneQueue"]["jobs"].clone();
        if jobs.as_array().is_some_and(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(jobs, json!([]), "the clone was cancelled");
    let tmp_dir = data.join("tmp");
    assert!(
        std::fs::read_dir(&tmp_dir).map_or(true, |mut d| d.next().is_none()),
        "tmp/ is empty"
    );
    assert!(!data.join("repos").join(&id).exists());
    let (status, _) = get(&format!("{base}/api/repos/{id}/status")).await;
    assert_eq!(status, 404);

    // A clone with no row (from before this fix, or a crash) is removed at the next start.
    stopper.stop().await;
    let _ = server.await;
    let orphan = data.join("repos").join("0123456789abcdef");
    std::fs::create_dir_all(orphan.join("objects")).expect("orphan");
    let (_port, stopper, server) = spawn_hosted(&data, None).await;
    assert!(!orphan.exists(), "the orphan clone was removed at start-up");
    stopper.stop().await;
    let _ = server.await;
}

#[actix_rt::test]
async fn a_failed_fetch_leaves_no_debris_and_the_next_one_works() {
    let MergesReady {
        serve,
        d: _daemon,
        data,
        base,
        id,
        _tmp,
        _server,
    } = merges_ready().await;
    let clone = data.join("repos").join(&id);
    // The remote goes away for a while; a killed fetch's leftovers are in the clone.
    std::fs::rename(serve.join("merges"), serve.join("away")).expect("hide");
    let debris = [
        clone.join("objects/pack/tmp_pack_Ab12Cd"),
        clone.join("objects/pack/tmp_idx_Ab12Cd"),
        clone.join("packed-refs.lock"),
        clone.join("shallow.lock"),
        clone.join("refs/heads/main.lock"),
    ];
    for f in &debris {
        std::fs::write(f, vec![0u8; 4096]).expect("debris");
    }
    assert_eq!(crate::hosted::admin_fetch(&base, &id).await, 202);
    let mut failed = Value::Null;
    for _ in 0..100 {
        let (_, s) = get(&format!("{base}/api/repos/{id}/status")).await;
        if s["errorCode"].is_string() {
            failed = s;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed["errorCode"], "not_found", "{failed}");
    for f in &debris {
        assert!(!f.exists(), "{} was left", f.display());
    }
    // Back again: the next fetch works and clears the error.
    std::fs::rename(serve.join("away"), serve.join("merges")).expect("restore");
    git(
        &serve.join("merges"),
        &["commit", "--allow-empty", "-qm", "after the outage"],
    );
    assert_eq!(crate::hosted::admin_fetch(&base, &id).await, 202);
    let mut s = Value::Null;
    for _ in 0..100 {
        (_, s) = get(&format!("{base}/api/repos/{id}/status")).await;
        if s["errorCode"].is_null() && s["error"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(s["errorCode"].is_null(), "{s}");
    assert_eq!(s["state"], "ready");
}

#[actix_rt::test]
async fn a_merge_of_many_parents_is_one_bounded_row_in_the_api() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("gitcore/tests/fixtures/many_parents.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(tmp.path().join("mp"))
        .env("MANY_PARENTS", "300")
        .output()
        .expect("fixture");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = tmp.path().join("mp/repo");
    let (port, _stopper, _server) = spawn_app_with(&repo, test_ws()).await;
    let (status, w) = get(&format!(
        "http://127.0.0.1:{port}/api/repos/local/graph?offset=0&limit=5"
    ))
    .await;
    assert_eq!(status, 200, "{w}");
    let merge = &w["rows"][1];
    assert_eq!(merge["summary"], "Merge 300 branches at once");
    let edges = merge["edges"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(edges, gitcore::layout::MAX_DRAWN_EDGES);
    assert_eq!(merge["moreParents"], 301 - gitcore::layout::MAX_DRAWN_EDGES);
    assert_eq!(w["rows"][0]["moreParents"], 0);
}

#[actix_rt::test]
async fn head_is_answered_for_every_get_and_a_wrong_method_is_405_with_allow() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (port, _stopper, _server) = spawn_app_with(&repo, test_ws()).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let head = git(&repo, &["rev-parse", "HEAD"]);
    for path in [
        "/healthz".to_string(),
        "/r/local".to_string(),
        "/api/repos/local/repository".to_string(),
        "/api/repos/local/graph?limit=5".to_string(),
        format!("/api/repos/local/commit/{head}"),
    ] {
        let got = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get");
        assert_eq!(got.status().as_u16(), 200, "GET {path}");
        let get_type = got.headers().get("content-type").cloned();
        let resp = client
            .head(format!("{base}{path}"))
            .send()
            .await
            .expect("head");
        assert_eq!(resp.status().as_u16(), 200, "HEAD {path}");
        assert_eq!(
            resp.headers().get("content-type").cloned(),
            get_type,
            "{path}"
        );
        assert!(
            resp.bytes().await.expect("body").is_empty(),
            "HEAD {path} has no body"
        );
    }
    for (method, path, allow) in [
        (reqwest::Method::POST, "/healthz", "GET, HEAD"),
        (reqwest::Method::PUT, "/api/repos", "GET, HEAD, POST"),
        (reqwest::Method::GET, "/api/admin/repos/local/fetch", "POST"),
        (
            reqwest::Method::PATCH,
            "/api/repos/local/graph",
            "GET, HEAD",
        ),
    ] {
        let resp = client
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        assert_eq!(
            resp.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["code"], "method_not_allowed");
    }
    let (status, body) = get(&format!("{base}/no/such/route")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

/// A client of a server trusting `X-Forwarded-For` from 127.0.0.1: requests as `addr`.
fn as_client(req: reqwest::RequestBuilder, addr: &str) -> reqwest::RequestBuilder {
    req.header("x-forwarded-for", addr)
}

/// The sum of a counter's series in a server's /metrics whose labels contain `labels`.
async fn metric_sum(base: &str, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_rt::test]
async fn junk_parameters_hit_the_cache_and_highlighting_is_bounded_and_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    // 200 KB of YAML: highlighted within the time budget (or cut by it, and saying so).
    let yaml: String = (0..8000)
        .map(|i| format!("key{i}: [a, {{b: 'c{i}'}}]\n"))
        .collect();
    std::fs::write(repo.join("big.yaml"), &yaml).expect("write");
    git(&repo, &["add", "big.yaml"]);
    git(&repo, &["commit", "-qm", "big yaml"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let blob = git(&repo, &["rev-parse", "HEAD:big.yaml"]);
    let (_child, base) = spawn_binary_with(&repo, |c| {
        c.env("GITVISTA_WORK_MS_PER_SECOND", "100000");
    });
    let client = reqwest::Client::new();
    let hits_before = metric_sum(&base, "gitvista_cache_hits_total", "diffs").await;
    for n in 0..10 {
        for path in [
            format!("/api/repos/local/blob/{blob}?path=x.yaml&junk={n}"),
            format!("/api/repos/local/commit/diff/{head}/file?path=big.yaml&junk={n}"),
            format!("/api/repos/local/commit/diff/{head}?junk={n}&x{n}=1"),
        ] {
            let resp = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("get");
            assert_eq!(resp.status().as_u16(), 200, "{path}");
            let body: Value = resp.json().await.expect("json");
            if path.contains("/blob/") {
                let cover = body["highlight"].as_str().unwrap_or_default();
                assert!(["full", "partial"].contains(&cover), "{cover}");
            }
        }
    }
    let hits = metric_sum(&base, "gitvista_cache_hits_total", "diffs").await - hits_before;
    assert_eq!(
        hits, 27.0,
        "the first of each is built, the other nine are cache hits"
    );
    // A file too large to highlight is answered plain, and says so.
    std::fs::write(repo.join("huge.yaml"), yaml.repeat(2)).expect("write");
    git(&repo, &["add", "huge.yaml"]);
    git(&repo, &["commit", "-qm", "huge yaml"]);
    let huge = git(&repo, &["rev-parse", "HEAD:huge.yaml"]);
    let (_, body) = get(&format!(
        "{base}/api/repos/local/blob/{huge}?path=huge.yaml"
    ))
    .await;
    assert_eq!(body["highlight"], "plain");
    assert!(body["spans"].is_null());
}

#[actix_rt::test]
async fn one_client_looping_expensive_requests_is_told_to_wait_and_others_are_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let (_child, base) = spawn_binary_with(&repo, |c| {
        c.env("GITVISTA_TRUSTED_PROXY", "X-Forwarded-For@127.0.0.1")
            .env("GITVISTA_WORK_MS_PER_SECOND", "2");
    });
    let client = reqwest::Client::new();
    let search = |n: usize, who: &str| {
        as_client(
            client.get(format!(
                "{base}/api/repos/local/search?q=message:loop{n}%20path:src"
            )),
            who,
        )
        .send()
    };
    // Distinct searches reading every commit's message and tree: never cached, always work.
    let mut refused = None;
    for n in 0..200 {
        let resp = search(n, "203.0.113.5").await.expect("search");
        match resp.status().as_u16() {
            200 => continue,
            429 => {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let body: Value = resp.json().await.expect("json");
                refused = Some((n, retry, body));
                break;
            }
            other => panic!("search {n}: {other}"),
        }
    }
    let (n, retry, body) = refused.expect("the looping client is refused at some point");
    assert!(n >= 1, "the first request always runs");
    assert!(retry.is_some_and(|s| s >= 1), "{retry:?}");
    assert_eq!(body["code"], "rate_limited");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("share")));
    // Another client is served at once; the same client's cached answers are free.
    let other = search(0, "198.51.100.9").await.expect("search");
    assert_eq!(other.status().as_u16(), 200);
    let cheap = as_client(
        client.get(format!("{base}/api/repos/local/graph?limit=50")),
        "203.0.113.5",
    )
    .send()
    .await
    .expect("graph");
    assert_eq!(
        cheap.status().as_u16(),
        200,
        "graph windows are not expensive work"
    );
}

#[actix_rt::test]
async fn a_flood_from_one_ipv6_64_shares_one_bucket() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (_child, base) = spawn_serve_binary(&data, |c| {
        c.env("GITVISTA_TRUSTED_PROXY", "X-Forwarded-For@127.0.0.1")
            .env("GITVISTA_POSTS_PER_MINUTE", "20");
    });
    let client = reqwest::Client::new();
    let post = |addr: String| {
        as_client(client.post(format!("{base}/api/repos")), &addr)
            .json(&json!({ "url": "https://192.0.2.1/owner/repo" }))
            .send()
    };
    let mut statuses = Vec::new();
    for i in 1..=25 {
        // Every address differs, all inside 2001:db8:1:2::/64.
        let resp = post(format!("2001:db8:1:2:{i:x}:{i:x}:{i:x}:{i:x}"))
            .await
            .expect("post");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
    // The neighbouring /64 is another client; a lying header from a non-proxy is ignored (all
    // requests here come from 127.0.0.1, the proxy, so the header counts).
    let resp = post("2001:db8:1:3::1".into()).await.expect("post");
    assert_eq!(
        resp.status().as_u16(),
        400,
        "another /64 has its own bucket"
    );
}

#[actix_rt::test]
async fn a_thousand_requests_for_many_repositories_stay_within_the_session_budget() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = served_copies(tmp.path(), 8);
    let data = tmp.path().join("data");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            max_sessions: 3,
            posts_per_minute: 1000,
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(add_ready(&base, &format!("git://127.0.0.1:{}/r{i}", d.port)).await);
    }
    // 1,000 requests, 50 at a time, round-robin over 8 repositories, while a watcher samples
    // how many sessions run.
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done, base) = (peak.clone(), done.clone(), base.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (_, s) = crate::hosted::admin_get(&format!("{base}/api/admin/sessions")).await;
                let n = s["sessions"].as_array().map_or(0, Vec::len) as u64;
                peak.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let client = reqwest::Client::new();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..20 {
        let batch: Vec<_> = (0..50)
            .map(|k| {
                let url = format!(
                    "{base}/api/repos/{}/graph?limit=20",
                    ids[(round * 50 + k) % ids.len()]
                );
                let client = client.clone();
                tokio::spawn(async move {
                    let resp = client.get(url).send().await.expect("get");
                    let status = resp.status().as_u16();
                    let retry = resp.headers().contains_key("retry-after");
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    (
                        status,
                        body["code"].as_str().unwrap_or("").to_string(),
                        retry,
                        body["error"].as_str().unwrap_or("").to_string(),
                    )
                })
            })
            .collect();
        for b in batch {
            let (status, code, retry, error) = b.await.expect("task");
            assert!(
                status == 200 || (status == 503 && code == "busy" && retry),
                "{status} {code}: {error}"
            );
            *statuses.entry(format!("{status} {code}")).or_default() += 1;
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak <= 3,
        "{peak} sessions ran at once; statuses {statuses:?}"
    );
    assert!(
        statuses.get("200 ").copied().unwrap_or(0) > 0,
        "{statuses:?}"
    );

    // Three watched repositories fill the budget: a fourth is refused, they stay served.
    let mut watchers = Vec::new();
    for id in &ids[..3] {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{id}/ws"))
                .await
                .expect("viewer");
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        watchers.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = client
        .get(format!("{base}/api/repos/{}/graph", ids[5]))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("10")
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "busy");
    for id in &ids[..3] {
        let (status, _) = get(&format!("{base}/api/repos/{id}/graph?limit=5")).await;
        assert_eq!(status, 200, "a watched repository stays served");
    }
    // A viewer leaving frees its place.
    let mut first = watchers.remove(0);
    let _ = first.close(None).await;
    drop(first);
    let mut served = false;
    for _ in 0..50 {
        let (status, _) = get(&format!("{base}/api/repos/{}/graph?limit=5", ids[5])).await;
        if status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "room again once a repository is no longer watched");
}

/// A git daemon serving `n` copies of the `merges` fixture as `r0` .. `r{n-1}`.
fn served_copies(tmp: &std::path::Path, n: usize) -> crate::helpers::GitDaemon {
    let serve = tmp.join("serve");
    let src = fixture("merges", tmp).join("repo");
    for i in 0..n {
        gitvista_testkit::bare_clone(&src, &serve.join(format!("r{i}.git")));
    }
    crate::helpers::git_daemon(&serve)
}

#[actix_rt::test]
async fn clones_past_the_disk_quota_push_out_idle_ones_and_watched_ones_are_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = served_copies(tmp.path(), 3);
    let data = tmp.path().join("data");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            // Any clone fills it: each new one needs the last idle one gone.
            disk_quota: 1,
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let url = |i: usize| format!("git://127.0.0.1:{}/r{i}", d.port);
    let a = add_ready(&base, &url(0)).await;
    let b = add_ready(&base, &url(1)).await;
    let (_, s) = get(&format!("{base}/api/repos/{a}/status")).await;
    assert_eq!(
        s["state"], "evicted",
        "the least recently used idle clone made room: {s}"
    );
    assert!(!data.join("repos").join(&a).exists());
    // With B watched, nothing may go: a third repository is refused, with a sentence.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/repos/{b}/ws"))
            .await
            .expect("viewer");
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = crate::hosted::post(&base, &url(2)).await;
    assert_error(
        status,
        &body,
        507,
        "storage_full",
        "as much repository data",
    );
    // Asking for the evicted one again is refused the same way, and B is still served.
    let (status, body) = get(&format!("{base}/api/repos/{a}/graph")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("storage_full")),
        "{body}"
    );
    let (status, _) = get(&format!("{base}/api/repos/{b}/graph?limit=5")).await;
    assert_eq!(status, 200);
    assert!(data.join("repos").join(&b).join("HEAD").is_file());
}

#[actix_rt::test]
async fn a_nearly_full_disk_and_the_repository_cap_refuse_new_clones_with_507() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = served_copies(tmp.path(), 3);
    let url = |i: usize| format!("git://127.0.0.1:{}/r{i}", d.port);
    // No filesystem has a pebibyte free.
    let data = tmp.path().join("full");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            min_free: 1 << 50,
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, body) = crate::hosted::post(&base, &url(0)).await;
    assert_error(status, &body, 507, "storage_full", "nearly full");
    assert!(std::fs::read_dir(data.join("repos")).map_or(true, |mut r| r.next().is_none()));

    // Two repositories at most: a failed one is forgotten to make room, a good one is not.
    let data = tmp.path().join("capped");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            max_repos: 2,
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    add_ready(&base, &url(0)).await;
    let (_, failed) =
        crate::hosted::post(&base, &format!("git://127.0.0.1:{}/missing", d.port)).await;
    let failed_id = failed["id"].as_str().expect("id").to_string();
    crate::hosted::wait_state(&base, &failed_id, &["error"]).await;
    add_ready(&base, &url(1)).await;
    let (status, _) = get(&format!("{base}/api/repos/{failed_id}/status")).await;
    assert_eq!(status, 404, "the failed row made room");
    let (status, body) = crate::hosted::post(&base, &url(2)).await;
    assert_error(status, &body, 507, "storage_full", "maximum of 2");
}

#[actix_rt::test]
async fn dripping_remotes_cannot_jam_the_queue_from_one_client() {
    let drip = dripping_remote(40);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            clones_per_client: 2,
            low_speed_time: Duration::from_secs(3),
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let (status, body) =
            crate::hosted::post(&base, &format!("git://127.0.0.1:{drip}/{name}")).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().expect("id").to_string());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/repos"))
        .json(&json!({ "url": format!("git://127.0.0.1:{drip}/c") }))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("waiting or running")),
        "{body}"
    );
    // The drips are stopped at the low-speed limit, long before the clone timeout, and say why.
    for id in &ids {
        let s = crate::hosted::wait_state(&base, id, &["error"]).await;
        assert_eq!(s["errorCode"], "timeout", "{s}");
    }
}

#[actix_rt::test]
async fn a_failed_deepening_is_retried_and_the_page_says_history_is_incomplete_until_then() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (serve, d) = served(tmp.path());
    let data = tmp.path().join("data");
    // The name resolves for the clone, fails once (the first deepening), then resolves again.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let resolver = {
        let calls = calls.clone();
        gitvista::remote::Resolver(std::sync::Arc::new(move |_: &str, _: u16| {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                1 => Err(std::io::Error::other(
                    "temporary failure in name resolution",
                )),
                _ => Ok(vec!["127.0.0.1".parse().expect("ip")]),
            }
        }))
    };
    let (port, _stopper, _server) =
        crate::helpers::spawn_hosted_with(gitvista::config::HostedConfig {
            allowed_hosts: "deepen.invalid".into(),
            resolver,
            initial_depth: Some(2),
            deepen_retry: Duration::from_secs(1),
            // The shallow-first clone (not the commits-only one, nor a stream from the remote
            // before it) counts the resolver's calls.
            commits_first: false,
            stream_first: false,
            ..crate::helpers::hosted_config(&data)
        })
        .await;
    let base = format!("http://127.0.0.1:{port}");
    let id = add_ready(&base, &format!("git://deepen.invalid:{}/merges", d.port)).await;
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["historyIncomplete"], true, "{summary}");
    let expected = full_clone_count(tmp.path(), &serve.join("merges"));
    let total = crate::hosted::wait_total(&base, &id, expected).await;
    assert_eq!(total, expected, "the second attempt deepened the history");
    assert!(
        calls.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "clone, a failed deepening, a retry"
    );
    let (_, summary) = get(&format!("{base}/api/repos/{id}/repository")).await;
    assert_eq!(summary["historyIncomplete"], false, "{summary}");
}

fn packs(repo: &std::path::Path) -> usize {
    std::fs::read_dir(repo.join("objects/pack")).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    })
}

#[actix_rt::test]
async fn clones_get_a_commit_graph_and_fetched_packs_are_repacked() {
    let MergesReady {
        serve,
        d: _daemon,
        data,
        base,
        id,
        _tmp,
        _server,
    } = merges_ready().await;
    let clone = data.join("repos").join(&id);
    let chain = clone.join("objects/info/commit-graphs/commit-graph-chain");
    for _ in 0..100 {
        if chain.is_file() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        chain.is_file(),
        "a split commit-graph was written after the clone"
    );
    git(&clone, &["commit-graph", "verify"]);
    // Twelve pushes, each fetched: each fetch adds a pack, and past eight they are repacked.
    let remote = serve.join("merges");
    for i in 0..12 {
        git(
            &remote,
            &["commit", "--allow-empty", "-qm", &format!("push {i}")],
        );
        let before = git(&remote, &["rev-parse", "HEAD"]);
        assert_eq!(crate::hosted::admin_fetch(&base, &id).await, 202);
        // Wait until the clone has the commit.
        for _ in 0..100 {
            let out = std::process::Command::new("git")
                .args(["cat-file", "-e", &before])
                .current_dir(&clone)
                .status()
                .expect("git");
            if out.success() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut n = packs(&clone);
    for _ in 0..100 {
        n = packs(&clone);
        if n <= gitvista_hosting::hosted::fetches::MAX_PACKS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        n <= gitvista_hosting::hosted::fetches::MAX_PACKS,
        "{n} packs after twelve fetches"
    );
    git(&clone, &["fsck", "--connectivity-only", "--no-dangling"]);
    // The session reloads after the repack (its packs were replaced) and serves the newest
    // commit from the new pack.
    let head = git(&remote, &["rev-parse", "HEAD"]);
    assert_eq!(
        crate::hosted::commit_status(&base, &id, &head, 100).await,
        200,
        "the repacked clone serves the newest commit"
    );
}
