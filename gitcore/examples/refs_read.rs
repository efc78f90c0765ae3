//! Times `RefSnapshot::read` on a repository: `cargo run --release -p gitcore --example refs_read -- PATH [RUNS]`.
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("path");
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(41);
    let repo = gitcore::repo::Repository::discover(std::path::Path::new(&path)).expect("opens");
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let snap = repo.refs();
        times.push(t.elapsed());
        n = snap.refs.len();
    }
    times.sort();
    println!("{path}: {n} refs, median {:?}", times[runs / 2]);
}
