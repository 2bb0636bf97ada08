//! SBOMs written by a build, validated with the official SPDX and CycloneDX tools (installed
//! by `.ci/run` into `target/sbom-tools`) and checked against the image's own status.d.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{bareboat, build, run, unpack, validate_sbom as validate};
use serde_json::Value;

/// The element of `doc[list]` whose `key` is `value`.
fn element<'a>(doc: &'a Value, list: &str, key: &str, value: &str) -> &'a Value {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {list} entry with {key} {value}"))
}

/// Package -> (version, source, source version) from the image's status.d.
fn installed(rootfs: &Path) -> BTreeMap<String, (String, String, String)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(rootfs.join("var/lib/dpkg/status.d")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(String::from))
        };
        let (name, version) = (field("Package").unwrap(), field("Version").unwrap());
        let (source, source_version) = match field("Source") {
            Some(s) => match s.split_once(" (") {
                Some((s, v)) => (s.to_string(), v.trim_end_matches(')').to_string()),
                None => (s, version.clone()),
            },
            None => (name.clone(), version.clone()),
        };
        out.insert(name, (version, source, source_version));
    }
    out
}

#[test]
fn sboms_list_every_package_and_added_file_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::hello(d, "int main(void) { return 0; }\n");
    let report = build(
        d,
        &[
            "--from",
            "catalog:base",
            "--add",
            "hello:/app/hello",
            "--entrypoint",
            "/app/hello",
            "--sbom",
            "spdx,cyclonedx",
            "--sbom-files",
            "-o",
            "oci:out:app",
            "-o",
            "oci-archive:app.tar",
        ],
    );
    let sboms: Vec<&str> = report["sboms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        sboms,
        [
            "out.spdx.json",
            "out.cdx.json",
            "app.tar.spdx.json",
            "app.tar.cdx.json"
        ]
    );
    validate("spdx", &d.join("out.spdx.json"));
    validate("cyclonedx", &d.join("out.cdx.json"));
    assert_eq!(
        std::fs::read(d.join("out.spdx.json")).unwrap(),
        std::fs::read(d.join("app.tar.spdx.json")).unwrap()
    );
    // The archive carries them inside too, attached to its image.
    let attached = run(&mut bareboat(
        d,
        "sbom",
        &["--attached", "oci-archive:app.tar"],
    ));
    assert_eq!(
        attached.stdout,
        std::fs::read(d.join("app.tar.spdx.json")).unwrap()
    );

    // What `bareboat lock` pins for catalog:base: name -> (version, .deb SHA256).
    run(&mut bareboat(
        d,
        "lock",
        &["catalog:base", "--lockfile", "base.lock", "--no-fetch"],
    ));
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(d.join("base.lock")).unwrap()).unwrap();
    let locked: BTreeMap<&str, (String, &str)> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap();
            (s("name"), (s("version").to_string(), s("sha256")))
        })
        .collect();

    let rootfs = unpack(d, "out", "app").join("rootfs");
    let packages = installed(&rootfs);
    assert!(packages.contains_key("libssl3t64") && packages.contains_key("libc6"));
    let spdx: Value =
        serde_json::from_slice(&std::fs::read(d.join("out.spdx.json")).unwrap()).unwrap();
    let cdx: Value =
        serde_json::from_slice(&std::fs::read(d.join("out.cdx.json")).unwrap()).unwrap();
    for (name, (version, source, source_version)) in &packages {
        let p = element(&spdx, "packages", "name", name);
        assert_eq!(p["versionInfo"], version.as_str(), "{name}");
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
        assert!(
            purl.starts_with(&format!("pkg:deb/debian/{name}@")),
            "{purl}"
        );
        assert!(purl.contains("distro=debian-13"), "{purl}");
        if source != name || source_version != version {
            assert!(purl.contains(&format!("upstream={source}")), "{purl}");
        }
        assert!(
            p["sourceInfo"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{source} {source_version}")),
            "{p}"
        );
        let c = element(&cdx, "components", "name", name);
        assert_eq!(c["version"], version.as_str(), "{name}");
        assert_eq!(c["purl"], purl, "{name}");
        // The .deb's SHA256 in both is the one the lockfile pins for that version.
        let pinned = locked
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is not in the lockfile"));
        assert_eq!(pinned.0, *version, "{name}");
        let spdx_sha256 = element(p, "checksums", "algorithm", "SHA256");
        assert_eq!(spdx_sha256["checksumValue"], pinned.1, "{name}");
        assert_eq!(element(c, "hashes", "alg", "SHA-256")["content"], pinned.1);
    }
    assert_eq!(locked.len(), packages.len());
    // The packages and nothing else, besides the image and the OS.
    assert_eq!(
        spdx["packages"].as_array().unwrap().len(),
        packages.len() + 2
    );
    let os = element(&cdx, "components", "type", "operating-system");
    assert_eq!(
        (os["name"].as_str(), os["version"].as_str()),
        (Some("debian"), Some("13"))
    );
    // libssl's licence comes from its machine-readable copyright file.
    let ssl = element(&spdx, "packages", "name", "libssl3t64");
    assert_eq!(ssl["licenseDeclared"], "Apache-2.0");

    // The added program, with the digest of what was added.
    let sum = run(Command::new("sha256sum").arg(d.join("hello")));
    let sum = String::from_utf8_lossy(&sum.stdout);
    let sha256 = sum.split_whitespace().next().unwrap();
    let file = &spdx["files"][0];
    assert_eq!(file["fileName"], "./app/hello");
    assert_eq!(file["checksums"][1]["checksumValue"], sha256);
    let c = element(&cdx, "components", "type", "file");
    assert_eq!(c["hashes"][1]["content"], sha256);

    // `bareboat sbom IMAGE` describes the same image from what it carries: the same
    // packages, purls and licences, read from its status.d, copyright files and
    // os-release, without the .deb digests only the build knew. From the archive too.
    for (format, file) in [("spdx", "image.spdx.json"), ("cyclonedx", "image.cdx.json")] {
        run(&mut bareboat(
            d,
            "sbom",
            &["oci-archive:app.tar", "--format", format, "-o", file],
        ));
        validate(format, &d.join(file));
    }
    let described: Value =
        serde_json::from_slice(&std::fs::read(d.join("image.spdx.json")).unwrap()).unwrap();
    let described_cdx: Value =
        serde_json::from_slice(&std::fs::read(d.join("image.cdx.json")).unwrap()).unwrap();
    assert_eq!(
        described["packages"].as_array().unwrap().len(),
        packages.len() + 2
    );
    for name in packages.keys() {
        let built = element(&spdx, "packages", "name", name);
        let read = element(&described, "packages", "name", name);
        for key in [
            "versionInfo",
            "externalRefs",
            "licenseDeclared",
            "sourceInfo",
        ] {
            assert_eq!(read[key], built[key], "{name} {key}");
        }
        assert!(read.get("checksums").is_none(), "{read}");
        let c = element(&described_cdx, "components", "name", name);
        assert_eq!(c["purl"], element(&cdx, "components", "name", name)["purl"]);
    }
    assert_eq!(
        described["packages"][0]["versionInfo"],
        spdx["packages"][0]["versionInfo"]
    );
}

#[test]
fn unknown_sbom_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = bareboat(
        d,
        "build",
        &["catalog:static", "--sbom", "xml", "-o", "oci:out:x"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("spdx, cyclonedx"));
    assert!(!d.join("out").exists());
}
