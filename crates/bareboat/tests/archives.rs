//! Image archives and `bareboat copy`, read back by skopeo, podman and umoci: oci-archive
//! and docker-archive outputs of a build, copies between every pair of transports, and
//! tampered or malformed input refused without writing anything.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_copies_refused, bareboat, build, podman, run, tool, unpack};
use serde_json::Value;

/// `bareboat --json copy ARGS` in `dir`; returns the report.
fn copy(dir: &Path, args: &[&str]) -> Value {
    let out = run(&mut bareboat(dir, "copy", args));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn skopeo_inspect(dir: &Path, reference: &str) -> Value {
    let out = run(Command::new(tool("skopeo"))
        .current_dir(dir)
        .args(["inspect", reference]));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_build_writes_archives_that_skopeo_and_podman_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let report = build(
        d,
        &[
            "catalog:static:debug",
            "-o",
            "oci-archive:static.tar:v1",
            "-o",
            "docker-archive:static-docker.tar:example.com/team/static:1.0",
        ],
    );
    let digest = report["digest"].as_str().unwrap();
    // No layout output: the archives alone are written.
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["static-docker.tar", "static.tar"]);

    // The OCI archive keeps the manifest digest.
    assert_eq!(
        skopeo_inspect(d, "oci-archive:static.tar:v1")["Digest"],
        digest
    );
    // The docker archive: skopeo reads its manifest.json, podman loads it under its name
    // and runs it.
    let docker = skopeo_inspect(d, "docker-archive:static-docker.tar");
    assert_eq!(docker["Architecture"], "amd64");
    let out = run(podman(d).args(["load", "-i", "static-docker.tar"]));
    let loaded = String::from_utf8_lossy(&out.stdout);
    assert!(loaded.contains("example.com/team/static:1.0"), "{loaded}");
    let out = run(podman(d).args([
        "run",
        "--rm",
        "--network=none",
        "example.com/team/static:1.0",
        "-c",
        "echo loaded; id -u",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "loaded\n65532\n");

    // Archives are deterministic: the same image gives the same bytes.
    build(
        d,
        &["catalog:static:debug", "-o", "oci-archive:again.tar:v1"],
    );
    assert_eq!(
        std::fs::read(d.join("static.tar")).unwrap(),
        std::fs::read(d.join("again.tar")).unwrap()
    );
}

#[test]
fn copy_moves_images_between_layouts_and_archives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let report = build(
        d,
        &[
            "catalog:base-nossl",
            "--arch",
            "amd64,arm64",
            "-o",
            "oci:out:multi",
        ],
    );
    let index = report["digest"].as_str().unwrap();
    let arm64 = report["images"][1]["manifest"].as_str().unwrap();

    // A multi-platform index round-trips through an OCI archive with its digest.
    let c = copy(d, &["oci:out:multi", "oci-archive:multi.tar:v2"]);
    assert_eq!(c["digest"], index);
    let c = copy(d, &["oci-archive:multi.tar:v2", "oci:back:multi"]);
    assert_eq!(c["digest"], index);
    run(Command::new(tool("skopeo")).current_dir(d).args([
        "--override-arch",
        "arm64",
        "inspect",
        "oci:back:multi",
    ]));

    // One platform out of it into a docker archive, and back, still the same manifest.
    let c = copy(
        d,
        &[
            "--arch",
            "arm64",
            "oci:out:multi",
            "docker-archive:arm64.tar:team/app:arm64",
        ],
    );
    assert_eq!(c["digest"], arm64);
    assert_eq!(
        skopeo_inspect(d, "docker-archive:arm64.tar")["Architecture"],
        "arm64"
    );
    let c = copy(
        d,
        &["docker-archive:arm64.tar:team/app:arm64", "oci:one:arm64"],
    );
    assert_eq!(c["digest"], arm64);
    unpack(d, "one", "arm64");

    // A docker archive as podman (and older Docker) write it, without an OCI layout, is
    // converted, and umoci unpacks the result with every diff_id checked.
    run(podman(d).args(["pull", "oci:back:multi"]));
    let images = run(podman(d).args(["images", "--format", "{{.ID}}"]));
    let id = String::from_utf8_lossy(&images.stdout).trim().to_string();
    run(podman(d).args([
        "save",
        "--format",
        "docker-archive",
        "-o",
        "legacy.tar",
        &id,
    ]));
    copy(d, &["docker-archive:legacy.tar", "oci:legacy:amd64"]);
    let bundle = unpack(d, "legacy", "amd64");
    assert!(
        bundle
            .join("rootfs/usr/lib/x86_64-linux-gnu/libc.so.6")
            .exists()
    );
}

#[test]
fn bad_references_and_tampered_archives_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build(d, &["catalog:static", "-o", "oci:out:static"]);
    copy(d, &["oci:out:static", "oci-archive:good.tar:v1"]);

    // Flip one byte inside the layer blob: the archive is refused at that blob.
    let mut bytes = std::fs::read(d.join("good.tar")).unwrap();
    let layer_at = {
        let mut archive = tar::Archive::new(&bytes[..]);
        let entry = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .max_by_key(|e| e.header().size().unwrap())
            .unwrap();
        entry.raw_file_position() as usize
    };
    bytes[layer_at + 100] ^= 0xff;
    std::fs::write(d.join("tampered.tar"), &bytes).unwrap();

    let cases: &[(&[&str], &str)] = &[
        (
            &["oci-archive:tampered.tar", "oci:dest:x"],
            "does not match its digest",
        ),
        (&["tar:thing", "oci:dest:x"], "unknown transport \"tar\""),
        (
            &["oci:out:static", "docker-archive:dest.tar:Bad/Name"],
            "repository is lowercase",
        ),
        (&["oci:out:static", "oci:dest:-tag"], "is not a valid tag"),
        (&["oci:missing:static", "oci:dest:x"], "not an OCI layout"),
        (
            &["oci:out:nope", "oci:dest:x"],
            "no image is tagged \"nope\"",
        ),
        (
            &["oci-archive:good.tar:other", "oci:dest:x"],
            "no image tagged \"other\"",
        ),
    ];
    assert_copies_refused(d, cases);

    // A multi-arch build refuses a docker archive output before building anything.
    let out = bareboat(
        d,
        "build",
        &[
            "catalog:static",
            "--arch",
            "amd64,arm64",
            "-o",
            "docker-archive:dest.tar",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("holds one platform's image"), "{err}");
    assert!(!d.join("dest.tar").exists());
}
