//! `bareboat inspect` on images bareboat builds, checked against what the build reported,
//! what the layout holds and what umoci unpacks.

mod common;

use std::path::Path;

use common::{bareboat, build, fails_with, run, unpack};
use serde_json::Value;

fn inspect(dir: &Path, args: &[&str]) -> Value {
    let out = run(&mut bareboat(dir, "inspect", args));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn inspect_reports_exact_sizes_packages_and_wasted_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let built = build(d, &["catalog:cc", "-o", "oci:out:cc"]);
    let report = inspect(d, &["oci:out:cc"]);
    assert_eq!(report["image"], built["digest"]);
    assert_eq!(report["config"]["user"], "65532");

    // Each layer as the build wrote it: digest, both sizes and what made it.
    let layers = report["layers"].as_array().unwrap();
    let wrote = built["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), wrote.len());
    for (l, w) in layers.iter().zip(wrote) {
        assert_eq!(l["digest"], w["digest"]);
        assert_eq!(l["size"], w["size"]);
        assert_eq!(l["uncompressed_size"], w["uncompressed_size"]);
        assert_eq!(l["created_by"], w["created_by"]);
    }

    // The packages are those whose dpkg entries umoci unpacks, with their versions.
    let rootfs = unpack(d, "out", "cc").join("rootfs");
    let status_d = rootfs.join("var/lib/dpkg/status.d");
    let mut expected: Vec<(String, String)> = std::fs::read_dir(&status_d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".md5sums"))
        .map(|n| {
            let text = std::fs::read_to_string(status_d.join(&n)).unwrap();
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("Version: "))
                .unwrap()
                .to_string();
            (n, version)
        })
        .collect();
    expected.sort();
    let packages: Vec<(String, String)> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("version"))
        })
        .collect();
    assert_eq!(packages, expected);

    // The largest file is the one on disk, at its size.
    let largest = &report["largest_files"][0];
    let on_disk = rootfs.join(largest["path"].as_str().unwrap().trim_start_matches('/'));
    assert_eq!(largest["size"], std::fs::metadata(&on_disk).unwrap().len());
    assert_eq!(report["wasted_bytes"], 0);
    assert_eq!(report["repeated"], serde_json::json!([]));

    // A layer that deletes a large file of a lower one wastes exactly its bytes.
    let libstdcxx = report["largest_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().contains("libstdc++.so.6.0"))
        .unwrap();
    let path = libstdcxx["path"].as_str().unwrap();
    std::fs::write(
        d.join("bareboat.toml"),
        format!("from = \"oci:out:cc\"\nremove = [\"{path}\"]\n"),
    )
    .unwrap();
    build(d, &["-o", "oci:slim:app"]);
    let slim = inspect(d, &["oci:slim:app"]);
    assert_eq!(slim["wasted_bytes"], libstdcxx["size"]);
    let waste = &slim["waste"][0];
    assert_eq!(waste["path"], path.trim_start_matches('/'));
    assert_eq!(waste["how"], "deleted");
    assert_eq!(waste["layer"], 3);
    assert_eq!(waste["by_layer"], 4);
    assert_eq!(slim["files"], report["files"].as_u64().unwrap() - 1);

    // --tree lists a directory as the finished image shows it.
    let tree = inspect(d, &["oci:out:cc", "--tree", "/etc"]);
    let names: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"/etc/passwd") && names.contains(&"/etc/os-release"),
        "{names:?}"
    );
    fails_with(
        &mut bareboat(d, "inspect", &["oci:out:cc", "--tree", "/no/such"]),
        "the image has no directory there",
    );
}
