//! Hostile layers: one that writes through a symlinked directory (`x -> usr/bin`, then
//! `x/sh`), where inspect and audit see each file where umoci puts it and audit says how it
//! got there; and one with device nodes, a FIFO and names that hold terminal escapes.

mod common;

use std::path::Path;

use common::{bareboat, measured, run, skopeo_raw, unpack, write_image, write_layers, zstd_layer};
use oci_spec::image::MediaType;
use serde_json::{Value, json};

/// What an entry of a hand-made layer is.
enum Made {
    Dir,
    File(&'static [u8]),
    Symlink(&'static str),
    /// A device node or FIFO, with its mode.
    Node(tar::EntryType, u32),
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
            Made::Node(kind, mode) => {
                h.set_entry_type(*kind);
                h.set_mode(*mode);
                tar.append_data(&mut h, path, &[][..])
            }
        }
        .unwrap();
    }
    tar.into_inner().unwrap()
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

/// `bareboat ARGS` as a person runs it: text output, not JSON.
fn text(d: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(d)
        .arg("--cache")
        .arg(common::cache())
        .args(args)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn device_nodes_fifos_and_terminal_escapes_are_reported_plainly() {
    use Made::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A name that, printed raw, erases its line and writes a harmless-looking one instead.
    let disguised = "usr/bin/\u{1b}[2K\rlooks-fine\u{202e}hs.exe";
    write_image(
        &d.join("hostile"),
        "hostile",
        &[tar_of(&[
            ("dev", Dir),
            ("dev/mem", Node(tar::EntryType::Char, 0o666)),
            ("dev/sda", Node(tar::EntryType::Block, 0o600)),
            ("run", Dir),
            ("run/ctl", Node(tar::EntryType::Fifo, 0o600)),
            ("usr", Dir),
            ("usr/bin", Dir),
            (disguised, File(b"\x7fELF\n")),
        ])],
    );
    let audit = run(&mut bareboat(d, "audit", &["oci:hostile:hostile"]));
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let found: Vec<(String, String, String)> = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("-").to_string();
            (s("id"), s("severity"), s("path"))
        })
        .collect();
    for expected in [
        ("device-node", "high", "/dev/mem"),
        ("device-node", "high", "/dev/sda"),
        ("world-writable", "medium", "/dev/mem"),
    ] {
        let expected = (expected.0.into(), expected.1.into(), expected.2.into());
        assert!(found.contains(&expected), "{expected:?} not in {found:?}");
    }
    assert!(
        !found
            .iter()
            .any(|f| f.2 == "/run/ctl" && f.0 == "device-node")
    );

    // Text output escapes what the image's names hold; JSON keeps them exact.
    let report = text(d, &["audit", "oci:hostile:hostile"]);
    let tree = text(d, &["inspect", "oci:hostile:hostile", "--tree", "/usr/bin"]);
    for shown in [&report, &tree] {
        assert!(
            !shown.contains(['\u{1b}', '\r', '\u{202e}']),
            "raw control characters: {shown:?}"
        );
    }
    assert!(
        tree.contains("\\u{1b}[2K\\u{d}looks-fine\\u{202e}hs.exe"),
        "{tree}"
    );
    let json_tree = run(&mut bareboat(
        d,
        "inspect",
        &["oci:hostile:hostile", "--tree", "/usr/bin"],
    ));
    let json_tree: Value = serde_json::from_slice(&json_tree.stdout).unwrap();
    assert_eq!(json_tree[0]["path"], format!("/{disguised}"));

    // Each kind of node is shown as ls shows it.
    let kinds = |dir: &str| -> Vec<(char, String)> {
        text(d, &["inspect", "oci:hostile:hostile", "--tree", dir])
            .lines()
            .map(|l| {
                (
                    l.chars().next().unwrap(),
                    l.rsplit(' ').next().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        kinds("/dev"),
        [('c', "mem".to_string()), ('b', "sda".to_string())]
    );
    assert_eq!(kinds("/run"), [('p', "ctl".to_string())]);
}

/// The most memory any command may use on any of these inputs.
const PEAK_MIB: u64 = 300;

/// Runs inspect, audit, sbom, copy and `build --from` on `image`, each within [`PEAK_MIB`],
/// printing its memory and time, and asserts the one outcome each must have:
/// - the readers (inspect, audit, sbom) share one model of the image: all refuse it naming
///   `read` (exit 1), or all report on it;
/// - copy moves layer blobs as they are, checked by digest and never decompressed, so it
///   copies every one of these images to the same manifest;
/// - a build on it keeps the base's layers as they are and reads only their entries: it is
///   refused naming `build` and writes nothing, or it adds one layer above the base's.
fn bounded_everywhere(d: &Path, image: &str, read: Option<&str>, build: Option<&str>) {
    std::fs::write(d.join("added"), "added\n").unwrap();
    let runs: [(&str, Vec<&str>, Option<&str>); 5] = [
        ("inspect", vec![image], read),
        ("audit", vec![image], read),
        ("sbom", vec![image], read),
        ("copy", vec![image, "oci:copied:x"], None),
        (
            "build",
            vec![
                "--from",
                image,
                "--add",
                "added:/added",
                "--no-auto-deps",
                "--offline",
                "-o",
                "oci:built:x",
            ],
            build,
        ),
    ];
    for (command, args, refusal) in runs {
        let m = measured(&bareboat(d, command, &args));
        let err = String::from_utf8_lossy(&m.out.stderr);
        assert!(
            m.peak_mib < PEAK_MIB,
            "{command} {image} peaked at {} MiB",
            m.peak_mib
        );
        match refusal {
            Some(needle) => {
                assert_eq!(m.out.status.code(), Some(1), "{command} {image}: {err}");
                assert!(err.contains(needle), "{command} {image}: {err}");
            }
            None => {
                assert!(m.out.status.success(), "{command} {image}: {err}");
                let report: Result<Value, _> = serde_json::from_slice(&m.out.stdout);
                assert!(report.is_ok(), "{command} {image} printed no JSON report");
            }
        }
    }
    let source = skopeo_raw(d, image);
    assert_eq!(
        skopeo_raw(d, "oci:copied:x"),
        source,
        "copy changed {image}"
    );
    let layers = |manifest: &Value| -> Vec<Value> {
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].clone())
            .collect()
    };
    match build {
        Some(_) => assert!(!d.join("built").exists(), "a refused build wrote a layout"),
        None => {
            let built = layers(&skopeo_raw(d, "oci:built:x"));
            let below = layers(&source);
            assert_eq!(built.len(), below.len() + 1, "{image}");
            assert_eq!(built[..below.len()], below[..], "{image}");
        }
    }
    for written in ["copied", "built"] {
        let _ = std::fs::remove_dir_all(d.join(written));
    }
}

#[test]
fn inputs_that_would_take_gigabytes_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A GNU long name of 256 MiB: the tar reader would hold all of it.
    let name = "n".repeat(256 << 20);
    write_layers(&d.join("longname"), "t", &[zstd_layer(&[(&name, 1)], b'x')]);
    drop(name);
    let long = "a tar long name of 268435457 bytes: more than 65536 bytes, refused";
    bounded_everywhere(d, "oci:longname:t", Some(long), Some(long));

