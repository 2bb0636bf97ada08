//! Signing an image: what is attached to it, in either or both of cosign's schemes, for
//! each manifest it consists of (an index and each platform's manifest). Signatures are
//! deterministic and carry no time, so signing the same image with the same key again
//! makes the same attachments, which every sink finds already there.

use std::collections::BTreeMap;

use bareboat_oci::attach::{Artifact, Attachment, LegacyLayer, TaggedLayer};
use bareboat_oci::digest::Digest;
use bareboat_oci::referrer;
use bareboat_oci::source::BlobSource;
use oci_spec::image::Descriptor;
use serde_json::json;

use crate::formats::{
    self, BUNDLE, COSIGN_SIGN, Envelope, IN_TOTO, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
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
                out.push(Attachment::Referrer(Box::new(
                    self.bundle(&subject, &digest),
                )));
            }
            if self.format != SignatureFormat::Bundle {
                out.push(Attachment::Tagged(self.legacy(&digest)));
            }
        }
        Ok(out)
    }

    /// The bundle referrer of `subject`: a DSSE envelope over an in-toto Statement about
    /// it, with cosign's signing predicate.
    fn bundle(&self, subject: &Descriptor, digest: &Digest) -> Artifact {
        let statement =
            formats::statement(&self.identity, &digest.to_string(), COSIGN_SIGN, json!({}));
        let envelope = Envelope::sign(&self.key, IN_TOTO, &statement);
        Artifact {
            subject: subject.clone(),
            artifact_type: BUNDLE.into(),
            content: formats::bundle(&envelope, &self.key.public().hint()),
            annotations: BTreeMap::from([
                (BUNDLE_CONTENT.to_string(), "dsse-envelope".to_string()),
                (BUNDLE_PREDICATE_TYPE.to_string(), COSIGN_SIGN.to_string()),
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
