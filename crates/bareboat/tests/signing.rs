//! Signing and verifying images where they are: layouts, both kinds of archive and a real
//! registry (docker-registry 2.8, which lists referrers under a fallback tag, and the same
//! behind the tests' referrers-API proxy). What bareboat stores is judged by other
//! implementations too (see `bareboat_testkit::verifiers`), and archives that carry
//! signatures still load in podman and skopeo. Each way of forging or moving a signature
//! is refused with its reason.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use bareboat_oci::digest::Digest;
use bareboat_oci::layout::Layout;
use bareboat_testkit::verifiers::{signature_valid, sigstore_verify, write_pae};
use common::proxy::FaultProxy;
use common::{CACHE_FILL, LocalRegistry, bareboat, layer_digests, podman, run, skopeo_raw, tool};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::Value;

const PASSWORD: &str = "correct horse";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// `bareboat verify`'s exit status when no signature is valid.
const NOT_VERIFIED: i32 = 6;

/// `bareboat --json COMMAND ARGS` in `dir`, with the keys' password.
fn with_password(dir: &Path, command: &str, args: &[&str]) -> Command {
    let mut cmd = bareboat(dir, command, args);
    cmd.env("BAREBOAT_KEY_PASSWORD", PASSWORD)
        .env_remove("COSIGN_PASSWORD");
    cmd
}

/// Makes the key pair `NAME.key`, `NAME.pub` in `dir`.
fn key_pair(dir: &Path, name: &str) {
    run(&mut with_password(
        dir,
        "key",
        &["generate", "--output-key-prefix", name],
    ));
}

