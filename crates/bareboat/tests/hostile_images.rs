//! Images made to trick their reader, read by `copy`, `inspect` and `build --from`: a blob
//! that is a symbolic link to a host file or is not what its descriptor says, a layout
//! whose lock or `blobs/` is a link, and layers that do not match their config's diff_ids.
//! Each is refused with an error naming it, and nothing is written anywhere: not the host
//! file, not a layout, an archive or a registry.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bareboat_testkit::sha256;
use common::{LocalRegistry, bareboat, run};
use serde_json::{Value, json};

/// What no output may ever hold.
const SECRET: &[u8] = b"bareboat-test-host-secret-5c1e";

/// A plain tar of `files`.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, path, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256(bytes))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Stores `bytes` as a blob of `layout` and describes it.
fn put(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let d = digest(bytes);
    std::fs::write(blob_path(layout, &d), bytes).unwrap();
    json!({ "mediaType": media_type, "digest": d, "size": bytes.len() })
}

/// Writes a new layout at `layout` holding one image, tagged `x`, of the plain tar
/// `layers`, whose config lists `diff_ids`.
fn write_image(layout: &Path, layers: &[Vec<u8>], diff_ids: &[String]) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| put(layout, "application/vnd.oci.image.layer.v1.tar", l))
        .collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "User": "65532" },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": put(layout, "application/vnd.oci.image.config.v1+json", config.to_string().as_bytes()),
        "layers": layers,
    });
    tag(layout, &manifest);
}

/// Stores `manifest` in `layout` and makes `index.json` list it alone, tagged `x`.
fn tag(layout: &Path, manifest: &Value) {
    let mut entry = put(
        layout,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    entry["annotations"] = json!({ "org.opencontainers.image.ref.name": "x" });
    let index = json!({ "schemaVersion": 2, "manifests": [entry] });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
}

/// The manifest of the image tagged `x` in `layout`, the only one it lists.
fn manifest(layout: &Path) -> Value {
    let index = read_json(&layout.join("index.json"));
    read_json(&blob_path(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ))
}

/// A copy of the layout `from` at `to`, whose image's config `change` rewrites (its
/// manifest and index follow, so only the config lies).
fn with_config(from: &Path, to: &Path, change: impl FnOnce(&mut Value)) {
    run(Command::new("cp").arg("-r").arg(from).arg(to));
    let mut manifest = manifest(to);
    let mut config = read_json(&blob_path(
        to,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    change(&mut config);
    manifest["config"] = put(
        to,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    tag(to, &manifest);
}

/// Every regular file under `dir`, links not followed.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(p) = pending.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            pending.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if meta.is_file() {
            out.push(p);
        }
    }
    out
}

/// Fails if any file under `dir` but those of `except` holds [`SECRET`].
fn assert_secret_nowhere(dir: &Path, except: &[PathBuf]) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            except.contains(&file) || !bytes.windows(SECRET.len()).any(|w| w == SECRET),
            "{} holds the host's secret",
            file.display()
        );
    }
}

/// Runs `cmd`, expecting exit status 1 and an error with each of `expected`; returns the
/// error.
fn refused(cmd: &mut Command, expected: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
    for e in expected {
        assert!(err.contains(e), "{cmd:?}: expected {e:?} in: {err}");
    }
    err
}

/// The `copy` destinations of every kind of sink, each to be refused.
fn sinks(registry: &LocalRegistry, repository: &str) -> [String; 4] {
    [
        "oci:dest:x".into(),
        "oci-archive:dest.tar".into(),
        "docker-archive:dest.tar".into(),
        format!("{}:1", registry.reference(repository)),
    ]
}

