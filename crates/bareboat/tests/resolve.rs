//! `bareboat resolve` against the tests' docker-registry: Kubernetes YAML (several
//! documents, comments, anchors, flow style) comes back byte for byte but for the replaced
//! references, each image built and pushed once; a reference that fails to build fails the
//! command and writes nothing.

mod common;

use std::path::Path;

use common::{CACHE_FILL, LocalRegistry, bareboat, build};
use serde_json::Value;

const DEPLOY: &str = r#"# The web tier.
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web   # built by bareboat
          image: bareboat://catalog:static
        - {name: sidecar, image: "bareboat://catalog:base-nossl"}
        - name: pinned
          image: 'PINNED'
---
# Helm-style values, with an anchor.
defaults: &defaults
  image: bareboat://catalog:static
  pullPolicy: IfNotPresent
worker:
  <<: *defaults
"#;

fn resolve(dir: &Path, args: &[&str]) -> std::process::Output {
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    bareboat(dir, "resolve", args).output().unwrap()
}

#[test]
fn references_are_built_once_pushed_and_replaced_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let repo = registry
        .reference("team")
        .trim_start_matches("docker://")
        .to_string();
    // An image to pin, by its tag.
    let pushed = build(
        d,
        &[
            "catalog:static",
            "--insecure",
            "-o",
            &format!("docker://{repo}/pinme:1"),
        ],
    );
    let deploy = DEPLOY.replace("PINNED", &format!("{repo}/pinme:1"));
    std::fs::create_dir(d.join("deploy")).unwrap();
    std::fs::write(d.join("deploy/app.yaml"), &deploy).unwrap();
    std::fs::write(d.join("deploy/notes.txt"), "not YAML, not read\n").unwrap();

    let out = resolve(
        d,
        &[
            "-f",
            "deploy",
            "--repo",
            &repo,
            "--pin",
            "--insecure",
            "-o",
            "out",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let resolved = report["resolved"].as_object().unwrap();
    assert_eq!(resolved.len(), 3, "{report}");
    let static_ref = resolved["bareboat://catalog:static"].as_str().unwrap();
    assert!(
        static_ref.starts_with(&format!("{repo}/static@sha256:")),
        "{static_ref}"
    );
    assert_eq!(
        resolved[&format!("{repo}/pinme:1")],
        format!("{repo}/pinme@{}", pushed["digest"].as_str().unwrap()).as_str()
    );

    // Line for line, only the references changed.
    let written = std::fs::read_to_string(d.join("out/deploy/app.yaml")).unwrap();
    let (before, after): (Vec<&str>, Vec<&str>) =
        (deploy.lines().collect(), written.lines().collect());
    assert_eq!(before.len(), after.len());
    let mut changed = 0;
    for (b, a) in before.iter().zip(&after) {
        if b == a {
            continue;
        }
        changed += 1;
        let expected = resolved
            .iter()
            .find(|(from, _)| b.contains(from.as_str()))
            .map(|(from, to)| b.replace(from.as_str(), to.as_str().unwrap()))
            .unwrap_or_else(|| panic!("{b:?} changed to {a:?}"));
        assert_eq!(*a, expected);
    }
    assert_eq!(changed, 4, "{written}");
    assert!(!d.join("out/deploy/notes.txt").exists());
    // Each image was pushed once: its tag written once (its manifest goes by digest too).
    let log = std::fs::read_to_string(d.join("registry.err")).unwrap()
        + &std::fs::read_to_string(d.join("registry.log")).unwrap();
    let puts = |repository: &str| {
        log.lines()
            .filter(|l| {
                l.contains("method=PUT")
                    && l.contains(&format!("/v2/team/{repository}/manifests/latest"))
            })
            .count()
    };
    assert_eq!(puts("static"), 1, "built and pushed once");

    // One reference that does not build fails the whole command, and nothing is written.
    std::fs::write(
        d.join("deploy/broken.yaml"),
        "image: bareboat://catalog:nonexistent\n",
    )
    .unwrap();
    let out = resolve(
        d,
        &["-f", "deploy", "--repo", &repo, "--insecure", "-o", "out2"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("catalog:nonexistent"), "{err}");
    assert!(!d.join("out2").exists());
}
