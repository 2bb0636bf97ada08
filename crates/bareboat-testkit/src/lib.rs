//! Test support: signed apt repositories generated on the fly and served on 127.0.0.1.
//!
//! Packages are built with `dpkg-deb`, indexes are written as Debian's archive writes them
//! (`Packages`, `Packages.xz`, by-hash copies, `Release`), and `InRelease` is clear-signed
//! with `gpg` using a key made for the test. The server can be told to truncate a file or
//! answer 404, so each failure path can be exercised for real.
//!
//! [`CachingProxy`] stands for the package proxy a fleet shares, and [`verifiers`] runs other
//! implementations over bareboat's signatures.

#![deny(missing_docs)]

mod caching_proxy;
pub mod verifiers;

pub use caching_proxy::CachingProxy;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// A throwaway GnuPG home with keys made for one test.
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Gpg {
    /// A keyring in a directory of its own, with a key made for the test.
    pub fn new() -> Gpg {
        let found = Command::new("sh").args(["-c", "command -v gpg"]).output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "gpg is not installed: .ci/run installs it (apt-get install gnupg)"
        );
        let home = tempfile::tempdir().expect("temp dir");
        Gpg { home }
    }

    fn gpg(&self, faked_time: Option<&str>) -> Command {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(self.home.path()).args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        if let Some(t) = faked_time {
            c.args(["--faked-system-time", t, "--ignore-time-conflict"]);
        }
        c
    }

    /// Makes an Ed25519 signing key and returns its fingerprint. `created` is a gpg time
    /// (`20200101T000000`) to back-date it; `expire` is gpg's expiry (`never`, `1d`).
    pub fn generate(&self, uid: &str, created: Option<&str>, expire: &str) -> String {
        let out = self
            .gpg(created)
            .args(["--quick-gen-key", uid, "ed25519", "sign", expire])
            .output()
            .expect("gpg runs");
        assert!(
            out.status.success(),
            "gpg key generation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list = self
            .gpg(None)
            .args(["--with-colons", "--list-keys", uid])
            .output()
            .expect("gpg runs");
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:::::::::")
                    .map(|f| f.trim_end_matches(':').to_string())
            })
            .expect("new key has a fingerprint")
    }

    /// The armored public key.
    pub fn export(&self, fingerprint: &str) -> Vec<u8> {
        let out = self
            .gpg(None)
            .args(["--armor", "--export", fingerprint])
            .output()
            .expect("gpg runs");
        assert!(out.status.success());
        out.stdout
    }

    /// Clear-signs `text` as `InRelease` is signed.
    pub fn clearsign(&self, fingerprint: &str, text: &str, faked_time: Option<&str>) -> String {
        let signed = self.sign(fingerprint, text.as_bytes(), &["--clearsign"], faked_time);
        String::from_utf8(signed).unwrap()
    }

    /// A detached, armored signature of `data`, as `Release.gpg` is signed.
    pub fn detach_sign(&self, fingerprint: &str, data: &[u8], faked_time: Option<&str>) -> Vec<u8> {
        self.sign(fingerprint, data, &["--armor", "--detach-sign"], faked_time)
    }

    /// What gpg writes when it signs `data` in `mode`.
    fn sign(
        &self,
        fingerprint: &str,
        data: &[u8],
        mode: &[&str],
        faked_time: Option<&str>,
    ) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("Release");
        std::fs::write(&input, data).unwrap();
        let output = dir.path().join("signed");
        let out = self
            .gpg(faked_time)
            .args(["--digest-algo", "SHA512", "--local-user", fingerprint])
            .args(mode)
            .arg("--output")
            .arg(&output)
            .arg(&input)
            .output()
            .expect("gpg runs");
        assert!(
            out.status.success(),
            "gpg signing failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(output).unwrap()
    }
}

/// A package to build.
#[derive(Clone, Debug, Default)]
pub struct DebSpec {
    /// The package's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `amd64` unless set; `all` for architecture-independent packages.
    pub arch: Option<String>,
    /// More control fields, such as `Depends`.
    pub fields: Vec<(String, String)>,
    /// The files it ships: path and content.
    pub files: Vec<(String, Vec<u8>)>,
    /// dpkg-deb's `-Z` compressor for data.tar: `xz` unless set (`gzip`, `zstd`, `none`).
    pub compression: Option<String>,
}

