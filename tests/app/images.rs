//! Previews of images: a changed file's blobs and sizes in its diff (as `git rev-parse` and
//! `git cat-file -s` give them), and `blob/{hash}/raw`, which answers an image's bytes (as
//! `git cat-file blob` gives them) and refuses every blob that is not a raster image, whatever
//! its name.

use serde_json::Value;

use crate::helpers::{self, fixture, git};

/// The smallest PNG: one transparent pixel.
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

#[actix_rt::test]
async fn an_image_changed_shows_both_blobs_and_only_raster_images_are_answered_raw() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = fixture("linear", tmp.path()).join("repo");
    std::fs::write(repo.join("logo.png"), PNG).expect("write");
    git(&repo, &["add", "logo.png"]);
    git(&repo, &["commit", "-q", "-m", "add a logo"]);
    let mut bigger = PNG.to_vec();
    bigger.extend_from_slice(b"a comment after IEND, as some tools write one");
    std::fs::write(repo.join("logo.png"), &bigger).expect("write");
    // Bytes a browser would run, named as images: refused by what they are.
    std::fs::write(
        repo.join("icon.svg"),
        "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    )
    .expect("write");
    std::fs::write(
        repo.join("page.png"),
        "<html><script>alert(1)</script></html>",
    )
    .expect("write");
    let mut huge = PNG.to_vec();
    huge.resize((10 << 20) + 1, 0);
    std::fs::write(repo.join("huge.png"), &huge).expect("write");
    git(&repo, &["add", "."]);
    git(
        &repo,
        &[
            "commit",
            "-q",
            "-m",
            "a wider logo, an icon, a page, a huge one",
        ],
    );
    let base = format!(
        "http://127.0.0.1:{}/api/repos/local",
        helpers::spawn_app(&repo).await
    );
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let blob = |spec: &str| git(&repo, &["rev-parse", spec]);
    let size = |spec: &str| -> u64 {
        git(&repo, &["cat-file", "-s", spec])
            .parse()
            .expect("a size")
    };
    let (status, d): (u16, Value) = {
        let resp = reqwest::get(format!("{base}/commit/diff/{head}/file?path=logo.png"))
            .await
            .expect("request");
        (resp.status().as_u16(), resp.json().await.expect("json"))
    };
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["binary"], true);
    assert_eq!(d["oldBlob"], blob("HEAD~1:logo.png").as_str());
    assert_eq!(d["newBlob"], blob("HEAD:logo.png").as_str());
    assert_eq!(d["oldSize"], size("HEAD~1:logo.png"));
    assert_eq!(d["newSize"], size("HEAD:logo.png"));

    let client = reqwest::Client::new();
    let raw = |spec: String| {
        let client = client.clone();
        let url = format!("{base}/blob/{spec}/raw");
        async move { client.get(url).send().await.expect("request") }
    };
    for (spec, bytes) in [("HEAD~1:logo.png", PNG.to_vec()), ("HEAD:logo.png", bigger)] {
        let resp = raw(blob(spec)).await;
        assert_eq!(resp.status().as_u16(), 200, "{spec}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(header("content-type"), "image/png");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(header("content-security-policy").contains("sandbox"));
        let etag = header("etag");
        let body = resp.bytes().await.expect("body");
        let theirs = std::process::Command::new("git")
            .args(["cat-file", "blob", &blob(spec)])
            .current_dir(&repo)
            .output()
            .expect("git runs")
            .stdout;
        assert_eq!(body.as_ref(), theirs.as_slice(), "{spec}");
        assert_eq!(body.as_ref(), bytes.as_slice(), "{spec}");
        // A blob never changes: asked again with its ETag, nothing is sent.
        let again = client
            .get(format!("{base}/blob/{}/raw", blob(spec)))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("request");
        assert_eq!(again.status().as_u16(), 304);
    }
    for (spec, code) in [
        ("HEAD:icon.svg", Some("not_an_image")),
        ("HEAD:page.png", Some("not_an_image")),
        ("HEAD:huge.png", Some("image_too_large")),
        ("HEAD:file0.txt", Some("not_an_image")),
        ("HEAD^{tree}", None),
    ] {
        let resp = raw(blob(spec)).await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match code {
            Some(code) => assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{spec}"),
            None => assert!((400..500).contains(&status), "{spec}: {status}"),
        }
    }
}
