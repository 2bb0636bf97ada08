//! Locking against the real Debian archive, through the mirror in the host's apt
//! configuration. These tests need that mirror: without one they fail and say so.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-archive-cache")
}

fn require_host_mirror() {
    let mirrors = bareboat_apt::sources::Mirrors::from_host(std::path::Path::new("/")).unwrap();
    assert!(
        mirrors.archive.is_some(),
        "these tests use the Debian mirror of the host's apt configuration, and it names none"
    );
}

/// Runs `bareboat --json lock ARGS` in a fresh directory and returns the JSON report.
fn lock(args: &[&str]) -> Value {
    require_host_mirror();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareboat"));
    cmd.current_dir(dir.path())
        .arg("--cache")
        .arg(cache())
        .args(["--json", "lock"])
        .args(args);
    for (name, value) in extra_files(args) {
        std::fs::write(dir.path().join(name), value).unwrap();
    }
    let out = cmd.env_remove("BAREBOAT_MIRROR").output().unwrap();
    assert!(
        out.status.success(),
        "bareboat lock {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("bareboat.lock").exists());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn extra_files(args: &[&str]) -> Vec<(&'static str, &'static str)> {
    if args.contains(&"python3.toml") {
        vec![(
            "python3.toml",
            "packages = [\"python3\"]\nexclude = [\"dpkg\"]\n",
        )]
    } else {
        vec![]
    }
}

fn names(report: &Value, target: &str) -> Vec<String> {
    report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["target"] == target)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn excluded(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = report["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    v.dedup();
    v
}

/// distroless's static set for trixie: essential to the catalogue, and package names,
/// which a point release does not change.
const STATIC_TRIXIE: [&str; 6] = [
    "base-files",
    "ca-certificates",
    "media-types",
    "netbase",
    "tzdata",
    "tzdata-legacy",
];

#[test]
fn static_trixie_amd64_locks_to_exactly_distroless_set() {
    let r = lock(&["catalog:static"]);
    assert_eq!(names(&r, "amd64"), STATIC_TRIXIE);
    assert_eq!(excluded(&r), ["awk", "debconf", "openssl"]);
    let suites: Vec<&str> = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["suite"].as_str().unwrap())
        .collect();
    assert_eq!(suites, ["trixie", "trixie-updates", "trixie-security"]);
    assert_eq!(r["fetch"]["packages"], 6);
    // Every package carries its provenance.
    for p in r["packages"].as_array().unwrap() {
        assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
        assert!(p["filename"].as_str().unwrap().starts_with("pool/"));
        assert!(!p["source"].as_str().unwrap().is_empty());
    }
}

#[test]
fn static_trixie_arm64_locks_to_the_same_set() {
    let r = lock(&["catalog:static", "--arch", "arm64", "--no-fetch"]);
    assert_eq!(names(&r, "arm64"), STATIC_TRIXIE);
    let arches: Vec<&str> = r["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["architecture"].as_str().unwrap())
        .collect();
    assert!(
        arches.iter().all(|a| *a == "arm64" || *a == "all"),
        "{arches:?}"
    );
}

#[test]
fn static_bookworm_amd64_locks_to_bookworms_set() {
    let r = lock(&["catalog:static", "--release", "bookworm", "--no-fetch"]);
    assert_eq!(
        names(&r, "amd64"),
        [
            "base-files",
            "ca-certificates",
            "media-types",
            "netbase",
            "tzdata"
        ]
    );
    assert_eq!(r["release"], "bookworm");
    assert_eq!(excluded(&r), ["awk", "debconf", "openssl"]);
}

#[test]
fn cc_trixie_locks() {
    let r = lock(&["catalog:cc", "--no-fetch"]);
    let mut expected: Vec<&str> = STATIC_TRIXIE.to_vec();
    // gcc-14-base and libssl3t64 name trixie's compiler and OpenSSL ABI, which a point
    // release keeps.
    expected.extend([
        "gcc-14-base",
        "libc-bin",
        "libc6",
        "libgcc-s1",
        "libgomp1",
        "libssl3t64",
        "libstdc++6",
        "libzstd1",
        "zlib1g",
    ]);
    expected.sort();
    assert_eq!(names(&r, "amd64"), expected);
    // libc6's Source carries the source package name.
    let libc = r["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libc6")
        .unwrap();
    assert_eq!(libc["source"], "glibc");
}

#[test]
fn python3_spec_locks_without_dpkg() {
    let r = lock(&["python3.toml", "--no-fetch"]);
    let n = names(&r, "amd64");
    // trixie's Python is 3.13 for the release's life: a point release moves its patch
    // level, which no package name holds.
    for want in [
        "python3",
        "python3.13",
        "libpython3.13-stdlib",
        "libc6",
        "libssl3t64",
    ] {
        assert!(n.iter().any(|x| x == want), "{want} missing from {n:?}");
    }
    assert!(!n.iter().any(|x| x == "dpkg"), "{n:?}");
    assert!(excluded(&r).contains(&"dpkg".to_string()));
}

#[test]
fn catalog_lists_each_image_with_its_packages_and_sizes() {
    require_host_mirror();
    let out = Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .arg("--cache")
        .arg(cache())
        .args(["--json", "catalog", "--arch", "arm64"])
        .env_remove("BAREBOAT_MIRROR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let images: Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = images.as_array().unwrap();
    let names: Vec<&str> = images.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "static",
            "base-nossl",
            "base",
            "cc",
            "python3",
            "java21",
            "java25",
            "nodejs",
            "ruby",
            "php"
        ]
    );
    let mut installed_of = std::collections::HashMap::new();
    for image in images {
        let packages = image["packages"].as_array().unwrap();
        let sum = |field: &str| {
            packages
                .iter()
                .map(|p| p[field].as_u64().unwrap())
                .sum::<u64>()
        };
        assert!(
            packages
                .iter()
                .all(|p| p["installed_size"].as_u64() > Some(0)),
            "{image}"
        );
        assert_eq!(image["download_size"].as_u64(), Some(sum("size")));
        assert_eq!(
            image["installed_size"].as_u64(),
            Some(sum("installed_size"))
        );
        assert_eq!(image["arch"], "arm64");
        // Each image stacks on its parent, so it is larger.
        let installed = sum("installed_size");
        if let Some(parent) = image["parent"].as_str() {
            assert!(installed > installed_of[parent], "{}", image["name"]);
        }
        installed_of.insert(image["name"].as_str().unwrap(), installed);
        // What an image drops, with the reason, is not among its packages.
        for dropped in image["dropped"].as_array().unwrap() {
            assert!(!dropped["why"].as_str().unwrap().is_empty());
            let name = &dropped["package"];
            assert!(packages.iter().all(|p| &p["name"] != name), "{name}");
        }
    }
    let java = images.iter().find(|i| i["name"] == "java21").unwrap();
    assert_eq!(
        java["entrypoint"],
        serde_json::json!(["/usr/bin/java", "-jar"])
    );
    assert_eq!(java["parent"], "cc");
    let cc = &images[3]["packages"];
    assert!(
        cc.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "libstdc++6")
    );
}
