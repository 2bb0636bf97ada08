//! The archive client end to end, through the CLI, against a signed repository that the
//! test generates and serves on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

mod common;

use bareboat_testkit::{
    CachingProxy, DebSpec, Fault, Gpg, Repo, RepoOptions, Server, http_date, tar_of,
};

/// The packages, with libfoo moved on to 2.0.
fn with_libfoo_2() -> Vec<DebSpec> {
    packages()
        .into_iter()
        .map(|p| match p.name.as_str() {
            "libfoo" => DebSpec::new("libfoo", "2.0"),
            _ => p,
        })
        .collect()
}

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

/// The test repository's suite name beside its codename `testing-suite`, as Debian's
/// `stable` stands beside `trixie`.
const SUITE_NAME: &str = "teststable";

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
                suite_name: Some(SUITE_NAME),
                contents: true,
                ..RepoOptions::default()
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
        self.publish_with(pkgs, None, true);
    }

    /// Publishes `pkgs` as an archive update dated `date` (now unless given), with or
    /// without a Contents index.
    fn publish_with(&self, pkgs: &[DebSpec], date: Option<&str>, contents: bool) {
        self.repo.publish(
            &self.gpg,
            &RepoOptions {
                suite: "testing-suite",
                fingerprint: &self.fingerprint,
                suite_name: Some(SUITE_NAME),
                date,
                contents,
                ..RepoOptions::default()
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
fn an_older_signed_release_replayed_by_the_mirror_moves_nothing_back() {
    let f = Fixture::new();
    f.publish(&with_libfoo_2());
    assert_ok(&f.run(&["lock"]));
    let lock = std::fs::read_to_string(f.work.path().join("bareboat.lock")).unwrap();
    assert!(lock.contains("version = \"2.0\""), "{lock}");
    let cached_path = || -> PathBuf {
        let mut releases: Vec<PathBuf> = f
            .cached("releases")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "InRelease"))
            .collect();
        assert_eq!(releases.len(), 1, "{releases:?}");
        releases.pop().unwrap()
    };
    let before = std::fs::read(cached_path()).unwrap();

    // Yesterday's InRelease, validly signed, with libfoo 1.0: a replay, or a mirror behind
    // another. The newer InRelease this cache holds is used, and the command says so.
    let yesterday = http_date(SystemTime::now() - Duration::from_secs(86400));
    f.publish_with(&packages(), Some(&yesterday), true);
    let o = f.run(&["lock"]);
    assert_ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("serves a Release dated {yesterday}"))
            && err.contains("the cached one is used"),
        "{err}"
    );
    assert!(!stdout(&o).contains("2.0 -> 1.0"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read(cached_path()).unwrap(),
        before,
        "the cached InRelease is kept"
    );
    assert_eq!(
        std::fs::read_to_string(f.work.path().join("bareboat.lock")).unwrap(),
        lock,
        "the lockfile is kept"
    );
    // A machine whose cache never saw the newer release still has the lockfile's date.
    let fresh = f.work.path().join("fresh-cache");
    let o = bareboat(f.work.path(), &fresh, &["lock"]);
    assert_fails_with(
        &o,
        &["older than the one dated", "that the lockfile relied on"],
    );
    // And this machine's cache remembers the date without the lockfile, and without the
    // newer InRelease itself.
    std::fs::rename(
        f.work.path().join("bareboat.lock"),
        f.work.path().join("kept.lock"),
    )
    .unwrap();
    std::fs::remove_file(cached_path()).unwrap();
    let o = f.run(&["lock", "--no-fetch"]);
    assert_fails_with(
        &o,
        &[
            "that this machine's cache relied on",
            "--allow-older-release",
        ],
    );
    std::fs::rename(
        f.work.path().join("kept.lock"),
        f.work.path().join("bareboat.lock"),
    )
    .unwrap();
    // A snapshot mirror, on purpose.
    let o = f.run(&["lock", "--allow-older-release"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("libfoo 2.0 -> 1.0"), "{}", stdout(&o));
}

#[test]
fn a_hostile_lockfile_is_refused_before_it_names_a_file() {
    let f = Fixture::new();
    assert_ok(&f.run(&["lock"]));
    // Beside the cache, as `../../victim/important` from its debs/ directory.
    let victim = f.work.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("important.deb"), b"precious").unwrap();
    let path = f.work.path().join("bareboat.lock");
    let lock = std::fs::read_to_string(&path).unwrap();
    let sha = lock
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    std::fs::write(&path, lock.replace(&sha, "../../victim/important")).unwrap();
    for args in [
        &["fetch", "--offline"][..],
        &["fetch"],
        &["build", "--offline", "-o", "oci:out"],
        &["lock", "--check"],
    ] {
        let o = f.run(args);
        assert_fails_with(
            &o,
            &[
                "invalid lockfile",
                "\"../../victim/important\" is not 64 lowercase hex digits",
                "run it again rather than editing this one",
            ],
        );
        assert!(!stdout(&o).contains("cached"), "{args:?}: {}", stdout(&o));
        assert_eq!(
            std::fs::read(victim.join("important.deb")).unwrap(),
            b"precious",
            "{args:?}"
        );
    }
    // A pool path that leaves the archive is refused the same way.
    std::fs::write(
        &path,
        lock.replacen("filename = \"pool/", "filename = \"../../", 1),
    )
    .unwrap();
    assert_fails_with(
        &f.run(&["fetch"]),
        &["is not a .deb path under the archive's pool/"],
    );
}

