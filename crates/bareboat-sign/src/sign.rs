//! Signing and attesting an image: what is attached to it, in either or both of cosign's
//! schemes. A signature goes on each manifest the image consists of (an index and each
//! platform's manifest); an attestation on the manifest it is about. Both are DSSE
//! envelopes over in-toto Statements in the bundle scheme; the legacy scheme keeps a
//! signature as a simple-signing payload under `sha256-<hex>.sig` and an attestation as
//! its envelope under `sha256-<hex>.att`. Signatures are deterministic and carry no time,
//! so signing the same image with the same key again makes the same attachments, which
//! every sink finds already there.

use std::collections::BTreeMap;

use bareboat_oci::attach::{Artifact, Attachment, LegacyLayer, TaggedLayer};
use bareboat_oci::digest::Digest;
use bareboat_oci::referrer;
use bareboat_oci::source::BlobSource;
use oci_spec::image::Descriptor;
use serde_json::{Value, json};

use crate::formats::{
    self, BUNDLE, COSIGN_SIGN, DSSE_ENVELOPE, Envelope, IN_TOTO, PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
};
use crate::key::KeyPair;

/// The annotation of a bundle referrer that says what the bundle holds.
pub const BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
/// The annotation of a bundle referrer that gives its statement's predicate type.
pub const BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";

/// Which of cosign's schemes signatures are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureFormat {
    /// A Sigstore bundle v0.3 as an OCI 1.1 referrer: cosign 3's default.
    Bundle,
    /// A simple-signing layer under the tag `sha256-<hex>.sig`: what older verifiers read.
    Legacy,
    /// Both.
    #[default]
    Both,
}

impl std::str::FromStr for SignatureFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bundle" => Ok(SignatureFormat::Bundle),
            "legacy" => Ok(SignatureFormat::Legacy),
            "both" => Ok(SignatureFormat::Both),
            _ => Err(format!(
                "unknown signature format {s:?}: use bundle, legacy or both"
            )),
        }
    }
}

/// Signs images with one key.
pub struct Signer {
    /// The key.
    pub key: KeyPair,
    /// The schemes written.
    pub format: SignatureFormat,
    /// The repository the signatures name (`critical.identity.docker-reference`, and the
    /// statement's subject name): where the image is pushed, for verifiers that check it.
    pub identity: String,
}

impl Signer {
    /// What signs the image (or index) `top` of `source`: for `top` and, for an index,
    /// each platform's manifest, a bundle and a legacy signature as the format asks. Only
    /// `top` is read, never a layer.
    pub fn attachments(
        &self,
        source: &dyn BlobSource,
        top: &Descriptor,
    ) -> Result<Vec<Attachment>, bareboat_oci::Error> {
        let mut out = Vec::new();
        for subject in referrer::subjects(source, top)? {
            let digest = Digest::named(subject.digest().as_ref())?;
            if self.format != SignatureFormat::Legacy {
                let envelope = self.envelope(&digest, COSIGN_SIGN, json!({}));
                out.push(Attachment::Referrer(Box::new(self.bundle(
                    &subject,
                    &envelope,
                    COSIGN_SIGN,
                ))));
            }
            if self.format != SignatureFormat::Bundle {
                out.push(Attachment::Tagged(self.legacy(&digest)));
            }
        }
        Ok(out)
    }

    /// What attests `predicate`, of `predicate_type`, about the manifest (or index)
    /// `subject`, in the schemes the format asks for: a bundle referrer, and its envelope as
    /// a layer of the legacy `.att` image.
    pub fn attestation(
        &self,
        subject: &Descriptor,
        predicate_type: &str,
        predicate: Value,
    ) -> Result<Vec<Attachment>, bareboat_oci::Error> {
        let digest = Digest::named(subject.digest().as_ref())?;
        let envelope = self.envelope(&digest, predicate_type, predicate);
        let mut out = Vec::new();
        if self.format != SignatureFormat::Legacy {
            out.push(Attachment::Referrer(Box::new(self.bundle(
                subject,
                &envelope,
                predicate_type,
            ))));
        }
        if self.format != SignatureFormat::Bundle {
            let content = serde_json::to_vec(&envelope).expect("an envelope serialises");
            out.push(Attachment::Tagged(TaggedLayer {
                subject: digest,
                suffix: "att",
                layer: LegacyLayer {
                    media_type: DSSE_ENVELOPE.into(),
                    content,
                    annotations: BTreeMap::from([(
                        PREDICATE_TYPE_ANNOTATION.to_string(),
                        predicate_type.to_string(),
                    )]),
                },
            }));
        }
        Ok(out)
    }

    /// A DSSE envelope over an in-toto Statement of `predicate` about `digest`.
    fn envelope(&self, digest: &Digest, predicate_type: &str, predicate: Value) -> Envelope {
        let statement = formats::statement(
            &self.identity,
            &digest.to_string(),
            predicate_type,
            predicate,
        );
        Envelope::sign(&self.key, IN_TOTO, &statement)
    }

    /// The bundle referrer of `subject` holding `envelope`, whose statement has
    /// `predicate_type`.
    fn bundle(&self, subject: &Descriptor, envelope: &Envelope, predicate_type: &str) -> Artifact {
        Artifact {
            subject: subject.clone(),
            artifact_type: BUNDLE.into(),
            content: formats::bundle(envelope, &self.key.public().hint()),
            annotations: BTreeMap::from([
                (BUNDLE_CONTENT.to_string(), "dsse-envelope".to_string()),
                (
                    BUNDLE_PREDICATE_TYPE.to_string(),
                    predicate_type.to_string(),
                ),
            ]),
        }
    }

    /// The legacy signature of `digest`: its simple-signing payload, signed in the
    /// layer's annotation.
    fn legacy(&self, digest: &Digest) -> TaggedLayer {
        let payload = formats::simple_signing(&self.identity, &digest.to_string());
        let signature = formats::sign(&self.key, &payload);
        TaggedLayer {
            subject: digest.clone(),
            suffix: "sig",
            layer: LegacyLayer {
                media_type: SIMPLE_SIGNING.into(),
                content: payload,
                annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature)]),
            },
        }
    }
}
