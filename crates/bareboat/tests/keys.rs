//! Signing keys, judged by another implementation of cosign's key format: Python's
//! hashlib.scrypt, PyNaCl's secretbox and `cryptography` open the keys bareboat makes, and
//! make keys (under cosign 1's label) that bareboat opens.

use std::path::Path;
use std::process::{Command, Output};

use bareboat_testkit::verifiers::python;

/// Opens `key` with `password` and prints the public key as PEM.
const OPEN: &str = r#"
import base64, hashlib, json, sys
import nacl.secret
from cryptography.hazmat.primitives import serialization
text = open(sys.argv[1]).read().strip().splitlines()
assert text[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", text[0]
envelope = json.loads(base64.b64decode("".join(text[1:-1])))
kdf, cipher = envelope["kdf"], envelope["cipher"]
assert kdf["name"] == "scrypt" and cipher["name"] == "nacl/secretbox"
assert kdf["params"] == {"N": 32768, "r": 8, "p": 1}, kdf["params"]
salt, nonce = base64.b64decode(kdf["salt"]), base64.b64decode(cipher["nonce"])
assert len(salt) == 32 and len(nonce) == 24
key = hashlib.scrypt(sys.argv[2].encode(), salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(envelope["ciphertext"]), nonce)
private = serialization.load_der_private_key(der, password=None)
public = private.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
sys.stdout.write(public.decode())
"#;

/// Makes a P-256 key as cosign 1 stored it, encrypted under `password`: writes `NAME.key`
/// and `NAME.pub`.
const MAKE: &str = r#"
import base64, hashlib, json, os, sys
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
private = ec.generate_private_key(ec.SECP256R1())
der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
salt, nonce = os.urandom(32), os.urandom(24)
key = hashlib.scrypt(sys.argv[2].encode(), salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
sealed = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
envelope = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
                    "salt": base64.b64encode(salt).decode()},
            "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
            "ciphertext": base64.b64encode(sealed).decode()}
body = base64.encodebytes(json.dumps(envelope).encode()).decode()
open(sys.argv[1] + ".key", "w").write(
    "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n" + body + "-----END ENCRYPTED COSIGN PRIVATE KEY-----\n")
open(sys.argv[1] + ".pub", "wb").write(private.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;

fn py(dir: &Path, script: &str, args: &[&str]) -> Output {
    let out = Command::new(python())
        .current_dir(dir)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn key(dir: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareboat"));
    cmd.current_dir(dir)
        .arg("key")
        .args(args)
        .env_remove("BAREBOAT_KEY_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .stdin(std::process::Stdio::null());
    if let Some(p) = password {
        cmd.env("BAREBOAT_KEY_PASSWORD", p);
    }
    cmd.output().unwrap()
}

#[track_caller]
fn refused(out: &Output, expected: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(expected), "{err}");
}

#[test]
fn keys_are_cosigns_both_ways() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = key(
        d,
        Some("correct horse"),
        &["generate", "--output-key-prefix", "release"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(d.join("release.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Python opens bareboat's key, and its public half is the .pub.
    let opened = py(d, OPEN, &["release.key", "correct horse"]);
    let public = std::fs::read_to_string(d.join("release.pub")).unwrap();
    assert_eq!(String::from_utf8(opened.stdout).unwrap(), public);
    // bareboat opens Python's, under cosign 1's label, from a file or the environment.
    py(d, MAKE, &["python", "battery staple"]);
    let expected = std::fs::read_to_string(d.join("python.pub")).unwrap();
    let out = key(
        d,
        Some("battery staple"),
        &["public", "--key", "python.key"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(d)
        .args(["key", "public", "--key", "env://SIGNING_KEY"])
        .env(
            "SIGNING_KEY",
            std::fs::read_to_string(d.join("python.key")).unwrap(),
        )
        .env("COSIGN_PASSWORD", "battery staple")
        .env_remove("BAREBOAT_KEY_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // Refusals.
    refused(
        &key(d, Some("wrong"), &["public", "--key", "python.key"]),
        "python.key: the password does not open this key",
    );
    refused(
        &key(d, Some("x"), &["public", "--key", "python.pub"]),
        "python.pub: not an encrypted cosign private key: its PEM label is \"PUBLIC KEY\"",
    );
    std::fs::write(d.join("notes.txt"), "hello").unwrap();
    refused(
        &key(d, Some("x"), &["public", "--key", "notes.txt"]),
        "notes.txt: not an encrypted cosign private key: no PEM block",
    );
    refused(
        &key(
            d,
            Some("x"),
            &["generate", "--output-key-prefix", "release"],
        ),
        "release.key exists: bareboat does not overwrite a key",
    );
    refused(
        &key(d, None, &["generate", "--output-key-prefix", "nopass"]),
        "no password for the key",
    );
    assert!(!d.join("nopass.key").exists());
}