#[test]
fn a_base_without_history_keeps_its_layers_credited_and_a_bad_version_is_named() {
    let f = Fixture::new();
    let base = |status: &[u8]| {
        let dir = f.work.path().join("base");
        let _ = std::fs::remove_dir_all(&dir);
        // Two layers and a config that records no history for them.
        common::write_image(
            &dir,
            "t",
            &[
                tar_of(&[("var/lib/dpkg/", b""), ("var/lib/dpkg/status", status)]),
                tar_of(&[("etc/", b""), ("etc/hostname", b"base\n")]),
            ],
        );
    };
    base(b"Package: base\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n");
    std::fs::write(
        f.work.path().join("bareboat.toml"),
        format!(
            "from = \"oci:base:t\"\npackages = [\"libfoo\"]\n\n[[source]]\nurl = \"{}\"\nsuite = \"testing-suite\"\nkeyring = \"archive-key.asc\"\n",
            f.server.url()
        ),
    )
    .unwrap();
    assert_ok(&f.run(&["build", "-o", "oci:out:app"]));
    let o = Command::new(common::tool("skopeo"))
        .current_dir(f.work.path())
        .args(["inspect", "--config", "oci:out:app"])
        .output()
        .unwrap();
    assert_ok(&o);
    let config: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let made: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .map(|h| h["created_by"].as_str().unwrap_or_default())
        .collect();
    let layers = config["rootfs"]["diff_ids"].as_array().unwrap().len();
    assert_eq!(made.len(), layers, "one history entry a layer: {made:?}");
    assert!(
        made[..2].iter().all(|c| c.contains("base image")),
        "{made:?}"
    );
    assert!(
        made[2..].iter().all(|c| c.starts_with("bareboat: ")),
        "{made:?}"
    );
    // inspect credits each layer with what made it.
    let o = f.run(&["--json", "inspect", "oci:out:app"]);
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let credited = &report["layers"].as_array().unwrap()[2]["created_by"];
    assert!(credited.as_str().unwrap().contains("libfoo"), "{credited}");

    // A base whose status holds a version that does not parse (a folded line) is refused
    // naming the package, before the solver sees it.
    base(b"Package: base\nStatus: install ok installed\nVersion: 1.0\n evil\nArchitecture: amd64\n\n");
    std::fs::remove_file(f.work.path().join("bareboat.lock")).unwrap();
    let o = f.run(&["build", "-o", "oci:refused:app"]);
    assert_fails_with(
        &o,
        &[
            "the base image's dpkg database: package base: invalid version \"1.0 evil\"",
            "' ' is not allowed in a version",
        ],
    );
    assert!(
        !stderr(&o).contains("cannot be installed"),
        "{}",
        stderr(&o)
    );
    assert!(!f.work.path().join("refused").exists());
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
    assert_fails_with(
        &o,
        &[
            &url,
            "not found (HTTP 404): the mirror lacks mawk 1.3 (amd64)",
            "--mirror",
            "bareboat lock --upgrade",
        ],
    );
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
        for entry in tar::Archive::new(deb.data_stream()).entries().unwrap() {
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

/// Packages shipping the libraries a C program linked with `-lssl -lcrypto -lz` needs, named
/// as Debian names them, and a decoy that has the first name Policy suggests for libssl but
/// ships none of its files.
fn library_packages() -> Vec<DebSpec> {
    let lib = |path: &str| (path.to_string(), b"\x7fELF not really".to_vec());
    let mut libc6 = DebSpec::new("libc6", "2.41-12");
    libc6.files.push(lib("usr/lib/x86_64-linux-gnu/libc.so.6"));
    libc6.files.push(lib("usr/lib64/ld-linux-x86-64.so.2"));
    let mut libssl = DebSpec::new("libssl3", "3.5.4-1").field("Depends", "libc6");
    libssl
        .files
        .push(lib("usr/lib/x86_64-linux-gnu/libssl.so.3"));
    libssl
        .files
        .push(lib("usr/lib/x86_64-linux-gnu/libcrypto.so.3"));
    let mut zlib = DebSpec::new("zlib1g", "1:1.3.dfsg+really1.3.1-1").field("Depends", "libc6");
    zlib.files.push(lib("usr/lib/x86_64-linux-gnu/libz.so.1"));
    let decoy = DebSpec::new("libssl3t64", "3.5.4-1");
    vec![DebSpec::new("base", "1.0"), libc6, libssl, zlib, decoy]
}

/// A C program that links libssl, libcrypto and zlib, and a spec that adds it to an image
/// from the fixture's repository.
fn add_linked_program(f: &Fixture) {
    let d = f.work.path();
    std::fs::write(
        d.join("prog.c"),
        "#include <openssl/ssl.h>\n#include <openssl/evp.h>\n#include <zlib.h>\n\
         int main(void) { SSL_CTX *c = SSL_CTX_new(TLS_method()); \
         return zlibVersion()[0] == 0 || !c || !EVP_sha256(); }\n",
    )
    .unwrap();
    let out = Command::new("gcc")
        .current_dir(d)
        .args(["prog.c", "-o", "prog", "-lssl", "-lcrypto", "-lz"])
        .output()
        .expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc (with libssl-dev and zlib1g-dev) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        d.join("bareboat.toml"),
        format!(
            "packages = [\"base\"]\nentrypoint = [\"/app/prog\"]\n\n[[files]]\nsrc = \"prog\"\ndst = \"/app/prog\"\n\n\
             [[source]]\nurl = \"{}\"\nsuite = \"testing-suite\"\nkeyring = \"archive-key.asc\"\n",
            f.server.url()
        ),
    )
    .unwrap();
}

/// The lock's packages that were added for added files, each with its reasons.
fn needed_packages(f: &Fixture) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(f.work.path().join("bareboat.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    let mut found: Vec<(String, Vec<String>)> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let reasons = p["reasons"].as_array().unwrap().iter();
            let reasons = reasons.map(|r| r.as_str().unwrap().to_string()).collect();
            (p["name"].as_str().unwrap().to_string(), reasons)
        })
        .filter(|(_, reasons): &(String, Vec<String>)| {
            reasons.iter().any(|r| r.starts_with("needed: "))
        })
        .collect();
    found.sort();
    found
}

fn sha256_of(path: &Path) -> String {
    bareboat_testkit::sha256(&std::fs::read(path).unwrap())
}

