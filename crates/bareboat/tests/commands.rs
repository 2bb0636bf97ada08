//! Commands that had no end-to-end test: `cache dir`, `cache prune` (on a cache of the test's
//! own, with the real archive) and `bareboat deps` (on trixie's jq), each judged by what is
//! on disk or by binutils' reading of the program.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{run, tool};
use serde_json::Value;

/// `bareboat --json ARGS` in `dir` with the cache `cache`.
fn bareboat_with(dir: &Path, cache: &Path, args: &[&str]) -> Value {
    let out = run(Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(dir)
        .arg("--cache")
        .arg(cache)
        .arg("--json")
        .args(args)
        .env_remove("BAREBOAT_MIRROR")
        .env_remove("SOURCE_DATE_EPOCH"));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The SHA256 of each `.deb` the cache holds.
fn debs(cache: &Path) -> BTreeSet<String> {
    (std::fs::read_dir(cache.join("debs")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn cache_dir_names_the_cache_and_prune_keeps_what_a_recent_lockfile_uses() {
    let dir = tempfile::tempdir().unwrap();
    let (d, cache) = (dir.path(), dir.path().join("cache"));
    let named = bareboat_with(d, &cache, &["cache", "dir"]);
    assert_eq!(named["dir"], cache.to_str().unwrap());
    let text = run(Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .arg("--cache")
        .arg(&cache)
        .args(["cache", "dir"]));
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        format!("{}\n", cache.display())
    );

    // A lockfile's packages, recorded as used, and a catalogue image's, which are not.
    std::fs::write(
        d.join("bareboat.toml"),
        "packages = [\"base-files\"]\nexclude = [\"mawk\"]\n",
    )
    .unwrap();
    bareboat_with(d, &cache, &["lock"]);
    let lock: Value =
        toml::from_str::<toml::Value>(&std::fs::read_to_string(d.join("bareboat.lock")).unwrap())
            .map(|v| serde_json::to_value(v).unwrap())
            .unwrap();
    let locked: BTreeSet<String> = (lock["package"].as_array().unwrap().iter())
        .map(|p| p["sha256"].as_str().unwrap().to_string())
        .collect();
    assert!(!locked.is_empty());
    bareboat_with(
        d,
        &cache,
        &["build", "catalog:static", "-o", "oci:out:static"],
    );
    let before = debs(&cache);
    assert!(
        before.is_superset(&locked) && before.len() > locked.len(),
        "{before:?} {locked:?}"
    );

    let pruned = bareboat_with(d, &cache, &["cache", "prune", "--max-age-days", "30"]);
    assert_eq!(debs(&cache), locked, "only the lockfile's packages stay");
    let removed = pruned["removed_files"].as_u64().unwrap();
    assert!(removed >= (before.len() - locked.len()) as u64, "{pruned}");

    // Once the lockfile's use is older than the age kept, its packages go too.
    for record in std::fs::read_dir(cache.join("uses")).unwrap() {
        run(Command::new("touch")
            .args(["-d", "40 days ago"])
            .arg(record.unwrap().path()));
    }
    bareboat_with(d, &cache, &["cache", "prune", "--max-age-days", "30"]);
    assert_eq!(debs(&cache), BTreeSet::new());
    // What is gone is fetched again, and verified, when a build needs it.
    bareboat_with(
        d,
        &cache,
        &[
            "build",
            "--lockfile",
            "bareboat.lock",
            "bareboat.toml",
            "-o",
            "oci:again:x",
        ],
    );
    assert!(debs(&cache).is_superset(&locked));
}

#[test]
fn deps_names_the_packages_a_programs_libraries_come_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::trixie_programs(d);
    // What the program needs, as binutils reads its dynamic section.
    let readelf = run(Command::new(tool("readelf")).args(["-d"]).arg(d.join("jq")));
    let needed: BTreeSet<String> = String::from_utf8_lossy(&readelf.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.trim_end_matches(']').to_string()))
        .collect();
    assert!(needed.contains("libjq.so.1"), "{needed:?}");
    let report = {
        let _guard = common::CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
        let out = run(&mut common::bareboat(
            d,
            "deps",
            &["jq:/usr/local/bin/jq", "--from", "catalog:base-nossl"],
        ));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let found = &report["auto_deps"]["amd64"];
    let packages: BTreeSet<&str> = (found["packages"].as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    // (jq names libjq alone; libjq's own needs come with its package.)
    assert_eq!(packages, BTreeSet::from(["libjq1"]), "{report}");
    // Every library readelf names is accounted for: by a package found, with why, or by
    // what base-nossl installs anyway (libc).
    let why: Vec<String> = (found["packages"].as_object().unwrap().values())
        .flat_map(|w| {
            w.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
        })
        .collect();
    let installed = found["already_installed"].to_string();
    for soname in &needed {
        assert!(
            why.iter().any(|w| w.contains(soname.as_str())) || installed.contains(soname.as_str()),
            "{soname}: {report}"
        );
    }
    assert_eq!(report["abi"], serde_json::json!([]));
}