/// `bareboat build ARGS` with the keys' password; returns its report.
fn build(dir: &Path, args: &[&str]) -> Value {
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(&mut with_password(dir, "build", args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `bareboat sign --key KEY IMAGE` (and `--insecure` for a registry); returns its report.
fn sign(dir: &Path, key: &str, image: &str, more: &[&str]) -> Value {
    let mut args = vec!["--key", key, image, "--insecure"];
    args.extend(more);
    let out = run(&mut with_password(dir, "sign", &args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `bareboat verify --key PUB IMAGE MORE`, as it exits.
fn verifying(dir: &Path, key: &str, image: &str, more: &[&str]) -> Output {
    let mut args = vec!["--key", key, image, "--insecure"];
    args.extend(more);
    bareboat(dir, "verify", &args).output().unwrap()
}

/// Verifies `image` with `key`; returns the formats of the valid signatures, sorted.
fn verified(dir: &Path, key: &str, image: &str, more: &[&str]) -> Vec<String> {
    let out = verifying(dir, key, image, more);
    assert!(
        out.status.success(),
        "{image} did not verify:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut formats: Vec<String> = report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["refused"].is_null())
        .map(|s| s["format"].as_str().unwrap().to_string())
        .collect();
    formats.sort();
    formats
}

/// Verifying `image` with `key` fails with exit status 6 and a reason containing
/// `expected`.
fn refused(dir: &Path, key: &str, image: &str, more: &[&str], expected: &str) {
    let out = verifying(dir, key, image, more);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(NOT_VERIFIED), "{image}: {err}");
    assert!(
        err.contains(expected),
        "{image}: wanted {expected:?} in:\n{err}"
    );
}

fn both() -> Vec<String> {
    vec!["bundle".to_string(), "legacy".to_string()]
}

/// The descriptor, manifest and layer bytes of what `layout` lists for `digest`: the bundle
/// referrer of the subject, or the manifest under the legacy tag.
struct Stored {
    descriptor: Descriptor,
    manifest: ImageManifest,
    layer: Vec<u8>,
}

fn stored(layout: &Path, descriptor: &Descriptor) -> Stored {
    let blob = |d: &Descriptor| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(d.digest().as_ref().trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let manifest: ImageManifest = serde_json::from_slice(&blob(descriptor)).unwrap();
    let layer = blob(&manifest.layers()[0]);
    Stored {
        descriptor: descriptor.clone(),
        manifest,
        layer,
    }
}

fn index_entries(layout: &Path) -> Vec<Descriptor> {
    let index: oci_spec::image::ImageIndex =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index.manifests().clone()
}

/// The bundle referrer of `subject` in `layout`.
fn bundle_of(layout: &Path, subject: &str) -> Stored {
    let entries = index_entries(layout);
    let found = entries
        .iter()
        .filter(|d| d.media_type() == &MediaType::ImageManifest)
        .map(|d| stored(layout, d))
        .find(|s| {
            s.manifest
                .artifact_type()
                .as_ref()
                .map(ToString::to_string)
                .as_deref()
                == Some(BUNDLE)
                && s.manifest
                    .subject()
                    .as_ref()
                    .map(|s| s.digest().to_string())
                    .as_deref()
                    == Some(subject)
        });
    found.unwrap_or_else(|| panic!("no bundle of {subject} in {}", layout.display()))
}

/// The legacy signature image of `subject` in `layout`.
fn legacy_of(layout: &Path, subject: &str) -> Stored {
    let tag = format!("sha256-{}.sig", subject.trim_start_matches("sha256:"));
    let entries = index_entries(layout);
    let found = entries.iter().find(|d| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name"))
            == Some(&tag)
    });
    stored(
        layout,
        found.unwrap_or_else(|| panic!("no {tag} in {}", layout.display())),
    )
}

#[test]
fn signatures_ride_with_the_image_and_other_verifiers_accept_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    key_pair(d, "cosign");
    let report = build(
        d,
        &[
            "catalog:base-nossl",
            "--arch",
            "amd64,arm64",
            "--sbom",
            "spdx",
            "--sign",
            "cosign.key",
            "-o",
            "oci:out:app",
            "-o",
            "oci-archive:app.tar:app",
        ],
    );
    // The index and both platforms' images, each in both schemes.
    assert_eq!(report["signatures"], 6, "{report}");
    // SBOMs ride as referrers; no file is written beside an output unless asked for.
    assert!(!d.join("out.amd64.spdx.json").exists());
    let index = report["digest"].as_str().unwrap();
    for image in [
        "oci:out:app",
        "oci-archive:app.tar:app",
        "oci-archive:app.tar",
    ] {
        assert_eq!(verified(d, "cosign.pub", image, &[]), both(), "{image}");
        for arch in ["amd64", "arm64"] {
            let platform = verified(d, "cosign.pub", image, &["--platform-only", "--arch", arch]);
            assert_eq!(platform, both(), "{image} {arch}");
        }
    }

    // What the layout holds, judged by others: sigstore-js verifies the bundle and reads
    // the index's digest from its statement; Python checks the DSSE signature over the PAE
    // it builds, and the legacy signature over the payload's exact bytes.
    let layout = d.join("out");
    let bundle = bundle_of(&layout, index);
    let annotations = bundle.descriptor.annotations().clone().unwrap_or_default();
    assert_eq!(annotations["dev.sigstore.bundle.content"], "dsse-envelope");
    assert_eq!(
        annotations["dev.sigstore.bundle.predicateType"],
        "https://sigstore.dev/cosign/sign/v1"
    );
    assert_eq!(
        bundle.manifest.config().media_type().to_string(),
        "application/vnd.oci.empty.v1+json"
    );
    std::fs::write(d.join("bundle.json"), &bundle.layer).unwrap();
    assert_eq!(
        sigstore_verify(d, "bundle.json", "cosign.pub").unwrap(),
        index.trim_start_matches("sha256:")
    );
    let envelope: Value =
        serde_json::from_slice::<Value>(&bundle.layer).unwrap()["dsseEnvelope"].clone();
    std::fs::write(d.join("envelope.json"), envelope.to_string()).unwrap();
    write_pae(d, "envelope.json", "pae", "pae.sig");
    assert!(signature_valid(d, "cosign.pub", "pae", "pae.sig"));
    let legacy = legacy_of(&layout, index);
    let layer = &legacy.manifest.layers()[0];
    assert_eq!(layer.media_type().to_string(), SIMPLE_SIGNING);
    let payload: Value = serde_json::from_slice(&legacy.layer).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        index
    );
    assert_eq!(
        payload["critical"]["type"],
        "cosign container image signature"
    );
    std::fs::write(d.join("payload.json"), &legacy.layer).unwrap();
    let signature = &layer.annotations().as_ref().unwrap()[SIGNATURE];
    std::fs::write(d.join("payload.sig"), signature).unwrap();
    assert!(signature_valid(
        d,
        "cosign.pub",
        "payload.json",
        "payload.sig"
    ));

    // Signed again with the same key, nothing is written, anywhere.
    let index_json = std::fs::read(layout.join("index.json")).unwrap();
    let archive = std::fs::read(d.join("app.tar")).unwrap();
    for image in ["oci:out:app", "oci-archive:app.tar"] {
        let again = sign(d, "cosign.key", image, &[]);
        let outcomes: Vec<&Value> = again["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["outcome"])
            .collect();
        assert_eq!(outcomes, vec!["present"; 6], "{again}");
    }
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_json
    );
    assert_eq!(std::fs::read(d.join("app.tar")).unwrap(), archive);

    // A second key's signatures join the first's; each key verifies its own.
    key_pair(d, "second");
    sign(
        d,
        "second.key",
        "oci-archive:app.tar",
        &["--signature-format", "legacy"],
    );
    assert_eq!(
        verified(d, "second.pub", "oci-archive:app.tar", &[]),
        ["legacy"]
    );
    assert_eq!(
        verified(d, "cosign.pub", "oci-archive:app.tar", &[]),
        both()
    );

    // The archive still reads as one image to skopeo, which copies it whole.
    let raw = skopeo_raw(d, "oci-archive:app.tar");
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    run(Command::new(tool("skopeo")).current_dir(d).args([
        "copy",
        "--all",
        "oci-archive:app.tar",
        "oci:skopeo-copy:app",
    ]));
}

#[test]
fn signed_archives_still_load_in_podman_and_skopeo_and_copies_keep_their_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    key_pair(d, "cosign");
    build(
        d,
        &[
            "catalog:static",
            "--sign",
            "cosign.key",
            "--sbom",
            "spdx,cyclonedx",
            "--sbom-files",
            "-o",
            "oci-archive:oci.tar",
            "-o",
            "docker-archive:docker.tar:example.test/app:1",
        ],
    );
    // Asked for, the SBOM files are written beside the archives too.
    assert!(d.join("oci.tar.spdx.json").is_file());
    assert!(d.join("docker.tar.cdx.json").is_file());
    for archive in ["oci-archive:oci.tar", "docker-archive:docker.tar"] {
        assert_eq!(verified(d, "cosign.pub", archive, &[]), both(), "{archive}");
        let file = archive.split(':').nth(1).unwrap();
        let out = run(podman(d).args(["load", "-i", file]));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Loaded image"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let inspected = run(Command::new(tool("skopeo"))
            .current_dir(d)
            .args(["inspect", archive]));
        let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
        assert_eq!(inspected["Architecture"], "amd64");
    }
    // Every pair of local transports keeps both schemes, and the SBOMs.
    let hops = [
        ("docker-archive:docker.tar", "oci:hop1:app"),
        ("oci:hop1:app", "docker-archive:hop2.tar:app:2"),
        ("docker-archive:hop2.tar", "oci-archive:hop3.tar:app"),
        ("oci-archive:hop3.tar", "oci:hop4:app"),
    ];
    for (from, to) in hops {
        run(&mut bareboat(d, "copy", &[from, to]));
        assert_eq!(verified(d, "cosign.pub", to, &[]), both(), "{from} -> {to}");
    }
    let sbom = run(&mut bareboat(
        d,
        "sbom",
        &["--attached", "oci:hop4:app", "--format", "cyclonedx"],
    ));
    assert_eq!(
        sbom.stdout,
        std::fs::read(d.join("docker.tar.cdx.json")).unwrap()
    );
}

/// Writes `bytes` of `media_type` into `layout` and returns its descriptor.
fn put(layout: &Layout, media_type: MediaType, bytes: &[u8]) -> Descriptor {
    layout.put_json(media_type, bytes).unwrap()
}

/// `manifest` with its first layer swapped for `layer` (bytes and annotations), written.
fn with_layer(
    layout: &Layout,
    manifest: &ImageManifest,
    layer: &[u8],
    annotations: Option<(&str, &str)>,
) -> Descriptor {
    let mut manifest = manifest.clone();
    let old = &manifest.layers()[0];
    let mut new = put(layout, old.media_type().clone(), layer);
    new.set_annotations(old.annotations().clone());
    if let Some((k, v)) = annotations {
        new.set_annotations(Some([(k.to_string(), v.to_string())].into()));
    }
    manifest.set_layers(vec![new]);
    put(
        layout,
        MediaType::ImageManifest,
        &serde_json::to_vec(&manifest).unwrap(),
    )
}

#[test]
fn forged_moved_and_misused_signatures_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    key_pair(d, "cosign");
    key_pair(d, "stranger");
    let a = build(
        d,
        &[
            "catalog:static",
            "-o",
            "oci:lay:app",
            "-o",
            "oci:lay:a",
            "-o",
            "oci:clean:a",
        ],
    );
    let a = a["digest"].as_str().unwrap().to_string();
    let b = build(d, &["catalog:base-nossl", "-o", "oci:lay:b"]);
    let b = b["digest"].as_str().unwrap().to_string();

    refused(d, "cosign.pub", "oci:lay:app", &[], "is not signed");
    // A wrong password, and a file that is not a key, sign nothing.
    std::fs::write(d.join("notes.txt"), "not a key\n").unwrap();
    let mut wrong = with_password(d, "sign", &["--key", "cosign.key", "oci:lay:app"]);
    common::fails_with(
        wrong.env("BAREBOAT_KEY_PASSWORD", "wrong"),
        "the password does not open this key",
    );
    common::fails_with(
        &mut with_password(d, "sign", &["--key", "notes.txt", "oci:lay:app"]),
        "notes.txt: not ",
    );
    refused(d, "cosign.pub", "oci:lay:app", &[], "is not signed");

    sign(d, "cosign.key", "oci:lay:app", &[]);
    assert_eq!(verified(d, "cosign.pub", "oci:lay:app", &[]), both());
    refused(d, "stranger.pub", "oci:lay:app", &[], "no signature of");
    refused(
        d,
        "stranger.pub",
        "oci:lay:app",
        &[],
        "the signature is not the key's over its payload",
    );
    refused(
        d,
        "stranger.pub",
        "oci:lay:app",
        &[],
        "no signature of its envelope is the key's",
    );

    let root = d.join("lay");
    let layout = Layout::create(&root).unwrap();
    let legacy = legacy_of(&root, &a);
    let bundle = bundle_of(&root, &a);
    let sig_tag = |digest: &str| format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));

    // A signature copied onto another image's tag names the image it was made for.
    layout.tag(&legacy.descriptor, &[sig_tag(&b)]).unwrap();
    refused(
        d,
        "cosign.pub",
        "oci:lay:b",
        &[],
        &format!("its payload names {a}, not this image"),
    );
    // So does a bundle listed as another image's referrer.
    let mut moved = bundle.manifest.clone();
    let mut subject = moved.subject().clone().unwrap();
    subject.set_digest(b.parse().unwrap());
    moved.set_subject(Some(subject));
    let mut listed = put(
        &layout,
        MediaType::ImageManifest,
        &serde_json::to_vec(&moved).unwrap(),
    );
    listed.set_artifact_type(Some(MediaType::Other(BUNDLE.into())));
    layout.add_untagged(&listed).unwrap();
    refused(
        d,
        "cosign.pub",
        "oci:lay:b",
        &[],
        &format!("its statement's subject is {a}, not this image"),
    );

    // The tag moved to an unsigned image: nothing is signed.
    let unsigned = layout.resolve("b").unwrap();
    layout.tag(&unsigned, &["app".to_string()]).unwrap();
    refused(d, "cosign.pub", "oci:lay:app", &[], "no signature of");
    layout
        .tag(&layout.resolve("a").unwrap(), &["app".to_string()])
        .unwrap();
    assert_eq!(verified(d, "cosign.pub", "oci:lay:app", &[]), both());

    // Tampered signatures, each alone in a layout of its own, so that nothing else
    // verifies: the layer changed under its digest, the payload changed with its digest
    // made anew, the annotation changed, and the bundle's statement changed.
    let tampered = |name: &str, format: &str, tamper: &dyn Fn(&Layout)| {
        run(&mut bareboat(
            d,
            "copy",
            &["oci:clean:a", &format!("oci:{name}:app")],
        ));
        sign(
            d,
            "cosign.key",
            &format!("oci:{name}:app"),
            &["--signature-format", format],
        );
        let layout = Layout::create(&d.join(name)).unwrap();
        tamper(&layout);
    };
    tampered("payload-bytes", "legacy", &|layout| {
        let legacy = legacy_of(&d.join("payload-bytes"), &a);
        let path = layout.blob_path(&Digest::of(&legacy.layer));
        let forged = String::from_utf8(legacy.layer.clone())
            .unwrap()
            .replace(&a[7..], &b[7..]);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, forged).unwrap();
    });
    refused(
        d,
        "cosign.pub",
        "oci:payload-bytes:app",
        &[],
        "cannot be read",
    );
    tampered("payload-rehashed", "legacy", &|layout| {
        let legacy = legacy_of(&d.join("payload-rehashed"), &a);
        let forged = String::from_utf8(legacy.layer.clone())
            .unwrap()
            .replace("\"optional\":null", "\"optional\":{\"x\":1}");
        let d2 = with_layer(layout, &legacy.manifest, forged.as_bytes(), None);
        layout.tag(&d2, &[sig_tag(&a)]).unwrap();
    });
    refused(
        d,
        "cosign.pub",
        "oci:payload-rehashed:app",
        &[],
        "the signature is not the key's over its payload",
    );
    tampered("annotation", "legacy", &|layout| {
        let legacy = legacy_of(&d.join("annotation"), &a);
        let other = "MEUCIQDz2AnfNmrHqNTnNNmbPzgVRTn3dUlLKq1Mh+3ZI0zx8gIgBeAbNeiCoaUcvaKZaMEhTl6gyGb7YoPJ4jlPbLyzxvI=";
        let d2 = with_layer(
            layout,
            &legacy.manifest,
            &legacy.layer,
            Some((SIGNATURE, other)),
        );
        layout.tag(&d2, &[sig_tag(&a)]).unwrap();
    });
    refused(
        d,
        "cosign.pub",
        "oci:annotation:app",
        &[],
        "the signature is not the key's over its payload",
    );
    tampered("bundle", "bundle", &|layout| {
        let bundle = bundle_of(&d.join("bundle"), &a);
        let forged = String::from_utf8(bundle.layer.clone())
            .unwrap()
            .replace("\"sig\":\"M", "\"sig\":\"N");
        let mut d2 = with_layer(layout, &bundle.manifest, forged.as_bytes(), None);
        d2.set_artifact_type(Some(MediaType::Other(BUNDLE.into())));
        let untagged: Vec<Descriptor> = layout.untagged().unwrap();
        assert!(
            untagged
                .iter()
                .any(|u| u.digest() == bundle.descriptor.digest())
        );
        // The genuine bundle is taken out of the listing; the forged one put in.
        let index_path = d.join("bundle/index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["digest"] != bundle.descriptor.digest().to_string());
        std::fs::write(&index_path, index.to_string()).unwrap();
        layout.add_untagged(&d2).unwrap();
    });
    refused(d, "cosign.pub", "oci:bundle:app", &[], "bundle sha256:");
}

