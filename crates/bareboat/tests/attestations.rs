//! Attestations: SLSA provenance and SBOMs, signed as DSSE envelopes in both of cosign's
//! schemes, judged by other implementations (Python's `cryptography` for every envelope's
//! signature over the PAE it builds itself; PyPI's `in-toto-attestation` for the Statement
//! and the provenance predicate; the SBOM validators for the SBOM predicates); policies
//! over them; and rebuilds from the provenance, on a fresh cache, from a layout and from
//! the tests' registry.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use bareboat_oci::layout::Layout;
use bareboat_testkit::verifiers::{python, signature_valid, write_pae};
use base64::Engine as _;
use common::{CACHE_FILL, LocalRegistry, bareboat, run, tool, validate_sbom};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse";
const SLSA: &str = "https://slsa.dev/provenance/v1";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `verify`'s exit status when nothing valid is found or the policy fails; `rebuild`'s
/// when the digest is not reproduced.
const NOT_VERIFIED: i32 = 6;
const NOT_REPRODUCED: i32 = 7;

const HELLO_C: &str = r#"
#include <stdio.h>
int main(void) { puts("hello from an attested image"); return 0; }
"#;

/// `bareboat --json COMMAND ARGS` in `dir` with the keys' password.
fn with_password(dir: &Path, command: &str, args: &[&str]) -> Command {
    let mut cmd = bareboat(dir, command, args);
    cmd.env("BAREBOAT_KEY_PASSWORD", PASSWORD)
        .env_remove("COSIGN_PASSWORD");
    cmd
}

fn build(dir: &Path, args: &[&str]) -> Value {
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(&mut with_password(dir, "build", args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A static program and a key pair in `dir`.
fn app_and_key(dir: &Path) {
    std::fs::write(dir.join("hello.c"), HELLO_C).unwrap();
    run(Command::new(tool("gcc"))
        .current_dir(dir)
        .args(["-static", "hello.c", "-o", "hello"]));
    run(&mut with_password(dir, "key", &["generate"]));
}

/// The arguments that build the app on `catalog:static`, attested, into `outputs`.
fn attested_app<'a>(outputs: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--from",
        "catalog:static",
        "--add",
        "hello:/app/hello",
        "--entrypoint",
        "/app/hello",
        "--attest",
        "slsaprovenance1,spdx,cyclonedx",
        "--key",
        "cosign.key",
        "--insecure",
    ];
    args.extend_from_slice(more);
    for o in outputs {
        args.extend(["-o", o]);
    }
    args
}

fn verifying(dir: &Path, image: &str, args: &[&str]) -> Output {
    let mut all = vec!["--insecure", "--key", "cosign.pub", image];
    all.extend_from_slice(args);
    bareboat(dir, "verify", &all).output().unwrap()
}

/// Verifying fails with [`NOT_VERIFIED`] and `expected` on standard error.
fn refused(dir: &Path, image: &str, args: &[&str], expected: &str) -> String {
    let out = verifying(dir, image, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(NOT_VERIFIED), "{args:?}: {err}");
    assert!(
        err.contains(expected),
        "{args:?}: wanted {expected:?} in:\n{err}"
    );
    err
}

/// The blob `d` names in the layout at `root`.
fn blob(root: &Path, d: &Descriptor) -> Vec<u8> {
    let hex = d
        .digest()
        .as_ref()
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::read(root.join("blobs/sha256").join(hex)).unwrap()
}

/// The DSSE envelopes of `subject`'s attestations in the layout at `root`: from its bundle
/// referrers and from its legacy `.att` image, with their predicate types.
fn envelopes(root: &Path, subject: &str) -> Vec<(String, Value)> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    let att = format!("sha256-{}.att", subject.trim_start_matches("sha256:"));
    let mut out = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let d: Descriptor = serde_json::from_value(m.clone()).unwrap();
        if d.media_type() != &MediaType::ImageManifest {
            continue;
        }
        let manifest: ImageManifest = serde_json::from_slice(&blob(root, &d)).unwrap();
        let about = manifest.subject().as_ref().map(|s| s.digest().to_string());
        let annotations = d.annotations().clone().unwrap_or_default();
        if about.as_deref() == Some(subject)
            && let Some(t) = annotations.get("dev.sigstore.bundle.predicateType")
            && t != "https://sigstore.dev/cosign/sign/v1"
        {
            let bundle: Value = serde_json::from_slice(&blob(root, &manifest.layers()[0])).unwrap();
            out.push((t.clone(), bundle["dsseEnvelope"].clone()));
        }
        if annotations.get(REF_NAME) == Some(&att) {
            for layer in manifest.layers() {
                assert_eq!(layer.media_type().to_string(), DSSE);
                let t = layer.annotations().as_ref().unwrap()["predicateType"].clone();
                out.push((t, serde_json::from_slice(&blob(root, layer)).unwrap()));
            }
        }
    }
    out
}

