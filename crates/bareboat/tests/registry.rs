//! Pushing to and pulling from a real registry: Debian's docker-registry 2.8 on a free
//! loopback port, read back with skopeo and podman.

mod common;

use std::path::Path;
use std::process::Command;

use common::proxy::{DROP, FaultProxy, Rule, read_head, relay};
use common::{
    LocalRegistry, assert_copies_refused, bareboat, build, fails_with, podman, podman_pull_and_run,
    run, skopeo_raw, tool, validate_sbom,
};
use serde_json::Value;

fn digest_in_registry(dir: &Path, reference: &str) -> String {
    let out = run(Command::new(tool("skopeo")).current_dir(dir).args([
        "inspect",
        "--tls-verify=false",
        reference,
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

#[test]
fn pushes_round_trip_and_skip_what_the_registry_has() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let static_ref = format!("{}:static", registry.reference("team/app"));
    let cc_ref = format!("{}:cc", registry.reference("team/app"));

    let first = build(
        d,
        &["catalog:static:debug", "--insecure", "-o", &static_ref],
    );
    let push = &first["pushes"][0];
    assert!(push["uploaded_blobs"].as_u64().unwrap() >= 2, "{push}");
    let digest = first["digest"].as_str().unwrap();
    assert_eq!(digest_in_registry(d, &static_ref), digest);

    // cc shares static's layer: only what is new moves.
    let uploads = registry.uploads_started();
    let cc = build(
        d,
        &[
            "catalog:cc",
            "--insecure",
            "-o",
            "oci:out:cc",
            "-o",
            &cc_ref,
        ],
    );
    let push = &cc["pushes"][0];
    assert!(push["skipped_blobs"].as_u64().unwrap() >= 1, "{push}");
    let started = registry.uploads_started() - uploads;
    assert_eq!(started as u64, push["uploaded_blobs"].as_u64().unwrap());

    // python3 stacks on cc: cc's layers are not uploaded again, and the bytes that move
    // are python3's own layers and its config.
    let python_ref = format!("{}:python3", registry.reference("team/app"));
    let python = build(d, &["catalog:python3", "--insecure", "-o", &python_ref]);
    let digests = |report: &Value| -> Vec<(String, u64)> {
        report["images"][0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["digest"].as_str().unwrap().to_string(),
                    l["size"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let (cc_layers, python_layers) = (digests(&cc), digests(&python));
    let own: Vec<&(String, u64)> = python_layers
        .iter()
        .filter(|l| !cc_layers.contains(l))
        .collect();
    assert_eq!(
        python_layers.len() - own.len(),
        cc_layers.len(),
        "python3 is on cc"
    );
    let push = &python["pushes"][0];
    assert_eq!(push["uploaded_blobs"], own.len() + 1, "{push}");
    assert_eq!(push["skipped_blobs"], cc_layers.len(), "{push}");
    let own_bytes: u64 = own.iter().map(|(_, size)| size).sum();
    let uploaded = push["uploaded_bytes"].as_u64().unwrap();
    assert!(
        (own_bytes..own_bytes + 8192).contains(&uploaded),
        "{uploaded} bytes uploaded for {own_bytes} bytes of python3's own layers"
    );

    // The same image again uploads nothing at all.
    let uploads = registry.uploads_started();
    let again = run(&mut bareboat(
        d,
        "copy",
        &["--insecure", "oci:out:cc", &cc_ref],
    ));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["push"]["uploaded_blobs"], 0);
    assert_eq!(registry.uploads_started(), uploads, "no upload started");

    // Pulled back into a layout, the digest is the same; podman pulls and runs it.
    let pulled = run(&mut bareboat(
        d,
        "copy",
        &["--insecure", &static_ref, "oci:pulled:static"],
    ));
    let pulled: Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(pulled["digest"], digest);
    let shown = podman_pull_and_run(d, &static_ref, "echo pulled; id -u");
    assert_eq!(shown, "pulled\n65532\n");
}

#[test]
fn a_multi_arch_index_is_pushed_after_its_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let reference = format!("{}:1", registry.reference("team/multi"));
    let report = build(
        d,
        &[
            "catalog:base-nossl",
            "--arch",
            "amd64,arm64",
            "--insecure",
            "-o",
            &reference,
        ],
    );
    let index = skopeo_raw(d, &reference);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(digest_in_registry(d, &reference), report["digest"]);
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        assert_eq!(
            index["manifests"][i]["digest"],
            report["images"][i]["manifest"]
        );
        // Each platform's manifest and config are there to be read.
        let out = run(Command::new(tool("skopeo")).args([
            "--override-arch",
            arch,
            "inspect",
            "--tls-verify=false",
            &reference,
        ]));
        let image: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(image["Architecture"], *arch);
    }
    // Pulled whole, the index keeps its digest.
    let pulled = run(&mut bareboat(
        d,
        "copy",
        &["--insecure", &reference, "oci:pulled:multi"],
    ));
    let pulled: Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(pulled["digest"], report["digest"]);
}

#[test]
fn bad_registry_references_and_unreachable_registries_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build(d, &["catalog:static", "-o", "oci:out:static"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrong = format!(
        "docker://127.0.0.1:{closed}/team/app@sha256:{}",
        "0".repeat(64)
    );
    let unreachable = format!("docker://127.0.0.1:{closed}/team/app:1");
    let cases: &[(&[&str], &str)] = &[
        (
            &["oci:out:static", "docker://Team/App"],
            "repository is lowercase",
        ),
        (&["oci:out:static", "docker:team/app"], "expected docker://"),
        (&["oci:out:static", &wrong], "but the image is sha256:"),
        (
            &["--insecure", "oci:out:static", &unreachable],
            "registry 127.0.0.1:",
        ),
        (
            &["--insecure", &unreachable, "oci:dest:x"],
            "registry 127.0.0.1:",
        ),
    ];
    assert_copies_refused(d, cases);
}

/// `bareboat --json COMMAND ARGS` with credentials looked up only in `dir`.
fn hermetic(dir: &Path, command: &str, args: &[&str]) -> Command {
    let mut cmd = bareboat(dir, command, args);
    cmd.env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("BAREBOAT_REGISTRY_CREDS");
    cmd
}

#[test]
fn tls_and_basic_auth_with_login_and_docker_config_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start_tls_with_auth(d);
    build(d, &["catalog:static", "-o", "oci:out:static"]);
    let target = format!("docker://localhost:{}/team/app:1", registry.port);
    let ca = d.join("ca.pem");
    let ca = ca.to_str().unwrap();

    // Without credentials, and with the wrong CA trust, the errors say what to do.
    fails_with(
        &mut hermetic(d, "copy", &["--ca-cert", ca, "oci:out:static", &target]),
        "hint: log in with `bareboat login",
    );
    fails_with(
        &mut hermetic(
            d,
            "copy",
            &["--creds", "user:secret", "oci:out:static", &target],
        ),
        "--ca-cert",
    );

    // A wrong password is refused by login, which then stores nothing.
    let host = format!("localhost:{}", registry.port);
    let login = |password: &str| {
        let mut cmd = hermetic(d, "login", &[&host, "-u", "user", "--ca-cert", ca]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let wrong = login("nope");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"));
    assert!(!d.join("auth.json").exists());
    let right = login("secret");
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let stored = std::fs::read_to_string(d.join("auth.json")).unwrap();
    assert!(stored.contains(&host), "{stored}");

    // The stored credentials push; skopeo reads the image back.
    let pushed = run(&mut hermetic(
        d,
        "copy",
        &["--ca-cert", ca, "oci:out:static", &target],
    ));
    let pushed: Value = serde_json::from_slice(&pushed.stdout).unwrap();

    // skopeo and podman read the auth.json that login wrote, and nothing else: without it
    // they are refused.
    let authfile = d.join("auth.json");
    let skopeo = |authfile: &Path| {
        let mut cmd = Command::new(tool("skopeo"));
        cmd.env("HOME", d)
            .env_remove("XDG_RUNTIME_DIR")
            .args(["inspect", "--tls-verify=false", "--authfile"])
            .arg(authfile)
            .arg(&target);
        cmd.output().unwrap()
    };
    std::fs::write(d.join("no-auth.json"), r#"{"auths":{}}"#).unwrap();
    let refused = skopeo(&d.join("no-auth.json"));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("authentication required"),
        "skopeo read {target} without credentials: {err}"
    );
    let out = skopeo(&authfile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], pushed["digest"]);
    let name = target.trim_start_matches("docker://");
    run(podman(d)
        .env("HOME", d)
        .args(["pull", "--tls-verify=false", "--authfile"])
        .arg(&authfile)
        .arg(name));
    let images = run(podman(d).args(["images", "--format", "{{.Digest}}"]));
    assert!(
        String::from_utf8_lossy(&images.stdout).contains(pushed["digest"].as_str().unwrap()),
        "podman pulled another image"
    );

    // Docker's config.json, with base64 auth, serves a pull just as well.
    std::fs::remove_file(d.join("auth.json")).unwrap();
    std::fs::create_dir(d.join("docker")).unwrap();
    let auth = run(Command::new("sh").args(["-c", "printf user:secret | base64"]));
    let auth = String::from_utf8_lossy(&auth.stdout).trim().to_string();
    std::fs::write(
        d.join("docker/config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let pulled = run(&mut hermetic(
        d,
        "copy",
        &["--ca-cert", ca, &target, "oci:pulled:x"],
    ));
    let pulled: Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(pulled["digest"], pushed["digest"]);
}

#[test]
fn pushes_survive_server_errors_and_throttling() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    build(d, &["catalog:static", "-o", "oci:out:static"]);
    let proxy = FaultProxy::start(
        registry.port,
        vec![
            Rule {
                method: "HEAD",
                path: "/blobs/",
                status: 429,
                times: 1,
            },
            Rule {
                method: "PUT",
                path: "/blobs/uploads/",
                status: 500,
                times: 1,
            },
            Rule {
                method: "PUT",
                path: "/manifests/sha256:",
                status: 503,
                times: 1,
            },
            Rule {
                method: "PATCH",
                path: "/blobs/uploads/",
                status: DROP,
                times: 1,
            },
        ],
    );
    let through = format!("docker://127.0.0.1:{}/team/app:1", proxy.port);
    let pushed = run(&mut bareboat(
        d,
        "copy",
        &["--insecure", "oci:out:static", &through],
    ));
    let pushed: Value = serde_json::from_slice(&pushed.stdout).unwrap();
    let fired = proxy.fired();
    assert_eq!(fired.len(), 4, "{fired:?}");
    assert!(fired.iter().any(|f| f.ends_with("dropped")), "{fired:?}");
    let direct = format!("{}:1", registry.reference("team/app"));
    assert_eq!(digest_in_registry(d, &direct), pushed["digest"]);

    // A failure that lasts ends the push with the error, and the tag is never written.
    let failing = FaultProxy::start(
        registry.port,
        vec![Rule {
            method: "PUT",
            path: "/manifests/2",
            status: 500,
            times: 100,
        }],
    );
    let out = bareboat(
        d,
        "copy",
        &[
            "--insecure",
            "oci:out:static",
            &format!("docker://127.0.0.1:{}/team/app:2", failing.port),
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("tagging") && err.contains("500"), "{err}");
    assert_eq!(failing.fired().len(), 5, "tried five times");
    let tag = Command::new(tool("skopeo"))
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("{}:2", registry.reference("team/app")),
        ])
        .output()
        .unwrap();
    assert!(!tag.status.success(), "the tag was not written");
}

#[test]
fn a_multi_stage_dockerfile_builds_on_pushed_catalogue_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let debug = format!("{}:debug", registry.reference("team/cc"));
    let cc = format!("{}:1", registry.reference("team/cc"));
    build(d, &["catalog:cc:debug", "--insecure", "-o", &debug]);
    build(d, &["catalog:cc", "--insecure", "-o", &cc]);
    common::hello(
        d,
        "#include <stdio.h>\nint main(void) {\n  char line[256];\n  FILE *f = fopen(\"/greeting\", \"r\");\n\
         if (!f || !fgets(line, sizeof line, f)) return 1;\n  printf(\"%s\", line);\n  return 0;\n}\n",
    );
    // The debug image has no /bin/sh: its RUN goes through busybox's shell. SHELL is a
    // Docker-format instruction, hence --format docker.
    let host = |r: &str| r.trim_start_matches("docker://").to_string();
    std::fs::write(
        d.join("Dockerfile"),
        format!(
            "FROM {} AS build\nSHELL [\"/busybox/sh\", \"-c\"]\n\
             RUN echo \"made by busybox as $(id -u) on Debian $(cat /etc/debian_version)\" > /tmp/greeting\n\
             FROM {}\nCOPY --from=build /tmp/greeting /greeting\nCOPY hello /hello\nENTRYPOINT [\"/hello\"]\n",
            host(&debug),
            host(&cc)
        ),
    )
    .unwrap();
    run(podman(d).args([
        "build",
        "--format",
        "docker",
        "--tls-verify=false",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-t",
        "localhost/classic",
        ".",
    ]));
    let out = run(podman(d).args(["run", "--rm", "--network=none", "localhost/classic"]));
    let greeting = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        greeting.starts_with("made by busybox as 65532 on Debian 13."),
        "{greeting}"
    );
}