impl DebSpec {
    /// A package of no files and no other fields.
    pub fn new(name: &str, version: &str) -> DebSpec {
        DebSpec {
            name: name.into(),
            version: version.into(),
            files: vec![(
                format!("usr/share/{name}/VERSION"),
                version.as_bytes().to_vec(),
            )],
            ..DebSpec::default()
        }
    }

    /// Adds a control field such as `Depends`.
    pub fn field(mut self, name: &str, value: &str) -> DebSpec {
        self.fields.push((name.into(), value.into()));
        self
    }
}

/// Builds a `.deb` with `dpkg-deb` into `dir` and returns its path.
pub fn build_deb(dir: &Path, spec: &DebSpec) -> PathBuf {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(root.path().join("DEBIAN")).unwrap();
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Test <test@example.invalid>\nPriority: optional\n",
        spec.name,
        spec.version,
        spec.arch.as_deref().unwrap_or("amd64")
    );
    for (k, v) in &spec.fields {
        control.push_str(&format!("{k}: {v}\n"));
    }
    control.push_str(&format!("Description: test package {}\n", spec.name));
    std::fs::write(root.path().join("DEBIAN/control"), control).unwrap();
    let mut md5sums = String::new();
    for (path, bytes) in &spec.files {
        let p = root.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        // Programs (ELF files and scripts) are executable, as a package ships them.
        if bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"#!") {
            let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(&p, executable).unwrap();
        }
        md5sums.push_str(&format!("{:x}  {path}\n", md5::compute(bytes)));
    }
    // As dh_md5sums writes it; dpkg-deb itself does not.
    std::fs::write(root.path().join("DEBIAN/md5sums"), md5sums).unwrap();
    let file = format!(
        "{}_{}_{}.deb",
        spec.name,
        spec.version.replace(':', "%3a"),
        spec.arch.as_deref().unwrap_or("amd64")
    );
    let out = dir.join(file);
    // A fixed SOURCE_DATE_EPOCH makes rebuilding the same package give the same bytes.
    let status = Command::new("dpkg-deb")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .arg("--root-owner-group")
        .arg(format!("-Z{}", spec.compression.as_deref().unwrap_or("xz")))
        .arg("--build")
        .arg(root.path())
        .arg(&out)
        .output()
        .expect("dpkg-deb runs (install dpkg-dev)");
    assert!(
        status.status.success(),
        "dpkg-deb failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    out
}

/// How to write a repository.
#[derive(Default)]
pub struct RepoOptions<'a> {
    /// The directory under `dists/`, and the Release's `Codename`.
    pub suite: &'a str,
    /// The signing key's fingerprint.
    pub fingerprint: &'a str,
    /// gpg time for the signature (to sign with a key that has since expired).
    pub sign_time: Option<&'a str>,
    /// `Valid-Until`, written verbatim.
    pub valid_until: Option<&'a str>,
    /// The Release's `Suite` when it differs from the codename (`stable` for trixie).
    pub suite_name: Option<&'a str>,
    /// `Date`, written verbatim; now unless set.
    pub date: Option<&'a str>,
    /// Whether to publish `main/Contents-amd64.gz`, listing every package's files.
    pub contents: bool,
}

/// A generated repository on disk: `<root>/dists/<suite>/...` and `<root>/pool/...`.
pub struct Repo {
    /// The directory the repository is written into.
    pub root: tempfile::TempDir,
    /// The suite's name under `dists/`.
    pub suite: String,
}

impl Repo {
    /// Builds the packages and writes a signed repository for them.
    pub fn write(gpg: &Gpg, opts: &RepoOptions<'_>, packages: &[DebSpec]) -> Repo {
        let root = tempfile::tempdir().expect("temp dir");
        let repo = Repo {
            root,
            suite: opts.suite.to_string(),
        };
        repo.publish(gpg, opts, packages);
        repo
    }

