//! A hostile image whose layer writes through a symlinked directory (`x -> usr/bin`, then
//! `x/sh`): inspect and audit see each file where umoci puts it, and audit says how it got
//! there.

mod common;

use std::path::Path;

use bareboat_oci::layout::Layout;
use common::{bareboat, run, unpack};
use oci_spec::image::MediaType;
use serde_json::{Value, json};

/// What an entry of a hand-made layer is.
enum Made {
    Dir,
    File(&'static [u8]),
    Symlink(&'static str),
}

/// A tar of `entries`, in order, as a hostile tool may write one.
fn tar_of(entries: &[(&str, Made)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, made) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(0);
        match made {
            Made::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                tar.append_data(&mut h, path, &[][..])
            }
            Made::File(data) => {
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, path, *data)
            }
            Made::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut h, path, target)
            }
        }
        .unwrap();
    }
    tar.into_inner().unwrap()
}

/// Writes `layers`, uncompressed (umoci and bareboat read them so), as the image `TAG` of
/// the layout `dir`, running as 65532.
fn write_image(dir: &Path, tag: &str, layers: &[Vec<u8>]) {
    let layout = Layout::create(dir).unwrap();
    let layers: Vec<_> = layers
        .iter()
        .map(|l| layout.put_json(MediaType::ImageLayer, l).unwrap())
        .collect();
    // An uncompressed layer's diff_id is its digest.
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest().to_string()).collect();
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

/// The names of a directory's entries, sorted.
fn names(paths: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = paths
        .into_iter()
        .map(|p| p.rsplit('/').next().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn writes_through_a_symlinked_parent_are_audited_where_umoci_puts_them() {
    use Made::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_image(
        &d.join("hostile"),
        "hostile",
        &[
            tar_of(&[
                ("usr", Dir),
                ("usr/bin", Dir),
                ("usr/bin/doomed", File(b"#!/usr/bin/env true\n")),
                ("x", Symlink("usr/bin")),
                ("x/sh", File(b"\x7fELF a shell\n")),
                ("x/apt-get", File(b"\x7fELF a package manager\n")),
            ]),
            // Through a link of this layer with an absolute target, and of the one below.
            tar_of(&[
                ("y", Symlink("/usr/../usr/bin")),
                ("y/dash", File(b"\x7fELF another shell\n")),
                ("x/.wh.doomed", File(b"")),
            ]),
        ],
    );

    let out = bareboat(d, "audit", &["oci:hostile:hostile", "--fail-on", "high"])
        .output()
        .unwrap();
    let audit: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(&str, &str, &str)> = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("-");
            (s("id"), s("path"), s("message"))
        })
        .collect();
    let has = |id: &str, path: &str| found.iter().any(|f| (f.0, f.1) == (id, path));
    for (id, path) in [
        ("shell", "/usr/bin/sh"),
        ("shell", "/usr/bin/dash"),
        ("package-manager", "/usr/bin/apt-get"),
    ] {
        assert!(has(id, path), "{id} at {path} not in {found:?}");
    }
    for (path, effect) in [
        ("/x/sh", "lands at /usr/bin/sh"),
        ("/x/apt-get", "lands at /usr/bin/apt-get"),
        ("/y/dash", "lands at /usr/bin/dash"),
        ("/x/.wh.doomed", "deletes /usr/bin/doomed"),
    ] {
        let f = found
            .iter()
            .find(|f| (f.0, f.1) == ("path-through-symlink", path))
            .unwrap_or_else(|| panic!("no path-through-symlink at {path} in {found:?}"));
        assert!(f.2.ends_with(effect), "{f:?}");
    }
    let severity = |id: &str| {
        audit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["severity"].clone())
    };
    assert_eq!(severity("path-through-symlink"), Some(json!("high")));
    assert_eq!(out.status.code(), Some(4), "--fail-on high fails");

    // umoci unpacks the same image to the same tree as inspect shows.
    let rootfs = unpack(d, "hostile", "hostile").join("rootfs");
    let listed = |dir: &str| -> Vec<String> {
        let tree = run(&mut bareboat(
            d,
            "inspect",
            &["oci:hostile:hostile", "--tree", dir],
        ));
        let tree: Value = serde_json::from_slice(&tree.stdout).unwrap();
        let paths = tree.as_array().unwrap().iter();
        names(paths.map(|e| e["path"].as_str().unwrap().to_string()))
    };
    let unpacked = |dir: &str| -> Vec<String> {
        let entries = std::fs::read_dir(rootfs.join(dir)).unwrap();
        names(entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()))
    };
    assert_eq!(listed("/usr/bin"), ["apt-get", "dash", "sh"]);
    assert_eq!(listed("/usr/bin"), unpacked("usr/bin"));
    assert_eq!(listed("/"), unpacked(""));
    assert_eq!(
        std::fs::read(rootfs.join("usr/bin/sh")).unwrap(),
        b"\x7fELF a shell\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("x")).unwrap(),
        Path::new("usr/bin")
    );
}
