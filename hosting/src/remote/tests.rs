use super::*;

fn ok(input: &str) -> String {
    Policy::default()
        .parse(input)
        .unwrap_or_else(|e| panic!("{input}: {e}"))
        .canonical
}

#[test]
fn canonical_forms() {
    for (input, canonical) in [
        (
            "https://github.com/rust-lang/rust",
            "https://github.com/rust-lang/rust",
        ),
        (
            "https://GitHub.com/rust-lang/rust.git",
            "https://github.com/rust-lang/rust",
        ),
        (
            "https://github.com/rust-lang/rust/",
            "https://github.com/rust-lang/rust",
        ),
        (
            "https://github.com/rust-lang/rust.git/",
            "https://github.com/rust-lang/rust",
        ),
        ("  https://github.com:443/a/b  ", "https://github.com/a/b"),
        (
            "git@github.com:rust-lang/rust.git",
            "https://github.com/rust-lang/rust",
        ),
        (
            "git@GitLab.com:group/sub/proj",
            "https://gitlab.com/group/sub/proj",
        ),
        ("https://git.example.org./x", "https://git.example.org/x"),
    ] {
        assert_eq!(ok(input), canonical, "{input}");
    }
    // The same repository written differently has one id; different ones differ.
    let id = |s: &str| Policy::default().parse(s).expect("ok").id();
    assert_eq!(id("https://github.com/a/b.git"), id("git@github.com:a/b"));
    assert_ne!(id("https://github.com/a/b"), id("https://github.com/a/c"));
    assert_eq!(id("https://github.com/a/b").len(), 16);
    // Known value: sha256("https://github.com/a/b")[..8].
    let expected: String = Sha256::digest(b"https://github.com/a/b")
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id("https://github.com/a/b"), expected);
}

#[test]
fn refusals_each_say_why() {
    let p = Policy::default();
    for (input, want) in [
        ("", UrlError::Empty),
        ("-uhttps://x/y", UrlError::LeadingDash),
        ("--upload-pack=touch /tmp/pwned", UrlError::LeadingDash),
        ("/etc/passwd", UrlError::LocalPath),
        ("./repo", UrlError::LocalPath),
        ("~/repo", UrlError::LocalPath),
        ("C:\\repo", UrlError::LocalPath),
        ("file:///etc", UrlError::LocalPath),
        ("FILE:///etc", UrlError::LocalPath),
        ("ext::sh -c touch% /tmp/pwned", UrlError::ControlCharacters),
        ("ext::sh", UrlError::Transport("ext".into())),
        ("fd::17", UrlError::Transport("fd".into())),
        ("http://github.com/a/b", UrlError::Scheme("http".into())),
        ("git://github.com/a/b", UrlError::Scheme("git".into())),
        ("ssh://github.com/a/b", UrlError::Scheme("ssh".into())),
        ("ftp://example.com/a", UrlError::Scheme("ftp".into())),
        ("https://user:pw@github.com/a/b", UrlError::Credentials),
        ("https://token@github.com/a/b", UrlError::Credentials),
        ("https://github.com/", UrlError::NoPath),
        ("https://github.com", UrlError::NoPath),
        ("https://github.com/a/b?x=1", UrlError::QueryOrFragment),
        ("https://github.com/a/b#x", UrlError::QueryOrFragment),
        ("https://exa mple.com/a", UrlError::ControlCharacters),
        ("https://ex\u{7f}ample.com/a", UrlError::ControlCharacters),
        ("https://-bad.example/a", UrlError::BadHost),
    ] {
        assert_eq!(p.parse(input).err(), Some(want), "{input:?}");
    }
    assert_eq!(
        p.parse(&format!("https://x.com/{}", "a".repeat(MAX_URL)))
            .err(),
        Some(UrlError::TooLong)
    );
    for e in [UrlError::Empty, UrlError::Credentials, UrlError::LocalPath] {
        assert!(e.to_string().len() > 15, "a sentence: {e}");
    }
}

