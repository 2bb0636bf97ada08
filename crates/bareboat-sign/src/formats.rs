//! The signed documents cosign writes and reads, as pure functions: the simple-signing
//! payload of its legacy scheme, and the DSSE envelope over an in-toto Statement that its
//! Sigstore bundles (v0.3) carry. Signatures are ECDSA P-256 over SHA-256, DER-encoded,
//! deterministic (RFC 6979): signing the same thing twice gives the same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::key::{KeyPair, PublicKey};

/// The media type of a legacy signature layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation of a legacy signature layer that holds its base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a Sigstore bundle v0.3.
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// A DSSE envelope's payload type for an in-toto Statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The media type of a legacy attestation layer: a DSSE envelope.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation of a legacy attestation layer that gives its statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// The predicate type of SLSA provenance v1.
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// The predicate type of an SPDX document.
pub const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";
/// The predicate type of a CycloneDX BOM.
pub const CYCLONEDX_BOM: &str = "https://cyclonedx.org/bom";
/// The predicate type of an OpenVEX document, where `trivy --vex oci` looks for one.
pub const OPENVEX: &str = "https://openvex.dev/ns";

/// The predicate type cosign gives a custom attestation.
pub const COSIGN_CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";

/// The kinds of attestation, as `--type` names them (cosign's names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttestationType {
    /// SLSA provenance v1.
    SlsaProvenance1,
    /// An SPDX SBOM.
    Spdx,
    /// A CycloneDX SBOM.
    Cyclonedx,
    /// An OpenVEX document.
    OpenVex,
    /// Any other predicate type, by its URI.
    Custom(String),
}

impl AttestationType {
    /// The predicate type its statements have.
    pub fn predicate_type(&self) -> &str {
        match self {
            AttestationType::SlsaProvenance1 => SLSA_PROVENANCE,
            AttestationType::Spdx => SPDX_DOCUMENT,
            AttestationType::Cyclonedx => CYCLONEDX_BOM,
            AttestationType::OpenVex => OPENVEX,
            AttestationType::Custom(uri) => uri,
        }
    }

    /// The type a predicate type is, by cosign's name where it has one.
    pub fn of(predicate_type: &str) -> AttestationType {
        match predicate_type {
            SLSA_PROVENANCE => AttestationType::SlsaProvenance1,
            SPDX_DOCUMENT => AttestationType::Spdx,
            CYCLONEDX_BOM => AttestationType::Cyclonedx,
            OPENVEX => AttestationType::OpenVex,
            other => AttestationType::Custom(other.to_string()),
        }
    }
}

impl std::str::FromStr for AttestationType {
    type Err = String;
    /// `slsaprovenance1`, `spdx`, `cyclonedx`, `openvex`, `custom` (cosign's custom predicate type), or
    /// a predicate type's URI.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "slsaprovenance1" => Ok(AttestationType::SlsaProvenance1),
            "spdx" | "spdxjson" => Ok(AttestationType::Spdx),
            "cyclonedx" => Ok(AttestationType::Cyclonedx),
            "openvex" => Ok(AttestationType::OpenVex),
            "custom" => Ok(AttestationType::Custom(COSIGN_CUSTOM.into())),
            uri if uri.starts_with("https://") || uri.starts_with("http://") => {
                Ok(AttestationType::of(uri))
            }
            _ => Err(format!(
                "unknown attestation type {s:?}: use slsaprovenance1, spdx, cyclonedx, openvex, custom, or a predicate type's URI"
            )),
        }
    }
}

impl std::fmt::Display for AttestationType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttestationType::SlsaProvenance1 => "slsaprovenance1",
            AttestationType::Spdx => "spdx",
            AttestationType::Cyclonedx => "cyclonedx",
            AttestationType::OpenVex => "openvex",
            AttestationType::Custom(uri) => uri,
        })
    }
}

/// The `_type` of an in-toto v1 Statement.
pub const STATEMENT: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of cosign's signature statement.
pub const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";

