//! The fake GitHub as a program, for the browser tests (which drive the real server in
//! Chromium and need GitHub on loopback): prints its URL, then serves until killed.
//!
//! `fake-github CLIENT_ID CLIENT_SECRET GIT_ROOT SIGN_IN_AS [USER|REPO]...` where a USER is
//! `user:ID:LOGIN:NAME` and a REPO is `repo:OWNER/NAME:private|public:READER,READER`; the
//! repositories' git lives at `GIT_ROOT/OWNER/NAME`.

use gitvista_testkit::github::FakeGitHub;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [client_id, client_secret, git_root, sign_in_as, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: fake-github CLIENT_ID CLIENT_SECRET GIT_ROOT SIGN_IN_AS [user:ID:LOGIN:NAME | repo:OWNER/NAME:private|public:READERS]..."
        );
        std::process::exit(2);
    };
    let gh = FakeGitHub::start(client_id, client_secret);
    gh.serve_git(std::path::Path::new(git_root));
    for spec in rest {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.as_slice() {
            ["user", id, login, name] => match id.parse() {
                Ok(id) => gh.add_user(id, login, name),
                Err(_) => {
                    eprintln!("fake-github: {id:?} is not a number");
                    std::process::exit(2);
                }
            },
            ["repo", full, visibility, readers] => {
                let readers: Vec<&str> = readers.split(',').filter(|r| !r.is_empty()).collect();
                let url = format!("{}/{full}.git", gh.url());
                gh.add_repo(full, *visibility == "private", &readers, &url);
            }
            _ => {
                eprintln!("fake-github: cannot read {spec:?}");
                std::process::exit(2);
            }
        }
    }
    gh.sign_in_as(sign_in_as);
    println!("fake GitHub at {}", gh.url());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