#[test]
fn every_special_purpose_block_is_refused() {
    for addr in [
        "64:ff9b:1::a9fe:a9fe",
        "::ffff:0:a9fe:a9fe",
        "100::1",
        "3fff::1",
        "2001:db8::1",
        "192.88.99.1",
        "198.51.100.7",
        "2001::1",
        "2002:a9fe:a9fe::1",
        "fd00:ec2::254",
        "255.255.255.255",
        "224.0.0.1",
        "ff02::1",
        "5f00::1",
    ] {
        assert!(!is_public(addr.parse().expect("ip")), "{addr}");
    }
    for addr in [
        "93.184.216.34",
        "140.82.112.3",
        "2606:4700::6810:84e5",
        "2a03:2880::1",
    ] {
        assert!(is_public(addr.parse().expect("ip")), "{addr}");
    }
    // The hand list of before missed these; the URLs were answered 201.
    let p = Policy::default();
    for url in [
        "https://[64:ff9b:1::a9fe:a9fe]/x",
        "https://[::ffff:0:169.254.169.254]/x",
        "https://[100::1]/x",
        "https://[3fff::1]/x",
    ] {
        let parsed = p.parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(
            matches!(
                p.check_addresses(&parsed, |_, _| Ok(vec![])),
                Err(UrlError::PrivateAddress { .. })
            ),
            "{url}"
        );
    }
}

#[test]
fn spoofing_odd_ports_and_case_variants() {
    let p = Policy::default();
    for bidi in [
        "https://github.com/a/\u{202E}b",
        "https://github.com/\u{2066}x/y",
        "https://example.com/\u{200F}z",
    ] {
        assert_eq!(
            p.parse(bidi).err(),
            Some(UrlError::DirectionControls),
            "{bidi:?}"
        );
    }
    assert_eq!(
        p.parse("https://example.com:8443/a/b").err(),
        Some(UrlError::Port(8443))
    );
    assert_eq!(
        p.parse("https://example.com:22/a/b").err(),
        Some(UrlError::Port(22))
    );
    let allowed = Policy::from_allowed_hosts("git.corp.example:8443");
    assert!(allowed.parse("https://git.corp.example:8443/a").is_ok());
    let id = |s: &str| p.parse(s).expect("ok").id();
    assert_eq!(
        id("https://github.com/Torvalds/Linux"),
        id("https://github.com/torvalds/linux")
    );
    assert_eq!(
        id("git@GitLab.com:Group/Proj.git"),
        id("https://gitlab.com/group/proj")
    );
    assert_eq!(
        id("https://Codeberg.org/A/B"),
        id("https://codeberg.org/a/b")
    );
    assert_eq!(
        id("https://bitbucket.org/A/B"),
        id("https://bitbucket.org/a/b")
    );
    // Elsewhere case may matter: kept.
    assert_ne!(
        id("https://git.example.org/A/B"),
        id("https://git.example.org/a/b")
    );
}

#[test]
fn git_is_pinned_to_the_address_that_was_checked() {
    let p = Policy::default();
    let public: Resolve =
        std::sync::Arc::new(|_: &str, _: u16| Ok(vec!["93.184.216.34".parse().expect("ip")]));
    let t = p
        .target("https://example.com/a/b", &public)
        .expect("public");
    assert_eq!(t.url, "https://example.com/a/b");
    assert_eq!(
        t.config,
        ["http.curloptResolve=example.com:443:93.184.216.34"]
    );
    let v6: Resolve = std::sync::Arc::new(|_: &str, _: u16| {
        Ok(vec!["2606:4700::6810:84e5".parse().expect("ip")])
    });
    let t = p.target("https://example.com/a/b", &v6).expect("public v6");
    assert_eq!(
        t.config,
        ["http.curloptResolve=example.com:443:[2606:4700::6810:84e5]"]
    );
    // Rebound since it was pasted: refused before git runs.
    let rebound: Resolve =
        std::sync::Arc::new(|_: &str, _: u16| Ok(vec!["127.0.0.1".parse().expect("ip")]));
    assert!(matches!(
        p.target("https://example.com/a/b", &rebound),
        Err(UrlError::PrivateAddress { .. })
    ));
    // git:// (allowlisted only) connects to the address itself.
    let allow = Policy::from_allowed_hosts("git.corp.example");
    let corp: Resolve =
        std::sync::Arc::new(|_: &str, _: u16| Ok(vec!["10.1.2.3".parse().expect("ip")]));
    let t = allow
        .target("git://git.corp.example/r", &corp)
        .expect("allowlisted");
    assert_eq!(t.url, "git://10.1.2.3/r");
}

