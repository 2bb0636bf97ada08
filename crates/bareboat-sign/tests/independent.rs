//! bareboat's signatures, judged by other implementations (see
//! `bareboat_testkit::verifiers`): Python's `cryptography` checks the legacy signature
//! over the exact payload bytes and the DSSE signature over the PAE it builds itself, and
//! sigstore-js's `@sigstore/verify` 3.x verifies the bundle with the public key as its
//! trust material (and refuses it tampered with).

use bareboat_sign::formats::{self, COSIGN_SIGN, Envelope, IN_TOTO};
use bareboat_sign::key::KeyPair;
use bareboat_testkit::verifiers::{signature_valid, sigstore_verify, write_pae};
use base64::Engine as _;

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
    assert!(signature_valid(d, "pub.pem", "payload.json", "payload.sig"));
    std::fs::write(
        d.join("payload.json"),
        formats::simple_signing("registry.example/app", &DIGEST.replace('c', "d")),
    )
    .unwrap();
    assert!(!signature_valid(
        d,
        "pub.pem",
        "payload.json",
        "payload.sig"
    ));

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
    write_pae(d, "envelope.json", "pae", "pae.sig");
    assert!(signature_valid(d, "pub.pem", "pae", "pae.sig"));

    // The bundle, by sigstore-js, which reads the statement's subject back.
    let bundle = formats::bundle(&envelope, &key.public().hint());
    std::fs::write(d.join("bundle.json"), &bundle).unwrap();
    assert_eq!(
        sigstore_verify(d, "bundle.json", "pub.pem").unwrap(),
        DIGEST.trim_start_matches("sha256:")
    );
    // Tampered with: another subject under the same signature.
    let mut forged: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let other = formats::statement(
        "registry.example/app",
        &DIGEST.replace('c', "d"),
        COSIGN_SIGN,
        serde_json::json!({}),
    );
    forged["dsseEnvelope"]["payload"] = base64::engine::general_purpose::STANDARD
        .encode(other)
        .into();
    std::fs::write(d.join("forged.json"), forged.to_string()).unwrap();
    let err = sigstore_verify(d, "forged.json", "pub.pem").unwrap_err();
    assert!(
        err.contains("VerificationError: signature verification failed"),
        "{err}"
    );
    // And another key's.
    let stranger = KeyPair::generate().unwrap();
    std::fs::write(d.join("stranger.pem"), stranger.public_pem()).unwrap();
    let err = sigstore_verify(d, "bundle.json", "stranger.pem").unwrap_err();
    assert!(err.contains("no key for the hint"), "{err}");
}