/// Today's state of a real mirror: the InRelease is from one update, the Contents file at
/// its canonical path from an earlier one, and the by-hash copy the InRelease names is
/// missing. The suite's other name still serves the earlier InRelease, which lists the file.
#[test]
fn an_out_of_sync_contents_index_is_accepted_when_another_signed_release_lists_it() {
    let f = Fixture::with(library_packages(), None, None);
    let earlier = http_date(SystemTime::now() - Duration::from_secs(70 * 86400));
    f.publish_with(&library_packages(), Some(&earlier), true);
    f.repo.copy_dists(SUITE_NAME);
    let contents = f.repo.dists().join("main/Contents-amd64.gz");
    let old_contents = std::fs::read(&contents).unwrap();
    let mut newer = library_packages();
    newer.push(DebSpec::new("newcomer", "1.0"));
    f.publish(&newer);
    let listed = sha256_of(&contents);
    std::fs::remove_file(f.repo.dists().join("main/by-hash/SHA256").join(&listed)).unwrap();
    std::fs::write(&contents, &old_contents).unwrap();
    let served = bareboat_testkit::sha256(&old_contents);
    add_linked_program(&f);

    let o = f.run(&["lock"]);
    assert_ok(&o);
    let err = stdout(&o);
    assert!(
        err.contains("note: ") && err.contains("Contents-amd64.gz"),
        "{err}"
    );
    assert!(
        err.contains(&format!("dists/{SUITE_NAME}/InRelease")),
        "{err}"
    );
    let release = std::fs::read_to_string(f.repo.dists().join("Release")).unwrap();
    let current = release
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap();
    assert!(
        err.contains(current) && err.contains(&earlier),
        "both dates: {err}"
    );
    let needed = needed_packages(&f);
    let names: Vec<&str> = needed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["libc6", "libssl3", "zlib1g"]);
    for (name, reasons) in &needed {
        assert!(
            reasons.iter().all(|r| r.ends_with("(found by contents)")),
            "{name}: {reasons:?}"
        );
    }
    // The complete answer of the wrong size is asked for once more, not four times.
    assert_eq!(f.server.requests("GET", "main/Contents-amd64.gz"), 2);
    // Cached under its own SHA256 with a record of what vouched for it, never under the
    // SHA256 the current InRelease lists.
    assert!(!f.cache().join(format!("indexes/{listed}.idx")).exists());
    assert!(f.cache().join(format!("indexes/{served}.idx")).exists());
    let vouch = std::fs::read_to_string(f.cache().join(format!("vouches/{listed}.txt"))).unwrap();
    assert!(
        vouch.contains(&served) && vouch.contains(SUITE_NAME),
        "{vouch}"
    );

    // Offline, the vouched copy serves, and says so.
    std::fs::remove_file(f.work.path().join("bareboat.lock")).unwrap();
    let o = f.run(&["lock", "--offline"]);
    assert_ok(&o);
    assert!(stdout(&o).contains(&earlier), "{}", stdout(&o));
    assert_eq!(needed_packages(&f).len(), 3);
    // Online again, the current InRelease is checked first; the mirror still serves the
    // same file, so it is not downloaded again.
    std::fs::remove_file(f.work.path().join("bareboat.lock")).unwrap();
    assert_ok(&f.run(&["lock"]));
    assert_eq!(f.server.requests("GET", "main/Contents-amd64.gz"), 2);
    assert_eq!(f.server.requests("HEAD", "main/Contents-amd64.gz"), 1);
    assert_eq!(needed_packages(&f).len(), 3);
}