#[test]
fn private_addresses_are_refused_unless_allowlisted() {
    let p = Policy::default();
    let never = |_: &str, _: u16| -> std::io::Result<Vec<IpAddr>> {
        panic!("IP literals are checked without resolving")
    };
    for literal in [
        "https://127.0.0.1/a",
        "https://10.1.2.3/a",
        "https://172.16.0.1/a",
        "https://192.168.1.1/a",
        "https://169.254.169.254/latest",
        "https://100.64.0.1/a",
        "https://0.0.0.0/a",
        "https://[::1]/a",
        "https://[::ffff:127.0.0.1]/a",
        "https://[::ffff:169.254.169.254]/a",
        "https://[fd00:ec2::254]/a",
        "https://[fe80::1]/a",
        "https://[64:ff9b::a00:1]/a",
        "https://2130706433/a",
        "https://0x7f.1/a",
    ] {
        let url = p
            .parse(literal)
            .unwrap_or_else(|e| panic!("{literal}: {e}"));
        assert!(
            matches!(
                p.check_addresses(&url, never),
                Err(UrlError::PrivateAddress { .. })
            ),
            "{literal} -> {}",
            url.host
        );
    }
    // Names are resolved through the injected resolver: one private answer is enough.
    let url = p.parse("https://internal.example/a").expect("ok");
    let resolver = |_: &str, _: u16| {
        Ok(vec![
            "93.184.216.34".parse().expect("ip"),
            "10.0.0.1".parse().expect("ip"),
        ])
    };
    assert!(matches!(
        p.check_addresses(&url, resolver),
        Err(UrlError::PrivateAddress { .. })
    ));
    let public = |_: &str, _: u16| Ok(vec!["93.184.216.34".parse().expect("ip")]);
    assert_eq!(p.check_addresses(&url, public), Ok(()));
    let nothing = |_: &str, _: u16| Err(std::io::Error::other("nxdomain"));
    assert_eq!(
        p.check_addresses(&url, nothing),
        Err(UrlError::Unresolvable("internal.example".into()))
    );

    // The allowlist exempts a host (and port) from the checks and opens http/git/ssh for it.
    let allow = Policy::from_allowed_hosts("127.0.0.1:9418, git.corp.example ,[::1]:8080");
    let git = allow
        .parse("git://127.0.0.1:9418/repo.git")
        .expect("allowlisted git://");
    assert_eq!(git.canonical, "git://127.0.0.1/repo");
    assert_eq!(allow.check_addresses(&git, never), Ok(()));
    assert!(
        allow.parse("git://127.0.0.1:9419/repo").is_err(),
        "another port is not allowlisted"
    );
    let corp = allow
        .parse("http://git.corp.example/x")
        .expect("allowlisted http://");
    assert_eq!(
        allow.check_addresses(&corp, |_: &str, _: u16| Ok(vec![
            "10.0.0.5".parse().expect("ip")
        ])),
        Ok(())
    );
    let v6 = allow.parse("http://[::1]:8080/r").expect("allowlisted v6");
    assert_eq!(allow.check_addresses(&v6, never), Ok(()));
}
