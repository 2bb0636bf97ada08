//! Other implementations that judge bareboat's signatures: Python's `cryptography` checks
//! an ECDSA signature over exact bytes and builds DSSE's PAE from an envelope itself, and
//! sigstore-js's `@sigstore/verify` 3.x verifies a Sigstore bundle with a public key as its
//! only trust material. `.ci/run` installs both under `target/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

fn installed(path: PathBuf, install: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: .ci/run installs it ({install})",
        path.display()
    );
    path
}

/// Checks the base64 DER signature in the file argv[3] by the PEM public key argv[1] over
/// the bytes of the file argv[2].
const CHECK: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
key.verify(base64.b64decode(open(sys.argv[3]).read()), open(sys.argv[2], "rb").read(),
           ec.ECDSA(hashes.SHA256()))
print("valid")
"#;

/// Builds DSSE's PAE from the envelope at argv[1], as the DSSE specification gives it,
/// into argv[2], and puts its first signature into argv[3].
const PAE: &str = r#"
import base64, json, sys
envelope = json.load(open(sys.argv[1]))
kind = envelope["payloadType"].encode()
body = base64.b64decode(envelope["payload"])
open(sys.argv[2], "wb").write(b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body))
open(sys.argv[3], "w").write(envelope["signatures"][0]["sig"])
"#;

/// Verifies the bundle at argv[1] with the public key at argv[2] as the only trust
/// material (no transparency log, certificate log or timestamp required) and prints its
/// statement's subject digest.
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

/// The Python of the tests' venv, which `.ci/run` gives `cryptography` and PyNaCl.
pub fn python() -> PathBuf {
    installed(
        target().join("sbom-tools/bin/python"),
        "python3 -m venv target/sbom-tools; pip install pynacl cryptography",
    )
}

fn run_python(dir: &Path, script: &str, args: &[&str]) -> Output {
    Command::new(python())
        .current_dir(dir)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs")
}

/// Whether Python's `cryptography` finds the base64 DER signature in the file `signature`
/// to be the PEM public key `key`'s over the bytes of the file `signed` (paths in `dir`).
pub fn signature_valid(dir: &Path, key: &str, signed: &str, signature: &str) -> bool {
    let out = run_python(dir, CHECK, &[key, signed, signature]);
    out.status.success() && out.stdout == b"valid\n"
}

/// Writes DSSE's PAE of the envelope in the file `envelope` to `pae`, and its first
/// signature to `signature`, computed by Python from the envelope alone.
pub fn write_pae(dir: &Path, envelope: &str, pae: &str, signature: &str) {
    let out = run_python(dir, PAE, &[envelope, pae, signature]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// sigstore-js's verdict on the bundle in the file `bundle` with the PEM public key `key`
/// (paths in `dir`): the hex digest its statement names, or why it refused it.
pub fn sigstore_verify(dir: &Path, bundle: &str, key: &str) -> Result<String, String> {
    let modules = installed(
        target().join("sigstore-js/node_modules"),
        "npm install --prefix target/sigstore-js @sigstore/verify@3 @sigstore/bundle@3",
    );
    let out = Command::new("node")
        .current_dir(dir)
        .env("NODE_PATH", modules)
        .arg("-e")
        .arg(VERIFY)
        .arg("--")
        .args([bundle, key])
        .output()
        .expect("node runs");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}