#[test]
fn pushes_and_pulls_show_a_bar_per_blob_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let report = build(d, &["catalog:static", "-o", "oci:out:static"]);
    let layer = report["images"][0]["layers"][0]["digest"].as_str().unwrap();
    let short = &layer[..19];
    // Without a terminal, standard error stays quiet.
    let quiet_ref = format!("{}:quiet", registry.reference("team/static"));
    let out = run(&mut bareboat(
        d,
        "copy",
        &["--insecure", "oci:out:static", &quiet_ref],
    ));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // On a terminal, each blob has its line; pulled back, the same blob is downloaded.
    let shown_ref = format!("{}:shown", registry.reference("team/shown"));
    let screen = on_a_terminal(
        d,
        bareboat(d, "copy", &["--insecure", "oci:out:static", &shown_ref]),
    );
    assert!(screen.contains(&format!("{short} uploaded")), "{screen}");
    let screen = on_a_terminal(
        d,
        bareboat(d, "copy", &["--insecure", &shown_ref, "oci:back:static"]),
    );
    assert!(screen.contains(&format!("{short} downloaded")), "{screen}");
}

/// What `command` shows when run on a terminal, which script(1) gives it.
fn on_a_terminal(dir: &Path, command: Command) -> String {
    let words: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let out = run(Command::new(tool("script"))
        .current_dir(dir)
        .env("TERM", "xterm")
        .args(["-qec", &words.join(" "), "/dev/null"]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sboms_are_attached_as_referrers_and_fetched_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let image = format!("{}:1", registry.reference("team/static"));
    let report = build(
        d,
        &[
            "catalog:static",
            "--sbom",
            "spdx,cyclonedx",
            "--sbom-files",
            "--insecure",
            "-o",
            "oci:out:static",
            "-o",
            &image,
        ],
    );
    let digest = report["digest"].as_str().unwrap();
    assert_eq!(report["pushes"][0]["referrers"], 2);
    validate_sbom("spdx", &d.join("out.spdx.json"));
    validate_sbom("cyclonedx", &d.join("out.cdx.json"));
    let spdx = std::fs::read(d.join("out.spdx.json")).unwrap();
    let cdx = std::fs::read(d.join("out.cdx.json")).unwrap();

    // The layout lists both SBOMs, untagged, as referrers of the image.
    let index: Value =
        serde_json::from_slice(&std::fs::read(d.join("out/index.json")).unwrap()).unwrap();
    let artifacts: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    assert_eq!(
        artifacts,
        ["application/spdx+json", "application/vnd.cyclonedx+json"]
    );

    // docker-registry has no referrers API: the index under the sha256-<hex> tag lists them.
    let fallback = format!(
        "{}:sha256-{}",
        registry.reference("team/static"),
        &digest[7..]
    );
    let listed = skopeo_raw(d, &fallback);
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 2, "{listed}");
    // Each referrer, as skopeo reads it, refers to the image, says what it is, and holds
    // the SBOM's bytes as one blob, which a plain HTTP GET fetches.
    for listing in listed["manifests"].as_array().unwrap() {
        let at = format!(
            "{}@{}",
            registry.reference("team/static"),
            listing["digest"].as_str().unwrap()
        );
        let referrer = skopeo_raw(d, &at);
        assert_eq!(referrer["subject"]["digest"], digest, "{referrer}");
        assert_eq!(referrer["artifactType"], listing["artifactType"]);
        let expected = match referrer["artifactType"].as_str().unwrap() {
            "application/spdx+json" => &spdx,
            "application/vnd.cyclonedx+json" => &cdx,
            other => panic!("a referrer of type {other}"),
        };
        let layers = referrer["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{referrer}");
        let url = format!(
            "http://127.0.0.1:{}/v2/team/static/blobs/{}",
            registry.port,
            layers[0]["digest"].as_str().unwrap()
        );
        let blob = run(Command::new(tool("curl")).args(["-fsSL", &url]));
        assert_eq!(&blob.stdout, expected, "{url}");
    }
    let sbom = |reference: &str, format: &str| {
        let out = run(&mut bareboat(
            d,
            "sbom",
            &[
                "--insecure",
                "--from-registry",
                reference,
                "--format",
                format,
            ],
        ));
        out.stdout
    };
    assert_eq!(sbom(&image, "spdx"), spdx);
    assert_eq!(sbom(&image, "cyclonedx"), cdx);

    // A copy carries them, to another repository and into a layout.
    let copied = format!("{}:1", registry.reference("team/copy"));
    let out = run(&mut bareboat(d, "copy", &["--insecure", &image, &copied]));
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["push"]["referrers"], 2, "{out}");
    assert_eq!(sbom(&copied, "spdx"), spdx);
    run(&mut bareboat(
        d,
        "copy",
        &["--insecure", &copied, "oci:pulled:static"],
    ));
    let pulled: Value =
        serde_json::from_slice(&std::fs::read(d.join("pulled/index.json")).unwrap()).unwrap();
    assert_eq!(pulled["manifests"].as_array().unwrap().len(), 3, "{pulled}");

    // An OCI archive of the layout, as tar makes it, keeps them listed: they are read
    // with the image and pushed with it.
    run(Command::new("tar").current_dir(d.join("out")).args([
        "-cf",
        "../sboms.tar",
        "oci-layout",
        "index.json",
        "blobs",
    ]));
    let from_tar = format!("{}:1", registry.reference("team/fromtar"));
    let out = run(&mut bareboat(
        d,
        "copy",
        &["--insecure", "oci-archive:sboms.tar:static", &from_tar],
    ));
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["push"]["referrers"], 2, "{out}");
    assert_eq!(sbom(&from_tar, "cyclonedx"), cdx);

    // An image without SBOMs says so.
    let plain = format!("{}:1", registry.reference("team/plain"));
    build(
        d,
        &[
            "catalog:static",
            "--source-date-epoch",
            "1",
            "--insecure",
            "-o",
            &plain,
        ],
    );
    fails_with(
        &mut bareboat(d, "sbom", &["--insecure", "--from-registry", &plain]),
        "no application/spdx+json SBOM refers to",
    );

    // Through a registry with the referrers API, no tag is needed, and the API answers.
    let proxy = FaultProxy::with_referrers_api(registry.port);
    let through = format!("docker://127.0.0.1:{}/team/api:1", proxy.port);
    let out = run(&mut bareboat(
        d,
        "copy",
        &["--insecure", "oci:out:static", &through],
    ));
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["push"]["referrers"], 2, "{out}");
    let tags = run(Command::new(tool("skopeo")).args([
        "list-tags",
        "--tls-verify=false",
        &registry.reference("team/api"),
    ]));
    let tags: Value = serde_json::from_slice(&tags.stdout).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["1"]));
    assert_eq!(sbom(&through, "spdx"), spdx);
    assert!(
        proxy.fired().iter().any(|f| f.ends_with("referrers API")),
        "{:?}",
        proxy.fired()
    );
}

