//! `gitvista loadtest`: a small bounded run in its self-hosted world, a run against an existing
//! server, and its refusals.

use std::process::{Command, Output};

use gitvista_testkit::{fixture, git};

use crate::helpers::spawn_binary;

fn loadtest(args: &[&str]) -> Output {
    loadtest_process(args).1
}

/// [`loadtest`], with the process id of the run (what it names its database after).
fn loadtest_process(args: &[&str]) -> (u32, Output) {
    let child = Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .arg("loadtest")
        .args(args)
        .env_remove("GITVISTA_TARGET")
        .env_remove("GITVISTA_ADMIN_TOKEN")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gitvista runs");
    let pid = child.id();
    (pid, child.wait_with_output().expect("gitvista runs"))
}

fn report(out: &Output, json: &std::path::Path) -> serde_json::Value {
    assert!(
        out.status.success(),
        "loadtest failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(json).expect("the JSON report")).expect("valid JSON")
}

/// `gitvista_viewers` from the `/metrics` of the server at `addr` (0 if it does not answer).
fn viewers_on(addr: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    gitvista::loadtest::stats::metric(&text, "gitvista_viewers").map_or(0, |v| v as u64)
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[test]
fn self_hosted_run_delivers_every_change_to_every_viewer_and_reports_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("report.json");
    let out = loadtest(&[
        "--viewers",
        "200",
        "--repos",
        "4",
        "--duration",
        "10",
        "--slow-fraction",
        "0.1",
        "--change-interval-ms",
        "400",
        "--http-rate",
        "20",
        "--commits",
        "300",
        "--json",
        &json.to_string_lossy(),
    ]);
    let r = report(&out, &json);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fan-out"), "the text report: {text}");

    assert_eq!(r["config"]["selfHosted"], true);
    assert_eq!(r["config"]["repos"], 4);
    // Four generated repositories: 300 commits on main plus three topic branches of two.
    assert_eq!(r["config"]["rowsPerRepo"], 306);
    assert_eq!(r["viewers"]["requested"], 200);
    assert_eq!(r["viewers"]["connected"], 200, "{r:#}");
    assert_eq!(r["viewers"]["failed"], 0);
    assert_eq!(r["viewers"]["dropped"], 0, "{r:#}");
    assert_eq!(r["viewers"]["connectMs"]["count"], 200);
    assert!(num(&r["viewers"]["connectMs"]["p50"]) > 0.0);

    // Ten seconds at one change per 400 ms, one at a time per repository.
    let made = num(&r["changes"]["made"]);
    assert!(made >= 10.0, "changes made: {r:#}");
    assert_eq!(
        r["changes"]["deliveredToAll"], r["changes"]["made"],
        "{r:#}"
    );
    assert_eq!(r["lost"], 0, "{r:#}");
    // 180 viewers keep up, 45 per repository: each change reached 45 of them.
    assert_eq!(num(&r["changes"]["deliveries"]), made * 45.0, "{r:#}");
    assert_eq!(num(&r["deliveryMs"]["count"]), made * 45.0);
    assert_eq!(num(&r["lastViewerMs"]["count"]), made);
    assert_eq!(num(&r["allViewersMs"]["count"]), made);
    // Reaching everyone takes at least as long as reaching a typical viewer.
    assert!(num(&r["allViewersMs"]["p50"]) >= num(&r["fanoutMs"]["p50"]));
    for series in ["fanoutMs", "deliveryMs", "lastViewerMs", "allViewersMs"] {
        let p = &r[series];
        assert!(
            num(&p["p50"]) >= 0.0 && num(&p["p50"]) <= num(&p["p95"]),
            "{series}: {p}"
        );
        assert!(num(&p["p95"]) <= num(&p["p99"]) && num(&p["p99"]) <= num(&p["max"]));
    }
    // Delivery includes the fetch, fan-out does not.
    assert!(num(&r["deliveryMs"]["p50"]) >= num(&r["fanoutMs"]["p50"]));

    assert_eq!(r["slow"]["viewers"], 20, "{r:#}");
    assert!(num(&r["slow"]["messages"]) > 0.0);

    assert_eq!(r["http"]["requests"], 200);
    assert_eq!(r["http"]["errors"], 0);
    assert_eq!(r["http"]["latencyMs"]["count"], 200);

    let rss = &r["serverRssBytes"];
    for k in ["before", "idle", "peak", "after"] {
        assert!(num(&rss[k]) > 1e6, "server RSS {k}: {rss}");
    }
    assert!(num(&rss["peak"]) >= num(&rss["idle"]));
    assert!(r["rssPerViewerBytes"].is_number());
    assert!(num(&r["server"]["eventsSentTotal"]) >= made * 45.0);
    assert!(num(&r["harnessRssBytes"]) > 0.0);
    assert!(num(&r["openFilesLimit"]) >= 456.0);
    assert_eq!(r["errors"], serde_json::json!([]), "{r:#}");
}

#[test]
fn pushes_announced_by_webhook_reach_every_viewer_through_a_flood_of_forged_deliveries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("report.json");
    let out = loadtest(&[
        "--viewers",
        "60",
        "--repos",
        "3",
        "--duration",
        "4",
        "--change-interval-ms",
        "300",
        "--http-rate",
        "0",
        "--commits",
        "50",
        "--change-via",
        "webhook",
        "--bad-webhooks-per-sec",
        "200",
        "--json",
        &json.to_string_lossy(),
    ]);
    let r = report(&out, &json);
    assert_eq!(r["config"]["changeVia"], "webhook");
    let made = num(&r["changes"]["made"]);
    assert!(made >= 3.0, "{r:#}");
    assert_eq!(
        r["changes"]["deliveredToAll"], r["changes"]["made"],
        "{r:#}"
    );
    assert_eq!(r["lost"], 0, "{r:#}");
    assert_eq!(num(&r["deliveryMs"]["count"]), made * 20.0, "{r:#}");
    let flood = &r["badWebhooks"];
    assert!(num(&flood["sent"]) >= 200.0, "{flood}");
    assert_eq!(
        flood["refused"], flood["sent"],
        "every forged delivery got 401: {flood}"
    );
    assert_eq!(flood["other"], 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("refused with 401"), "{text}");
}