#[test]
fn copy_reads_no_blob_through_a_link_or_unlike_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let secret = d.join("secret.txt");
    std::fs::write(&secret, SECRET).unwrap();
    let layer = tar_of(&[("etc/hello", b"hello\n")]);
    write_image(
        &d.join("good"),
        std::slice::from_ref(&layer),
        &[digest(&layer)],
    );

    // The image itself goes anywhere.
    let good = registry.reference("hostile/good");
    for sink in [
        "oci:ok:x",
        "oci-archive:ok.tar",
        "docker-archive:ok-docker.tar",
        &format!("{good}:1"),
    ] {
        run(&mut bareboat(
            d,
            "copy",
            &["--insecure", "oci:good:x", sink],
        ));
    }
    let repositories = d.join("registry-data/docker/registry/v2/repositories/hostile");
    assert!(repositories.join("good").is_dir());
    let uploads = registry.uploads_started();

    let layer_blob = |layout: &Path| blob_path(layout, &digest(&layer));
    type Tamper = fn(&Path, &Path);
    let cases: [(&str, Tamper, &str); 3] = [
        (
            "link",
            |blob, secret| {
                std::fs::remove_file(blob).unwrap();
                std::os::unix::fs::symlink(secret, blob).unwrap();
            },
            "is a symbolic link, which bareboat never follows here",
        ),
        (
            "same-size",
            |blob, _| {
                let mut bytes = std::fs::read(blob).unwrap();
                bytes[512] ^= 0x20;
                std::fs::write(blob, bytes).unwrap();
            },
            "does not match its digest",
        ),
        (
            "larger",
            |blob, _| {
                let mut bytes = std::fs::read(blob).unwrap();
                bytes.extend_from_slice(SECRET);
                std::fs::write(blob, bytes).unwrap();
            },
            "its descriptor says 2048",
        ),
    ];
    for (case, tamper, expected) in cases {
        let layout = d.join(case);
        run(Command::new("cp")
            .arg("-r")
            .arg(d.join("good"))
            .arg(&layout));
        tamper(&layer_blob(&layout), &secret);
        let source = format!("oci:{case}:x");
        let named = format!("blob {}", digest(&layer));
        for sink in sinks(&registry, &format!("hostile/{case}")) {
            let copy = &mut bareboat(d, "copy", &["--insecure", &source, &sink]);
            let err = refused(copy, &[&named, expected]);
            assert!(!err.contains(&*String::from_utf8_lossy(SECRET)), "{err}");
        }
        refused(&mut bareboat(d, "inspect", &[&source]), &[&named, expected]);
        assert!(
            !repositories.join(case).exists(),
            "{case}: the registry has the image"
        );
    }
    assert!(!d.join("dest").exists() && !d.join("dest.tar").exists());
    // The registry was never sent a byte of any of them.
    assert_eq!(registry.uploads_started(), uploads);
    // Only the host file has it, and the blob that carries it past its descriptor's size.
    assert_secret_nowhere(d, &[secret, layer_blob(&d.join("larger"))]);
}

#[test]
fn a_layout_is_never_written_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layer = tar_of(&[("etc/hello", b"hello\n")]);
    write_image(
        &d.join("good"),
        std::slice::from_ref(&layer),
        &[digest(&layer)],
    );
    let victim = d.join("victim.txt");
    std::fs::write(&victim, b"the victim's content").unwrap();

    // A lock file that is a link, to a file or to nowhere, is refused: the file it leads
    // to is neither truncated nor made.
    let made = d.join("made-by-the-lock");
    for (name, target) in [("locked", &victim), ("dangling", &made)] {
        let layout = d.join(name);
        run(Command::new("cp")
            .arg("-r")
            .arg(d.join("good"))
            .arg(&layout));
        std::os::unix::fs::symlink(target, layout.join(".index.lock")).unwrap();
        refused(
            &mut bareboat(d, "copy", &["oci:good:x", &format!("oci:{name}:y")]),
            &[&format!("{name}/.index.lock"), "is a symbolic link"],
        );
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"the victim's content");
    assert!(!made.exists(), "the lock's link made a file");

    // A layout's blobs are its own: `blobs/` or `blobs/sha256/` as a link is refused,
    // written to or read from, and nothing lands where it leads.
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("sha256")).unwrap();
    for (name, link, target) in [
        ("blobs-link", "blobs", elsewhere.clone()),
        ("sha256-link", "blobs/sha256", elsewhere.join("sha256")),
    ] {
        let layout = d.join(name);
        std::fs::create_dir_all(layout.join("blobs")).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        if link == "blobs" {
            std::fs::remove_dir(layout.join("blobs")).unwrap();
        }
        std::os::unix::fs::symlink(&target, layout.join(link)).unwrap();
        refused(
            &mut bareboat(d, "copy", &["oci:good:x", &format!("oci:{name}:x")]),
            &[&format!("{name}/{link} is a symbolic link")],
        );
        assert_eq!(files_under(&elsewhere), Vec::<PathBuf>::new(), "{name}");
    }
    let linked = d.join("linked-source");
    std::fs::create_dir(&linked).unwrap();
    std::fs::copy(d.join("good/oci-layout"), linked.join("oci-layout")).unwrap();
    std::fs::copy(d.join("good/index.json"), linked.join("index.json")).unwrap();
    std::os::unix::fs::symlink(d.join("good/blobs"), linked.join("blobs")).unwrap();
    let expected = ["linked-source/blobs is a symbolic link"];
    refused(
        &mut bareboat(d, "inspect", &["oci:linked-source:x"]),
        &expected,
    );
    let copy = &["oci:linked-source:x", "oci:dest:x"];
    refused(&mut bareboat(d, "copy", copy), &expected);
    assert!(!d.join("dest").exists());
}