    /// (Re)writes pool, indexes and InRelease for `packages`, as an archive update does.
    pub fn publish(&self, gpg: &Gpg, opts: &RepoOptions<'_>, packages: &[DebSpec]) {
        let pool = self.root.path().join("pool/main");
        std::fs::create_dir_all(&pool).unwrap();
        // Each package's index stanza, by its architecture.
        let mut stanzas: Vec<(&str, String)> = Vec::new();
        let mut contents = String::new();
        for spec in packages {
            for (path, _) in &spec.files {
                contents.push_str(&format!("{path:<60} libs/{}\n", spec.name));
            }
            let deb = build_deb(&pool, spec);
            let control = Command::new("dpkg-deb")
                .arg("-f")
                .arg(&deb)
                .output()
                .unwrap()
                .stdout;
            let bytes = std::fs::read(&deb).unwrap();
            let stanza = format!(
                "{}Filename: pool/main/{}\nSize: {}\nSHA256: {}\n\n",
                String::from_utf8(control).unwrap(),
                deb.file_name().unwrap().to_string_lossy(),
                bytes.len(),
                sha256(&bytes)
            );
            stanzas.push((spec.arch.as_deref().unwrap_or("amd64"), stanza));
        }
        // As Debian's: an index for each architecture a package is built for (amd64 when
        // none is), each listing the Architecture: all packages too.
        let mut arches: Vec<&str> = stanzas
            .iter()
            .map(|(a, _)| *a)
            .filter(|a| *a != "all")
            .collect();
        arches.sort();
        arches.dedup();
        if arches.is_empty() {
            arches.push("amd64");
        }
        let date = opts.date.map_or_else(http_date_now, str::to_string);
        let mut release = format!(
            "Origin: Test\nLabel: Test\nSuite: {}\nCodename: {}\nDate: {date}\n",
            opts.suite_name.unwrap_or(opts.suite),
            opts.suite
        );
        if let Some(v) = opts.valid_until {
            release.push_str(&format!("Valid-Until: {v}\n"));
        }
        release.push_str(&format!(
            "Acquire-By-Hash: yes\nArchitectures: {}\nComponents: main\nDescription: test\nSHA256:\n",
            arches.join(" ")
        ));
        for arch in arches {
            let index: String = stanzas
                .iter()
                .filter(|(a, _)| *a == arch || *a == "all")
                .map(|(_, stanza)| stanza.as_str())
                .collect();
            let mut xz = Vec::new();
            {
                let mut enc = liblzma::write::XzEncoder::new(&mut xz, 6);
                enc.write_all(index.as_bytes()).unwrap();
                enc.finish().unwrap();
            }
            let dir = self.dists().join(format!("main/binary-{arch}"));
            std::fs::create_dir_all(dir.join("by-hash/SHA256")).unwrap();
            for (name, bytes) in [("Packages", index.as_bytes()), ("Packages.xz", &xz[..])] {
                std::fs::write(dir.join(name), bytes).unwrap();
                std::fs::write(dir.join("by-hash/SHA256").join(sha256(bytes)), bytes).unwrap();
                release.push_str(&format!(
                    " {} {:>9} main/binary-{arch}/{name}\n",
                    sha256(bytes),
                    bytes.len()
                ));
            }
        }
        if opts.contents {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            gz.write_all(contents.as_bytes()).unwrap();
            let gz = gz.finish().unwrap();
            let main = self.dists().join("main");
            std::fs::create_dir_all(main.join("by-hash/SHA256")).unwrap();
            std::fs::write(main.join("Contents-amd64.gz"), &gz).unwrap();
            std::fs::write(main.join("by-hash/SHA256").join(sha256(&gz)), &gz).unwrap();
            release.push_str(&format!(
                " {} {:>9} main/Contents-amd64.gz\n",
                sha256(&gz),
                gz.len()
            ));
        }
        std::fs::write(self.dists().join("Release"), &release).unwrap();
        let signed = gpg.clearsign(opts.fingerprint, &release, opts.sign_time);
        std::fs::write(self.dists().join("InRelease"), signed).unwrap();
        let detached = gpg.detach_sign(opts.fingerprint, release.as_bytes(), opts.sign_time);
        std::fs::write(self.dists().join("Release.gpg"), detached).unwrap();
    }

    /// The `dists/<suite>` directory.
    pub fn dists(&self) -> PathBuf {
        self.root.path().join("dists").join(&self.suite)
    }

