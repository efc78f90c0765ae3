//! Graph windows field by field: every window of a fixture with merges, octopus and
//! criss-cross merges, tags and remotes, as the page reads it, against gitcore's layout of the
//! same graph and `git log`.

use serde_json::Value;

use crate::api::{get, spawn_app};
use crate::helpers::{fixture, git};

/// A window's edges and lanes as the page reads them, from gitcore's layout of the same graph.
fn expected_edge(g: &gitcore::graph::CommitGraph, e: &gitcore::layout::EdgeOut) -> Value {
    let lane = |l: u16| (l != gitcore::layout::OVERFLOW).then_some(l);
    serde_json::json!({
        "parent": g.oid(e.parent).to_hex(),
        "parentRow": e.parent_row,
        "parentLane": lane(e.parent_lane),
        "track": lane(e.track),
        "color": e.color,
    })
}

#[actix_rt::test]
async fn every_field_of_every_window_is_the_layout_s_and_git_s() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("merges", tmp.path()).join("repo");
    let base = spawn_app(&repo).await;
    let opened = gitcore::repo::Repository::discover(&repo).expect("opens");
    let graph = gitcore::graph::CommitGraph::load(&opened).expect("loads");
    let options = gitcore::layout::LayoutOptions::standard();
    let layout = gitcore::layout::Layout::build(&graph, options.clone());
    let lane = |l: u16| (l != gitcore::layout::OVERFLOW).then_some(l);
    // git's own word on every commit's author, time and subject.
    let log: std::collections::HashMap<String, Value> = git(
        &repo,
        &[
            "--no-replace-objects",
            "log",
            "--all",
            "--format=%H%x00%an%x00%ae%x00%at%x00%s",
        ],
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\0').collect();
        let time: i64 = f[3].parse().expect("time");
        (
            f[0].to_string(),
            serde_json::json!({"author": f[1], "authorEmail": f[2], "time": time, "summary": f[4]}),
        )
    })
    .collect();
    let total = layout.len();
    assert!(total > 10, "{total} rows");
    let mut through_seen = 0;
    for offset in 0..total {
        let (status, w) = get(&format!(
            "{base}/api/repos/local/graph?offset={offset}&limit=3"
        ))
        .await;
        assert_eq!(status, 200, "{w}");
        let want = layout.window(offset, 3);
        assert_eq!(w["offset"].as_u64(), Some(offset as u64));
        assert_eq!(w["total"].as_u64(), Some(total as u64));
        assert_eq!(w["width"].as_u64(), Some(u64::from(want.width)));
        assert_eq!(
            w["colors"].as_u64(),
            Some(u64::from(gitcore::layout::COLORS))
        );
        assert!(w["version"].is_u64());
        let rows = w["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), want.rows.len());
        for (got, r) in rows.iter().zip(&want.rows) {
            let hash = graph.oid(r.commit).to_hex();
            let refs: Vec<Value> = graph
                .refs_at(r.commit)
                .iter()
                .filter(|x| options.filter.includes(x))
                .map(|x| serde_json::json!({"name": x.name, "kind": format!("{:?}", x.kind).to_lowercase()}))
                .collect();
            let mut expected = serde_json::json!({
                "row": r.row,
                "hash": hash,
                "lane": lane(r.lane),
                "color": r.color,
                "edges": r.edges.iter().map(|e| expected_edge(&graph, e)).collect::<Vec<_>>(),
                "moreParents": r.more_parents,
                "root": graph.parents(r.commit).is_empty(),
                "refs": refs,
            });
            let from_git = log.get(&hash).expect("git lists the row's commit");
            for (k, v) in from_git.as_object().expect("object") {
                expected[k] = v.clone();
            }
            assert_eq!(got, &expected, "row {}", r.row);
        }
        let through: Vec<Value> = want
            .through
            .iter()
            .map(|t| {
                serde_json::json!({
                    "childRow": t.child_row,
                    "childLane": lane(t.child_lane),
                    "edge": expected_edge(&graph, &t.edge),
                })
            })
            .collect();
        through_seen += through.len();
        assert_eq!(w["through"], Value::Array(through), "offset {offset}");
    }
    assert!(through_seen > 0, "some windows have edges passing in");
}