/// A mirror that updated InRelease but still serves the detached-signed Release of the
/// update before, with that update's Contents file.
#[test]
fn an_out_of_sync_contents_index_is_accepted_when_the_detached_release_lists_it() {
    let f = Fixture::with(library_packages(), None, None);
    let earlier = http_date(SystemTime::now() - Duration::from_secs(3 * 86400));
    f.publish_with(&library_packages(), Some(&earlier), true);
    let kept = ["Release", "Release.gpg", "main/Contents-amd64.gz"]
        .map(|name| (name, std::fs::read(f.repo.dists().join(name)).unwrap()));
    let mut newer = library_packages();
    newer.push(DebSpec::new("newcomer", "1.0"));
    f.publish(&newer);
    let listed = sha256_of(&f.repo.dists().join("main/Contents-amd64.gz"));
    std::fs::remove_file(f.repo.dists().join("main/by-hash/SHA256").join(&listed)).unwrap();
    for (name, bytes) in &kept {
        std::fs::write(f.repo.dists().join(name), bytes).unwrap();
    }
    add_linked_program(&f);
    let o = f.run(&["lock"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("dists/testing-suite/Release (dated") && out.contains(&earlier),
        "{out}"
    );
    assert_eq!(needed_packages(&f).len(), 3);

    // A Release.gpg that does not sign that Release vouches for nothing: the Contents index
    // is left out, with the reason, and the needs are found by package name.
    let mut forged = kept[0].1.clone();
    forged.extend_from_slice(b"Comment: altered\n");
    std::fs::write(f.repo.dists().join("Release"), forged).unwrap();
    std::fs::remove_dir_all(f.cache()).unwrap();
    let o = f.run(&["lock"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("the mirror is out of sync"), "{out}");
    assert!(out.contains("found by package name instead"), "{out}");
    for (name, reasons) in needed_packages(&f) {
        assert!(
            reasons
                .iter()
                .all(|r| r.ends_with("(found by package-name)")),
            "{name}: {reasons:?}"
        );
    }
}

#[test]
fn without_a_contents_index_libraries_are_found_by_package_name() {
    let f = Fixture::with(library_packages(), None, None);
    f.publish_with(&library_packages(), None, false);
    add_linked_program(&f);
    let o = f.run(&["lock"]);
    assert_ok(&o);
    let needed = needed_packages(&f);
    let names: Vec<&str> = needed.iter().map(|(n, _)| n.as_str()).collect();
    // libssl3t64 is the first name Policy suggests for libssl.so.3, but its own file list
    // does not ship it.
    assert_eq!(names, ["libc6", "libssl3", "zlib1g"]);
    for (name, reasons) in &needed {
        assert!(
            reasons
                .iter()
                .all(|r| r.ends_with("(found by package-name)")),
            "{name}: {reasons:?}"
        );
    }
    let libssl = &needed[1].1;
    assert!(
        libssl.iter().any(|r| r.contains("libcrypto.so.3")) && libssl.len() == 2,
        "{libssl:?}"
    );

    // A library no package is named after is an error naming it and the fix.
    f.publish_with(&library_packages()[..3], None, false);
    let o = f.run(&["lock"]);
    assert_fails_with(&o, &["/app/prog needs libz.so.1", "packages = [...]"]);
}

#[test]
fn a_packages_index_from_an_older_release_is_refused_as_out_of_sync() {
    let f = Fixture::new();
    f.repo.copy_dists(SUITE_NAME);
    let index = f.repo.dists().join("main/binary-amd64/Packages.xz");
    let old_index = std::fs::read(&index).unwrap();
    let mut newer = packages();
    newer.push(DebSpec::new("newcomer", "1.0"));
    f.publish(&newer);
    let listed = std::fs::metadata(&index).unwrap().len();
    for name in ["Packages", "Packages.xz"] {
        let path = f.repo.dists().join("main/binary-amd64").join(name);
        let by_hash = f.repo.dists().join("main/binary-amd64/by-hash/SHA256");
        std::fs::remove_file(by_hash.join(sha256_of(&path))).unwrap();
    }
    std::fs::write(&index, &old_index).unwrap();
    let o = f.run(&["lock"]);
    let release = std::fs::read_to_string(f.repo.dists().join("Release")).unwrap();
    let date = release
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap();
    assert_fails_with(
        &o,
        &[
            "(main/binary-amd64/Packages.xz): the mirror is out of sync",
            &format!("dated {date}"),
            &format!("lists {listed} bytes with SHA256"),
            &format!("served {} bytes with SHA256", old_index.len()),
            "try again later",
            "--mirror",
        ],
    );
    assert_eq!(f.server.requests("GET", "main/binary-amd64/Packages.xz"), 2);
    assert!(f.cached("indexes").is_empty());
    assert!(!f.work.path().join("bareboat.lock").exists());
}

/// The SHA256 the repository's Release lists for `path`.
fn listed_sha256(f: &Fixture, path: &str) -> String {
    let release = std::fs::read_to_string(f.repo.dists().join("Release")).unwrap();
    release
        .lines()
        .filter(|l| l.ends_with(&format!(" {path}")))
        .find_map(|l| l.split_whitespace().next().filter(|h| h.len() == 64))
        .unwrap()
        .to_string()
}

#[test]
fn a_cache_archive_moves_a_cache_offline_but_cannot_bring_a_forged_index() {
    let mut f = Fixture::new();
    assert_ok(&f.run(&["lock"]));
    let archive = f.work.path().join("cache.tar");
    assert_ok(&f.run(&["cache", "export", archive.to_str().unwrap()]));
    f.server.stop();

    // A machine with no network: the imported index files are checked against the signed
    // Release and parsed again, and lock and build work offline.
    let offline = f.work.path().join("offline-cache");
    let import = |cache: &Path, file: &Path| {
        bareboat(
            f.work.path(),
            cache,
            &["cache", "import", file.to_str().unwrap()],
        )
    };
    assert_ok(&import(&offline, &archive));
    std::fs::remove_file(f.work.path().join("bareboat.lock")).unwrap();
    assert_ok(&bareboat(f.work.path(), &offline, &["lock", "--offline"]));
    let o = bareboat(
        f.work.path(),
        &offline,
        &["build", "--offline", "-o", "oci:out:app"],
    );
    assert_ok(&o);
    // What it built is the image: oci-image-tool validates it, umoci unpacks it with every
    // diff_id checked, and its status.d lists exactly the lock's packages.
    assert!(stdout(&o).contains("Built sha256:"), "{}", stdout(&o));
    let bundle = common::unpack(f.work.path(), "out", "app");
    let listed: std::collections::BTreeSet<String> =
        (std::fs::read_dir(bundle.join("rootfs/var/lib/dpkg/status.d")).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".md5sums"))
            .collect();
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(f.work.path().join("bareboat.lock")).unwrap())
            .unwrap();
    let locked: std::collections::BTreeSet<String> = (lock["package"].as_array().unwrap().iter())
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, locked);

    // The attack: the same archive plus a parsed index, named by the SHA256 of the signed
    // Packages.xz, that lists a rebuilt libfoo carrying a planted file, and that package.
    let evil = tempfile::tempdir().unwrap();
    let mut planted = DebSpec::new("libfoo", "1.0");
    planted.files.push(("etc/planted".into(), b"evil".to_vec()));
    let deb = bareboat_testkit::build_deb(evil.path(), &planted);
    let deb_bytes = std::fs::read(&deb).unwrap();
    let deb_sha = bareboat_testkit::sha256(&deb_bytes);
    let text = std::fs::read_to_string(f.repo.dists().join("main/binary-amd64/Packages")).unwrap();
    let forged: String = text
        .split("\n\n")
        .map(|stanza| {
            if !stanza.starts_with("Package: libfoo\n") {
                return stanza.to_string();
            }
            stanza
                .lines()
                .map(|l| match l.split_once(": ") {
                    Some(("SHA256", _)) => format!("SHA256: {deb_sha}"),
                    Some(("Size", _)) => format!("Size: {}", deb_bytes.len()),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let index = bareboat_apt::index::PackageIndex::parse_text(&forged, "forged").unwrap();
    let listed = listed_sha256(&f, "main/binary-amd64/Packages.xz");
    std::fs::create_dir_all(evil.path().join("indexes")).unwrap();
    std::fs::create_dir_all(evil.path().join("debs")).unwrap();
    let mut bytes = Vec::new();
    index.write_to(&mut bytes).unwrap();
    std::fs::write(evil.path().join(format!("indexes/{listed}.idx")), bytes).unwrap();
    std::fs::rename(&deb, evil.path().join(format!("debs/{deb_sha}.deb"))).unwrap();
    let evil_archive = evil.path().join("evil.tar");
    std::fs::copy(&archive, &evil_archive).unwrap();
    let out = Command::new("tar")
        .current_dir(evil.path())
        .arg("-rf")
        .arg(&evil_archive)
        .args([
            format!("indexes/{listed}.idx"),
            format!("debs/{deb_sha}.deb"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let victim = f.work.path().join("victim-cache");
    let o = import(&victim, &evil_archive);
    assert_fails_with(&o, &["indexes/", "parsed indexes cannot be checked"]);
    // What the import kept before the refusal was checked: an offline lock reads the signed
    // Packages file again and never names the planted package.
    std::fs::remove_file(f.work.path().join("bareboat.lock")).unwrap();
    assert_ok(&bareboat(f.work.path(), &victim, &["lock", "--offline"]));
    let lock = std::fs::read_to_string(f.work.path().join("bareboat.lock")).unwrap();
    assert!(
        !lock.contains(&deb_sha),
        "the forged index was used:\n{lock}"
    );
}

/// Runs bareboat with a time limit: an input that makes it read without end must fail the
/// test, not hang it.
fn run_limited(f: &Fixture, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(f.work.path())
        .arg("--cache")
        .arg(f.cache())
        .args(args)
        .env_remove("BAREBOAT_MIRROR")
        .output()
        .expect("timeout runs")
}

#[test]
fn hostile_specs_are_refused_naming_the_problem() {
    let f = Fixture::new();
    let source = format!(
        "[[source]]\nurl = \"{}\"\nsuite = \"testing-suite\"\nkeyring = \"archive-key.asc\"\n",
        f.server.url()
    );
    let cases: &[(&str, &[&str])] = &[
        (
            "[[users]]\nname = \"app\"\nuid = 1000\nhome = \"/x\\nevil:x:0:0::/:/bin/sh\"\n",
            &["bareboat.toml:", "home", "/etc/passwd cannot hold"],
        ),
        (
            "[[users]]\nname = \"app\"\nuid = 1000\nhome = \"/home/a:b\"\n",
            &["home", "':'"],
        ),
        (
            "[[groups]]\nname = \"web\\nstaff:x:50:app\"\ngid = 2000\n",
            &["group name", "is not an account name"],
        ),
        (
            "[[users]]\nname = \"App.1\"\nuid = 1000\n",
            &["user name", "[a-z_][a-z0-9_-]*"],
        ),
        ("[[users]]\nname = \"toor\"\nuid = 0\n", &["uid 0", "root"]),
        (
            "[[users]]\nname = \"app\"\nuid = 1000\n[[users]]\nname = \"app\"\nuid = 1001\n",
            &["repeats user \"app\""],
        ),
        (
            "[[users]]\nname = \"app\"\nuid = 1000\n[[users]]\nname = \"web\"\nuid = 1000\n",
            &["repeats user \"app\" with uid 1000"],
        ),
        (
            "[[groups]]\nname = \"web\"\ngid = 2000\n[[groups]]\nname = \"www\"\ngid = 2000\n",
            &["repeats group \"web\""],
        ),
    ];
    for (extra, needles) in cases {
        std::fs::write(
            f.work.path().join("bareboat.toml"),
            format!("packages = [\"app\"]\nexclude = [\"base\"]\n{extra}{source}"),
        )
        .unwrap();
        let o = f.run(&["lock"]);
        assert_fails_with(&o, needles);
    }
    for env in [
        "\"A=B\" = \"x\"",
        "\"A\\u0000B\" = \"x\"",
        "A = \"x\\u0000y\"",
    ] {
        std::fs::write(
            f.work.path().join("bareboat.toml"),
            format!("packages = [\"app\"]\nexclude = [\"base\"]\nenv = {{ {env} }}\n{source}"),
        )
        .unwrap();
        assert_fails_with(
            &f.run(&["lock"]),
            &["bareboat.toml:3", "env", "without '='"],
        );
    }

    // Variables cost a pass, not the square of one: counted in instructions, as valgrind
    // counts them, a build with four times as many variables does about four times the
    // work that they add (the square would be sixteen).
    let with_variables = |n: usize| {
        let mut spec = String::from("packages = [\"app\"]\nexclude = [\"base\"]\n");
        spec.push_str(&source);
        spec.push_str("\n[env]\n");
        for i in 0..n {
            spec.push_str(&format!("V{i} = \"{i}\"\n"));
        }
        std::fs::write(f.work.path().join("bareboat.toml"), spec).unwrap();
    };
    let instructions = |n: usize| -> u64 {
        with_variables(n);
        let out = common::run(
            Command::new(common::tool("valgrind"))
                .current_dir(f.work.path())
                .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
                .arg(env!("CARGO_BIN_EXE_bareboat"))
                .arg("--cache")
                .arg(f.cache())
                .args(["build", "-o", "oci:counted:x"])
                .env_remove("BAREBOAT_MIRROR"),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let collected = err.lines().find_map(|l| l.split_once("Collected : "));
        collected
            .unwrap_or_else(|| panic!("{err}"))
            .1
            .trim()
            .parse()
            .unwrap()
    };
    // The first build fills the cache: the count starts from a warm one.
    instructions(0);
    let none = instructions(0);
    let (few, many) = (instructions(10_000) - none, instructions(40_000) - none);
    eprintln!("variables cost {few} instructions for 10,000 and {many} for 40,000");
    assert!(
        many < 6 * few,
        "{many} instructions for 40,000 variables, {few} for 10,000"
    );

    // A hundred thousand reach the config.
    with_variables(100_000);
    let o = run_limited(&f, &["--json", "build", "-o", "oci:many:x"]);
    assert_ok(&o);
    let index = std::fs::read_to_string(f.work.path().join("many/index.json")).unwrap();
    assert!(index.contains("\"x\""), "{index}");
    // Every variable reached the image's config, each with its value, once.
    let layout = f.work.path().join("many");
    let blob = |digest: &str| {
        let path = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(path).unwrap()).unwrap()
    };
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(manifest["config"]["digest"].as_str().unwrap());
    let env: Vec<&str> = (config["config"]["Env"].as_array().unwrap().iter())
        .map(|e| e.as_str().unwrap())
        .filter(|e| e.starts_with('V'))
        .collect();
    assert_eq!(env.len(), 100_000);
    let wanted: std::collections::BTreeSet<String> =
        (0..100_000).map(|i| format!("V{i}={i}")).collect();
    let got: std::collections::BTreeSet<String> = env.iter().map(|e| e.to_string()).collect();
    assert_eq!(got, wanted);

    // Files named by the spec are read only when they are regular files, and only so far.
    std::fs::write(
        f.work.path().join("bareboat.toml"),
        format!(
            "packages = [\"app\"]\nexclude = [\"base\"]\n{}",
            source.replace("archive-key.asc", "/dev/zero")
        ),
    )
    .unwrap();
    let o = run_limited(&f, &["lock"]);
    assert_fails_with(&o, &["/dev/zero", "not a regular file"]);
    std::fs::write(f.work.path().join("big.pem"), vec![b'A'; 5 << 20]).unwrap();
    for (ca, needle) in [("/dev/zero", "not a regular file"), ("big.pem", "limit")] {
        std::fs::write(
            f.work.path().join("bareboat.toml"),
            format!("packages = [\"app\"]\nexclude = [\"base\"]\nca_certs = [\"{ca}\"]\n{source}"),
        )
        .unwrap();
        let o = run_limited(&f, &["build", "-o", "oci:out:x"]);
        assert_fails_with(&o, &["ca_certs", needle]);
    }
}

/// Copies the directory `from` to `to`, which must not exist.
fn copy_tree(from: &Path, to: &Path) {
    let o = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert_ok(&o);
}

#[test]
fn a_rebuild_accepts_the_older_release_its_provenance_names() {
    let f = Fixture::new();
    let w = f.work.path();
    let with_password = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bareboat"))
            .current_dir(w)
            .arg("--cache")
            .arg(f.cache())
            .args(args)
            .env("BAREBOAT_KEY_PASSWORD", "pw")
            .env_remove("BAREBOAT_MIRROR")
            .output()
            .unwrap()
    };
    assert_ok(&with_password(&["key", "generate"]));
    let attest = ["--attest", "slsaprovenance1", "--key", "cosign.key"];
    assert_ok(&with_password(
        &[&["build"][..], &attest, &["-o", "oci:out:app"]].concat(),
    ));
    // The day's archive, kept as a snapshot mirror keeps it.
    let snapshot = w.join("snapshot");
    copy_tree(f.repo.root.path(), &snapshot);

    // The archive moves on, and this machine's cache relies on the newer release.
    let tomorrow = http_date(SystemTime::now() + Duration::from_secs(86400));
    f.publish_with(&packages(), Some(&tomorrow), true);
    assert_ok(&f.run(&["lock", "--no-fetch"]));

    // The snapshot is served again: an older release, which a lock passes over for the
    // newer one the cache holds...
    let root = f.repo.root.path();
    std::fs::remove_dir_all(root).unwrap();
    copy_tree(&snapshot, root);
    let o = f.run(&["lock", "--no-fetch"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("the cached one is used"),
        "{}",
        stderr(&o)
    );
    // ...and a rebuild takes, as its provenance names it by its SHA256: each package
    // is checked against its signed indexes, and the digest comes out the same.
    let o = with_password(&[
        "--json",
        "rebuild",
        "--key",
        "cosign.pub",
        "--keyring",
        "archive-key.asc",
        "oci:out:app",
    ]);
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["reproduced"], true, "{report}");
    assert_eq!(
        report["archive"]["matched"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert!(
        report["archive"]["moved"].as_array().unwrap().is_empty(),
        "{report}"
    );
}

#[test]
fn an_app_rebased_onto_a_base_of_newer_packages_keeps_its_layer_runs_and_says_so() {
    let f = Fixture::new();
    let w = f.work.path();
    let spec = |name: &str, body: &str| {
        let text = format!(
            "{body}\n\n[[source]]\nurl = \"{}\"\nsuite = \"testing-suite\"\nkeyring = \"archive-key.asc\"\n",
            f.server.url()
        );
        std::fs::write(w.join(name), text).unwrap();
    };
    std::fs::write(
        w.join("hello.c"),
        "#include <stdio.h>\nint main(void){puts(\"on the new base\");}\n",
    )
    .unwrap();
    let o = Command::new(common::tool("gcc"))
        .current_dir(w)
        .args(["-static", "hello.c", "-o", "hello"])
        .output()
        .unwrap();
    assert_ok(&o);
    // A base of libfoo 1.0, and an application on it.
    spec("base1.toml", "packages = [\"libfoo\"]");
    assert_ok(&f.run(&[
        "build",
        "base1.toml",
        "--lockfile",
        "base1.lock",
        "-o",
        "oci:bases:v1",
    ]));
    spec(
        "app.toml",
        "from = \"oci:bases:v1\"\nentrypoint = [\"/app/hello\"]\n\n[[files]]\nsrc = \"hello\"\ndst = \"/app/hello\"",
    );
    let o = f.run(&[
        "--json",
        "build",
        "app.toml",
        "--sbom",
        "spdx",
        "-o",
        "oci:app:app",
    ]);
    assert_ok(&o);
    let app: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let own = app["images"][0]["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["digest"]
        .clone();

    // The archive moves libfoo to 2.0; a base of it is built under the same tag.
    f.publish(&with_libfoo_2());
    spec("base2.toml", "packages = [\"libfoo\"]");
    let o = f.run(&[
        "--json",
        "build",
        "base2.toml",
        "--lockfile",
        "base2.lock",
        "-o",
        "oci:bases:v1",
    ]);
    assert_ok(&o);
    let base: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    // rebase --check sees the tag moved, and what changed.
    let o = f.run(&["rebase", "--check", "oci:app:app"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("libfoo 1.0 -> 2.0"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("no vulnerability data"),
        "{}",
        stdout(&o)
    );
    // With the tracker's data, it says which CVEs the move fixes: not one fixed later, nor
    // one of another release.
    let state = |status: &str, fixed: Option<&str>| {
        let mut s = serde_json::json!({"status": status, "urgency": "high", "repositories": {}});
        if let Some(f) = fixed {
            s["fixed_version"] = serde_json::json!(f);
        }
        s
    };
    let tracker = serde_json::json!({"libfoo": {
        "CVE-2026-1000": {"releases": {"trixie": state("resolved", Some("2.0"))}},
        "CVE-2026-1001": {"releases": {"trixie": state("resolved", Some("3.0"))}},
        "CVE-2026-1002": {"releases": {"bookworm": state("resolved", Some("2.0"))}},
    }});
    std::fs::write(w.join("tracker.json"), tracker.to_string()).unwrap();
    let o = f.run(&[
        "--json",
        "rebase",
        "--check",
        "oci:app:app",
        "--db",
        "tracker.json",
        "--release",
        "trixie",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let moved: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fixed = &moved[0]["cves_fixed"];
    assert_eq!(
        fixed,
        &serde_json::json!([{"cve": "CVE-2026-1000", "package": "libfoo", "severity": "high"}]),
        "{moved}"
    );

    // Rebased: the application's layer is the same blob, the base's are new, it runs, and
    // its SBOM lists libfoo 2.0.
    let o = f.run(&[
        "rebase",
        "oci:app:app",
        "--onto",
        "oci:bases:v1",
        "-o",
        "oci:rebased:app",
    ]);
    assert_ok(&o);
    let o = f.run(&["--json", "inspect", "oci:rebased:app"]);
    assert_ok(&o);
    let rebased: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let layers: Vec<&serde_json::Value> = rebased["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    assert_eq!(*layers.last().unwrap(), &own);
    assert_eq!(layers[0], &base["images"][0]["layers"][0]["digest"]);
    let bundle = common::unpack(w, "rebased", "app");
    assert_eq!(common::runc(&bundle, &[]), "on the new base\n");
    let o = f.run(&["sbom", "--attached", "oci:rebased:app"]);
    assert_ok(&o);
    let sbom: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let libfoo = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libfoo")
        .unwrap_or_else(|| panic!("{sbom}"));
    assert_eq!(libfoo["versionInfo"], "2.0", "{libfoo}");
    // And against itself now, the base is current.
    let o = f.run(&["rebase", "--check", "oci:rebased:app"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `bareboat --json build -o oci:out:x` in the fixture's directory, with its own cache
/// `cache` and, of the proxy variables, only those `env` gives.
fn build_with_env(f: &Fixture, cache: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareboat"));
    cmd.current_dir(f.work.path())
        .arg("--cache")
        .arg(f.work.path().join(cache))
        .args(["--json", "build", "-o", "oci:out:x"])
        .env_remove("BAREBOAT_MIRROR")
        .env_remove("BAREBOAT_SECURITY_MIRROR");
    for var in [
        "APT_CONFIG",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("bareboat runs")
}

#[test]
fn a_fleet_fetches_through_the_package_proxy_apt_is_configured_with() {
    let f = Fixture::new();
    let proxy = CachingProxy::start();
    let conf = f.work.path().join("apt.conf");
    let conf = conf.to_str().unwrap();
    std::fs::write(conf, format!("Acquire::http::Proxy \"{}\";\n", proxy.url())).unwrap();

    // Runner A starts cold: all it fetches goes through the proxy, which fetches it once.
    let a = build_with_env(&f, "cache-a", &[("APT_CONFIG", conf)]);
    assert_ok(&a);
    let debs = f.server.requests("GET", ".deb");
    assert!(debs >= 3, "{debs} packages fetched");
    assert_eq!(proxy.count("MISS", ".deb"), debs, "{:?}", proxy.log());
    assert_eq!(
        proxy.count("MISS", "InRelease"),
        f.server.requests("GET", "InRelease")
    );

    // Runner B, cold too, is answered by the proxy alone: the server is asked nothing more,
    // and the image is the same.
    let asked = f.server.requests("GET", "");
    let b = build_with_env(&f, "cache-b", &[("APT_CONFIG", conf)]);
    assert_ok(&b);
    assert_eq!(
        f.server.requests("GET", ""),
        asked,
        "the server was asked again"
    );
    assert_eq!(proxy.count("HIT", ".deb"), debs, "{:?}", proxy.log());
    let digest = |o: &Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["digest"].clone()
    };
    assert_eq!(digest(&a), digest(&b));

    // http_proxy serves as well when apt names no proxy; no_proxy, or apt's DIRECT for the
    // host, sends the requests straight to the server.
    let through = proxy.log().len();
    let c = build_with_env(&f, "cache-c", &[("http_proxy", &proxy.url())]);
    assert_ok(&c);
    assert!(proxy.count("HIT", ".deb") > debs, "{:?}", proxy.log());
    let logged = proxy.log().len();
    assert!(logged > through);
    let d = build_with_env(
        &f,
        "cache-d",
        &[
            ("http_proxy", &proxy.url()),
            ("no_proxy", "localhost,127.0.0.1"),
        ],
    );
    assert_ok(&d);
    std::fs::write(
        conf,
        format!(
            "Acquire::http {{ Proxy \"{}\"; Proxy::127.0.0.1 \"DIRECT\"; }};\n",
            proxy.url()
        ),
    )
    .unwrap();
    let e = build_with_env(&f, "cache-e", &[("APT_CONFIG", conf)]);
    assert_ok(&e);
    assert_eq!(
        proxy.log().len(),
        logged,
        "no_proxy and DIRECT were not honoured"
    );

    // A proxy that is down fails the build, naming the proxy and the setting that chose it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        conf,
        format!("Acquire::http::Proxy \"http://127.0.0.1:{port}\";\n"),
    )
    .unwrap();
    let down = build_with_env(&f, "cache-f", &[("APT_CONFIG", conf)]);
    assert_fails_with(
        &down,
        &[&format!(
            "through the proxy http://127.0.0.1:{port} (Acquire::http::Proxy in {conf})"
        )],
    );
}

/// For each architecture the host's mirror serves incompletely: its Debian name, its
/// triplet, the qemu that runs it, its loader as its libc6 ships it (merged /usr), and
/// its OCI platform as Docker and containerd name it.
const CROSS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "armel",
        "arm-linux-gnueabi",
        "qemu-arm-static",
        "usr/lib/ld-linux.so.3",
        "linux/arm/v5",
    ),
    (
        "ppc64el",
        "powerpc64le-linux-gnu",
        "qemu-ppc64le-static",
        "usr/lib64/ld64.so.2",
        "linux/ppc64le",
    ),
    (
        "s390x",
        "s390x-linux-gnu",
        "qemu-s390x-static",
        "usr/lib/ld64.so.1",
        "linux/s390x",
    ),
];

#[test]
fn armel_ppc64el_and_s390x_images_run_with_their_own_loaders_and_share_arch_all_packages() {
    // Each architecture's libc6 is the cross toolchain's C library and loader, and its
    // hello a C program linked against it; data is the Architecture: all package all of
    // them share.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello from C\"); return 0; }\n",
    )
    .unwrap();
    let mut pkgs = vec![DebSpec {
        arch: Some("all".into()),
        ..DebSpec::new("data", "1.0")
    }];
    for (arch, triplet, _, loader, _) in CROSS {
        let program = src.path().join(format!("hello-{arch}"));
        let o = Command::new(common::tool(&format!("{triplet}-gcc")))
            .arg(src.path().join("hello.c"))
            .arg("-o")
            .arg(&program)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let toolchain = Path::new("/usr").join(triplet).join("lib");
        let loader_name = loader.rsplit('/').next().unwrap();
        pkgs.push(DebSpec {
            arch: Some(arch.to_string()),
            files: vec![
                (
                    format!("usr/lib/{triplet}/libc.so.6"),
                    std::fs::read(toolchain.join("libc.so.6")).unwrap(),
                ),
                (
                    loader.to_string(),
                    std::fs::read(toolchain.join(loader_name)).unwrap(),
                ),
            ],
            ..DebSpec::new("libc6", "2.41-1")
        });
        pkgs.push(DebSpec {
            arch: Some(arch.to_string()),
            files: vec![("usr/bin/hello".into(), std::fs::read(&program).unwrap())],
            ..DebSpec::new("hello", "1.0").field("Depends", "libc6, data")
        });
    }
    // vector, a program only s390x has, as a runtime Debian builds for some architectures.
    pkgs.push(DebSpec {
        arch: Some("s390x".into()),
        ..DebSpec::new("vector", "1.0")
    });
    let f = Fixture::with(pkgs, None, None);
    let spec = |packages: &str| {
        std::fs::write(
            f.work.path().join("bareboat.toml"),
            format!(
                "arch = [\"armel\", \"ppc64el\", \"s390x\"]\npackages = [{packages}]\nentrypoint = [\"/usr/bin/hello\"]\n\n\
                 [[source]]\nurl = \"{}\"\nsuite = \"testing-suite\"\nkeyring = \"archive-key.asc\"\n",
                f.server.url()
            ),
        )
        .unwrap();
    };
    spec("\"hello\", \"vector\"");
    assert_fails_with(
        &f.run(&["build", "-o", "oci:multi:hello"]),
        &[
            "vector is not built for armel: the archive has it for s390x",
            "--arch",
        ],
    );
    spec("\"hello\"");
    let o = f.run(&["--json", "build", "-o", "oci:multi:hello"]);
    assert_ok(&o);

    // The index names each platform as Docker and containerd do.
    let w = f.work.path();
    let index = common::skopeo_raw(w, "oci:multi:hello");
    let platforms = common::platforms(&index);
    let expected: Vec<&str> = CROSS.iter().map(|c| c.4).collect();
    assert_eq!(platforms, expected);

    // data was fetched and checked once for the three architectures.
    assert_eq!(f.server.requests("GET", "/data_1.0_all.deb"), 1);

    // Each image, as skopeo picks it out of the index, runs its program with its own loader
    // and C library (qemu's -L is the image's root).
    for (arch, _, qemu, _, platform) in CROSS {
        let mut parts = platform.split('/').skip(1);
        let (oci_arch, variant) = (parts.next().unwrap(), parts.next());
        let mut skopeo = Command::new(common::tool("skopeo"));
        skopeo.current_dir(w).args(["--override-arch", oci_arch]);
        if let Some(v) = variant {
            skopeo.args(["--override-variant", v]);
        }
        let o = skopeo
            .args(["copy", "oci:multi:hello", &format!("oci:{arch}:{arch}")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let rootfs = common::unpack(w, arch, arch).join("rootfs");
        let o = Command::new(common::tool(qemu))
            .arg("-L")
            .arg(&rootfs)
            .arg(rootfs.join("usr/bin/hello"))
            .output()
            .unwrap();
        assert_eq!(stdout(&o), "hello from C\n", "{arch}: {}", stderr(&o));
    }
}
