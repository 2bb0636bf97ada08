//! `bareboat scan` and `bareboat db` against tracker-format data the test writes from the
//! packages of a catalogue image, served on loopback for `db update`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use bareboat_testkit::{Fault, Server};
use common::{bareboat, build, fails_with, run, unpack};
use serde_json::{Value, json};

/// Package -> (source, source version), as the dpkg entries umoci unpacks say: `Source:`
/// may name a version of its own in parentheses, else the source's version is the
/// package's.
fn sources(dir: &Path, layout: &str, tag: &str) -> BTreeMap<String, (String, String)> {
    let status_d = unpack(dir, layout, tag).join("rootfs/var/lib/dpkg/status.d");
    std::fs::read_dir(&status_d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md5sums"))
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k)?.strip_prefix(": "))
                    .map(str::to_string)
            };
            let name = field("Package").unwrap();
            let version = field("Version").unwrap();
            let source = field("Source").unwrap_or_else(|| name.clone());
            let (source, version) = match source.split_once(" (") {
                Some((s, v)) => (s.to_string(), v.trim_end_matches(')').to_string()),
                None => (source, version),
            };
            (name, (source, version))
        })
        .collect()
}

fn state(status: &str, fixed: Option<&str>, urgency: &str) -> Value {
    let mut s = json!({"status": status, "urgency": urgency, "repositories": {}});
    if let Some(f) = fixed {
        s["fixed_version"] = json!(f);
    }
    s
}

