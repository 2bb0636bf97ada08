//! Verifying an image's signatures with a public key, in both of cosign's schemes: the
//! bundle referrers of its manifest and the layers of its legacy `.sig` image. Each
//! signature found is checked on its own, and the image passes when at least one is valid:
//! made by the key, over this manifest's digest.

use bareboat_oci::attach::{legacy_layers, legacy_tag};
use bareboat_oci::digest::Digest;
use bareboat_oci::referrer::{self, Follow};
use bareboat_oci::source::BlobSource;
use oci_spec::image::Descriptor;
use serde::Serialize;

use crate::formats::{self, BUNDLE, COSIGN_SIGN, SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
use crate::key::PublicKey;

/// A signature found, and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct Checked {
    /// `bundle` or `legacy`.
    pub format: &'static str,
    /// Where it is: the bundle's artifact digest, or the legacy tag and layer.
    pub location: String,
    /// Why it is not valid; `None` when it is.
    pub refused: Option<String>,
}

/// What verifying an image found.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// The manifest (or index) verified.
    pub digest: String,
    /// The key's fingerprint: base64 of the SHA-256 of its DER, as bundles hint at it.
    pub key: String,
    /// Every signature found, valid or not.
    pub signatures: Vec<Checked>,
}

impl Verification {
    /// The valid signatures.
    pub fn valid(&self) -> impl Iterator<Item = &Checked> {
        self.signatures.iter().filter(|c| c.refused.is_none())
    }

    /// Why the image is not verified, when no signature is valid.
    pub fn failure(&self) -> Option<String> {
        if self.valid().next().is_some() {
            return None;
        }
        if self.signatures.is_empty() {
            return Some(format!(
                "{} is not signed: it has no bundle referrer and no legacy .sig tag",
                self.digest
            ));
        }
        let reasons: Vec<String> = (self.signatures.iter())
            .map(|c| {
                let why = c.refused.as_deref().unwrap_or_default();
                format!("  {} {}: {why}", c.format, c.location)
            })
            .collect();
        Some(format!(
            "no signature of {} is valid for key {}:\n{}",
            self.digest,
            self.key,
            reasons.join("\n")
        ))
    }
}

/// Checks every signature of the manifest (or index) `subject` of `source` with `key`.
/// Only errors reading the source are errors; a signature that is invalid, or that cannot
/// be read as it is listed (a tampered layer), is reported in the verification.
pub fn verify(
    source: &dyn BlobSource,
    subject: &Descriptor,
    key: &PublicKey,
) -> Result<Verification, bareboat_oci::Error> {
    let digest = subject.digest().to_string();
    let found = referrer::of_image(source, subject, Follow::Known)?;
    let mut signatures = Vec::new();
    let bundles = (found.followed.iter())
        .filter(|r| r.subject == digest)
        .filter(|r| {
            r.artifact
                .artifact_type()
                .as_ref()
                .is_some_and(|t| t.to_string() == BUNDLE)
        });
    for r in bundles {
        let refused = match referrer::content(source, &r.artifact) {
            Ok(bundle) => check_bundle(&bundle, key, &digest).err(),
            Err(e) => Some(format!("it cannot be read: {e}")),
        };
        signatures.push(Checked {
            format: "bundle",
            location: r.artifact.digest().to_string(),
            refused,
        });
    }
    let tag = legacy_tag(&Digest::named(&digest)?, "sig");
    for t in found
        .tagged
        .iter()
        .filter(|t| t.subject == digest && t.tag == tag)
    {
        match legacy_layers(source, &t.image) {
            Ok(layers) => {
                for (i, layer) in layers.iter().enumerate() {
                    let signature = layer.annotations.get(SIGNATURE_ANNOTATION);
                    let refused = match signature {
                        _ if layer.media_type != SIMPLE_SIGNING => {
                            Some(format!("its media type is {}", layer.media_type))
                        }
                        None => Some(format!("it has no {SIGNATURE_ANNOTATION} annotation")),
                        Some(s) => check_legacy(&layer.content, s, key, &digest).err(),
                    };
                    signatures.push(Checked {
                        format: "legacy",
                        location: format!("{tag} layer {}", i + 1),
                        refused,
                    });
                }
            }
            Err(e) => signatures.push(Checked {
                format: "legacy",
                location: tag.clone(),
                refused: Some(format!("it cannot be read: {e}")),
            }),
        }
    }
    Ok(Verification {
        digest,
        key: key.hint(),
        signatures,
    })
}

/// Checks a bundle: the key's signature over its statement, cosign's signing predicate,
/// and `digest` as the statement's subject.
fn check_bundle(bundle: &[u8], key: &PublicKey, digest: &str) -> Result<(), String> {
    let signed = formats::bundle_subject(bundle, key)?;
    if signed.predicate_type != COSIGN_SIGN {
        return Err(format!(
            "its statement is a {}, not a signature ({COSIGN_SIGN})",
            signed.predicate_type
        ));
    }
    if signed.digest != digest {
        return Err(format!(
            "its statement's subject is {}, not this image: a signature of another image",
            signed.digest
        ));
    }
    Ok(())
}

/// Checks a legacy signature: the key's over the payload's exact bytes, and `digest` as
/// the payload's image.
fn check_legacy(
    payload: &[u8],
    signature: &str,
    key: &PublicKey,
    digest: &str,
) -> Result<(), String> {
    if !formats::verify(key, payload, signature) {
        return Err("the signature is not the key's over its payload".into());
    }
    match formats::signed_digest(payload) {
        Some(signed) if signed == digest => Ok(()),
        Some(signed) => Err(format!(
            "its payload names {signed}, not this image: a signature of another image"
        )),
        None => Err("its payload is not a cosign container image signature".into()),
    }
}