    /// Copies the suite's `dists/` directory to `dists/<name>`, as a mirror serves a suite
    /// under its other name (`stable` beside `trixie`); later publishes leave the copy as it
    /// was, as a mirror's caches do.
    pub fn copy_dists(&self, name: &str) {
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.dists())
            .arg(self.root.path().join("dists").join(name))
            .status()
            .expect("cp runs");
        assert!(status.success());
    }

    /// Paths of every file under `dir` (relative to the repository root) that match.
    pub fn files_matching(&self, needle: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains(needle) {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }
}

/// A tar stream of `entries` (a name and its content), in order: a name ending in `/` is a
/// directory, anything else a regular file of mode 0644.
pub fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
        }
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The hex SHA256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The current time as Release files write it.
pub fn http_date_now() -> String {
    http_date(std::time::SystemTime::now())
}

/// A time as Release files write it: `Sat, 12 Sep 2026 07:55:41 UTC`.
pub fn http_date(t: std::time::SystemTime) -> String {
    let out = Command::new("date")
        .args(["-u", "-R", "-d"])
        .arg(format!(
            "@{}",
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        ))
        .output()
        .expect("date runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .replace("+0000", "UTC")
}

/// What the server does wrong, by path suffix.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Send the headers for the whole file, then only half the body.
    Truncate,
    /// Answer 404.
    NotFound,
}

/// A small HTTP/1.1 file server on 127.0.0.1.
pub struct Server {
    listening: Listening,
    faults: Arc<Mutex<HashMap<String, Fault>>>,
    /// The method and path of every request, in order.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Serves the files under `root`.
    pub fn start(root: &Path) -> Server {
        let faults: Arc<Mutex<HashMap<String, Fault>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let root = root.to_path_buf();
        let listening = {
            let (faults, requests) = (faults.clone(), requests.clone());
            Listening::start(move |conn| {
                let _ = serve(conn, &root, &faults, &requests);
            })
        };
        Server {
            listening,
            faults,
            requests,
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.listening.port)
    }

    /// Makes requests for paths ending in `suffix` fail as `fault` says.
    pub fn fault(&self, suffix: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .insert(suffix.to_string(), fault);
    }

    /// How many requests named a path ending in `suffix`, with `method` (`GET`, `HEAD`).
    pub fn requests(&self, method: &str, suffix: &str) -> usize {
        count_logged(&self.requests, method, suffix)
    }

    /// Stops accepting connections.
    pub fn stop(&mut self) {
        self.listening.stop();
    }
}

/// How many lines of `log`, each `WORD TEXT`, have `word` and a text ending in `suffix`.
fn count_logged(log: &Mutex<Vec<String>>, word: &str, suffix: &str) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| {
            l.split_once(' ')
                .is_some_and(|(w, text)| w == word && text.ends_with(suffix))
        })
        .count()
}

/// A listener on 127.0.0.1 that hands each connection to its own thread until stopped,
/// which dropping it does.
struct Listening {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listening {
    fn start(handle: impl Fn(TcpStream) + Clone + Send + 'static) -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let handle = handle.clone();
                    std::thread::spawn(move || handle(conn));
                }
            })
        };
        Listening {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The method and target of the request on `conn` (empty where it gives none), its headers
/// read past.
fn read_request(conn: &TcpStream) -> std::io::Result<(String, String)> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut words = request_line.split_whitespace();
    let mut word = || words.next().unwrap_or_default().to_string();
    Ok((word(), word()))
}

fn serve(
    mut conn: TcpStream,
    root: &Path,
    faults: &Mutex<HashMap<String, Fault>>,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let (method, path) = read_request(&conn)?;
    let (method, path) = (
        Some(method)
            .filter(|m| !m.is_empty())
            .unwrap_or("GET".into()),
        Some(path).filter(|p| !p.is_empty()).unwrap_or("/".into()),
    );
    requests.lock().unwrap().push(format!("{method} {path}"));
    let fault = faults
        .lock()
        .unwrap()
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(_, f)| f.clone());
    let file = root.join(path.trim_start_matches('/'));
    let body = if path.contains("..") || matches!(fault, Some(Fault::NotFound)) {
        None
    } else {
        std::fs::read(&file).ok().filter(|_| file.is_file())
    };
    match body {
        None => conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
        Some(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes())?;
            if method == "HEAD" {
                return conn.flush();
            }
            let send = if matches!(fault, Some(Fault::Truncate)) {
                &body[..body.len() / 2]
            } else {
                &body[..]
            };
            conn.write_all(send)?;
        }
    }
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Both)
}