/// `bareboat --json scan ARGS`, with its exit status.
fn scan(dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = bareboat(dir, "scan", args).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("{}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.code(), report)
}

#[test]
fn each_package_gets_the_tracker_result_its_version_calls_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build(d, &["catalog:cc", "-o", "oci:out:cc"]);
    let packages = sources(d, "out", "cc");
    let (ssl, glibc, zlib, gcc, tzdata, zstd) = (
        &packages["libssl3t64"],
        &packages["libc6"],
        &packages["zlib1g"],
        &packages["libgcc-s1"],
        &packages["tzdata"],
        &packages["libzstd1"],
    );
    assert!(zlib.1.starts_with("1:"), "zlib carries an epoch: {zlib:?}");
    let later = |v: &str| format!("{v}+x1");
    let upstream = zlib.1.split_once(':').unwrap().1;
    let data = json!({
        ssl.0.clone(): {
            "CVE-2026-0001": {"description": "open in the release", "releases": {
                "trixie": state("open", None, "high"),
                "bookworm": state("resolved", Some("3.0.1-1"), "high")}}
        },
        glibc.0.clone(): {
            "CVE-2026-0002": {"description": "fixed in a later version", "releases": {
                "trixie": state("resolved", Some(&later(&glibc.1)), "medium")}},
            "CVE-2026-0003": {"description": "fixed in the very version installed", "releases": {
                "trixie": state("resolved", Some(&glibc.1), "high")}}
        },
        zlib.0.clone(): {
            // Without the epoch this fix sorts before the image's version.
            "CVE-2026-0004": {"releases": {
                "trixie": state("resolved", Some(&later(upstream)), "high")}},
            "CVE-2026-0005": {"releases": {
                "trixie": state("resolved", Some(&format!("2:{upstream}")), "low**")}}
        },
        gcc.0.clone(): {
            "CVE-2026-0006": {"description": "fixed in an earlier version", "releases": {
                "trixie": state("resolved", Some("14.1.0-1"), "high")}}
        },
        tzdata.0.clone(): {
            "CVE-2026-0007": {"description": "never affected", "releases": {
                "trixie": state("resolved", Some("0"), "unimportant")}}
        },
        zstd.0.clone(): {
            "CVE-2026-0008": {"description": "unimportant", "releases": {
                "trixie": state("open", None, "unimportant")}},
            "CVE-2026-0009": {"description": "not triaged", "releases": {
                "trixie": state("undetermined", None, "not yet assigned")}}
        },
        "bash": {
            "CVE-2026-0010": {"releases": {"trixie": state("open", None, "high")}}
        }
    });
    std::fs::write(d.join("tracker.json"), data.to_string()).unwrap();

    let (code, report) = scan(d, &["oci:out:cc", "--db", "tracker.json"]);
    assert_eq!(code, Some(0));
    let found: Vec<(String, String, String, String, Option<String>)> =
        report["scan"]["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                (
                    s("package"),
                    s("cve"),
                    s("severity"),
                    s("status"),
                    v["fixed_version"].as_str().map(String::from),
                )
            })
            .collect();
    let expect = |p: &str, cve: &str, sev: &str, status: &str, fix: Option<String>| {
        (p.into(), cve.into(), sev.into(), status.into(), fix)
    };
    // Binaries of one source are each reported: glibc's libc6, and libc-bin, whose C.UTF-8
    // locale the image keeps.
    assert_eq!(
        found,
        [
            expect("libssl3t64", "CVE-2026-0001", "high", "open", None),
            expect(
                "libc-bin",
                "CVE-2026-0002",
                "medium",
                "fixed",
                Some(later(&glibc.1))
            ),
            expect(
                "libc6",
                "CVE-2026-0002",
                "medium",
                "fixed",
                Some(later(&glibc.1))
            ),
            expect(
                "zlib1g",
                "CVE-2026-0005",
                "low",
                "fixed",
                Some(format!("2:{upstream}"))
            ),
            expect("libzstd1", "CVE-2026-0008", "negligible", "open", None),
            expect("libzstd1", "CVE-2026-0009", "unknown", "undetermined", None),
        ]
    );
    assert_eq!(report["total"], 6);
    assert_eq!(
        report["counts"],
        json!({"critical": 0, "high": 1, "medium": 2, "low": 1, "negligible": 1, "unknown": 1})
    );
    assert_eq!(report["scan"]["release"], "trixie");
    assert_eq!(report["scan"]["scanned"], packages.len());

    // The text report: a summary line like the scanners users know, a table per package.
    let text = run(Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(d)
        .args(["--cache"])
        .arg(common::cache())
        .args(["scan", "oci:out:cc", "--db", "tracker.json"]));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(
            "Total: 6 (UNKNOWN: 1, NEGLIGIBLE: 1, LOW: 1, MEDIUM: 2, HIGH: 1, CRITICAL: 0)"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nlibc6 {}", glibc.1)) && text.contains("fixed in"),
        "{text}"
    );

    // --fail-on: the high one fails the gate, nothing is critical.
    assert_eq!(
        scan(
            d,
            &["oci:out:cc", "--db", "tracker.json", "--fail-on", "high"]
        )
        .0,
        Some(4)
    );
    assert_eq!(
        scan(
            d,
            &[
                "oci:out:cc",
                "--db",
                "tracker.json",
                "--fail-on",
                "critical"
            ]
        )
        .0,
        Some(0)
    );

    // An image whose packages cannot be seen is not reported clean.
    std::fs::write(
        d.join("bareboat.toml"),
        "from = \"oci:out:cc\"\nremove = [\"/var/lib/dpkg\"]\n",
    )
    .unwrap();
    build(d, &["-o", "oci:out:hidden"]);
    let (code, hidden) = scan(
        d,
        &[
            "oci:out:hidden",
            "--db",
            "tracker.json",
            "--fail-on",
            "high",
        ],
    );
    assert_eq!(code, Some(5));
    assert_eq!(hidden["scan"]["packages_visible"], false);
    fails_with(
        &mut bareboat(d, "scan", &["oci:out:cc", "--db", "no-such.json"]),
        "--db no-such.json: no such file",
    );

    // db update: downloaded from the URL given, checked, kept in the cache, then used.
    let cache = tempfile::tempdir().unwrap();
    let db = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareboat"));
        cmd.current_dir(d)
            .arg("--cache")
            .arg(cache.path())
            .args(["--json", "db"])
            .args(args);
        cmd
    };
    let served = tempfile::tempdir().unwrap();
    std::fs::write(served.path().join("json"), data.to_string()).unwrap();
    std::fs::write(served.path().join("page.html"), "<html>not json</html>").unwrap();
    let server = Server::start(served.path());
    fails_with(&mut db(&["status"]), "no vulnerability data in the cache");
    let url = format!("{}/json", server.url());
    let updated: Value =
        serde_json::from_slice(&run(&mut db(&["update", "--url", &url])).stdout).unwrap();
    assert_eq!(updated["source"]["sources"], 7);
    assert_eq!(updated["source"]["url"], url.as_str());
    let kept = std::path::PathBuf::from(updated["file"].as_str().unwrap());
    assert_eq!(std::fs::read(&kept).unwrap(), data.to_string().as_bytes());
    let status: Value = serde_json::from_slice(&run(&mut db(&["status"])).stdout).unwrap();
    assert_eq!(status["source"]["sha256"], updated["source"]["sha256"]);

    // A page that is not the data, or a download cut short, changes nothing.
    fails_with(
        &mut db(&["update", "--url", &format!("{}/page.html", server.url())]),
        "not the Debian Security Tracker's JSON data",
    );
    server.fault("/json", Fault::Truncate);
    fails_with(&mut db(&["update", "--url", &url]), "download truncated");
    assert_eq!(std::fs::read(&kept).unwrap(), data.to_string().as_bytes());

    // scan reads the cache's data when no --db is given.
    let out = Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(d)
        .arg("--cache")
        .arg(cache.path())
        .args(["--json", "scan", "oci:out:cc"])
        .output()
        .unwrap();
    let from_cache: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_cache["counts"], report["counts"]);
}
