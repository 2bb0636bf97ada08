//! Verifying an image's signatures or attestations with a public key, in both of cosign's
//! schemes: the bundle referrers of its manifest, and the layers of its legacy `.sig` (or
//! `.att`) image. Each one found is checked on its own, and the image passes when at least
//! one is valid: made by the key, about this manifest's digest, of the kind asked for.

use bareboat_oci::attach::{LegacyLayer, legacy_layers, legacy_tag};
use bareboat_oci::digest::Digest;
use bareboat_oci::referrer::{self, Follow};
use bareboat_oci::source::BlobSource;
use oci_spec::image::Descriptor;
use serde::Serialize;
use serde_json::Value;

use crate::formats::{
    self, BUNDLE, COSIGN_SIGN, DSSE_ENVELOPE, Envelope, PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING, Signed,
};
use crate::key::PublicKey;
use crate::sign::BUNDLE_PREDICATE_TYPE;

/// What is looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Signatures: cosign's signing statement in a bundle, or a legacy `.sig` layer.
    Signature,
    /// Attestations of this predicate type: in a bundle, or a legacy `.att` layer.
    Attestation(String),
}

impl Wanted {
    /// The predicate type of the statements looked for.
    fn predicate_type(&self) -> &str {
        match self {
            Wanted::Signature => COSIGN_SIGN,
            Wanted::Attestation(t) => t,
        }
    }

    /// The suffix of the legacy tag they are kept under.
    fn suffix(&self) -> &'static str {
        match self {
            Wanted::Signature => "sig",
            Wanted::Attestation(_) => "att",
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Wanted::Signature => "signature",
            Wanted::Attestation(_) => "attestation",
        }
    }
}

/// A signature or attestation found, and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct Checked {
    /// `bundle` or `legacy`.
    pub format: &'static str,
    /// Where it is: the bundle's artifact digest, or the legacy tag and layer.
    pub location: String,
    /// Why it is not valid; `None` when it is.
    pub refused: Option<String>,
    /// The statement it signs, when it is valid.
    #[serde(skip)]
    pub statement: Option<Value>,
}

impl Checked {
    /// What a check of a statement came to.
    fn of(format: &'static str, location: String, checked: Result<Value, String>) -> Checked {
        let (statement, refused) = match checked {
            Ok(statement) => (Some(statement), None),
            Err(why) => (None, Some(why)),
        };
        Checked {
            format,
            location,
            refused,
            statement,
        }
    }
}

/// What verifying an image found.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// The manifest (or index) verified.
    pub digest: String,
    /// The key's fingerprint: base64 of the SHA-256 of its DER, as bundles hint at it.
    pub key: String,
    /// The predicate type looked for (cosign's signing predicate for signatures).
    pub predicate_type: String,
    /// Every one found, valid or not.
    pub signatures: Vec<Checked>,
    #[serde(skip)]
    wanted: Wanted,
}

impl Verification {
    /// The valid ones.
    pub fn valid(&self) -> impl Iterator<Item = &Checked> {
        self.signatures.iter().filter(|c| c.refused.is_none())
    }

    /// Why the image is not verified, when none is valid.
    pub fn failure(&self) -> Option<String> {
        if self.valid().next().is_some() {
            return None;
        }
        let what = self.wanted.what();
        if self.signatures.is_empty() {
            return Some(match &self.wanted {
                Wanted::Signature => format!(
                    "{} is not signed: it has no bundle referrer and no legacy .sig tag",
                    self.digest
                ),
                Wanted::Attestation(t) => format!(
                    "{} has no {t} attestation: no bundle referrer and no legacy .att layer of that predicate type",
                    self.digest
                ),
            });
        }
        let reasons: Vec<String> = (self.signatures.iter())
            .map(|c| {
                let why = c.refused.as_deref().unwrap_or_default();
                format!("  {} {}: {why}", c.format, c.location)
            })
            .collect();
        Some(format!(
            "no {what} of {} is valid for key {}:\n{}",
            self.digest,
            self.key,
            reasons.join("\n")
        ))
    }
}

/// Checks every signature (or attestation) of the manifest (or index) `subject` of
/// `source` with `key`: its own, not those of the manifests an index lists. One that is
/// invalid, or that cannot be read as it is listed (a tampered layer, a referrer of another
/// image), is reported in the verification; only a listing past bareboat's bounds, or a
/// source that cannot be read, is an error.
pub fn verify(
    source: &dyn BlobSource,
    subject: &Descriptor,
    key: &PublicKey,
    wanted: &Wanted,
) -> Result<Verification, bareboat_oci::Error> {
    Ok(Verification {
        digest: subject.digest().to_string(),
        key: key.hint(),
        predicate_type: wanted.predicate_type().to_string(),
        signatures: found(source, subject, Some(key), wanted)?,
        wanted: wanted.clone(),
    })
}

/// The statements of the attestations of `subject` of the type wanted, in both schemes,
/// with no key to check their signatures by: each about this manifest's digest, but
/// vouched for by nobody. For a reader that says so, such as a rebuild without `--key`.
pub fn unverified(
    source: &dyn BlobSource,
    subject: &Descriptor,
    wanted: &Wanted,
) -> Result<Vec<Value>, bareboat_oci::Error> {
    let found = found(source, subject, None, wanted)?;
    Ok(found.into_iter().filter_map(|c| c.statement).collect())
}