/// The token issuer of `tests/registry/token_issuer.py`, signing with the test CA's key;
/// stopped when dropped.
struct TokenIssuer {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl TokenIssuer {
    fn start(dir: &Path) -> TokenIssuer {
        common::make_test_ca(dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/token_issuer.py");
        let (port_file, log) = (dir.join("token.port"), dir.join("token.log"));
        let child = Command::new(tool("python3"))
            .arg(script)
            .args([
                dir.join("ca.key"),
                dir.join("ca.pem"),
                port_file.clone(),
                log.clone(),
            ])
            .spawn()
            .unwrap();
        // Dropped, it stops the issuer, also when it never starts.
        let mut issuer = TokenIssuer {
            child,
            port: 0,
            log,
        };
        for _ in 0..50 {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                issuer.port = port.parse().unwrap();
                return issuer;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the token issuer did not start");
    }

    /// The scopes asked for, a line per token request.
    fn requests(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(String::from).collect()
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn bearer_tokens_from_the_registrys_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = TokenIssuer::start(d);
    let registry = LocalRegistry::start_with(
        d,
        &format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: bareboat-test\n\
             \x20   issuer: bareboat-test-issuer\n    rootcertbundle: {}\n",
            issuer.port,
            d.join("ca.pem").display()
        ),
    );
    build(d, &["catalog:static", "-o", "oci:out:static"]);
    let target = format!("{}:1", registry.reference("team/app"));

    // Without credentials the issuer refuses, and the error says how to log in.
    fails_with(
        &mut hermetic(d, "copy", &["--insecure", "oci:out:static", &target]),
        "hint: log in with `bareboat login",
    );
    let pushed = run(&mut hermetic(
        d,
        "copy",
        &[
            "--insecure",
            "--creds",
            "user:secret",
            "oci:out:static",
            &target,
        ],
    ));
    let pushed: Value = serde_json::from_slice(&pushed.stdout).unwrap();
    assert!(
        issuer
            .requests()
            .iter()
            .any(|r| r == "repository:team/app:pull,push"),
        "{:?}",
        issuer.requests()
    );
    let out = run(Command::new(tool("skopeo")).args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "user:secret",
        &target,
    ]));
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], pushed["digest"]);
    let pulled = run(&mut hermetic(
        d,
        "copy",
        &[
            "--insecure",
            "--creds",
            "user:secret",
            &target,
            "oci:pulled:x",
        ],
    ));
    let pulled: Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(pulled["digest"], pushed["digest"]);
}

