//! Rebasing catalogue images: an application on `cc` put on `cc:debug` without rebuilding
//! it, run; and the refusals: a base the image was not built on, and a base whose libraries
//! lack what the application needs; and from a registry to a registry, every layer mounted
//! rather than uploaded. (Rebasing across package versions, with the SBOM and
//! `rebase --check`, is tested against the signed loopback repository in `local_repo.rs`.)

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    LocalRegistry, bareboat, build, layer_digests, run, runc, skopeo_raw, tool, trixie_programs,
    unpack,
};
use serde_json::Value;

/// The layer digests of the image `tag` of the layout `layout` in `dir`.
fn layers_of(dir: &Path, layout: &str, tag: &str) -> Vec<String> {
    let out = run(&mut bareboat(
        dir,
        "inspect",
        &[&format!("oci:{layout}:{tag}")],
    ));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn rebase(dir: &Path, args: &[&str]) -> std::process::Output {
    bareboat(dir, "rebase", args).output().unwrap()
}

#[test]
fn an_application_moves_to_another_base_unchanged_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::hello(
        d,
        "#include <stdio.h>\nint main(void){puts(\"rebased\");}\n",
    );
    build(d, &["catalog:cc", "-o", "oci:bases:cc"]);
    let debug = build(d, &["catalog:cc:debug", "-o", "oci:bases:cc-debug"]);
    let app = build(
        d,
        &[
            "--from",
            "oci:bases:cc",
            "--add",
            "hello:/app/hello",
            "--entrypoint",
            "/app/hello",
            "-o",
            "oci:app:app",
        ],
    );
    let own = layer_digests(&app);
    let out = rebase(
        d,
        &[
            "oci:app:app",
            "--onto",
            "oci:bases:cc-debug",
            "-o",
            "oci:rebased:app",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The base's layers are cc:debug's; the application's own are the same blobs.
    let rebased = layers_of(d, "rebased", "app");
    let debug_layers = layer_digests(&debug);
    assert_eq!(rebased[..debug_layers.len()], debug_layers[..]);
    assert_eq!(rebased.last(), own.last());
    let bundle = unpack(d, "rebased", "app");
    assert_eq!(runc(&bundle, &[]), "rebased\n");
    assert!(bundle.join("rootfs/busybox").exists() || bundle.join("rootfs/bin/busybox").exists());

    // Refused: a base the image was not built on.
    let out = rebase(
        d,
        &[
            "oci:app:app",
            "--old-base",
            "oci:bases:cc-debug",
            "--onto",
            "oci:bases:cc",
            "-o",
            "oci:wrong:app",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("are not the old base's"), "{err}");
    assert!(!d.join("wrong").exists());
}

#[test]
fn a_base_whose_libraries_are_older_than_the_application_needs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trixie_programs(d);
    build(d, &["catalog:cc", "-o", "oci:bases:trixie"]);
    build(
        d,
        &[
            "catalog:cc",
            "--release",
            "bookworm",
            "-o",
            "oci:bases:bookworm",
        ],
    );
    build(
        d,
        &[
            "--from",
            "oci:bases:trixie",
            "--add",
            "jq:/app/jq",
            "--entrypoint",
            "/app/jq",
            "-o",
            "oci:app:jq",
        ],
    );
    let out = rebase(
        d,
        &[
            "oci:app:jq",
            "--onto",
            "oci:bases:bookworm",
            "-o",
            "oci:old:jq",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/app/jq needs GLIBC_2.38"), "{err}");
    assert!(!d.join("old").exists());
}

#[test]
fn each_platform_of_an_index_is_rebased_onto_its_own_base() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let arches = ["--arch", "amd64,arm64"];
    build(
        d,
        &[
            &["catalog:base-nossl"][..],
            &arches,
            &["-o", "oci:bases:nossl"],
        ]
        .concat(),
    );
    let onto = build(
        d,
        &[
            &["catalog:static"][..],
            &arches,
            &["-o", "oci:bases:static"],
        ]
        .concat(),
    );
    std::fs::write(d.join("data.txt"), "data\n").unwrap();
    let add = ["--add", "data.txt:/app/data.txt", "-o", "oci:app:app"];
    build(
        d,
        &[&["--from", "oci:bases:nossl"][..], &arches, &add].concat(),
    );
    let out = rebase(
        d,
        &[
            "oci:app:app",
            "--onto",
            "oci:bases:static",
            "-o",
            "oci:rebased:app",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = common::skopeo_raw(d, "oci:rebased:app");
    let platforms: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    // Each platform's first layer is its own new base's.
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let out = run(&mut bareboat(
            d,
            "inspect",
            &["oci:rebased:app", "--arch", arch],
        ));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report["layers"][0]["digest"], onto["images"][i]["layers"][0]["digest"],
            "{arch}"
        );
    }
}

#[test]
fn a_registry_image_is_rebased_into_the_registry_by_mounting_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let (cc, debug) = (
        format!("{}:latest", registry.reference("bases/cc")),
        format!("{}:debug", registry.reference("bases/cc")),
    );
    build(d, &["catalog:cc", "--insecure", "-o", &cc]);
    build(d, &["catalog:cc:debug", "--insecure", "-o", &debug]);
    std::fs::write(d.join("data.txt"), "kept\n").unwrap();
    let app = format!("{}:1", registry.reference("team/app"));
    let built = build(
        d,
        &[
            "--from",
            &cc,
            "--add",
            "data.txt:/app/data.txt",
            "--insecure",
            "-o",
            &app,
        ],
    );
    let rebased = format!("{}:1", registry.reference("team/rebased"));
    let out = run(&mut bareboat(
        d,
        "rebase",
        &[&app, "--onto", &debug, "--insecure", "-o", &rebased],
    ));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The new base's layers come from its repository and the application's own from its
    // one: every layer is mounted, and only the new config is uploaded.
    let manifest = skopeo_raw(d, &rebased);
    let layers = manifest["layers"].as_array().unwrap();
    let push = &report["push"];
    assert_eq!(push["mounted_blobs"], layers.len(), "{report}");
    assert_eq!(push["uploaded_blobs"], 1, "{report}");
    let own = layer_digests(&built);
    assert_eq!(
        layers.last().unwrap()["digest"],
        own.last().unwrap().as_str()
    );
    let base = skopeo_raw(d, &debug);
    let base_layers = base["layers"].as_array().unwrap();
    assert_eq!(&layers[..base_layers.len()], &base_layers[..]);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        debug.trim_start_matches("docker://")
    );

    // What the registry holds is whole: skopeo copies it, umoci checks every diff_id.
    run(Command::new(tool("skopeo")).current_dir(d).args([
        "copy",
        "--src-tls-verify=false",
        &rebased,
        "oci:pulled:app",
    ]));
    let bundle = unpack(d, "pulled", "app");
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/app/data.txt")).unwrap(),
        "kept\n"
    );
    assert!(bundle.join("rootfs/busybox").exists() || bundle.join("rootfs/bin/busybox").exists());
}
