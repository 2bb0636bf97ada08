//! Registries that list referrers which are not what they are listed as, or too many, or
//! too large: bareboat must follow only an image's own referrers of the types it carries,
//! within its bounds, in bounded memory, and say what it refused or left behind.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::scripted::{Body, INDEX, MANIFEST, Reply, Scripted, image, sha256};
use common::{bareboat, measured, run};
use serde_json::{Value, json};

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The bounds bareboat keeps to, per manifest, as the README states them.
const MAX_REFERRERS: usize = 64;
const MAX_REFERRER_BYTES: usize = 64 << 20;

/// An artifact, as a registry stores and lists it.
struct Artifact {
    /// The digest of the manifest whose referrers list it: the one it names, unless a test
    /// lies.
    subject: String,
    manifest: Vec<u8>,
    /// Its descriptor in the referrers index.
    listed: Value,
    content: Vec<u8>,
}

impl Artifact {
    /// An artifact of `artifact_type` holding `content`, referring to `subject`, listed as
    /// `artifact_type`, its manifest padded with an annotation of `pad` bytes.
    fn new(subject: &Value, artifact_type: &str, content: &[u8], pad: usize) -> Artifact {
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY, "digest": sha256(b"{}"), "size": 2},
            "layers": [{"mediaType": artifact_type, "digest": sha256(content), "size": content.len()}],
            "subject": subject,
            "annotations": {"pad": "x".repeat(pad)},
        }))
        .unwrap();
        let listed = json!({"mediaType": MANIFEST, "digest": sha256(&manifest),
            "size": manifest.len(), "artifactType": artifact_type});
        Artifact {
            subject: subject["digest"].as_str().unwrap().to_string(),
            manifest,
            listed,
            content: content.to_vec(),
        }
    }

    /// The same, listed as `artifact_type`.
    fn listed_as(mut self, artifact_type: &str) -> Artifact {
        self.listed["artifactType"] = json!(artifact_type);
        self
    }

    fn digest(&self) -> String {
        sha256(&self.manifest)
    }
}

/// `n` platform manifests of `scripted::image`, told apart by an annotation.
fn platforms(n: usize) -> Vec<Vec<u8>> {
    let manifest = image().manifest;
    (0..n)
        .map(|i| {
            let mut m = manifest.clone();
            m["annotations"] = json!({"platform": i.to_string()});
            serde_json::to_vec(&m).unwrap()
        })
        .collect()
}

/// A registry serving the image of `platforms` as `team/app:1` (an index when there are
/// several), with each artifact listed, through the referrers API, as a referrer of the
/// manifest it names.
struct Registry {
    scripted: Scripted,
}

impl Registry {
    fn start(platforms: &[Vec<u8>], artifacts: Vec<Artifact>) -> Registry {
        let image = image();
        let mut files: HashMap<String, (&str, Vec<u8>)> = HashMap::from([
            (
                format!("blobs/{}", sha256(&image.config)),
                ("", image.config),
            ),
            (format!("blobs/{}", sha256(&image.layer)), ("", image.layer)),
            (format!("blobs/{}", sha256(b"{}")), ("", b"{}".to_vec())),
        ]);
        let top = match platforms {
            [one] => (MANIFEST, one.clone()),
            several => {
                let arches = ["amd64", "arm64", "s390x", "ppc64le"];
                let listed: Vec<Value> = several
                    .iter()
                    .zip(arches)
                    .map(|(m, arch)| {
                        let mut d = subject_of(m);
                        d["platform"] = json!({"architecture": arch, "os": "linux"});
                        d
                    })
                    .collect();
                let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": listed});
                (INDEX, serde_json::to_vec(&index).unwrap())
            }
        };
        files.insert("manifests/1".into(), top);
        for manifest in platforms {
            let digest = sha256(manifest);
            let listed: Vec<&Value> = artifacts
                .iter()
                .filter(|a| a.subject == digest)
                .map(|a| &a.listed)
                .collect();
            let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": listed});
            let index = serde_json::to_vec(&index).unwrap();
            files.insert(format!("referrers/{digest}"), (INDEX, index));
            files.insert(format!("manifests/{digest}"), (MANIFEST, manifest.clone()));
        }
        for a in artifacts {
            files.insert(format!("manifests/{}", a.digest()), (MANIFEST, a.manifest));
            files.insert(format!("blobs/{}", sha256(&a.content)), ("", a.content));
        }
        let scripted = Scripted::start(move |_, path, _| {
            if path == "/v2/" {
                return Reply::ok(Body::Bytes(b"{}".to_vec()));
            }
            let found = path
                .strip_prefix("/v2/team/app/")
                .and_then(|p| files.get(p));
            match found {
                Some((media_type, bytes)) => Reply {
                    status: 200,
                    headers: vec![("Content-Type".into(), media_type.to_string())],
                    body: Body::Bytes(bytes.clone()),
                },
                None => Reply::not_found(),
            }
        });
        Registry { scripted }
    }