#[test]
fn registries_hold_both_schemes_and_copies_carry_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    key_pair(d, "cosign");
    let image = format!("{}:1", registry.reference("team/app"));
    let report = build(d, &["catalog:static", "--insecure", "-o", &image]);
    let digest = report["digest"].as_str().unwrap().to_string();
    let hex = &digest[7..];
    let layers = layer_digests(&report);
    assert!(!layers.is_empty());

    // Signing a pushed image fetches its manifest, never a layer.
    let logs =
        || ["registry.err", "registry.log"].map(|f| std::fs::read_to_string(d.join(f)).unwrap());
    let before = logs().map(|l| l.len());
    let signed = sign(d, "cosign.key", &image, &[]);
    assert_eq!(
        signed["signatures"].as_array().unwrap().len(),
        2,
        "{signed}"
    );
    let after = logs();
    let during = after[0][before[0]..].to_string() + &after[1][before[1]..];
    for layer in &layers {
        assert!(
            !during.contains(&format!("/blobs/{layer}")),
            "signing fetched {layer}:\n{during}"
        );
    }
    assert!(
        during.contains(&format!("/manifests/{digest}")) || during.contains("/manifests/1"),
        "{during}"
    );

    // skopeo reads the legacy tag: one simple-signing layer with its signature.
    let sig = skopeo_raw(
        d,
        &format!("{}:sha256-{hex}.sig", registry.reference("team/app")),
    );
    assert_eq!(sig["layers"].as_array().unwrap().len(), 1, "{sig}");
    assert_eq!(sig["layers"][0]["mediaType"], SIMPLE_SIGNING);
    assert!(
        sig["layers"][0]["annotations"][SIGNATURE].is_string(),
        "{sig}"
    );
    // docker-registry has no referrers API: the bundle is listed under the fallback tag.
    let fallback = skopeo_raw(
        d,
        &format!("{}:sha256-{hex}", registry.reference("team/app")),
    );
    let listed = fallback["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{fallback}");
    assert_eq!(listed[0]["artifactType"], BUNDLE);
    assert_eq!(verified(d, "cosign.pub", &image, &[]), both());

    // Signing again writes nothing.
    let again = sign(d, "cosign.key", &image, &[]);
    assert!(
        again["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "present"),
        "{again}"
    );
    assert_eq!(
        skopeo_raw(
            d,
            &format!("{}:sha256-{hex}.sig", registry.reference("team/app"))
        ),
        sig
    );

    // Through a layout and an archive to another repository, and to one behind a registry
    // with the referrers API, every signature stays valid.
    let copy = format!("{}:1", registry.reference("team/copy"));
    let proxy = FaultProxy::with_referrers_api(registry.port);
    let through = format!("docker://127.0.0.1:{}/team/api:1", proxy.port);
    let hops = [
        (image.as_str(), "oci:pulled:app"),
        ("oci:pulled:app", "oci-archive:pulled.tar:app"),
        ("oci-archive:pulled.tar:app", copy.as_str()),
        ("oci-archive:pulled.tar:app", through.as_str()),
    ];
    for (from, to) in hops {
        run(&mut bareboat(d, "copy", &["--insecure", from, to]));
        assert_eq!(verified(d, "cosign.pub", to, &[]), both(), "{from} -> {to}");
    }
    // Behind the referrers API no fallback tag is written; the legacy tag is.
    let tags = run(Command::new(tool("skopeo")).args([
        "list-tags",
        "--tls-verify=false",
        &registry.reference("team/api"),
    ]));
    let tags: Value = serde_json::from_slice(&tags.stdout).unwrap();
    let mut tags: Vec<&str> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.sort();
    assert_eq!(tags, ["1", &format!("sha256-{hex}.sig")]);
    assert!(proxy.fired().iter().any(|f| f.ends_with("referrers API")));

    // A signature copied onto another image's tag, and the tag moved to an unsigned image.
    let other = format!("{}:2", registry.reference("team/app"));
    let other_report = build(d, &["catalog:base-nossl", "--insecure", "-o", &other]);
    let other_hex = &other_report["digest"].as_str().unwrap()[7..];
    run(Command::new(tool("skopeo")).current_dir(d).args([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("{}:sha256-{hex}.sig", registry.reference("team/app")),
        &format!("{}:sha256-{other_hex}.sig", registry.reference("team/app")),
    ]));
    refused(
        d,
        "cosign.pub",
        &other,
        &[],
        &format!("its payload names {digest}, not this image"),
    );
    run(&mut bareboat(d, "copy", &["--insecure", &other, &image]));
    refused(d, "cosign.pub", &image, &[], "no signature of");
}

