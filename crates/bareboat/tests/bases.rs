//! Building on any base image: one pushed to a real docker-registry, a layout, an index.
//! The base's layers are kept byte for byte, its packages count as installed, `remove`
//! hides its files, and a damaged base is refused.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    LocalRegistry, bareboat, build, fails_with, podman_pull_and_run, run, skopeo_raw, tool, unpack,
};
use serde_json::Value;

fn refused(dir: &Path, args: &[&str], expected: &str) {
    fails_with(&mut bareboat(dir, "build", args), expected);
}

#[test]
fn builds_on_a_pushed_base_without_adding_its_packages_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let base_ref = format!("{}:debug", registry.reference("team/cc"));
    let base = build(d, &["catalog:cc:debug", "--insecure", "-o", &base_ref]);
    let base_digest = base["digest"].as_str().unwrap();
    let app_ref = format!("{}:1", registry.reference("team/app"));
    std::fs::write(
        d.join("bareboat.toml"),
        format!(
            "from = \"{base_ref}\"\npackages = [\"libsqlite3-0\", \"zlib1g\"]\n\
             remove = [\"/etc/nsswitch.conf\", \"/usr/share/zoneinfo/Europe\"]\n"
        ),
    )
    .unwrap();
    let uploads = registry.uploads_started();
    let app = build(d, &["--insecure", "-o", "oci:out:app", "-o", &app_ref]);

    // Only the package the base lacks is locked and installed; zlib1g is the base's.
    let lock = std::fs::read_to_string(d.join("bareboat.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&lock).unwrap();
    let locked: Vec<&str> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(locked, ["libsqlite3-0"]);
    assert_eq!(lock["base"].as_str(), Some(base_digest));
    assert_eq!(app["images"][0]["packages"], 1);

    // The base's layers come first, byte for byte, and the annotations name the base.
    let base_manifest = skopeo_raw(d, &base_ref);
    let manifest = skopeo_raw(d, &app_ref);
    let base_layers = base_manifest["layers"].as_array().unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(app["images"][0]["base_layers"], base_layers.len());
    assert_eq!(&layers[..base_layers.len()], &base_layers[..]);
    assert_eq!(
        layers.len(),
        base_layers.len() + 2,
        "a removal and a package layer"
    );
    let annotations = &manifest["annotations"];
    let name = base_ref.trim_start_matches("docker://");
    assert_eq!(annotations["org.opencontainers.image.base.name"], name);
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        base_digest
    );
    // The base's layers were mounted from its repository, not uploaded again: only the
    // two new layers and the config were.
    let push = &app["pushes"][0];
    assert_eq!(push["mounted_blobs"], base_layers.len(), "{push}");
    assert_eq!(push["uploaded_blobs"], 3, "{push}");
    let new_bytes: u64 = layers[base_layers.len()..]
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    let uploaded = push["uploaded_bytes"].as_u64().unwrap();
    assert!(
        uploaded < new_bytes + 4096,
        "{uploaded} bytes for {new_bytes} of layers"
    );
    let started = registry.uploads_started() - uploads;
    assert_eq!(
        started,
        base_layers.len() + 3,
        "a POST per mount and per upload"
    );
    let created_by: Vec<String> = app["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["created_by"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        created_by,
        [
            "bareboat: remove /etc/nsswitch.conf, /usr/share/zoneinfo/Europe",
            "bareboat: packages (libsqlite3-0)",
        ]
    );

    // umoci unpacks it (checking every diff_id): the removed paths are gone, the new
    // library is there, and the package layer holds only its own dpkg entries.
    let rootfs = unpack(d, "out", "app").join("rootfs");
    assert!(!rootfs.join("etc/nsswitch.conf").exists());
    assert!(!rootfs.join("usr/share/zoneinfo/Europe").exists());
    assert!(rootfs.join("usr/share/zoneinfo/America").is_dir());
    assert!(
        rootfs
            .join("usr/lib/x86_64-linux-gnu/libsqlite3.so.0")
            .exists()
    );
    assert!(rootfs.join("var/lib/dpkg/status.d/libc6").is_file());
    let top = layers.last().unwrap()["digest"].as_str().unwrap();
    let blob = d
        .join("out/blobs/sha256")
        .join(top.trim_start_matches("sha256:"));
    let listing = run(Command::new("tar").arg("-tzf").arg(&blob));
    let status_d: Vec<&str> = std::str::from_utf8(&listing.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("status.d/") && !l.ends_with('/'))
        .collect();
    assert_eq!(
        status_d,
        [
            "var/lib/dpkg/status.d/libsqlite3-0",
            "var/lib/dpkg/status.d/libsqlite3-0.md5sums"
        ]
    );

    // podman runs it with the base's shell, entrypoint and user.
    let script = "test ! -e /etc/nsswitch.conf && test -e /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 && echo ok; id -u";
    assert_eq!(podman_pull_and_run(d, &app_ref, script), "ok\n65532\n");

    // Built again, the image is the same, and the lock is used as it is.
    let again = build(d, &["--insecure", "-o", "oci:again:app"]);
    assert_eq!(again["digest"], app["digest"]);

    // A lock made against another base is refused.
    let other = format!("{}:other", registry.reference("team/cc"));
    build(d, &["catalog:cc", "--insecure", "-o", &other]);
    let spec = std::fs::read_to_string(d.join("bareboat.toml")).unwrap();
    std::fs::write(d.join("bareboat.toml"), spec.replace(&base_ref, &other)).unwrap();
    refused(
        d,
        &["--insecure", "-o", "oci:stale:app"],
        "run `bareboat lock",
    );
    assert!(!d.join("stale").exists());
}