/// Every signature or attestation of `subject` of the kind wanted, checked with `key`, or
/// only read without one.
fn found(
    source: &dyn BlobSource,
    subject: &Descriptor,
    key: Option<&PublicKey>,
    wanted: &Wanted,
) -> Result<Vec<Checked>, bareboat_oci::Error> {
    let mut checked = bundles(source, subject, key, wanted)?;
    checked.extend(legacy(source, subject.digest().as_ref(), key, wanted)?);
    Ok(checked)
}

/// The bundle referrers of `subject` of the predicate type wanted, each checked. A bundle
/// listed with another predicate type is passed over; one listed with none is checked, and
/// passed over once its statement shows another.
fn bundles(
    source: &dyn BlobSource,
    subject: &Descriptor,
    key: Option<&PublicKey>,
    wanted: &Wanted,
) -> Result<Vec<Checked>, bareboat_oci::Error> {
    let digest = subject.digest().to_string();
    let found = match referrer::of_manifest(source, subject, Follow::Only(BUNDLE)) {
        Ok(found) => found,
        Err(e) if is_bound(&e) => return Err(e),
        Err(e) => {
            return Ok(vec![Checked::of(
                "bundle",
                "its referrers".into(),
                Err(format!("they cannot be read: {e}")),
            )]);
        }
    };
    let wanted_type = wanted.predicate_type();
    let mut out = Vec::new();
    for r in &found.followed {
        let listed = (r.artifact.annotations().as_ref()).and_then(|a| a.get(BUNDLE_PREDICATE_TYPE));
        if listed.is_some_and(|t| t != wanted_type) {
            continue;
        }
        let checked = match referrer::content(source, &r.artifact) {
            Ok(bundle) => formats::bundle_envelope(&bundle).and_then(|e| statement(&e, key)),
            Err(e) => Err(format!("it cannot be read: {e}")),
        };
        if let Ok(signed) = &checked
            && signed.predicate_type != wanted_type
        {
            continue;
        }
        let location = r.artifact.digest().to_string();
        out.push(Checked::of("bundle", location, about(checked, &digest)));
    }
    Ok(out)
}

/// The layers of the legacy image of `digest` (`.sig` or `.att`) of the kind wanted, each
/// checked.
fn legacy(
    source: &dyn BlobSource,
    digest: &str,
    key: Option<&PublicKey>,
    wanted: &Wanted,
) -> Result<Vec<Checked>, bareboat_oci::Error> {
    let tag = legacy_tag(&Digest::named(digest)?, wanted.suffix());
    let Some(image) = source.tagged(&tag)? else {
        return Ok(Vec::new());
    };
    let layers = match legacy_layers(source, &image) {
        Ok(layers) => layers,
        Err(e) => {
            let refused = Err(format!("it cannot be read: {e}"));
            return Ok(vec![Checked::of("legacy", tag, refused)]);
        }
    };
    let mut out = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let checked = match (wanted, key) {
            (Wanted::Signature, Some(key)) => legacy_signature(layer, key, digest),
            (Wanted::Signature, None) => Err("no key to check it with".into()),
            (Wanted::Attestation(t), _) => {
                let listed = layer.annotations.get(PREDICATE_TYPE_ANNOTATION);
                if listed.is_some_and(|l| l != t) {
                    continue;
                }
                match legacy_attestation(layer, key) {
                    Ok(signed) if signed.predicate_type != *t => continue,
                    checked => about(checked, digest),
                }
            }
        };
        let location = format!("{tag} layer {}", i + 1);
        out.push(Checked::of("legacy", location, checked));
    }
    Ok(out)
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

/// The statement of `checked` when it is about `digest`.
fn about(checked: Result<Signed, String>, digest: &str) -> Result<Value, String> {
    let signed = checked?;
    if signed.digest != digest {
        return Err(format!(
            "its statement's subject is {}, not this image: a statement about another image",
            signed.digest
        ));
    }
    Ok(signed.statement)
}

/// Checks a legacy signature layer: the key's signature, in its annotation, over the
/// payload's exact bytes, and `digest` as the payload's image.
fn legacy_signature(layer: &LegacyLayer, key: &PublicKey, digest: &str) -> Result<Value, String> {
    if layer.media_type != SIMPLE_SIGNING {
        return Err(format!("its media type is {}", layer.media_type));
    }
    let signature = (layer.annotations.get(SIGNATURE_ANNOTATION))
        .ok_or_else(|| format!("it has no {SIGNATURE_ANNOTATION} annotation"))?;
    if !formats::verify(key, &layer.content, signature) {
        return Err("the signature is not the key's over its payload".into());
    }
    match formats::signed_digest(&layer.content) {
        Some(signed) if signed == digest => {
            serde_json::from_slice(&layer.content).map_err(|e| e.to_string())
        }
        Some(signed) => Err(format!(
            "its payload names {signed}, not this image: a signature of another image"
        )),
        None => Err("its payload is not a cosign container image signature".into()),
    }
}

/// Checks a legacy attestation layer: a DSSE envelope the key signed (read unchecked with
/// no key).
fn legacy_attestation(layer: &LegacyLayer, key: Option<&PublicKey>) -> Result<Signed, String> {
    if layer.media_type != DSSE_ENVELOPE {
        return Err(format!("its media type is {}", layer.media_type));
    }
    let envelope: Envelope = serde_json::from_slice(&layer.content)
        .map_err(|e| format!("it is not a DSSE envelope: {e}"))?;
    statement(&envelope, key)
}

/// The statement of `envelope`, verified with `key`, or read unchecked with none.
fn statement(envelope: &Envelope, key: Option<&PublicKey>) -> Result<Signed, String> {
    match key {
        Some(key) => formats::envelope_statement(envelope, key),
        None => formats::unverified_statement(envelope),
    }
}