    // A path 20,000 components deep.
    let deep = "d/".repeat(20_000) + "f";
    write_image(&d.join("deep"), "t", &[tar_gnu(&deep)]);
    bounded_everywhere(
        d,
        "oci:deep:t",
        Some("longer than 4096"),
        Some("longer than 4096"),
    );

    // 2 GiB of zeros in a few kilobytes.
    write_layers(
        &d.join("bomb"),
        "t",
        &[zstd_layer(&[("zeros", 2 << 30)], 0)],
    );
    // Inspect reads every file's bytes and refuses the bomb; a build reads only the base's
    // entries, streaming past their contents, and keeps the layer as it is.
    bounded_everywhere(d, "oci:bomb:t", Some("decompression bomb"), None);

    // Package databases of 60 MiB each, three of them.
    let dbs: Vec<(String, u64)> = (0..3)
        .map(|i| (format!("var/lib/dpkg/status.d/p{i}"), 60 << 20))
        .collect();
    let dbs: Vec<(&str, u64)> = dbs.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    write_layers(&d.join("hoard"), "t", &[zstd_layer(&dbs, b'a')]);
    bounded_everywhere(
        d,
        "oci:hoard:t",
        Some("its package databases and other metadata files, with the layers' below, pass"),
        Some("would take the contents kept past 134217728 bytes: refused"),
    );

    // 200 copyright files of 1 MiB.
    let copyrights: Vec<(String, u64)> = (0..200)
        .map(|i| (format!("usr/share/doc/p{i}/copyright"), 1 << 20))
        .collect();
    let copyrights: Vec<(&str, u64)> = copyrights.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    write_layers(&d.join("licences"), "t", &[zstd_layer(&copyrights, b'c')]);
    // A build keeps the contents of package databases, not of copyright files.
    bounded_everywhere(d, "oci:licences:t", Some("metadata files"), None);

    // One layer of 40 MiB of package database, listed 8 times: each copy replaces the one
    // below, so the image is read, once over.
    let layer = zstd_layer(&[("var/lib/dpkg/status.d/p", 40 << 20)], b'a');
    write_layers(&d.join("repeated"), "t", &vec![layer; 8]);
    bounded_everywhere(d, "oci:repeated:t", None, None);

    // A layer of 250,000 entries of one name (each with its own time, so that it
    // compresses like a real layer, not like a bomb), listed 8 times: it is read once, at
    // its last listing, which writes again all that the others would.
    let encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
    let mut tar = tar::Builder::new(bareboat_oci::digest::HashingWriter::new(encoder));
    for i in 0..250_000u64 {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.set_mtime(i.wrapping_mul(2_654_435_761) % (1 << 32));
        tar.append_data(&mut h, "f", &[][..]).unwrap();
    }
    let (encoder, diff_id, _) = tar.into_inner().unwrap().finish();
    let layer = (
        MediaType::ImageLayerZstd,
        encoder.finish().unwrap(),
        diff_id,
    );
    write_layers(&d.join("crowded"), "t", &vec![layer; 8]);
    bounded_everywhere(d, "oci:crowded:t", None, None);
    let report = text(d, &["--json", "inspect", "oci:crowded:t"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let again: Vec<&Value> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["listed_again_as"])
        .collect();
    assert_eq!(
        again,
        [&json!(7); 7]
            .into_iter()
            .chain([&Value::Null])
            .collect::<Vec<_>>()
    );
    assert!(
        report["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["entries"] == 250_000)
    );
}

/// An uncompressed layer holding one empty file at `path`, whatever its length.
fn tar_gnu(path: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    tar.append_data(&mut h, path, &[][..]).unwrap();
    tar.into_inner().unwrap()
}
