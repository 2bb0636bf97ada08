//! bareboat's signatures, judged by other implementations: Python's `cryptography` checks
//! the legacy signature over the exact payload bytes and the DSSE signature over the PAE,
//! and sigstore-js's `@sigstore/verify` 3.x verifies the bundle with the public key as its
//! trust material (and refuses it tampered with). `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bareboat_sign::formats::{self, COSIGN_SIGN, Envelope, IN_TOTO};
use bareboat_sign::key::KeyPair;

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

fn tool(path: PathBuf, install: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: .ci/run installs it ({install})",
        path.display()
    );
    path
}

/// Checks `signature` (base64 DER) by `pub.pem` over the bytes of `signed`.
const CHECK: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
key.verify(base64.b64decode(open(sys.argv[3]).read()), open(sys.argv[2], "rb").read(),
           ec.ECDSA(hashes.SHA256()))
print("valid")
"#;

/// Verifies the bundle at argv[2] with the public key at argv[3] as the only trust
/// material: no transparency log, certificate log or timestamp required.
const VERIFY: &str = r#"
const crypto = require('crypto');
const fs = require('fs');
const { Verifier, toSignedEntity } = require('@sigstore/verify');
const { bundleFromJSON } = require('@sigstore/bundle');
const [bundlePath, keyPath] = process.argv.slice(1);
const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath)));
const key = crypto.createPublicKey(fs.readFileSync(keyPath));
const hint = crypto.createHash('sha256')
  .update(key.export({ type: 'spki', format: 'der' })).digest('base64');
const trust = {
  certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [],
  publicKey: (h) => {
    if (h !== hint) throw new Error('no key for the hint ' + h);
    return { publicKey: key, validFor: () => true };
  },
};
new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 })
  .verify(toSignedEntity(bundle));
const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString());
console.log(statement.subject[0].digest.sha256);
"#;

/// Builds DSSE's PAE from the envelope at argv[1], as the DSSE specification gives it,
/// into argv[2], and puts its signature into argv[3]: bareboat's own PAE is not used.
const PAE: &str = r#"
import base64, json, sys
envelope = json.load(open(sys.argv[1]))
kind = envelope["payloadType"].encode()
body = base64.b64decode(envelope["payload"])
open(sys.argv[2], "wb").write(b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body))
open(sys.argv[3], "w").write(envelope["signatures"][0]["sig"])
"#;

fn python(dir: &Path, args: &[&str]) -> Output {
    python_running(dir, CHECK, args)
}

fn python_running(dir: &Path, script: &str, args: &[&str]) -> Output {
    let python = tool(
        target().join("sbom-tools/bin/python"),
        "python3 -m venv target/sbom-tools; pip install cryptography",
    );
    Command::new(python)
        .current_dir(dir)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap()
}

fn node(dir: &Path, args: &[&str]) -> Output {
    let modules = tool(
        target().join("sigstore-js/node_modules"),
        "npm install --prefix target/sigstore-js @sigstore/verify@3 @sigstore/bundle@3",
    );
    Command::new("node")
        .current_dir(dir)
        .env("NODE_PATH", modules)
        .arg("-e")
        .arg(VERIFY)
        .arg("--")
        .args(args)
        .output()
        .unwrap()
}

const DIGEST: &str = "sha256:4c1c50d0ffc614f90b93b07d778028dc765548e823f676fb027f61d281ac380d";

#[test]
fn other_implementations_verify_what_bareboat_signs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = KeyPair::generate().unwrap();
    std::fs::write(d.join("pub.pem"), key.public_pem()).unwrap();

    // The legacy scheme: the signature over the payload's exact bytes.
    let payload = formats::simple_signing("registry.example/app", DIGEST);
    std::fs::write(d.join("payload.json"), &payload).unwrap();
    std::fs::write(d.join("payload.sig"), formats::sign(&key, &payload)).unwrap();
    let out = python(d, &["pub.pem", "payload.json", "payload.sig"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "valid\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        d.join("payload.json"),
        formats::simple_signing("registry.example/app", &DIGEST.replace('c', "d")),
    )
    .unwrap();
    assert!(
        !python(d, &["pub.pem", "payload.json", "payload.sig"])
            .status
            .success()
    );

    // DSSE: the signature over the PAE.
    let statement = formats::statement(
        "registry.example/app",
        DIGEST,
        COSIGN_SIGN,
        serde_json::json!({}),
    );
    let envelope = Envelope::sign(&key, IN_TOTO, &statement);
    std::fs::write(
        d.join("envelope.json"),
        serde_json::to_vec(&envelope).unwrap(),
    )
    .unwrap();
    let out = python_running(d, PAE, &["envelope.json", "pae", "pae.sig"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = python(d, &["pub.pem", "pae", "pae.sig"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "valid\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The bundle, by sigstore-js, which reads the statement's subject back.
    let bundle = formats::bundle(&envelope, &key.public().hint());
    std::fs::write(d.join("bundle.json"), &bundle).unwrap();
    let out = node(d, &["bundle.json", "pub.pem"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        DIGEST.trim_start_matches("sha256:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Tampered with: another subject under the same signature.
    let mut forged: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let other = formats::statement(
        "registry.example/app",
        &DIGEST.replace('c', "d"),
        COSIGN_SIGN,
        serde_json::json!({}),
    );
    use base64::Engine as _;
    forged["dsseEnvelope"]["payload"] = base64::engine::general_purpose::STANDARD
        .encode(other)
        .into();
    std::fs::write(d.join("forged.json"), forged.to_string()).unwrap();
    let out = node(d, &["forged.json", "pub.pem"]);
    assert!(!out.status.success(), "a forged bundle verified");
    // And another key's.
    let stranger = KeyPair::generate().unwrap();
    std::fs::write(d.join("stranger.pem"), stranger.public_pem()).unwrap();
    assert!(!node(d, &["bundle.json", "stranger.pem"]).status.success());
}