/// cosign's simple-signing payload for the image `digest` of `repository`.
pub fn simple_signing(repository: &str, digest: &str) -> Vec<u8> {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&payload).expect("a payload serialises")
}

/// The image digest a simple-signing payload names, if it is one.
pub fn signed_digest(payload: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    if v["critical"]["type"] != "cosign container image signature" {
        return None;
    }
    v["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .map(String::from)
}

/// `bytes` signed with `key`: the DER signature, base64, as cosign stores it.
pub fn sign(key: &KeyPair, bytes: &[u8]) -> String {
    let signature: DerSignature = key.signing_key().sign(bytes);
    BASE64.encode(signature.as_bytes())
}

/// Whether `signature` (base64 DER, as cosign stores it) is `key`'s over `bytes`.
pub fn verify(key: &PublicKey, bytes: &[u8], signature: &str) -> bool {
    let Ok(der) = BASE64.decode(signature.trim()) else {
        return false;
    };
    let Ok(signature) = Signature::from_der(&der) else {
        return false;
    };
    key.verifying_key().verify(bytes, &signature).is_ok()
}

/// DSSE's pre-authentication encoding: what a DSSE signature is over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An in-toto v1 Statement about the image `digest` named `name`.
pub fn statement(name: &str, digest: &str, predicate_type: &str, predicate: Value) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let statement = json!({
        "_type": STATEMENT,
        "subject": [{"name": name, "digest": {"sha256": hex}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec(&statement).expect("a statement serialises")
}

/// A DSSE envelope, with the field names of its JSON (and of a bundle's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 of the payload.
    pub payload: String,
    /// What the payload is.
    pub payload_type: String,
    /// Its signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of a DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Base64 of the DER signature over the PAE.
    pub sig: String,
    /// Which key made it; cosign leaves it empty.
    #[serde(default)]
    pub keyid: String,
}

impl Envelope {
    /// `payload` of `payload_type`, signed with `key` over its PAE.
    pub fn sign(key: &KeyPair, payload_type: &str, payload: &[u8]) -> Envelope {
        Envelope {
            payload: BASE64.encode(payload),
            payload_type: payload_type.to_string(),
            signatures: vec![EnvelopeSignature {
                sig: sign(key, &pae(payload_type, payload)),
                keyid: String::new(),
            }],
        }
    }

    /// The payload, if one of the signatures is `key`'s over its PAE.
    pub fn verified(&self, key: &PublicKey) -> Option<Vec<u8>> {
        let payload = BASE64.decode(&self.payload).ok()?;
        let signed = pae(&self.payload_type, &payload);
        self.signatures
            .iter()
            .any(|s| verify(key, &signed, &s.sig))
            .then_some(payload)
    }
}

/// A Sigstore bundle v0.3 holding `envelope`, verified by the public key `hint` names: a
/// keyed signature, with no transparency-log entry.
pub fn bundle(envelope: &Envelope, hint: &str) -> Vec<u8> {
    let bundle = json!({
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    });
    serde_json::to_vec(&bundle).expect("a bundle serialises")
}

/// What a verified envelope's statement says.
#[derive(Clone, Debug, PartialEq)]
pub struct Signed {
    /// The digest of its one subject.
    pub digest: String,
    /// Its predicate type.
    pub predicate_type: String,
    /// The whole statement.
    pub statement: Value,
}

/// The DSSE envelope a Sigstore bundle v0.3 holds.
pub fn bundle_envelope(bundle: &[u8]) -> Result<Envelope, String> {
    let v: Value = serde_json::from_slice(bundle).map_err(|e| format!("not JSON: {e}"))?;
    if v["mediaType"] != BUNDLE {
        return Err(format!(
            "its media type is {}, not {BUNDLE}",
            v["mediaType"]
        ));
    }
    serde_json::from_value(v["dsseEnvelope"].clone()).map_err(|e| format!("its DSSE envelope: {e}"))
}

/// What `envelope` signs with `key`: an in-toto v1 Statement, the key's signature over its
/// PAE, with one subject, whose digest and predicate type it gives.
pub fn envelope_statement(envelope: &Envelope, key: &PublicKey) -> Result<Signed, String> {
    let payload = envelope
        .verified(key)
        .ok_or("no signature of its envelope is the key's")?;
    statement_of(envelope, &payload)
}

/// What `envelope` says, its signatures not checked: for a reader with no key, who must say
/// so.
pub fn unverified_statement(envelope: &Envelope) -> Result<Signed, String> {
    let payload = BASE64
        .decode(&envelope.payload)
        .map_err(|e| format!("its payload is not base64: {e}"))?;
    statement_of(envelope, &payload)
}

/// The statement `payload` of `envelope` holds: an in-toto v1 Statement with one subject.
fn statement_of(envelope: &Envelope, payload: &[u8]) -> Result<Signed, String> {
    if envelope.payload_type != IN_TOTO {
        return Err(format!("its payload type is {}", envelope.payload_type));
    }
    let statement: Value =
        serde_json::from_slice(payload).map_err(|e| format!("its statement: {e}"))?;
    if statement["_type"] != STATEMENT {
        return Err(format!(
            "its payload's _type is {}, not {STATEMENT}",
            statement["_type"]
        ));
    }
    let digest = match statement["subject"].as_array().map(Vec::as_slice) {
        Some([subject]) => subject["digest"]["sha256"]
            .as_str()
            .map(|hex| format!("sha256:{hex}"))
            .ok_or("its subject has no sha256 digest")?,
        _ => return Err("its statement does not have exactly one subject".into()),
    };
    let predicate_type = statement["predicateType"]
        .as_str()
        .ok_or("its statement has no predicateType")?
        .to_string();
    Ok(Signed {
        digest,
        predicate_type,
        statement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4c1c50d0ffc614f90b93b07d778028dc765548e823f676fb027f61d281ac380d";

    #[test]
    fn legacy_payloads_are_signed_deterministically_and_tampering_shows() {
        let key = KeyPair::generate().unwrap();
        let payload = simple_signing("registry.example/app", DIGEST);
        assert_eq!(signed_digest(&payload).as_deref(), Some(DIGEST));
        let signature = sign(&key, &payload);
        assert_eq!(sign(&key, &payload), signature, "RFC 6979");
        assert!(verify(&key.public(), &payload, &signature));
        let other = simple_signing("registry.example/app", &DIGEST.replace('4', "5"));
        assert!(!verify(&key.public(), &other, &signature));
        let stranger = KeyPair::generate().unwrap();
        assert!(!verify(&stranger.public(), &payload, &signature));
        assert!(!verify(&key.public(), &payload, "not base64!"));
    }

    #[test]
    fn a_bundle_names_its_subject_only_under_the_right_key() {
        let bundle_statement =
            |bundle: &[u8], key: &PublicKey| envelope_statement(&bundle_envelope(bundle)?, key);
        let key = KeyPair::generate().unwrap();
        let statement = statement("registry.example/app", DIGEST, COSIGN_SIGN, json!({}));
        let envelope = Envelope::sign(&key, IN_TOTO, &statement);
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
        let bundle = bundle(&envelope, &key.public().hint());
        let signed = bundle_statement(&bundle, &key.public()).unwrap();
        assert_eq!(signed.digest, DIGEST);
        assert_eq!(signed.predicate_type, COSIGN_SIGN);
        let stranger = KeyPair::generate().unwrap();
        let e = bundle_statement(&bundle, &stranger.public()).unwrap_err();
        assert!(e.contains("no signature"), "{e}");
        let mut forged = envelope.clone();
        forged.payload = BASE64.encode(super::statement(
            "x",
            &DIGEST.replace('4', "6"),
            COSIGN_SIGN,
            json!({}),
        ));
        let forged = super::bundle(&forged, &key.public().hint());
        let err = format!(
            "{:#}",
            bundle_statement(&forged, &key.public()).unwrap_err()
        );
        assert!(
            err.contains("no signature of its envelope is the key's"),
            "{err}"
        );
    }
}