/// A legacy docker archive (`manifest.json` and `layer.tar`, no OCI layout, as Docker
/// before 25 and podman write) of one image, `app:1`, with `layer` as its layer and a
/// config that gives it the diff_id of `described`.
fn legacy_archive(path: &Path, layer: &[u8], described: &[u8]) {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [digest(described)] },
    })
    .to_string();
    let manifest = json!([{
        "Config": "config.json",
        "RepoTags": ["app:1"],
        "Layers": ["aaa/layer.tar"],
    }])
    .to_string();
    let members: [(&str, &[u8]); 3] = [
        ("manifest.json", manifest.as_bytes()),
        ("config.json", config.as_bytes()),
        ("aaa/layer.tar", layer),
    ];
    std::fs::write(path, tar_of(&members)).unwrap();
}

#[test]
fn layers_must_match_the_diff_ids_of_their_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let base = tar_of(&[("etc/hello", b"hello\n")]);
    write_image(
        &d.join("base"),
        std::slice::from_ref(&base),
        &[digest(&base)],
    );
    std::fs::write(d.join("app.txt"), b"the app\n").unwrap();
    // bareboat's layer, gzipped, on the base's: an image of two layers.
    let build_on = |from: &str, to: &str| {
        let args = [
            "--from",
            from,
            "--add",
            "app.txt:/app/app.txt",
            "--no-auto-deps",
        ];
        let mut cmd = bareboat(d, "build", &args);
        cmd.args(["-o", to]);
        cmd
    };
    run(&mut build_on("oci:base:x", "oci:built:x"));
    let built = d.join("built");
    let top = manifest(&built)["layers"][1].clone();
    let top_digest = top["digest"].as_str().unwrap().to_string();
    assert!(
        top["mediaType"].as_str().unwrap().ends_with("gzip"),
        "{top}"
    );
    let config = read_json(&blob_path(
        &built,
        manifest(&built)["config"]["digest"].as_str().unwrap(),
    ));
    let true_diff_id = config["rootfs"]["diff_ids"][1]
        .as_str()
        .unwrap()
        .to_string();
    let forged = digest(b"some other layer");

    with_config(&built, &d.join("wrong"), |c| {
        c["rootfs"]["diff_ids"][1] = json!(forged);
    });
    with_config(&built, &d.join("short"), |c| {
        c["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
    });
    // umoci refuses the first, as it should.
    let out = Command::new(common::tool("umoci"))
        .current_dir(d)
        .args(["unpack", "--rootless", "--image", "wrong:x", "bundle"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "umoci unpacked a forged diff_id");

    let wrong = [
        format!("layer {top_digest}"),
        format!("has diff_id {true_diff_id}"),
        format!("config says {forged}"),
    ];
    let short = ["its manifest lists 2 layers, and its config's rootfs.diff_ids 1".to_string()];
    for (case, expected) in [("wrong", &wrong[..]), ("short", &short[..])] {
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        let source = format!("oci:{case}:x");
        refused(&mut bareboat(d, "inspect", &[&source]), &expected);
        for sink in sinks(&registry, &format!("hostile/{case}")) {
            let copy = &["--insecure", &source, &sink];
            refused(&mut bareboat(d, "copy", copy), &expected);
        }
        refused(&mut build_on(&source, "oci:on-forged:x"), &expected);
        assert!(
            !d.join("on-forged").exists(),
            "{case}: an image was built on it"
        );
    }
    assert!(!d.join("dest").exists() && !d.join("dest.tar").exists());

    // A legacy docker archive has no digests for its layers: only the config's diff_ids
    // can tell a tampered layer.tar.
    let layer = tar_of(&[("etc/hello", b"hello\n")]);
    let tampered = tar_of(&[("etc/hello", b"HELLO\n")]);
    legacy_archive(&d.join("legacy.tar"), &layer, &layer);
    run(&mut bareboat(d, "inspect", &["docker-archive:legacy.tar"]));
    run(&mut bareboat(
        d,
        "copy",
        &["docker-archive:legacy.tar", "oci:legacy-copy:x"],
    ));
    // The copy is the image: oci-image-tool validates it, umoci unpacks it (checking every
    // diff_id), and its file holds what the archive's layer held.
    let bundle = common::unpack(d, "legacy-copy", "x");
    assert_eq!(
        std::fs::read(bundle.join("rootfs/etc/hello")).unwrap(),
        b"hello\n"
    );
    legacy_archive(&d.join("tampered.tar"), &tampered, &layer);
    let expected = [
        format!("layer {}", digest(&tampered)),
        format!("has diff_id {}", digest(&tampered)),
        format!("config says {}", digest(&layer)),
    ];
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    refused(
        &mut bareboat(d, "inspect", &["docker-archive:tampered.tar"]),
        &expected,
    );
    for sink in ["oci:dest:x", "oci-archive:dest.tar"] {
        let copy = &["docker-archive:tampered.tar", sink];
        refused(&mut bareboat(d, "copy", copy), &expected);
    }
    assert!(!d.join("dest").exists() && !d.join("dest.tar").exists());
}

/// The archive `archive` with `first` before its members: each named as given, byte for
/// byte, since tar's own path setter would tidy a `./` away.
fn prepended(archive: &[u8], first: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for (name, bytes) in first {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        out.append(&h, *bytes).unwrap();
    }
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        out.append(&header, &mut entry).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn an_archive_that_holds_a_document_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layer = tar_of(&[("etc/hello", b"hello\n")]);
    write_image(
        &d.join("good"),
        std::slice::from_ref(&layer),
        &[digest(&layer)],
    );
    run(&mut bareboat(
        d,
        "copy",
        &["oci:good:x", "oci-archive:oci.tar"],
    ));
    run(&mut bareboat(
        d,
        "copy",
        &["oci:good:x", "docker-archive:docker.tar:app:1"],
    ));
    legacy_archive(&d.join("legacy.tar"), &layer, &layer);
    // Another image's documents, first: a reader that takes the first copy of a member
    // sees them, one that takes the last sees the image.
    let index = json!({ "schemaVersion": 2, "manifests": [] }).to_string();
    let index = index.as_bytes();
    let manifest =
        json!([{ "Config": "config.json", "RepoTags": ["app:1"], "Layers": [] }]).to_string();
    let manifest = manifest.as_bytes();
    let cases = [
        (
            "oci-archive",
            "oci.tar",
            vec![("index.json", index)],
            "index.json",
        ),
        (
            "oci-archive",
            "oci.tar",
            vec![("./index.json", index)],
            "index.json",
        ),
        (
            "oci-archive",
            "oci.tar",
            vec![("manifest.json", manifest), ("manifest.json", manifest)],
            "manifest.json",
        ),
        (
            "docker-archive",
            "docker.tar",
            vec![("index.json", index)],
            "index.json",
        ),
        (
            "docker-archive",
            "docker.tar",
            vec![("./manifest.json", manifest)],
            "manifest.json",
        ),
        (
            "docker-archive",
            "legacy.tar",
            vec![("manifest.json", manifest)],
            "manifest.json",
        ),
        (
            "docker-archive",
            "legacy.tar",
            vec![("aaa/../manifest.json", manifest)],
            "manifest.json",
        ),
    ];
    for (i, (transport, original, first, member)) in cases.into_iter().enumerate() {
        let file = format!("twice-{i}.tar");
        let bytes = std::fs::read(d.join(original)).unwrap();
        std::fs::write(d.join(&file), prepended(&bytes, &first)).unwrap();
        let source = format!("{transport}:{file}");
        let expected = [
            file.as_str(),
            &format!("{member} is in the archive more than once"),
        ];
        refused(&mut bareboat(d, "inspect", &[&source]), &expected);
        refused(&mut bareboat(d, "audit", &[&source]), &expected);
        for sink in [
            "oci:dest:x",
            "oci-archive:dest.tar",
            "docker-archive:dest.tar",
        ] {
            refused(&mut bareboat(d, "copy", &[&source, sink]), &expected);
        }
        assert!(!d.join("dest").exists() && !d.join("dest.tar").exists());
    }
    // The archives as they were are read.
    for source in [
        "oci-archive:oci.tar",
        "docker-archive:docker.tar",
        "docker-archive:legacy.tar",
    ] {
        run(&mut bareboat(d, "inspect", &[source]));
    }
}
