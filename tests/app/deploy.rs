//! The deploy files agree with the code: the Dockerfile builds the way CI builds
//! (`scripts/test` runs `cargo build --locked --bin gitvista`), and fly.toml mounts the data
//! directory and checks readiness (`/readyz`) on web nodes and workers.

fn read(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn dockerfile_builds_like_ci_and_serves_hosted_mode() {
    let docker = read("Dockerfile");
    assert!(docker.contains("cargo build --release --locked --bin gitvista"));
    assert!(docker.contains("ENTRYPOINT [\"gitvista\", \"serve\"]"));
    assert!(docker.contains("GITVISTA_DATA_DIR=/data") && docker.contains("VOLUME [\"/data\"]"));
    assert!(docker.contains(" git ") && docker.contains("ca-certificates"));
    let ci = read("scripts/test");
    assert!(ci.contains("cargo build --locked --quiet --bin gitvista"));
}

#[test]
fn fly_toml_mounts_the_data_directory_and_checks_health() {
    let fly = read("fly.toml");
    assert!(fly.contains("destination = \"/data\""));
    assert!(fly.contains("GITVISTA_DATA_DIR = \"/data\""));
    // Readiness, not liveness: a node whose database or disk fails stops taking traffic.
    assert_eq!(fly.matches("path = \"/readyz\"").count(), 2);
    assert!(
        fly.contains("auto_stop_machines = \"off\""),
        "fetch timers need a running machine"
    );
}

#[test]
fn fly_toml_runs_web_and_worker_groups_from_one_image() {
    let fly = read("fly.toml");
    assert!(fly.contains("[processes]"));
    assert!(fly.contains("web = \"--role web\"") && fly.contains("worker = \"--role worker\""));
    assert!(fly.contains("GITVISTA_INTERNAL_ADDR"));
    // Workers keep clones on volumes; web nodes take the HTTP traffic.
    let mounts = &fly[fly.find("[mounts]").expect("mounts")..];
    assert!(mounts.contains("processes = [\"worker\"]"));
    let http = &fly[fly.find("[http_service]").expect("http")..];
    assert!(http.contains("processes = [\"web\"]"));
}

#[test]
fn docker_compose_starts_postgres_redis_two_workers_and_two_web_nodes() {
    let compose = read("docker-compose.yml");
    for service in [
        "postgres:",
        "redis:",
        "worker-1:",
        "worker-2:",
        "web-1:",
        "web-2:",
    ] {
        assert!(compose.contains(&format!("  {service}\n")), "{service}");
    }
    assert_eq!(compose.matches("[\"--role\", \"worker\"]").count(), 2);
    assert_eq!(compose.matches("[\"--role\", \"web\"]").count(), 2);
    assert!(compose.contains("GITVISTA_CLUSTER_SECRET") && compose.contains("GITVISTA_REDIS_URL"));
    assert!(compose.contains("entrypoint: [\"gitvista\", \"migrate\"]"));
}
