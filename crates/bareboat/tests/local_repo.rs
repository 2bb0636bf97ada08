//! The archive client end to end, through the CLI, against a signed repository that the
//! test generates and serves on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use bareboat_testkit::{DebSpec, Fault, Gpg, Repo, RepoOptions, Server, http_date};

fn packages() -> Vec<DebSpec> {
    vec![
        DebSpec::new("app", "1.0")
            .field("Pre-Depends", "base")
            .field(
                "Depends",
                "libfoo (>= 1.0), awk | gawk, ghost-virtual | libbar",
            ),
        DebSpec::new("base", "1.0"),
        DebSpec::new("libfoo", "1.0"),
        DebSpec::new("libbar", "2:0.5-1"),
        DebSpec::new("mawk", "1.3").field("Provides", "awk"),
        DebSpec::new("gawk", "5.2"),
        DebSpec::new("breaker", "1.0").field("Conflicts", "libfoo (<< 2)"),
        DebSpec::new("needs-missing", "1.0").field("Depends", "nonexistent (>= 2)"),
    ]
}

struct Fixture {
    gpg: Gpg,
    fingerprint: String,
    repo: Repo,
    server: Server,
    work: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(packages(), None, None)
    }

    fn with(
        pkgs: Vec<DebSpec>,
        valid_until: Option<&str>,
        key: Option<(&str, &str, &str)>,
    ) -> Fixture {
        let gpg = Gpg::new();
        let (created, expire, sign_time) = key.unwrap_or(("", "never", ""));
        let fingerprint = gpg.generate(
            "Test Archive <archive@example.invalid>",
            Some(created).filter(|s| !s.is_empty()),
            expire,
        );
        let repo = Repo::write(
            &gpg,
            &RepoOptions {
                suite: "testing-suite",
                fingerprint: &fingerprint,
                sign_time: Some(sign_time).filter(|s| !s.is_empty()),
                valid_until,
            },
            &pkgs,
        );
        let server = Server::start(repo.root.path());
        let work = tempfile::tempdir().unwrap();
        std::fs::write(
            work.path().join("archive-key.asc"),
            gpg.export(&fingerprint),
        )
        .unwrap();
        let f = Fixture {
            gpg,
            fingerprint,
            repo,
            server,
            work,
        };
        f.spec(&["app"], &["base"]);
        f
    }

    fn spec(&self, packages: &[&str], exclude: &[&str]) {
        let list = |v: &[&str]| {
            v.iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        std::fs::write(
            self.work.path().join("bareboat.toml"),
            format!(
                "packages = [{}]\nexclude = [{}]\n\n[[source]]\nurl = \"{}\"\nsuite = \"testing-suite\"\nkeyring = \"archive-key.asc\"\n",
                list(packages),
                list(exclude),
                self.server.url()
            ),
        )
        .unwrap();
    }

    fn cache(&self) -> PathBuf {
        self.work.path().join("cache")
    }

    fn run(&self, args: &[&str]) -> Output {
        bareboat(self.work.path(), &self.cache(), args)
    }

    fn cached(&self, dir: &str) -> Vec<PathBuf> {
        list(&self.cache().join(dir))
    }

    fn publish(&self, pkgs: &[DebSpec]) {
        self.repo.publish(
            &self.gpg,
            &RepoOptions {
                suite: "testing-suite",
                fingerprint: &self.fingerprint,
                sign_time: None,
                valid_until: None,
            },
            pkgs,
        );
    }

    /// No temporary file is left, and the package `name` (cached under the SHA256 that the
    /// repository's index gives it) was not kept.
    fn assert_not_kept(&self, name: &str) {
        assert!(
            self.cached("tmp").is_empty(),
            "temporary files left: {:?}",
            self.cached("tmp")
        );
        let index =
            std::fs::read_to_string(self.repo.dists().join("main/binary-amd64/Packages")).unwrap();
        let stanza = index
            .split("\n\n")
            .find(|s| s.starts_with(&format!("Package: {name}\n")))
            .unwrap_or_else(|| panic!("{name} is not in the test repository"));
        let sha = stanza
            .lines()
            .find_map(|l| l.strip_prefix("SHA256: "))
            .unwrap();
        let path = self.cache().join("debs").join(format!("{sha}.deb"));
        assert!(
            !path.exists(),
            "{name} was kept in the cache at {}",
            path.display()
        );
    }

    /// The cache holds nothing unverified: no leftovers, no packages, no indexes.
    fn assert_cache_clean(&self) {
        assert!(
            self.cached("tmp").is_empty(),
            "temporary files left: {:?}",
            self.cached("tmp")
        );
        assert!(
            self.cached("debs").is_empty(),
            "packages kept: {:?}",
            self.cached("debs")
        );
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn bareboat(cwd: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(cwd)
        .arg("--cache")
        .arg(cache)
        .args(args)
        .env_remove("BAREBOAT_MIRROR")
        .env_remove("BAREBOAT_SECURITY_MIRROR")
        .output()
        .expect("bareboat runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "bareboat failed:\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

#[track_caller]
fn assert_fails_with(o: &Output, needles: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected failure:\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    for n in needles {
        assert!(stderr(o).contains(n), "stderr lacks {n:?}:\n{}", stderr(o));
    }
}

fn lock_json(f: &Fixture) -> serde_json::Value {
    let text = std::fs::read_to_string(f.work.path().join("bareboat.lock")).unwrap();
    let o = f.run(&["--json", "lock", "--no-fetch"]);
    assert_ok(&o);
    assert!(text.contains("[[package]]"));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn good_repository_locks_and_fetches() {
    let f = Fixture::new();
    let o = f.run(&["lock"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("Locked 4 packages"), "{out}");
    assert!(out.contains("base: dropped app Pre-Depends: base"), "{out}");
    assert!(out.contains("Fetched 4 packages: 4 downloaded"), "{out}");

    let lock = lock_json(&f);
    let names: Vec<&str> = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // `awk` is virtual: its provider is chosen before the second alternative; `ghost-virtual`
    // has no provider, so the next alternative is taken.
    assert_eq!(names, ["app", "libbar", "libfoo", "mawk"]);
    let mawk = &lock["packages"][3];
    assert_eq!(mawk["reasons"][0], "dependency of app");
    assert_eq!(lock["packages"][1]["version"], "2:0.5-1");
    assert_eq!(lock["excluded"][0]["name"], "base");
    assert_eq!(f.cached("debs").len(), 4);

    let o = f.run(&["lock", "--check"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("is current"), "{}", stdout(&o));
    let o = f.run(&["lock"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("0 downloaded (0 B), 4 already cached"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn tampered_packages_index_is_refused() {
    let f = Fixture::new();
    for p in f.repo.files_matching("binary-amd64") {
        if p.to_string_lossy().contains("by-hash") || p.ends_with("Packages.xz") {
            let mut bytes = std::fs::read(&p).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&p, bytes).unwrap();
        }
    }
    let o = f.run(&["lock"]);
    assert_fails_with(
        &o,
        &[
            "does not match the signed archive metadata",
            "(main/binary-amd64/Packages.xz)",
        ],
    );
    f.assert_cache_clean();
    assert!(f.cached("indexes").is_empty());
    assert!(
        !f.work.path().join("bareboat.lock").exists(),
        "no lockfile from a failed lock"
    );
}

#[test]
fn tampered_deb_is_refused() {
    let f = Fixture::new();
    let deb = &f.repo.files_matching("libfoo_1.0_amd64.deb")[0];
    let mut bytes = std::fs::read(deb).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(deb, bytes).unwrap();
    let o = f.run(&["lock"]);
    assert_fails_with(
        &o,
        &[
            "libfoo_1.0_amd64.deb",
            "SHA256 does not match",
            "(package libfoo)",
        ],
    );
    f.assert_not_kept("libfoo");
}

#[test]
fn wrong_signing_key_is_refused() {
    let f = Fixture::new();
    // A verification remembered from the right keyring must not vouch for the wrong one.
    assert_ok(&f.run(&["lock", "--no-fetch"]));
    assert_eq!(f.cached("verified").len(), 1);
    std::fs::remove_dir_all(f.cache().join("releases")).unwrap();
    std::fs::create_dir(f.cache().join("releases")).unwrap();
    let other = Gpg::new();
    let fpr = other.generate("Someone Else <else@example.invalid>", None, "never");
    std::fs::write(f.work.path().join("archive-key.asc"), other.export(&fpr)).unwrap();
    let o = f.run(&["lock"]);
    assert_fails_with(
        &o,
        &[
            "InRelease: signature check failed",
            "is not in the keyring",
            "--keyring",
        ],
    );
    f.assert_cache_clean();
    assert!(
        f.cached("releases").is_empty(),
        "an unverified InRelease was kept"
    );
}

#[test]
fn expired_key_is_refused() {
    // Made and used in 2020, expired a day later.
    let f = Fixture::with(
        packages(),
        None,
        Some(("20200101T000000", "1d", "20200101T120000")),
    );
    let o = f.run(&["lock"]);
    assert_fails_with(&o, &["signature check failed", "expired on 2020-01-02"]);
    f.assert_cache_clean();
}

#[test]
fn passed_valid_until_is_refused_unless_overridden() {
    let yesterday = http_date(SystemTime::now() - Duration::from_secs(86400));
    let f = Fixture::with(packages(), Some(&yesterday), None);
    let o = f.run(&["lock"]);
    assert_fails_with(&o, &["Valid-Until", "--no-check-valid-until"]);
    f.assert_cache_clean();
    let o = f.run(&["lock", "--no-check-valid-until"]);
    assert_ok(&o);
}

#[test]
fn truncated_download_is_refused() {
    let f = Fixture::new();
    f.server.fault("libfoo_1.0_amd64.deb", Fault::Truncate);
    let o = f.run(&["lock"]);
    assert_fails_with(
        &o,
        &[
            "download truncated: received",
            "package libfoo",
            "after 4 attempts",
        ],
    );
    f.assert_not_kept("libfoo");
}

#[test]
fn missing_package_names_package_and_url() {
    let f = Fixture::new();
    f.server.fault("mawk_1.3_amd64.deb", Fault::NotFound);
    let o = f.run(&["lock"]);
    let url = format!("{}/pool/main/mawk_1.3_amd64.deb", f.server.url());
    assert_fails_with(&o, &[&url, "not found (HTTP 404)", "package mawk"]);
    assert!(f.cached("tmp").is_empty());
}

#[test]
fn concurrent_locks_share_one_cache() {
    let f = Fixture::new();
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        f.work.path().join("bareboat.toml"),
        other.path().join("bareboat.toml"),
    )
    .unwrap();
    std::fs::copy(
        f.work.path().join("archive-key.asc"),
        other.path().join("archive-key.asc"),
    )
    .unwrap();
    let spawn = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_bareboat"))
            .current_dir(dir)
            .arg("--cache")
            .arg(f.cache())
            .arg("lock")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(f.work.path()), spawn(other.path()));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_ok(&a);
    assert_ok(&b);
    assert_eq!(
        std::fs::read_to_string(f.work.path().join("bareboat.lock")).unwrap(),
        std::fs::read_to_string(other.path().join("bareboat.lock")).unwrap()
    );
    assert_eq!(f.cached("debs").len(), 4);
    assert!(f.cached("tmp").is_empty());
    let o = f.run(&["fetch", "--offline"]);
    assert_ok(&o);
}

#[test]
fn offline_works_after_the_repository_stops() {
    let mut f = Fixture::new();
    assert_ok(&f.run(&["lock"]));
    f.server.stop();
    let o = f.run(&["lock", "--offline"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("4 already cached"), "{}", stdout(&o));
    assert_ok(&f.run(&["fetch", "--offline"]));
    // Without the network, a missing package is a clear error, not a hang.
    let deb = f.cached("debs").pop().unwrap();
    std::fs::remove_file(deb).unwrap();
    let o = f.run(&["fetch", "--offline"]);
    assert_fails_with(
        &o,
        &[
            "is not in the cache, and --offline forbids downloading it",
            "cache import",
        ],
    );
}

#[test]
fn check_and_upgrade_report_version_changes() {
    let f = Fixture::new();
    assert_ok(&f.run(&["lock"]));
    // The archive gains libfoo 1.1 and keeps 1.0: the lock stays current.
    let mut pkgs = packages();
    pkgs.push(DebSpec::new("libfoo", "1.1"));
    f.publish(&pkgs);
    let o = f.run(&["lock", "--check"]);
    assert_ok(&o);
    let o = f.run(&["lock", "--upgrade", "libfoo"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("libfoo 1.0 -> 1.1 (amd64)"),
        "{}",
        stdout(&o)
    );
    // The archive drops the locked version: the lock is out of date.
    let pkgs: Vec<DebSpec> = packages()
        .into_iter()
        .filter(|p| p.name != "libbar")
        .chain([DebSpec::new("libbar", "2:0.6-1")])
        .collect();
    f.publish(&pkgs);
    let o = f.run(&["lock", "--check"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("libbar 2:0.5-1 -> 2:0.6-1"),
        "{}",
        stdout(&o)
    );
    let o = f.run(&["--json", "lock", "--check"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["current"], false);
}

#[test]
fn unsatisfiable_requests_are_explained() {
    let f = Fixture::new();
    f.spec(&["needs-missing"], &[]);
    let o = f.run(&["lock"]);
    assert_fails_with(
        &o,
        &[
            "cannot install the requested packages",
            "nonexistent",
            "needs-missing",
        ],
    );

    f.spec(&["app", "breaker"], &["base"]);
    let o = f.run(&["lock"]);
    assert_fails_with(&o, &["breaker", "libfoo"]);

    f.spec(&["libfoo=9.9"], &[]);
    let o = f.run(&["lock"]);
    assert_fails_with(&o, &["package libfoo has no version 9.9; available: 1.0"]);

    f.spec(&["no-such-package"], &[]);
    let o = f.run(&["lock"]);
    assert_fails_with(&o, &["package no-such-package is not available for amd64"]);
}

#[test]
fn deb_reader_streams_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    for compression in ["xz", "gzip", "zstd", "none"] {
        let mut spec = DebSpec::new("demo", "1:2.0-1").field("Source", "demo-src (2.0-1)");
        spec.compression = Some(compression.into());
        let path = bareboat_testkit::build_deb(dir.path(), &spec);
        let deb = bareboat_apt::deb::Deb::open_file(&path).unwrap();
        assert_eq!(deb.field("Package"), Some("demo"));
        assert_eq!(deb.field("Source"), Some("demo-src (2.0-1)"));
        assert!(
            deb.md5sums().unwrap().contains("usr/share/demo/VERSION"),
            "{compression}"
        );
        let mut names = Vec::new();
        for entry in deb.data().entries().unwrap() {
            names.push(
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        assert!(
            names.contains(&"./usr/share/demo/VERSION".to_string()),
            "{compression}: {names:?}"
        );
    }
    let bad = dir.path().join("bad.deb");
    std::fs::write(&bad, b"!<arch>\nnot really").unwrap();
    let e = bareboat_apt::deb::Deb::open_file(&bad)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("bad.deb: invalid .deb"), "{e}");
}

#[test]
fn spec_errors_name_the_line() {
    let f = Fixture::new();
    std::fs::write(
        f.work.path().join("bareboat.toml"),
        "packages = [\"app\"]\nrelese = \"trixie\"\n",
    )
    .unwrap();
    let o = f.run(&["lock"]);
    assert_fails_with(&o, &["bareboat.toml:2: unknown field `relese`"]);
    let o = f.run(&["lock", "missing.toml"]);
    assert_fails_with(&o, &["spec missing.toml not found", "catalog:static"]);
}