    fn image(&self) -> String {
        self.scripted.reference("team/app:1")
    }
}

/// The descriptor of the manifest `bytes`, as a subject names it.
fn subject_of(bytes: &[u8]) -> Value {
    json!({"mediaType": MANIFEST, "digest": sha256(bytes), "size": bytes.len()})
}

/// An SPDX document that says which it is.
fn spdx(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"spdxVersion": "SPDX-2.3", "name": name})).unwrap()
}

/// Runs `bareboat COMMAND ARGS` in `d` with its scratch files there, expecting it to fail
/// with `needle` on standard error, print nothing, and write no `dest`.
fn refused(d: &Path, command: &str, args: &[&str], needle: &str) -> String {
    let out = bareboat(d, command, args)
        .env("TMPDIR", d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: stderr lacks {needle:?}: {err}"
    );
    assert!(out.stdout.is_empty(), "{args:?} printed something");
    assert!(!d.join("dest").exists(), "{args:?} wrote a layout");
    err
}

/// `bareboat --json copy --insecure ARGS` in `d`, expected to succeed; returns the report,
/// standard error and the peak memory in MiB.
fn copied(d: &Path, args: &[&str]) -> (Value, String, u64) {
    let mut cmd = bareboat(d, "copy", &[&["--insecure"], args].concat());
    cmd.env("TMPDIR", d);
    let m = measured(&cmd);
    let err = String::from_utf8_lossy(&m.out.stderr).into_owned();
    assert_eq!(m.out.status.code(), Some(0), "{args:?}: {err}");
    (
        serde_json::from_slice(&m.out.stdout).unwrap(),
        err,
        m.peak_mib,
    )
}

/// How many manifests a layout lists untagged: the artifacts copied into it.
fn untagged(layout: &Path) -> usize {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    let tag = |m: &&Value| !m["annotations"]["org.opencontainers.image.ref.name"].is_null();
    manifests.iter().filter(|m| !tag(m)).count()
}

#[test]
fn a_referrer_must_name_the_image_and_have_the_type_it_is_listed_with() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let platforms = platforms(1);
    let subject = subject_of(&platforms[0]);
    let other = subject_of(b"another image");
    let own = || Artifact::new(&subject, SPDX, &spdx("own"), 0);

    // The registry lists another image's SBOM among this one's.
    let mut foreign = Artifact::new(&other, SPDX, &spdx("other"), 0);
    foreign.subject = subject["digest"].as_str().unwrap().to_string();
    let registry = Registry::start(&platforms, vec![own(), foreign]);
    let reference = registry.image();
    let needle = format!(
        "is listed as a referrer of {}, but its manifest names {} as its subject",
        subject["digest"].as_str().unwrap(),
        other["digest"].as_str().unwrap()
    );
    let err = refused(
        d,
        "sbom",
        &["--insecure", "--from-registry", &reference],
        &needle,
    );
    assert!(
        err.contains("hint: the listing does not describe the artifact"),
        "{err}"
    );
    refused(
        d,
        "copy",
        &["--insecure", &reference, "oci:dest:x"],
        &needle,
    );

    // A CycloneDX document listed as SPDX.
    let mislabelled = Artifact::new(&subject, CYCLONEDX, b"{}", 0).listed_as(SPDX);
    let registry = Registry::start(&platforms, vec![own(), mislabelled]);
    let needle = format!("is listed as {SPDX} and its manifest says {CYCLONEDX}");
    let reference = registry.image();
    refused(
        d,
        "sbom",
        &["--insecure", "--from-registry", &reference],
        &needle,
    );
    refused(
        d,
        "copy",
        &["--insecure", &reference, "oci:dest:x"],
        &needle,
    );

    // The image's own SBOM alone is printed, and copied.
    let registry = Registry::start(&platforms, vec![own()]);
    let out = bareboat(
        d,
        "sbom",
        &["--insecure", "--from-registry", &registry.image()],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, spdx("own"));
    copied(d, &[&registry.image(), "oci:dest:x"]);
    assert_eq!(untagged(&d.join("dest")), 1);
}