fn statement_of(envelope: &Value) -> Value {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// Validates `statement` with in-toto-attestation's Statement, and its provenance
/// predicate (if it is one) with the SLSA v1 protobuf, which refuses unknown fields.
const IN_TOTO: &str = r#"
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement, statement_pb2
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
doc = json.load(open(sys.argv[1]))
pb = json_format.ParseDict(doc, statement_pb2.Statement())
statement.Statement.copy_from_pb(pb).validate()
if doc["predicateType"] == "https://slsa.dev/provenance/v1":
    json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
print("valid")
"#;

fn in_toto_valid(dir: &Path, statement: &Value) {
    std::fs::write(dir.join("statement.json"), statement.to_string()).unwrap();
    let out = Command::new(python())
        .current_dir(dir)
        .args(["-c", IN_TOTO, "statement.json"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "valid\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    bareboat_testkit::sha256(bytes)
}

#[test]
fn attestations_verify_and_other_implementations_accept_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    app_and_key(d);
    let report = build(d, &attested_app(&["oci:out:app"], &[]));
    // One provenance about the image, and each SBOM, in both schemes.
    assert_eq!(report["attestations"], 6, "{report}");
    let digest = report["digest"].as_str().unwrap();
    let out = verifying(
        d,
        "oci:out:app",
        &[
            "--attestation",
            "slsaprovenance1",
            "--attestation",
            "spdx",
            "--attestation",
            "cyclonedx",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["verified"], true, "{verified}");
    for a in verified["attestations"].as_array().unwrap() {
        let valid = a["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["refused"].is_null());
        assert_eq!(valid.count(), 2, "bundle and legacy: {a}");
    }

    let found = envelopes(&d.join("out"), digest);
    assert_eq!(found.len(), 6, "{found:?}");
    let lock: Value;
    {
        let (_, provenance) = found.iter().find(|(t, _)| t == SLSA).unwrap();
        let statement = statement_of(provenance);
        let predicate = &statement["predicate"];
        lock = toml::from_str::<toml::Value>(
            predicate["buildDefinition"]["externalParameters"]["lockfile"]
                .as_str()
                .unwrap(),
        )
        .map(|v| serde_json::to_value(v).unwrap())
        .unwrap();
        // The fields SLSA v1 requires, and what bareboat puts in them.
        let definition = &predicate["buildDefinition"];
        assert!(
            definition["buildType"].as_str().unwrap().ends_with("/v1"),
            "{definition}"
        );
        assert_eq!(definition["internalParameters"]["compression"], "gzip");
        let builder = &predicate["runDetails"]["builder"];
        assert!(
            builder["id"].is_string() && builder["version"]["bareboat"].is_string(),
            "{builder}"
        );
        let metadata = &predicate["runDetails"]["metadata"];
        for field in ["invocationId", "startedOn", "finishedOn"] {
            assert!(metadata[field].is_string(), "{field}: {metadata}");
        }
        let dependencies = definition["resolvedDependencies"].as_array().unwrap();
        let digests: Vec<&str> = dependencies
            .iter()
            .filter_map(|d| d["digest"]["sha256"].as_str())
            .collect();
        for p in lock["package"].as_array().unwrap() {
            assert!(
                digests.contains(&p["sha256"].as_str().unwrap()),
                "{}",
                p["name"]
            );
        }
        for s in lock["source"].as_array().unwrap() {
            assert!(
                digests.contains(&s["inrelease_sha256"].as_str().unwrap()),
                "{s}"
            );
        }
        let hello = sha256_hex(&std::fs::read(d.join("hello")).unwrap());
        let added = dependencies
            .iter()
            .find(|d| d["name"] == "/app/hello")
            .unwrap();
        assert_eq!(added["digest"]["sha256"], hello.as_str());
        assert_eq!(added["annotations"]["addedFileArch"], "amd64");
    }
    for (kind, envelope) in &found {
        // Every signature, over the PAE Python builds from the envelope.
        std::fs::write(d.join("envelope.json"), envelope.to_string()).unwrap();
        write_pae(d, "envelope.json", "pae", "pae.sig");
        assert!(signature_valid(d, "cosign.pub", "pae", "pae.sig"), "{kind}");
        let statement = statement_of(envelope);
        assert_eq!(statement["predicateType"], kind.as_str());
        assert_eq!(statement["subject"][0]["digest"]["sha256"], &digest[7..]);
        in_toto_valid(d, &statement);
        let sbom = match kind.as_str() {
            "https://spdx.dev/Document" => "spdx",
            "https://cyclonedx.org/bom" => "cyclonedx",
            _ => continue,
        };
        let path = d.join(format!("predicate.{sbom}.json"));
        std::fs::write(&path, statement["predicate"].to_string()).unwrap();
        validate_sbom(sbom, &path);
    }
}

/// The provenance predicate attested about the image in the layout at `root`.
fn provenance(root: &Path, digest: &str) -> Value {
    let found = envelopes(root, digest);
    let (_, envelope) = found.iter().find(|(t, _)| t == SLSA).unwrap();
    statement_of(envelope)["predicate"].clone()
}

#[test]
fn forged_misplaced_and_stale_attestations_and_failed_policies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    app_and_key(d);
    let a = build(d, &attested_app(&["oci:lay:a", "oci:lay:app"], &[]));
    let a = a["digest"].as_str().unwrap().to_string();
    let b = build(d, &["catalog:base-nossl", "-o", "oci:lay:b"]);
    let b = b["digest"].as_str().unwrap().to_string();
    let root = d.join("lay");
    let layout = Layout::create(&root).unwrap();
    let att = |digest: &str| format!("sha256-{}.att", &digest[7..]);

    refused(
        d,
        "oci:lay:b",
        &["--attestation", "slsaprovenance1"],
        "has no https://slsa.dev/provenance/v1 attestation",
    );
    // Another image's attestations, put under this one's tag, are about that image.
    layout
        .tag(&layout.resolve(&att(&a)).unwrap(), &[att(&b)])
        .unwrap();
    refused(
        d,
        "oci:lay:b",
        &["--attestation", "spdx"],
        &format!("its statement's subject is {a}, not this image"),
    );

    // A policy: the builder, the origin of every dependency, and the build's age.
    let policy = |text: &str| {
        std::fs::write(d.join("policy.toml"), text).unwrap();
    };
    policy(
        "[[field]]\ntype = \"slsaprovenance1\"\npath = \"runDetails.builder.id\"\nequals = \"https://builder.example/trusted\"\n",
    );
    let err = refused(
        d,
        "oci:lay:app",
        &["--policy", "policy.toml"],
        "policy: slsaprovenance1 runDetails.builder.id equals",
    );
    assert!(
        err.contains("runDetails.builder.id is \"https://github.com/"),
        "{err}"
    );
    policy("origins = [\"https://nowhere.example/\"]\n");
    refused(
        d,
        "oci:lay:app",
        &["--policy", "policy.toml"],
        "every resolved dependency from https://nowhere.example/",
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    policy("require = [\"slsaprovenance1\", \"spdx\"]\nmax_age = \"1s\"\n");
    let err = refused(
        d,
        "oci:lay:app",
        &["--policy", "policy.toml"],
        "slsaprovenance1 finishedOn within 1s",
    );
    assert!(!err.contains("require spdx"), "the rest passed: {err}");
    policy("require = [\"slsaprovenance1\", \"spdx\"]\nmax_age = \"1h\"\n");
    let out = verifying(d, "oci:lay:app", &["--policy", "policy.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["policy"].as_array().unwrap().len(), 3, "{report}");

    // A tampered envelope: its payload changed, the blob's digest made anew.
    let tag = att(&a);
    let held = layout.resolve(&tag).unwrap();
    let mut manifest: ImageManifest = serde_json::from_slice(&blob(&root, &held)).unwrap();
    let mut layers = manifest.layers().clone();
    for layer in &mut layers {
        let mut envelope: Value = serde_json::from_slice(&blob(&root, layer)).unwrap();
        let mut statement = statement_of(&envelope);
        statement["predicate"]["tampered"] = json!(true);
        envelope["payload"] = base64::engine::general_purpose::STANDARD
            .encode(statement.to_string())
            .into();
        let mut forged = layout
            .put_json(layer.media_type().clone(), envelope.to_string().as_bytes())
            .unwrap();
        forged.set_annotations(layer.annotations().clone());
        *layer = forged;
    }
    manifest.set_layers(layers);
    let forged = layout
        .put_json(
            MediaType::ImageManifest,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    layout.tag(&forged, &[tag]).unwrap();
    // The bundles still verify; the legacy layers do not.
    let out = verifying(d, "oci:lay:a", &["--attestation", "slsaprovenance1"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let refusals: Vec<&str> = report["attestations"][0]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["refused"].as_str())
        .collect();
    assert_eq!(
        refusals,
        ["no signature of its envelope is the key's"],
        "{report}"
    );

    // A provenance whose lockfile names a .deb with another SHA256 than its dependencies:
    // signed by the key, and still refused by a rebuild.
    let mut predicate = provenance(&d.join("lay"), &a);
    let lockfile = predicate["buildDefinition"]["externalParameters"]["lockfile"]
        .as_str()
        .unwrap()
        .to_string();
    let first = predicate["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(lockfile.contains(&first));
    let other = "e".repeat(64);
    predicate["buildDefinition"]["externalParameters"]["lockfile"] =
        lockfile.replace(&first, &other).into();
    predicate["runDetails"]["metadata"]["finishedOn"] = "2099-01-01T00:00:00Z".into();
    std::fs::write(d.join("forged.json"), predicate.to_string()).unwrap();
    attest(d, "forged.json", "oci:lay:a");
    let out = with_password(d, "rebuild", &["--key", "cosign.pub", "oci:lay:a"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("with SHA256 {other}")) && err.contains("does not hold together"),
        "{err}"
    );
}

/// Attests the SLSA provenance predicate in the file `predicate` about `image`.
fn attest(dir: &Path, predicate: &str, image: &str) {
    let args = [
        "--key",
        "cosign.key",
        "--type",
        "slsaprovenance1",
        "--predicate",
        predicate,
        image,
    ];
    run(&mut with_password(dir, "attest", &args));
}

/// `bareboat rebuild` with a cache of its own, as on another machine.
fn rebuild(dir: &Path, cache: &str, image: &str) -> (Option<i32>, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareboat"));
    cmd.current_dir(dir)
        .arg("--cache")
        .arg(dir.join(cache))
        .args([
            "--json",
            "rebuild",
            "--insecure",
            "--key",
            "cosign.pub",
            image,
        ])
        .env_remove("BAREBOAT_MIRROR")
        .env_remove("SOURCE_DATE_EPOCH");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{err}"));
    (out.status.code(), report, err)
}

#[test]
fn rebuilds_from_provenance_reproduce_the_digest_on_a_fresh_cache() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    app_and_key(d);
    let registry = LocalRegistry::start(d);
    // A catalogue runtime, from a layout.
    let python = build(
        d,
        &[
            "catalog:python3",
            "--attest",
            "slsaprovenance1",
            "--key",
            "cosign.key",
            "-o",
            "oci:py:python3",
        ],
    );
    let (code, report, err) = rebuild(d, "fresh-python", "oci:py:python3");
    assert_eq!(code, Some(0), "{report}\n{err}");
    assert_eq!(report["reproduced"], true);
    assert_eq!(report["rebuilt"], python["digest"]);
    assert_eq!(report["provenance_verified"], true);

    // An application with an added file, from the tests' registry.
    let pushed = format!("{}:1", registry.reference("team/app"));
    let app = build(d, &attested_app(&[&pushed, "oci:app:app"], &[]));
    let (code, report, err) = rebuild(d, "fresh-app", &pushed);
    assert_eq!(code, Some(0), "{report}\n{err}");
    assert_eq!(report["rebuilt"], app["digest"]);

    // Its app layer changed, then signed and attested again with the same provenance: the
    // rebuild names the layer and the file that differ.
    let digest = app["digest"].as_str().unwrap();
    let predicate = provenance(&d.join("app"), digest);
    std::fs::write(d.join("provenance.json"), predicate.to_string()).unwrap();
    let changed = change_top_layer(&d.join("app"), "app");
    attest(d, "provenance.json", "oci:app:changed");
    let (code, report, err) = rebuild(d, "fresh-app", "oci:app:changed");
    assert_eq!(code, Some(NOT_REPRODUCED), "{report}\n{err}");
    assert_eq!(report["digest"], changed.as_str());
    let difference = &report["differences"][0];
    assert_eq!(difference["arch"], "amd64", "{report}");
    assert!(
        difference["created_by"]
            .as_str()
            .unwrap()
            .contains("files /app/hello"),
        "{report}"
    );
    assert!(
        difference["entry"]
            .as_str()
            .unwrap()
            .starts_with("app/extra: "),
        "{report}"
    );
}

/// Adds `app/extra` to the top layer of `tag` in the layout at `root` (a gzip tar),
/// writes the changed image as `changed`, and returns its digest.
fn change_top_layer(root: &Path, tag: &str) -> String {
    const CHANGE: &str = r#"
import gzip, hashlib, io, json, os, sys, tarfile
root, tag = sys.argv[1], sys.argv[2]
def blob(d): return open(os.path.join(root, "blobs/sha256", d.split(":")[1]), "rb").read()
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    open(os.path.join(root, "blobs/sha256", digest), "wb").write(data)
    return "sha256:" + digest
index = json.load(open(os.path.join(root, "index.json")))
top = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
manifest = json.loads(blob(top["digest"]))
config = json.loads(blob(manifest["config"]["digest"]))
layer = manifest["layers"][-1]
old = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"]))))
out = io.BytesIO()
new = tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT)
for member in old.getmembers():
    new.addfile(member, old.extractfile(member) if member.isfile() else None)
extra = tarfile.TarInfo("app/extra")
extra.size, extra.mode = 6, 0o755
new.addfile(extra, io.BytesIO(b"extra\n"))
new.close()
raw = out.getvalue()
packed = gzip.compress(raw, mtime=0)
layer.update(digest=put(packed), size=len(packed))
config["rootfs"]["diff_ids"][-1] = "sha256:" + hashlib.sha256(raw).hexdigest()
body = json.dumps(config).encode()
manifest["config"].update(digest=put(body), size=len(body))
body = json.dumps(manifest).encode()
entry = dict(top, digest=put(body), size=len(body), annotations={"org.opencontainers.image.ref.name": "changed"})
index["manifests"].append(entry)
open(os.path.join(root, "index.json"), "w").write(json.dumps(index))
print(entry["digest"])
"#;
    let out = run(Command::new("python3")
        .args(["-c", CHANGE])
        .arg(root)
        .arg(tag));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
