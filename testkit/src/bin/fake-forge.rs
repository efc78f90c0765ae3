//! A fake GitLab or Bitbucket as a program, for the browser tests: prints its URL, then serves
//! until killed.
//!
//! `fake-forge gitlab|bitbucket CLIENT_ID CLIENT_SECRET GIT_ROOT SIGN_IN_AS [SPEC]...` where a
//! SPEC is `user:ID:LOGIN:NAME`, `repo:PATH:private|public:READER,...:ADMIN,...` (the git of
//! PATH lives at `GIT_ROOT/PATH`) or `consumer:CALLBACK_URL:SCOPE SCOPE...` (Bitbucket: where
//! it redirects after authorizing, and the consumer's scopes).

use gitvista_testkit::forges::{FakeForge, Flavor};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        flavor,
        client_id,
        client_secret,
        git_root,
        sign_in_as,
        rest @ ..,
    ] = args.as_slice()
    else {
        eprintln!(
            "usage: fake-forge gitlab|bitbucket CLIENT_ID CLIENT_SECRET GIT_ROOT SIGN_IN_AS [user:ID:LOGIN:NAME | repo:PATH:private|public:READERS:ADMINS | consumer:CALLBACK:SCOPES]..."
        );
        std::process::exit(2);
    };
    let flavor = match flavor.as_str() {
        "gitlab" => Flavor::GitLab,
        "bitbucket" => Flavor::Bitbucket,
        other => {
            eprintln!("fake-forge: no forge {other:?}");
            std::process::exit(2);
        }
    };
    let fake = FakeForge::start(flavor, client_id, client_secret);
    fake.serve_git(std::path::Path::new(git_root));
    for spec in rest {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        };
        match spec.split_once(':') {
            Some(("user", rest)) => match rest.splitn(3, ':').collect::<Vec<_>>().as_slice() {
                [id, login, name] => fake.add_user(id, login, name),
                _ => bad(spec),
            },
            Some(("repo", rest)) => match rest.split(':').collect::<Vec<_>>().as_slice() {
                [path, visibility, readers, admins] => {
                    let (readers, admins) = (list(readers), list(admins));
                    let r: Vec<&str> = readers.iter().map(String::as_str).collect();
                    let a: Vec<&str> = admins.iter().map(String::as_str).collect();
                    fake.add_repo(path, *visibility == "private", &r, &a);
                }
                _ => bad(spec),
            },
            // The callback URL has colons of its own: the scopes follow the last one.
            Some(("consumer", rest)) => match rest.rsplit_once(':') {
                Some((callback, scopes)) => fake.set_consumer(callback, scopes),
                None => bad(spec),
            },
            _ => bad(spec),
        }
    }
    fake.sign_in_as(sign_in_as);
    println!("fake forge at {}", fake.url());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn bad(spec: &str) -> ! {
    eprintln!("fake-forge: cannot read {spec:?}");
    std::process::exit(2);
}
