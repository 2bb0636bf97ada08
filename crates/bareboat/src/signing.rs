//! `bareboat sign` and `bareboat verify`: cosign-compatible signatures, attached to an image
//! wherever it is, and checked from there.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bareboat_apt::cache::Cache;
use bareboat_oci::attach::{Attachment, Outcome};
use bareboat_oci::model::Index;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::registry::RegistryOptions;
use bareboat_oci::transport::{self, Fetch};
use bareboat_sign::key::PublicKey;
use bareboat_sign::sign::{SignatureFormat, Signer};
use bareboat_sign::verify::{self, Verification};
use clap::Args;
use serde::Serialize;

use crate::args::RegistryArgs;
use crate::key;
use crate::output::print_json;

/// The exit status of `verify` when no signature is valid.
pub const NOT_VERIFIED: u8 = 6;

/// How a command signs.
#[derive(Args, Clone)]
pub struct SignOptions {
    /// The schemes to write: bundle (a Sigstore bundle as an OCI referrer, cosign 3's
    /// default), legacy (the sha256-<hex>.sig tag older verifiers read), or both
    #[arg(long, default_value = "both", value_name = "FORMAT")]
    signature_format: SignatureFormat,
    /// The repository the signatures name (their docker-reference) [default: the
    /// registry repository signed or pushed to, else none]
    #[arg(long, value_name = "REPOSITORY")]
    identity: Option<String>,
}

impl SignOptions {
    /// The signer of the private key `key` (a file, or env://VAR), naming `identity` unless
    /// the options name another.
    pub fn signer(&self, key: &str, identity: Option<String>) -> Result<Signer> {
        Ok(Signer {
            key: key::private_key(key)?,
            format: self.signature_format,
            identity: self.identity.clone().or(identity).unwrap_or_default(),
        })
    }
}

#[derive(Args)]
pub struct SignArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: String,
    /// The private key: a file, or env://VAR
    #[arg(long, value_name = "KEY")]
    key: String,
    #[command(flatten)]
    options: SignOptions,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// One signature of `sign`.
#[derive(Serialize)]
struct Attached {
    /// The manifest (or index) signed.
    subject: String,
    /// `bundle` or `legacy`.
    format: &'static str,
    /// Whether it was written, or there already.
    outcome: Outcome,
}

/// What `sign` did.
#[derive(Serialize)]
struct SignReport<'a> {
    image: &'a str,
    /// The image (or index) signed; each platform's manifest of an index is signed too.
    digest: String,
    /// The key's fingerprint.
    key: String,
    signatures: Vec<Attached>,
}

pub async fn cmd_sign(args: SignArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    let registry = args.registry.options()?;
    let signer = args.options.signer(&args.key, repository_of(&reference))?;
    // Of a registry image, only the manifest (or index) signed is fetched.
    let source = open(&args.image, &reference, &registry, cache_root).await?;
    let attachments = signer.attachments(&*source.blobs, &source.top)?;
    let sink = transport::sink(&reference, &registry)?;
    let outcomes = sink
        .attach(&attachments)
        .await
        .with_context(|| format!("signing {}", args.image))?;
    let signatures: Vec<Attached> = attachments
        .iter()
        .zip(outcomes)
        .map(|(a, outcome)| match a {
            Attachment::Referrer(r) => Attached {
                subject: r.subject.digest().to_string(),
                format: "bundle",
                outcome,
            },
            Attachment::Tagged(t) => Attached {
                subject: t.subject.to_string(),
                format: "legacy",
                outcome,
            },
        })
        .collect();
    let report = SignReport {
        image: &args.image,
        digest: source.top.digest().to_string(),
        key: signer.key.public().hint(),
        signatures,
    };
    if json {
        print_json(&report)?;
    } else {
        for s in &report.signatures {
            let done = match s.outcome {
                Outcome::Written => "signed",
                Outcome::Present => "already signed",
            };
            println!("{} {}: {done} ({})", s.format, s.subject, report.key);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The image `reference` (given as `image`), of which only what is read is fetched.
async fn open(
    image: &str,
    reference: &ImageRef,
    registry: &RegistryOptions,
    cache_root: &Path,
) -> Result<transport::Source> {
    let scratch = Cache::open(cache_root)?.root().join("tmp");
    transport::open(reference, &scratch, registry, Fetch::OnDemand)
        .await
        .with_context(|| format!("reading {image}"))
}

/// The registry repository `reference` names, which its signatures name by default.
pub fn repository_of(reference: &ImageRef) -> Option<String> {
    match reference {
        ImageRef::Docker { name, .. } => Some(format!("{}/{}", name.registry, name.repository)),
        _ => None,
    }
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: String,
    /// The public key (PEM): a file, or env://VAR
    #[arg(long, value_name = "KEY")]
    key: String,
    /// Verify one platform's image (--arch) instead of the index
    #[arg(long)]
    platform_only: bool,
    /// The platform --platform-only verifies
    #[arg(long, default_value = "amd64")]
    arch: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub async fn cmd_verify(args: VerifyArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    let registry = args.registry.options()?;
    let key = public_key(&args.key)?;
    let source = open(&args.image, &reference, &registry, cache_root).await?;
    let subject = match args.platform_only {
        true => Index::pick(&*source.blobs, &source.top, &args.arch)?,
        false => source.top.clone(),
    };
    let verification = verify::verify(&*source.blobs, &subject, &key)
        .with_context(|| format!("verifying {}", args.image))?;
    if json {
        print_json(&verification)?;
    } else {
        print_verification(&verification);
    }
    match verification.failure() {
        None => Ok(ExitCode::SUCCESS),
        Some(reason) => {
            eprintln!("error: {}: {reason}", args.image);
            Ok(ExitCode::from(NOT_VERIFIED))
        }
    }
}

fn print_verification(v: &Verification) {
    for c in v.valid() {
        println!(
            "Verified {} signature of {} ({}) with key {}",
            c.format, v.digest, c.location, v.key
        );
    }
    let invalid = v.signatures.iter().filter(|c| c.refused.is_some()).count();
    if invalid > 0 && v.failure().is_none() {
        eprintln!(
            "warning: {invalid} other signature(s) of {} are not valid for this key",
            v.digest
        );
    }
}

/// A public key (PEM), from a file or `env://VAR`.
fn public_key(key: &str) -> Result<PublicKey> {
    let (text, origin) = key::key_text(key)?;
    Ok(PublicKey::from_pem(&text, &origin)?)
}