#[test]
fn referrers_past_the_count_bound_are_refused_before_any_is_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let platforms = platforms(1);
    let subject = subject_of(&platforms[0]);
    let digest = subject["digest"].as_str().unwrap();
    let sboms = |n: usize| -> Vec<Artifact> {
        (0..n)
            .map(|i| Artifact::new(&subject, SPDX, &spdx(&format!("sbom {i}")), 0))
            .collect()
    };

    // At the bound, every one is copied.
    let registry = Registry::start(&platforms, sboms(MAX_REFERRERS));
    copied(d, &[&registry.image(), "oci:at-bound:x"]);
    assert_eq!(untagged(&d.join("at-bound")), MAX_REFERRERS);

    // One over, none is fetched, whoever reads them.
    let over = sboms(MAX_REFERRERS + 1);
    let first = over[0].digest();
    let registry = Registry::start(&platforms, over);
    let needle = format!(
        "{digest} has 65 referrers of the types bareboat carries, and bareboat follows at most 64 per manifest"
    );
    let err = refused(
        d,
        "copy",
        &["--insecure", &registry.image(), "oci:dest:x"],
        &needle,
    );
    assert!(err.contains("hint: the bound is fixed"), "{err}");
    let needle = format!("{digest} has 65 referrers of type {SPDX}");
    refused(
        d,
        "sbom",
        &["--insecure", "--from-registry", &registry.image()],
        &needle,
    );
    assert_eq!(registry.scripted.hits(&format!("/manifests/{first}")), 0);

    // Referrers of types bareboat does not know are not counted, not fetched, and named as
    // left behind; --all-referrers follows them, and counts them.
    let unknown: Vec<Artifact> = (0..MAX_REFERRERS + 1)
        .map(|i| Artifact::new(&subject, "application/x-unknown", &spdx(&format!("{i}")), 0))
        .collect();
    let unknown_digests: Vec<String> = unknown.iter().map(Artifact::digest).collect();
    let registry = Registry::start(&platforms, sboms(1).into_iter().chain(unknown).collect());
    let (report, err, _) = copied(d, &[&registry.image(), "oci:known:x"]);
    assert_eq!(untagged(&d.join("known")), 1);
    let left: Vec<&str> = report["left_behind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["subject"], digest, "{r}");
            assert_eq!(
                r["artifact"]["artifactType"], "application/x-unknown",
                "{r}"
            );
            r["artifact"]["digest"].as_str().unwrap()
        })
        .collect();
    assert_eq!(left, unknown_digests);
    assert!(err.contains("65 referrer(s) not copied, of artifact types bareboat does not know (--all-referrers copies every artifact manifest)"), "{err}");
    assert!(
        err.contains(&format!("{} (application/x-unknown)", unknown_digests[0])),
        "{err}"
    );
    assert_eq!(
        registry
            .scripted
            .hits(&format!("/manifests/{}", unknown_digests[0])),
        0
    );
    refused(
        d,
        "copy",
        &[
            "--insecure",
            "--all-referrers",
            &registry.image(),
            "oci:dest:x",
        ],
        "has 66 referrers of any type, and bareboat follows at most 64",
    );
}

#[test]
fn referrers_past_the_byte_bound_are_refused_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Of each of two platforms, sixteen referrers whose manifests are each as large as a
    // manifest may be, 4 MiB with their config and content: 64 MiB a platform, the bound,
    // with `extra` bytes more in the last one's manifest.
    let platforms = platforms(2);
    let content = |i: usize| spdx(&format!("large {i:02}"));
    let large = |platform: &[u8], extra: usize| -> Vec<Artifact> {
        let subject = subject_of(platform);
        let unpadded = Artifact::new(&subject, SPDX, &content(0), 0).manifest.len();
        let pad = MAX_REFERRER_BYTES / 16 - unpadded - 2 - content(0).len();
        (0..16)
            .map(|i| {
                let pad = pad + if i == 15 { extra } else { 0 };
                Artifact::new(&subject, SPDX, &content(i), pad)
            })
            .collect()
    };

    let artifacts = platforms.iter().flat_map(|p| large(p, 0)).collect();
    let registry = Registry::start(&platforms, artifacts);
    let (_, _, peak_mib) = copied(d, &[&registry.image(), "oci:at-bound:x"]);
    assert_eq!(untagged(&d.join("at-bound")), 32);
    // The documents read are not all kept: 128 MiB of them would be.
    assert!(peak_mib < 128, "copy peaked at {peak_mib} MiB");

    let registry = Registry::start(&platforms[..1], large(&platforms[0], 1));
    let needle = format!(
        "the referrers of the types bareboat carries of {} hold more than 64 MiB, the most bareboat follows per manifest",
        sha256(&platforms[0])
    );
    refused(
        d,
        "copy",
        &["--insecure", &registry.image(), "oci:dest:x"],
        &needle,
    );
    // Refused before any is copied: no content is fetched.
    assert_eq!(registry.scripted.hits(&sha256(&content(0))), 0);
}

/// A tar of the layout `dir`, as an `oci-archive` holds it.
fn archive_of(dir: &Path, file: &Path) {
    common::run(
        std::process::Command::new("tar")
            .arg("-cf")
            .arg(file)
            .arg("-C")
            .arg(dir)
            .arg("."),
    );
}

