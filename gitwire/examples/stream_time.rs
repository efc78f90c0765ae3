//! Times a whole-history stream from a git:// URL: `cargo run --release -p gitwire --example
//! stream_time -- 127.0.0.1:PORT /repo.git`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = gitwire::history::Target::Daemon {
        addr: args[1].parse().expect("addr"),
        host: "127.0.0.1".into(),
        path: args[2].clone(),
    };
    let started = std::time::Instant::now();
    let mut first = None;
    let h = gitwire::history::stream_history(
        &target,
        gitwire::daemon::Limits::default(),
        gitcore::odb::stream::StreamLimits::default(),
        |h| {
            if first.is_none() && h.commits() > 0 {
                first = Some(started.elapsed());
            }
            Ok(())
        },
    )
    .map_err(|(e, _)| e)
    .expect("streams");
    let streamed = started.elapsed();
    let g = h.graph();
    println!(
        "first commit {:?}, stream {:?}, graph {:?} ({} commits)",
        first,
        streamed,
        started.elapsed() - streamed,
        g.len()
    );
}