#[test]
fn index_bases_give_each_architecture_its_image_and_damaged_bases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let index = build(
        d,
        &[
            "catalog:static",
            "--arch",
            "amd64,arm64",
            "-o",
            "oci:multi:static",
        ],
    );
    let arm64_manifest = index["images"][1]["manifest"].as_str().unwrap();

    // The index's arm64 image is the base of an arm64 build.
    let app = build(
        d,
        &[
            "--from",
            "oci:multi:static",
            "--arch",
            "arm64",
            "-o",
            "oci:out:app",
        ],
    );
    let manifest = skopeo_raw(d, "oci:out:app");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        arm64_manifest
    );
    assert_eq!(app["images"][0]["arch"], "arm64");
    // Nothing was added: the image is the base's layers under a config of its own.
    assert_eq!(app["images"][0]["layers"].as_array().unwrap().len(), 0);
    let config = run(Command::new(tool("skopeo")).current_dir(d).args([
        "inspect",
        "--config",
        "oci:out:app",
    ]));
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["config"]["User"], "65532");

    // One platform's image cannot be the base of another's.
    build(d, &["catalog:static", "-o", "oci:single:static"]);
    refused(
        d,
        &[
            "--from",
            "oci:single:static",
            "--arch",
            "arm64",
            "-o",
            "oci:wrong:x",
        ],
        "it is a amd64 image, and this build is for arm64",
    );

    // A path the base lacks cannot be removed.
    std::fs::write(
        d.join("bareboat.toml"),
        "from = \"oci:single:static\"\nremove = [\"/no/such/file\"]\n",
    )
    .unwrap();
    refused(
        d,
        &["-o", "oci:nothing:x"],
        "the base image has nothing at this path",
    );
    std::fs::remove_file(d.join("bareboat.lock")).ok();

    // A flipped byte in a base layer, or in its manifest, is found, and nothing is written.
    let blob = |layout: &Path, digest: &str| layout.join("blobs/sha256").join(&digest[7..]);
    let json =
        |path: &Path| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let cases = [
        ("layer", "does not match its descriptor"),
        ("manifest", "does not match its digest"),
    ];
    for (what, expected) in cases {
        let copy = d.join(format!("damaged-{what}"));
        run(Command::new("cp").arg("-r").arg(d.join("multi")).arg(&copy));
        let top = json(&copy.join("index.json"))["manifests"][0]["digest"].clone();
        let index = json(&blob(&copy, top.as_str().unwrap()));
        let amd64 = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let target = match what {
            "layer" => json(&blob(&copy, &amd64))["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_string(),
            _ => amd64,
        };
        let path = blob(&copy, &target);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        let from = format!("oci:{}:static", copy.display());
        refused(d, &["--from", &from, "-o", "oci:refused:x"], expected);
        assert!(!d.join("refused").exists(), "{what}: a layout was written");
    }
}

#[test]
fn a_base_entry_under_a_symlinked_directory_is_where_runtimes_and_inspect_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tar = |entries: &[(&str, Option<&str>, &[u8])]| {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            match (link, path.ends_with('/')) {
                (Some(target), _) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut h, path, target).unwrap();
                }
                (None, true) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut h, path, &[][..]).unwrap();
                }
                (None, false) => tar.append_data(&mut h, path, *data).unwrap(),
            }
        }
        tar.into_inner().unwrap()
    };
    let lower = tar(&[
        ("usr/", None, b""),
        ("usr/bin/", None, b""),
        ("bin", Some("usr/bin"), b""),
        ("usr/bin/keep", None, b"keep\n"),
    ]);
    // Written through the link: runtimes put it at usr/bin/tool.
    let upper = tar(&[("bin/tool", None, b"tool\n")]);
    common::write_image(&d.join("base"), "t", &[lower, upper]);
    let listed = |image: &str| -> Vec<String> {
        let out = run(&mut bareboat(d, "inspect", &[image, "--tree", "/usr/bin"]));
        let tree: Value = serde_json::from_slice(&out.stdout).unwrap();
        (tree.as_array().unwrap().iter())
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed("oci:base:t"), ["/usr/bin/keep", "/usr/bin/tool"]);
    // The build sees the base as inspect does: the file is removed by its real path.
    std::fs::write(
        d.join("bareboat.toml"),
        "from = \"oci:base:t\"\nremove = [\"/usr/bin/tool\"]\n",
    )
    .unwrap();
    build(d, &["-o", "oci:out:app"]);
    assert_eq!(listed("oci:out:app"), ["/usr/bin/keep"]);
    let bundle = unpack(d, "out", "app");
    assert!(bundle.join("rootfs/usr/bin/keep").exists());
    assert!(!bundle.join("rootfs/usr/bin/tool").exists());
}