#[test]
fn the_peer_gets_the_same_viewers_and_changes_and_reports_beside_gitvista() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("report.json");
    let out = loadtest(&[
        "--viewers",
        "60",
        "--repos",
        "3",
        "--duration",
        "3",
        "--change-interval-ms",
        "200",
        "--http-rate",
        "0",
        "--commits",
        "50",
        "--peer",
        "--json",
        &json.to_string_lossy(),
    ]);
    let r = report(&out, &json);
    assert!(String::from_utf8_lossy(&out.stdout).contains("peer (bare"));
    assert_eq!(r["lost"], 0, "{r:#}");
    let peer = &r["peer"];
    assert_eq!(peer["connected"], 60, "{peer:#}");
    assert_eq!(peer["lost"], 0, "{peer:#}");
    // One change per 200 ms for 3 s, round-robin over 3 repositories of 20 viewers each.
    let changes = num(&peer["changes"]);
    assert!(changes >= 10.0, "{peer:#}");
    assert_eq!(num(&peer["fanoutMs"]["count"]), changes * 20.0, "{peer:#}");
    assert_eq!(num(&peer["allViewersMs"]["count"]), changes);
    assert!(num(&peer["allViewersMs"]["max"]) >= num(&peer["fanoutMs"]["p50"]));
    assert!(num(&peer["rssPerViewerBytes"]) > 0.0, "{peer:#}");
    // No peer asked for, none reported.
    let plain = loadtest(&[
        "--viewers",
        "5",
        "--duration",
        "1",
        "--commits",
        "10",
        "--json",
        &json.to_string_lossy(),
    ]);
    assert!(report(&plain, &json)["peer"].is_null());
}

#[test]
fn against_an_existing_server_it_watches_and_times_the_servers_own_deltas() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (mut server, base) = spawn_binary(&repo);
    let json = tmp.path().join("report.json");
    let committer = {
        let (repo, addr) = (repo.clone(), base.trim_start_matches("http://").to_string());
        std::thread::spawn(move || {
            // Commits while the viewers watch (once all 30 are connected): the harness did not
            // make them, but it times them.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while viewers_on(&addr) < 30 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            for n in 0..3 {
                std::thread::sleep(std::time::Duration::from_millis(700));
                git(
                    &repo,
                    &[
                        "commit",
                        "-q",
                        "--allow-empty",
                        "-m",
                        &format!("outside {n}"),
                    ],
                );
            }
        })
    };
    let out = loadtest(&[
        "--target",
        &base,
        "--viewers",
        "30",
        "--duration",
        "6",
        "--http-rate",
        "10",
        "--json",
        &json.to_string_lossy(),
    ]);
    committer.join().expect("committer");
    let _ = server.kill();
    let _ = server.wait();
    let r = report(&out, &json);
    assert_eq!(r["config"]["selfHosted"], false);
    assert_eq!(r["config"]["repos"], 1);
    assert_eq!(r["viewers"]["connected"], 30, "{r:#}");
    assert_eq!(r["changes"]["made"], 0);
    assert_eq!(r["lost"], 0);
    // Three outside commits, each a delta to each of the 30 viewers.
    assert_eq!(num(&r["fanoutMs"]["count"]), 90.0, "{r:#}");
    assert_eq!(r["http"]["errors"], 0);
    assert!(num(&r["serverRssBytes"]["idle"]) > 1e6);
}