#[test]
fn a_layout_or_archive_lists_a_bounded_number_of_artifacts_each_read_once() {
    use bareboat_oci::attach::{Artifact as Attached, Attachment};
    use bareboat_oci::layout::Layout;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layer = bareboat_testkit::tar_of(&[("etc/hello", b"hello\n")]);
    common::write_image(&d.join("many"), "t", &[layer]);
    let layout = Layout::create(&d.join("many")).unwrap();
    let image = layout
        .index()
        .unwrap()
        .manifests()
        .first()
        .cloned()
        .unwrap();

    // One SBOM listed 10,000 times in index.json (3 MB, within its cap): read once.
    let attachment = Attachment::Referrer(Box::new(Attached {
        subject: image.clone(),
        artifact_type: SPDX.into(),
        content: b"{}".to_vec(),
        annotations: Default::default(),
    }));
    layout.attach(&[attachment]).unwrap();
    let sbom = layout.untagged().unwrap().remove(0);
    let index_path = d.join("many/index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let listed = serde_json::to_value(&sbom).unwrap();
    let manifests = index["manifests"].as_array_mut().unwrap();
    manifests.extend(std::iter::repeat_n(listed, 10_000));
    std::fs::write(&index_path, index.to_string()).unwrap();
    archive_of(&d.join("many"), &d.join("repeated.tar"));
    let out = bareboat(d, "inspect", &["oci-archive:repeated.tar:t"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bareboat(d, "copy", &["oci:many:t", "oci:copied:t"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 1,025 different artifacts: refused before any is read, by layouts and archives alike.
    // (Listed in one write of index.json: an index rewritten per artifact costs minutes.)
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let manifests = index["manifests"].as_array_mut().unwrap();
    manifests.truncate(2);
    for i in 0..1_024 {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": SPDX,
            "config": {"mediaType": EMPTY, "digest": sha256(b"{}"), "size": 2},
            "layers": [],
            "subject": image,
            "annotations": {"n": i.to_string()},
        });
        let mut listed = layout
            .put_json(
                oci_spec::image::MediaType::ImageManifest,
                manifest.to_string().as_bytes(),
            )
            .unwrap();
        listed.set_artifact_type(Some(SPDX.into()));
        manifests.push(serde_json::to_value(&listed).unwrap());
    }
    std::fs::write(&index_path, index.to_string()).unwrap();
    archive_of(&d.join("many"), &d.join("many.tar"));
    for (command, args) in [
        ("copy", vec!["oci:many:t", "oci:refused:t"]),
        ("inspect", vec!["oci-archive:many.tar:t"]),
    ] {
        let out = bareboat(d, command, &args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {err}");
        assert!(
            err.contains("its index lists 1025 artifacts, and bareboat reads at most 1024"),
            "{command}: {err}"
        );
    }
    assert!(!d.join("refused").exists());
}

#[test]
fn a_referrers_index_of_about_25000_signatures_is_refused_before_any_is_read() {
    const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
    const DOCUMENT_CAP: usize = 4 << 20;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(bareboat(d, "key", &["generate"]).env("BAREBOAT_KEY_PASSWORD", "pw"));
    let platforms = platforms(1);
    let subject = subject_of(&platforms[0]);
    let digest = subject["digest"].as_str().unwrap();
    // As many bundles as a referrers index just under the document cap lists: about
    // 19,000 (25,000 of a shorter artifact type).
    let entry = serde_json::to_vec(&Artifact::new(&subject, BUNDLE, b"{\"n\":0}", 0).listed)
        .unwrap()
        .len();
    let count = (DOCUMENT_CAP - 1024) / (entry + 1);
    let bundles: Vec<Artifact> = (0..count)
        .map(|i| Artifact::new(&subject, BUNDLE, format!("{{\"n\":{i}}}").as_bytes(), 0))
        .collect();
    let first = bundles[0].digest();
    let listed: Vec<&Value> = bundles.iter().map(|a| &a.listed).collect();
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": listed});
    let size = serde_json::to_vec(&index).unwrap().len();
    assert!(
        (DOCUMENT_CAP - 64 * 1024..DOCUMENT_CAP).contains(&size),
        "{count} entries make {size} bytes"
    );
    assert!(count > 15_000, "{count}");
    let registry = Registry::start(&platforms, bundles);
    let needle = format!(
        "{digest} has {count} referrers of type {BUNDLE}, and bareboat follows at most 64 per manifest"
    );
    refused(
        d,
        "verify",
        &["--insecure", "--key", "cosign.pub", &registry.image()],
        &needle,
    );
    assert_eq!(registry.scripted.hits(&format!("/manifests/{first}")), 0);
}