/// A forward proxy for HTTPS: it tunnels each CONNECT to its target and records the
/// targets.
struct ConnectProxy {
    port: u16,
    tunnels: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnels = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = tunnels.clone();
        std::thread::spawn(move || {
            for mut client in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let Some(head) = read_head(&mut client) else {
                        return;
                    };
                    let Some(target) = head.strip_prefix("CONNECT ") else {
                        return;
                    };
                    let target = target.split(' ').next().unwrap_or_default().to_string();
                    record.lock().unwrap().push(target.clone());
                    let Ok(up) = std::net::TcpStream::connect(&target) else {
                        return;
                    };
                    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    relay(client, up);
                });
            }
        });
        ConnectProxy { port, tunnels }
    }

    fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

#[test]
fn https_proxy_and_no_proxy_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start_tls_with_auth(d);
    build(d, &["catalog:static", "-o", "oci:out:static"]);
    let proxy = ConnectProxy::start();
    let ca = d.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let target = format!("docker://localhost:{}/team/app:1", registry.port);
    let push = |env: &[(&str, String)]| {
        let mut cmd = hermetic(
            d,
            "copy",
            &[
                "--ca-cert",
                ca,
                "--creds",
                "user:secret",
                "oci:out:static",
                &target,
            ],
        );
        for v in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "NO_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        run(&mut cmd)
    };
    let via = format!("http://127.0.0.1:{}", proxy.port);
    push(&[("HTTPS_PROXY", via.clone())]);
    let registry_host = format!("localhost:{}", registry.port);
    assert!(
        proxy.tunnels().contains(&registry_host),
        "{:?}",
        proxy.tunnels()
    );
    // NO_PROXY names the registry: it is reached directly.
    let before = proxy.tunnels().len();
    push(&[("HTTPS_PROXY", via), ("NO_PROXY", "localhost".to_string())]);
    assert_eq!(proxy.tunnels().len(), before, "{:?}", proxy.tunnels());
}