#[test]
fn reads_the_memory_of_a_target_whose_metrics_need_its_admin_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    let (server, base) = crate::helpers::spawn_binary_with(&repo, |c| {
        c.env("GITVISTA_ADMIN_TOKEN", "harness-token-0123456789abcdef0123");
    });
    let run = |token: Option<&str>| {
        let json = tmp.path().join("report.json");
        let mut args = vec![
            "--target",
            &base,
            "--viewers",
            "5",
            "--duration",
            "1",
            "--json",
        ];
        let path = json.to_string_lossy().to_string();
        args.push(&path);
        if let Some(t) = token {
            args.extend(["--admin-token", t]);
        }
        let out = loadtest(&args);
        (
            report(&out, &json),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (without, stderr) = run(None);
    assert_eq!(without["serverRssBytes"]["idle"], 0, "{without:#}");
    assert!(stderr.contains("--admin-token"), "{stderr}");
    let (with, _) = run(Some("harness-token-0123456789abcdef0123"));
    assert!(num(&with["serverRssBytes"]["idle"]) > 1e6, "{with:#}");
    assert_eq!(with["viewers"]["connected"], 5);
    drop(server);
}

#[test]
fn refuses_targets_off_this_machine_and_settings_out_of_bounds() {
    let cases: [(&[&str], &str, &str); 9] = [
        (
            &["--target", "http://10.1.2.3:8080", "--duration", "1"],
            "not a loopback address",
            "a private address is another machine",
        ),
        (
            &["--target", "http://8.8.8.8", "--duration", "1"],
            "not a loopback address",
            "a public address",
        ),
        (
            &["--target", "https://127.0.0.1:8443", "--duration", "1"],
            "must be an http:// URL",
            "TLS is not spoken",
        ),
        (
            &["--target", "not a url", "--duration", "1"],
            "is not a URL",
            "garbage",
        ),
        (
            &["--viewers", "100001"],
            "--viewers is at most",
            "unbounded viewer count",
        ),
        (
            &["--duration", "0"],
            "--duration is between",
            "a run must have a length",
        ),
        (
            &["--repos", "1000", "--commits", "10000"],
            "--commits x --repos is at most",
            "ten million commits to generate",
        ),
        (
            &["--bad-webhooks-per-sec", "1000000"],
            "--bad-webhooks-per-sec is at most",
            "an unbounded flood",
        ),
        (
            &[
                "--target",
                "http://127.0.0.1:9",
                "--change-via",
                "webhook",
                "--duration",
                "1",
            ],
            "drive the harness's own server",
            "it cannot push into another server's remotes",
        ),
    ];
    for (args, expected, why) in cases {
        let out = loadtest(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{why}: accepted {args:?}");
        assert!(stderr.contains(expected), "{why}: {stderr}");
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains(needle))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ctrl_c_stops_the_run_and_leaves_no_server_daemon_or_directory_behind() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .args([
            "loadtest",
            "--viewers",
            "20",
            "--repos",
            "2",
            "--duration",
            "120",
        ])
        .env("TMPDIR", tmp.path())
        .env_remove("GITVISTA_TARGET")
        .env_remove("GITVISTA_ADMIN_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in stderr.by_ref() {
        let line = line.expect("utf-8");
        seen.push(line.clone());
        if line.contains("one change every") {
            break;
        }
    }
    let needle = tmp.path().to_string_lossy().to_string();
    let running = processes_mentioning(&needle);
    assert!(
        running.iter().any(|c| c.contains(" serve "))
            && running.iter().any(|c| c.contains("daemon")),
        "the server and the daemon run: {running:?} {seen:?}"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let rest: Vec<String> = stderr.map_while(Result::ok).collect();
    let exit = child.wait().expect("exits");
    assert!(!exit.success());
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    // The server got SIGTERM, the daemon's group SIGKILL, the directory is gone.
    let left = processes_mentioning(&needle);
    assert!(left.is_empty(), "still running: {left:?}");
    let dirs: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(dirs.is_empty(), "left behind: {dirs:?}");
}

#[test]
fn a_tiers_run_spreads_viewers_over_web_nodes_and_every_change_reaches_them_all() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("report.json");
    let (pid, out) = loadtest_process(&[
        "--tiers",
        "2x2",
        "--database-url",
        "postgres://root@127.0.0.1:5432/postgres",
        "--redis-url",
        "redis://127.0.0.1:6379",
        "--change-via",
        "webhook",
        "--viewers",
        "60",
        "--repos",
        "3",
        "--duration",
        "5",
        "--change-interval-ms",
        "400",
        "--commits",
        "200",
        "--json",
        &json.to_string_lossy(),
    ]);
    let r = report(&out, &json);
    assert_eq!(r["config"]["tiers"], "2x2");
    assert_eq!(num(&r["viewers"]["connected"]), 60.0);
    assert_eq!(num(&r["lost"]), 0.0, "{r}");
    assert!(num(&r["changes"]["made"]) >= 5.0);
    let nodes = r["nodes"].as_array().expect("nodes");
    let webs: Vec<_> = nodes.iter().filter(|n| n["role"] == "web").collect();
    let workers: Vec<_> = nodes.iter().filter(|n| n["role"] == "worker").collect();
    assert_eq!((webs.len(), workers.len()), (2, 2), "{nodes:?}");
    for web in &webs {
        // Every repository's viewers are on both web nodes, and each got every change.
        assert_eq!(num(&web["viewers"]), 30.0, "{web}");
        assert!(num(&web["fanoutMs"]["count"]) > 0.0, "{web}");
        assert!(num(&web["rssBytes"]) > 0.0, "{web}");
    }
    for worker in &workers {
        assert!(num(&worker["rssBytes"]) > 0.0, "{worker}");
    }
    // The run's database is gone (other runs on this PostgreSQL may have theirs meanwhile).
    let name = format!("gitvista_loadtest_{pid}");
    assert_eq!(run_databases(&name), "0", "{name} is dropped");
}

/// How many databases named `name` this machine's PostgreSQL has.
fn run_databases(name: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "root",
            "-d",
            "postgres",
            "-Atc",
            &format!("select count(*) from pg_database where datname = '{name}'"),
        ])
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_soak_samples_memory_files_threads_and_p99s_each_minute_and_pastes_one_a_minute() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("soak.json");
    let out = loadtest(&[
        "--soak",
        "3",
        "--soak-minute-secs",
        "4",
        "--viewers",
        "30",
        "--repos",
        "3",
        "--commits",
        "60",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let r = report(&out, &json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The soak replaces --duration: three minutes of changes at one every 500 ms.
    assert!(num(&r["changes"]["made"]) >= 20.0, "{}", r["changes"]);
    assert_eq!(num(&r["lost"]), 0.0);
    let minutes = r["soak"]["minutes"].as_array().expect("minutes");
    assert_eq!(minutes.len(), 3, "{}", r["soak"]);
    for (i, m) in minutes.iter().enumerate() {
        assert_eq!(num(&m["minute"]) as usize, i + 1);
        // What a leak would show, read from the server's own /metrics.
        assert!(num(&m["rssBytes"]) > 10e6, "{m}");
        assert!(
            num(&m["openFiles"]) >= 30.0,
            "{m}: a socket per viewer at least"
        );
        assert!(num(&m["threads"]) >= 2.0, "{m}");
        assert!(num(&m["windows"]["count"]) > 0.0, "{m}");
        assert!(num(&m["fanout"]["count"]) > 0.0, "{m}");
        // One repository pasted each minute, cloned by the server.
        assert_eq!(num(&m["pasted"]) as usize, i + 1, "{m}");
    }
    assert!(num(&minutes[2]["pastedReady"]) >= 2.0, "{}", minutes[2]);
    assert!(r["soak"]["rssGrowthPerMinuteBytes"].is_number());
    assert!(stderr.contains("soak minute 3:"), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("soak: RSS grows"), "{text}");
}

#[test]
fn a_soak_without_pastes_holds_the_load_alone_and_needs_a_soak() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("soak.json");
    let out = loadtest(&[
        "--soak",
        "2",
        "--soak-minute-secs",
        "3",
        "--soak-no-pastes",
        "--viewers",
        "10",
        "--repos",
        "2",
        "--commits",
        "40",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let r = report(&out, &json);
    assert_eq!(num(&r["lost"]), 0.0);
    let minutes = r["soak"]["minutes"].as_array().expect("minutes");
    assert_eq!(minutes.len(), 2, "{}", r["soak"]);
    for m in minutes {
        assert!(num(&m["rssBytes"]) > 10e6, "{m}");
        assert!(num(&m["fanout"]["count"]) > 0.0, "{m}");
        assert_eq!(num(&m["pasted"]), 0.0, "{m}: nothing pasted");
    }
    // Only with a soak.
    let out = loadtest(&["--soak-no-pastes", "--duration", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--soak"), "{stderr}");
}