#[test]
fn copies_between_every_pair_of_transports_keep_both_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    key_pair(d, "cosign");
    // A signed source in each transport.
    let sources = [
        "oci:src:app".to_string(),
        "oci-archive:src.tar:app".to_string(),
        "docker-archive:src-docker.tar:app:1".to_string(),
        format!("{}:1", registry.reference("src/app")),
    ];
    let mut args = vec!["catalog:static", "--sign", "cosign.key", "--insecure"];
    for s in &sources {
        args.extend(["-o", s]);
    }
    build(d, &args);
    let destinations = |i: usize| {
        [
            format!("oci:dest{i}:app"),
            format!("oci-archive:dest{i}.tar:app"),
            format!("docker-archive:dest{i}-docker.tar:app:1"),
            format!("{}:1", registry.reference(&format!("dest{i}/app"))),
        ]
    };
    for (i, from) in sources.iter().enumerate() {
        for to in destinations(i) {
            run(&mut bareboat(d, "copy", &["--insecure", from, &to]));
            assert_eq!(
                verified(d, "cosign.pub", &to, &[]),
                both(),
                "{from} -> {to}"
            );
        }
    }
}

#[test]
fn signers_racing_on_the_fallback_tags_each_keep_their_signature() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    let image = format!("{}:1", registry.reference("team/raced"));
    build(d, &["catalog:static", "--insecure", "-o", &image]);
    let keys: Vec<String> = (0..4).map(|i| format!("key{i}")).collect();
    for k in &keys {
        key_pair(d, k);
    }
    // All at once: each reads the listings, adds its own and writes them back.
    let signers: Vec<_> = keys
        .iter()
        .map(|k| {
            with_password(
                d,
                "sign",
                &["--insecure", "--key", &format!("{k}.key"), &image],
            )
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut s in signers {
        assert!(s.wait().unwrap().success());
    }
    for k in &keys {
        assert_eq!(verified(d, &format!("{k}.pub"), &image, &[]), both(), "{k}");
    }
}

#[test]
fn bareboats_own_image_is_signed_runs_it_and_keeps_its_line_tables_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    key_pair(d, "ship");
    for binutil in ["objcopy", "readelf", "nm", "addr2line"] {
        tool(binutil);
    }
    // dist/image.sh, shipping the binary under test rather than building the release one.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/image.sh");
    let dist = d.join("dist");
    let layout = format!("oci:{}:bareboat", d.join("out").display());
    let key = d.join("ship.key");
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    let built = run(Command::new("bash")
        .arg(&script)
        .args(["--json", "--cache"])
        .arg(common::cache())
        .args(["-o", &layout, "--sign"])
        .arg(&key)
        .env("BAREBOAT_BINARY", env!("CARGO_BIN_EXE_bareboat"))
        .env("DIST", &dist)
        .env("BAREBOAT_KEY_PASSWORD", PASSWORD)
        .env_remove("BAREBOAT_MIRROR")
        .env_remove("SOURCE_DATE_EPOCH"));
    let built: Value = serde_json::from_slice(&built.stdout).unwrap();
    assert_eq!(
        verified(d, "ship.pub", "oci:out:bareboat", &[]).len(),
        2,
        "{built}"
    );

    // The image's binary has no debug info, names its debug file, and runs.
    let bundle = common::unpack(d, "out", "bareboat");
    let shipped = bundle.join("rootfs/usr/bin/bareboat");
    let sections = |file: &Path| {
        let out = run(Command::new(tool("readelf")).arg("-SW").arg(file));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shipped_sections = sections(&shipped);
    assert!(
        shipped_sections.contains(".gnu_debuglink"),
        "{shipped_sections}"
    );
    for debug in [".debug_info", ".debug_line"] {
        assert!(!shipped_sections.contains(debug), "{debug} shipped");
    }
    let version = common::runc(&bundle, &["/usr/bin/bareboat", "--version"]);
    assert_eq!(version, format!("bareboat {}\n", env!("CARGO_PKG_VERSION")));

    // bareboat.debug holds the line tables: addr2line reads a function of the shipped
    // binary back to its source line.
    assert!(sections(&dist.join("bareboat.debug")).contains(".debug_line"));
    let symbols = run(Command::new(tool("nm")).arg("-C").arg(&shipped));
    let symbols = String::from_utf8_lossy(&symbols.stdout);
    let main = symbols
        .lines()
        .find(|l| l.ends_with(" bareboat::main"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the shipped binary keeps its symbols");
    let line = run(Command::new(tool("addr2line"))
        .args(["-f", "-C", "-e"])
        .arg(dist.join("bareboat.debug"))
        .arg(format!("0x{main}")));
    let line = String::from_utf8_lossy(&line.stdout);
    assert!(
        line.contains("bareboat::main") && line.contains("main.rs:"),
        "{line}"
    );
}
