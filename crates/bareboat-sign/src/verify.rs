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

/// Checks every signature of the manifest (or index) `subject` of `source` with `key`: its
/// own, not those of the manifests an index lists. A signature that is invalid, or that
/// cannot be read as it is listed (a tampered layer, a referrer of another image), is
/// reported in the verification; only a listing past bareboat's bounds, or a source that
/// cannot be read, is an error.
pub fn verify(
    source: &dyn BlobSource,
    subject: &Descriptor,
    key: &PublicKey,
) -> Result<Verification, bareboat_oci::Error> {
    let digest = subject.digest().to_string();
    let mut signatures = bundles(source, subject, key)?;
    signatures.extend(legacy(source, &digest, key)?);
    Ok(Verification {
        digest,
        key: key.hint(),
        signatures,
    })
}

/// The bundle referrers of `subject`, each checked.
fn bundles(
    source: &dyn BlobSource,
    subject: &Descriptor,
    key: &PublicKey,
) -> Result<Vec<Checked>, bareboat_oci::Error> {
    let digest = subject.digest().to_string();
    let found = match referrer::of_manifest(source, subject, Follow::Only(BUNDLE)) {
        Ok(found) => found,
        Err(e) if is_bound(&e) => return Err(e),
        Err(e) => {
            return Ok(vec![Checked {
                format: "bundle",
                location: "its referrers".into(),
                refused: Some(format!("they cannot be read: {e}")),
            }]);
        }
    };
    Ok(found
        .followed
        .iter()
        .map(|r| Checked {
            format: "bundle",
            location: r.artifact.digest().to_string(),
            refused: match referrer::content(source, &r.artifact) {
                Ok(bundle) => check_bundle(&bundle, key, &digest).err(),
                Err(e) => Some(format!("it cannot be read: {e}")),
            },
        })
        .collect())
}

/// The layers of the legacy image tagged `sha256-<hex>.sig` for `digest`, each checked.
fn legacy(
    source: &dyn BlobSource,
    digest: &str,
    key: &PublicKey,
) -> Result<Vec<Checked>, bareboat_oci::Error> {
    let tag = legacy_tag(&Digest::named(digest)?, "sig");
    let Some(image) = source.tagged(&tag)? else {
        return Ok(Vec::new());
    };
    let layers = match legacy_layers(source, &image) {
        Ok(layers) => layers,
        Err(e) => {
            return Ok(vec![Checked {
                format: "legacy",
                location: tag,
                refused: Some(format!("it cannot be read: {e}")),
            }]);
        }
    };
    Ok(layers
        .iter()
        .enumerate()
        .map(|(i, layer)| Checked {
            format: "legacy",
            location: format!("{tag} layer {}", i + 1),
            refused: match layer.annotations.get(SIGNATURE_ANNOTATION) {
                _ if layer.media_type != SIMPLE_SIGNING => {
                    Some(format!("its media type is {}", layer.media_type))
                }
                None => Some(format!("it has no {SIGNATURE_ANNOTATION} annotation")),
                Some(s) => check_legacy(&layer.content, s, key, digest).err(),
            },
        })
        .collect())
}

/// Whether `e` is a referrer bound refusing a listing: a verdict on the source, not on a
/// signature.
fn is_bound(e: &bareboat_oci::Error) -> bool {
    matches!(
        e,
        bareboat_oci::Error::TooManyReferrers { .. }
            | bareboat_oci::Error::ReferrersTooLarge { .. }
    )
}

/// Checks a bundle: the key's signature over its statement, cosign's signing predicate,
/// and `digest` as the statement's subject.
fn check_bundle(bundle: &[u8], key: &PublicKey, digest: &str) -> Result<(), String> {
    let signed = formats::bundle_statement(bundle, key)?;
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
