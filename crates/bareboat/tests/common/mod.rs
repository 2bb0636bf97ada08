//! Helpers shared by the image tests: the shared package cache, bareboat and the outside
//! tools (umoci, oci-image-tool, runc, compilers, openssl) run as processes.
#![allow(dead_code)] // each test binary uses its own subset

pub mod debugging;
pub mod dockerd;
pub mod proxy;
pub mod scripted;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::Mutex;

use bareboat_oci::digest::Digest;
use bareboat_oci::layout::Layout;
use oci_spec::image::MediaType;
use serde_json::{Value, json};

pub fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-archive-cache")
}

/// Builds share one package cache; the first fills it.
pub static CACHE_FILL: Mutex<()> = Mutex::new(());

/// The path of the program `name` on PATH; a test that needs one that is missing fails
/// naming the Debian package `.ci/run` installs it from.
pub fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    let package = match name {
        "script" => "bsdutils",
        "unshare" => "util-linux",
        "gpg" => "gnupg",
        "go" => "golang-go",
        "find" => "findutils",
        "chroot" => "coreutils",
        "objcopy" | "readelf" | "nm" | "addr2line" => "binutils",
        "javac" | "jar" | "keytool" => "default-jdk-headless",
        "aarch64-linux-gnu-gcc" => "gcc-aarch64-linux-gnu",
        "arm-linux-gnueabihf-gcc" => "gcc-arm-linux-gnueabihf",
        "arm-linux-gnueabi-gcc" => "gcc-arm-linux-gnueabi",
        "powerpc64le-linux-gnu-gcc" => "gcc-powerpc64le-linux-gnu",
        "riscv64-linux-gnu-gcc" => "gcc-riscv64-linux-gnu",
        "s390x-linux-gnu-gcc" => "gcc-s390x-linux-gnu",
        n if n.starts_with("qemu-") => "qemu-user-static",
        n => n,
    };
    assert!(
        found.status.success(),
        "{name} is not installed: .ci/run installs it (apt-get install {package})"
    );
    String::from_utf8(found.stdout).unwrap().trim().to_string()
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `bareboat --json build ARGS` in `dir`; returns the report.
pub fn build(dir: &Path, args: &[&str]) -> Value {
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(&mut bareboat(dir, "build", args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// trixie's `jq` (C, needs `GLIBC_2.38`) and `re2c` (C++, needs `GLIBCXX_3.4.32`) binaries,
/// copied into `dir` out of an image of their packages.
pub fn trixie_programs(dir: &Path) {
    std::fs::write(
        dir.join("tools.toml"),
        "release = \"trixie\"\npackages = [\"jq\", \"re2c\"]\n",
    )
    .unwrap();
    build(dir, &["tools.toml", "-o", "oci:tools:t"]);
    let rootfs = unpack(dir, "tools", "t").join("rootfs");
    for program in ["jq", "re2c"] {
        std::fs::copy(rootfs.join("usr/bin").join(program), dir.join(program)).unwrap();
    }
}

/// The layer digests of the first image a build report lists.
pub fn layer_digests(report: &Value) -> Vec<String> {
    report["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// `bareboat --json COMMAND ARGS` in `dir`, with the shared cache.
pub fn bareboat(dir: &Path, command: &str, args: &[&str]) -> Command {
    bareboat_with_cache(dir, &cache(), command, args)
}

/// `bareboat --json COMMAND ARGS` in `dir`, with the package cache `cache`: a runner of its
/// own.
pub fn bareboat_with_cache(dir: &Path, cache: &Path, command: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareboat"));
    cmd.current_dir(dir)
        .arg("--cache")
        .arg(cache)
        .args(["--json", command])
        .args(args)
        .env_remove("BAREBOAT_MIRROR")
        .env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// Unpacks `layout:tag` with umoci (which checks every diff_id) after oci-image-tool
/// validates it, and returns the bundle directory.
///
/// oci-image-tool 1.0.0-rc1 finds a tag only among at most two manifests of `index.json`,
/// so it validates a view of the layout that lists the tag alone (a layout with SBOM
/// referrers lists three or more), over the same blobs.
pub fn unpack(dir: &Path, layout: &str, tag: &str) -> PathBuf {
    let view = dir.join(format!("validate-{tag}"));
    std::fs::create_dir_all(&view).unwrap();
    let original = dir.join(layout);
    std::fs::copy(original.join("oci-layout"), view.join("oci-layout")).unwrap();
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(original.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag);
    std::fs::write(view.join("index.json"), index.to_string()).unwrap();
    let blobs = view.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for blob in std::fs::read_dir(original.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap().path();
        let linked = blobs.join(blob.file_name().unwrap());
        if !linked.exists() {
            std::fs::hard_link(&blob, linked).unwrap();
        }
    }
    run(Command::new(tool("oci-image-tool"))
        .current_dir(dir)
        .args([
            "validate",
            "--type",
            "image",
            "--ref",
            &format!("name={tag}"),
        ])
        .arg(&view));
    let bundle = dir.join(format!("bundle-{tag}"));
    run(Command::new(tool("umoci"))
        .current_dir(dir)
        .args(["unpack", "--image", &format!("{layout}:{tag}")])
        .arg(&bundle));
    bundle
}

/// A `runc run` of `args` in the unpacked bundle, on the host network (so a test server on
/// 127.0.0.1 is reachable), and the container's id.
pub fn runc_command(bundle: &Path, args: &[&str]) -> (Command, String) {
    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = Value::Bool(false);
    if !args.is_empty() {
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
    }
    let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|n| n["type"] != "network");
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = format!(
        "bareboat-test-{}-{}",
        std::process::id(),
        bundle.file_name().unwrap().to_string_lossy()
    );
    let mut cmd = Command::new(tool("runc"));
    cmd.args(["run", "--bundle"]).arg(bundle).arg(&id);
    (cmd, id)
}

/// Runs `args` (or, if empty, the image's own entrypoint and cmd) in the unpacked bundle
/// with runc, and returns stdout.
pub fn runc(bundle: &Path, args: &[&str]) -> String {
    let (mut cmd, _) = runc_command(bundle, args);
    String::from_utf8(run(&mut cmd).stdout).unwrap()
}

/// Compiles the C program `source` with the host's gcc into `dir/hello`.
pub fn hello(dir: &Path, source: &str) {
    std::fs::write(dir.join("hello.c"), source).unwrap();
    run(Command::new(tool("gcc"))
        .current_dir(dir)
        .args(["-O2", "hello.c", "-o", "hello"]));
}

/// Compiles a C or C++ test program into the bundle's rootfs under /test.
pub fn compile(bundle: &Path, compiler: &str, source: &str, ext: &str, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join(format!("prog.{ext}"));
    std::fs::write(&src, source).unwrap();
    let dest = bundle.join("rootfs/test");
    std::fs::create_dir_all(&dest).unwrap();
    run(Command::new(tool(compiler))
        .arg(&src)
        .arg("-o")
        .arg(dest.join("prog"))
        .args(flags));
}

pub fn assert_no_shell_or_package_manager(rootfs: &Path) {
    for name in [
        "sh", "bash", "dash", "apt", "apt-get", "dpkg", "busybox", "pip", "pip3", "npm", "gem",
    ] {
        for dir in ["usr/bin", "usr/sbin", "busybox"] {
            let p = rootfs.join(dir).join(name);
            assert!(
                std::fs::symlink_metadata(&p).is_err(),
                "{} is in a non-debug image",
                p.display()
            );
        }
    }
}

/// Writes a test CA (`ca.pem`, `ca.key`) and a server certificate for localhost and
/// 127.0.0.1 signed by it (`server.pem`, `server.key`) into `dir`.
pub fn make_test_ca(dir: &Path) {
    let openssl = tool("openssl");
    let req = |args: &[&str]| run(Command::new(&openssl).current_dir(dir).args(args));
    req(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=bareboat test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    req(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    req(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
}

/// `openssl s_server -www` on 127.0.0.1 with the certificate of [`make_test_ca`], stopped
/// when dropped.
pub struct TlsServer {
    child: Child,
    pub port: u16,
}

impl TlsServer {
    pub fn start(dir: &Path) -> TlsServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let child = Command::new(tool("openssl"))
            .current_dir(dir)
            .args(["s_server", "-quiet", "-accept", &port.to_string()])
            .args(["-cert", "server.pem", "-key", "server.key", "-www"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port);
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Waits up to five seconds for something to listen on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16) {
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A runc for podman that drops the process rlimits from each bundle's config first: this
/// sandbox refuses setrlimit, and podman always asks for RLIMIT_NOFILE and RLIMIT_NPROC.
const RUNC_WITHOUT_RLIMITS: &str = r#"#!/bin/sh
prev=""
for a in "$@"; do
  if [ "$prev" = "--bundle" ] || [ "$prev" = "-b" ]; then
    python3 -c 'import json, sys
p = sys.argv[1] + "/config.json"
c = json.load(open(p))
c["process"].pop("rlimits", None)
json.dump(c, open(p, "w"))' "$a" || exit 1
  fi
  prev="$a"
done
exec runc "$@"
"#;

/// podman with its own store under `dir` (vfs, no daemon) and runc as its runtime.
pub fn podman(dir: &Path) -> Command {
    let runtime = dir.join("runc-without-rlimits");
    if !runtime.exists() {
        std::fs::write(&runtime, RUNC_WITHOUT_RLIMITS).unwrap();
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&runtime, executable).unwrap();
    }
    let mut cmd = Command::new(tool("podman"));
    cmd.current_dir(dir)
        .arg("--root")
        .arg(dir.join("podman/root"))
        .arg("--runroot")
        .arg(dir.join("podman/run"))
        .args(["--storage-driver", "vfs", "--runtime"])
        .arg(&runtime);
    cmd
}

/// Pulls `reference` (docker://...) from a plain-HTTP registry with podman and runs
/// `script` in it with the image's shell entrypoint; returns what it printed.
pub fn podman_pull_and_run(dir: &Path, reference: &str, script: &str) -> String {
    let name = reference.trim_start_matches("docker://");
    run(podman(dir).args(["pull", "--tls-verify=false", name]));
    let out = run(podman(dir).args(["run", "--rm", "--network=none", name, "-c", script]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The manifest or index `reference` names, as `skopeo inspect --raw` reads it (plain HTTP
/// for a registry).
pub fn skopeo_raw(dir: &Path, reference: &str) -> Value {
    let out = run(Command::new(tool("skopeo")).current_dir(dir).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        reference,
    ]));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Each platform an image index lists, as Docker and containerd write them:
/// `linux/arm/v7`, `linux/ppc64le`.
pub fn platforms(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let variant = p["variant"].as_str().map(|v| format!("/{v}"));
            format!(
                "{}/{}{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
                variant.unwrap_or_default()
            )
        })
        .collect()
}

/// Runs `cmd`, expecting exit status 1 and an error containing `expected`.
pub fn fails_with(cmd: &mut Command, expected: &str) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
    assert!(err.contains(expected), "{cmd:?}: {err}");
}

/// What a command did and what it cost: peak memory (MiB) and wall time (seconds), as
/// GNU time measures them.
pub struct Measured {
    pub out: Output,
    pub peak_mib: u64,
    pub seconds: f64,
}

/// Runs `cmd` under `/usr/bin/time`, printing its peak memory and time.
pub fn measured(cmd: &Command) -> Measured {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new(tool("time"));
    timed
        .arg("-f")
        .arg("%M %e")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(cmd.get_current_dir().unwrap_or(Path::new(".")));
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    let out = timed.output().unwrap();
    let text = std::fs::read_to_string(report.path()).unwrap();
    // On failure, time puts "Command exited with non-zero status" on a line of its own.
    let figures = text.lines().last().unwrap_or_default().to_string();
    let (kib, seconds) = figures.split_once(' ').unwrap_or_else(|| panic!("{text}"));
    let measured = Measured {
        out,
        peak_mib: kib.parse::<u64>().unwrap() / 1024,
        seconds: seconds.parse().unwrap(),
    };
    eprintln!(
        "{:?}: peak {} MiB, {:.1} s",
        cmd.get_args().collect::<Vec<_>>(),
        measured.peak_mib,
        measured.seconds
    );
    measured
}

/// Runs `bareboat copy` on each case, expecting exit status 1, an error containing the
/// case's text, and no `dest` or `dest.tar` written in `dir`.
pub fn assert_copies_refused(dir: &Path, cases: &[(&[&str], &str)]) {
    for (args, expected) in cases {
        let out = bareboat(dir, "copy", args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!dir.join("dest").exists(), "{args:?} wrote a layout");
        assert!(!dir.join("dest.tar").exists(), "{args:?} wrote an archive");
    }
}

/// A docker-registry serving plain HTTP on 127.0.0.1, stopped when dropped.
pub struct LocalRegistry {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl LocalRegistry {
    /// Plain HTTP, anonymous.
    pub fn start(dir: &Path) -> LocalRegistry {
        LocalRegistry::start_with(dir, "")
    }

    /// TLS with the certificate of `make_test_ca`, and basic auth for `user`/`secret`.
    pub fn start_tls_with_auth(dir: &Path) -> LocalRegistry {
        make_test_ca(dir);
        let htpasswd = run(Command::new(tool("htpasswd")).args(["-Bbn", "user", "secret"]));
        std::fs::write(dir.join("htpasswd"), htpasswd.stdout).unwrap();
        let d = dir.display();
        LocalRegistry::start_with(
            dir,
            &format!(
                "  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n\
                 auth:\n  htpasswd:\n    realm: bareboat-test\n    path: {d}/htpasswd\n"
            ),
        )
    }

    /// A registry whose config ends with `more` (under `http:`, then top-level keys).
    pub fn start_with(dir: &Path, more: &str) -> LocalRegistry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{more}",
                dir.join("registry-data").display()
            ),
        )
        .unwrap();
        let log = dir.join("registry.log");
        let child = Command::new(tool("docker-registry"))
            .arg("serve")
            .arg(&config)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("registry.err")).unwrap())
            .spawn()
            .unwrap();
        wait_for_port(port);
        LocalRegistry { child, port, log }
    }

    pub fn reference(&self, repository: &str) -> String {
        format!("docker://127.0.0.1:{}/{repository}", self.port)
    }

    /// How many blob uploads the registry has started, from its access log.
    pub fn uploads_started(&self) -> usize {
        let stderr = self.log.with_file_name("registry.err");
        let text = std::fs::read_to_string(&stderr).unwrap()
            + &std::fs::read_to_string(&self.log).unwrap();
        text.lines()
            .filter(|l| l.contains("\"POST /v2/") && l.contains("/blobs/uploads/"))
            .count()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The base64 bodies of the PEM certificates in `text`, in order and without line breaks,
/// so that one certificate compares equal however a tool wraps it.
pub fn pem_bodies(text: &str) -> Vec<String> {
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|rest| {
            let (body, _) = rest
                .split_once("-----END CERTIFICATE-----")
                .expect("an unterminated PEM certificate");
            body.split_whitespace().collect()
        })
        .collect()
}

/// The image's environment as umoci wrote it into the bundle's runtime config.
pub fn bundle_env(bundle: &Path) -> Vec<String> {
    let config: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    config["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

/// Validates an SBOM the tests wrote with the official validators (`tests/sbom/validate.py`:
/// the SPDX 2.3 JSON schema and spdx-tools, or CycloneDX's strict schema), which .ci/run
/// installs into `target/sbom-tools`.
/// The Python of the validators `.ci/run` installs in target/sbom-tools.
pub fn validators_python() -> PathBuf {
    let python = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("sbom-tools/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: .ci/run installs the validators (spdx-tools, jsonschema, cyclonedx-python-lib, packageurl-python) there",
        python.display()
    );
    python
}

pub fn validate_sbom(kind: &str, path: &Path) {
    let python = validators_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sbom/validate.py");
    run(Command::new(python).arg(script).arg(kind).arg(path));
}

/// Writes `layers`, uncompressed (umoci and bareboat read them so), as the image `TAG` of
/// the layout `dir`, running as 65532.
pub fn write_image(dir: &Path, tag: &str, layers: &[Vec<u8>]) {
    // An uncompressed layer's diff_id is its digest.
    let layers: Vec<_> = layers
        .iter()
        .map(|l| (MediaType::ImageLayer, l.clone(), Digest::of(l)))
        .collect();
    write_layers(dir, tag, &layers);
}

/// Writes layer blobs of any media type, each with its diff_id, as the image `TAG` of the
/// layout `dir`.
pub fn write_layers(dir: &Path, tag: &str, blobs: &[(MediaType, Vec<u8>, Digest)]) {
    let layout = Layout::create(dir).unwrap();
    let layers: Vec<_> = blobs
        .iter()
        .map(|(media_type, l, _)| layout.put_json(media_type.clone(), l).unwrap())
        .collect();
    let diff_ids: Vec<String> = blobs.iter().map(|(_, _, d)| d.to_string()).collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": "65532"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = layout
        .put_json(MediaType::ImageConfig, config.to_string().as_bytes())
        .unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    });
    let manifest = layout
        .put_json(MediaType::ImageManifest, manifest.to_string().as_bytes())
        .unwrap();
    layout.tag(&manifest, &[tag.to_string()]).unwrap();
}

/// A zstd layer of `entries` (a path, and the size of its content, all `fill` bytes), made
/// as it streams so that a test can make gigabytes of content in a few kilobytes, with the
/// layer's diff_id.
pub fn zstd_layer(
    entries: &[(&str, u64)],
    fill: u8,
) -> (MediaType, Vec<u8>, bareboat_oci::digest::Digest) {
    let encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
    let mut tar = tar::Builder::new(bareboat_oci::digest::HashingWriter::new(encoder));
    for (path, size) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(*size);
        let content = std::io::Read::take(std::io::repeat(fill), *size);
        tar.append_data(&mut h, path, content).unwrap();
    }
    let (encoder, diff_id, _) = tar.into_inner().unwrap().finish();
    (
        MediaType::ImageLayerZstd,
        encoder.finish().unwrap(),
        diff_id,
    )
}
