//! `bareboat sign`, `bareboat attest` and `bareboat verify`: cosign-compatible signatures
//! and attestations, attached to an image wherever it is, and checked from there, against a
//! policy if one is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_apt::cache::Cache;
use bareboat_oci::attach::{Attachment, Outcome};
use bareboat_oci::model::Index;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::registry::RegistryOptions;
use bareboat_oci::transport::{self, Fetch};
use bareboat_sign::formats::{AttestationType, COSIGN_SIGN};
use bareboat_sign::key::PublicKey;
use bareboat_sign::policy::{Policy, PolicyCheck};
use bareboat_sign::sign::{SignatureFormat, Signer};
use bareboat_sign::verify::{self, Verification, Wanted};
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

/// What `sign` or `attest` did.
#[derive(Serialize)]
struct SignReport {
    image: String,
    /// The image (or index) signed; each platform's manifest of an index is signed too.
    digest: String,
    /// The key's fingerprint.
    key: String,
    signatures: Vec<Attached>,
}

pub async fn cmd_sign(args: SignArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let target = Target::open(&args.image, &args.registry, cache_root).await?;
    let signer = target.signer(&args.key, &args.options)?;
    // Of a registry image, only the manifest (or index) signed is fetched.
    let attachments = signer.attachments(&*target.source.blobs, &target.source.top)?;
    let report = target.attach(&signer, attachments).await?;
    print_attached(&report, json, ("signed", "already signed"))
}

#[derive(Args)]
pub struct AttestArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: String,
    /// The private key: a file, or env://VAR
    #[arg(long, value_name = "KEY")]
    key: String,
    /// What the predicate is: slsaprovenance1, spdx, cyclonedx, openvex, custom, or a predicate
    /// type's URI
    #[arg(long = "type", value_name = "TYPE")]
    kind: AttestationType,
    /// The predicate: a JSON file
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    #[command(flatten)]
    options: SignOptions,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The largest predicate `attest` reads: its envelope, base64 and all, must fit a 4 MiB
/// document.
const MAX_PREDICATE: u64 = 2 << 20;

pub async fn cmd_attest(args: AttestArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let predicate = read_predicate(&args.predicate)?;
    let target = Target::open(&args.image, &args.registry, cache_root).await?;
    let signer = target.signer(&args.key, &args.options)?;
    let top = &target.source.top;
    let attachments = signer.attestation(top, args.kind.predicate_type(), predicate)?;
    let report = target.attach(&signer, attachments).await?;
    print_attached(&report, json, ("attested", "already attested"))
}

/// The JSON predicate in `path`, at most [`MAX_PREDICATE`] bytes.
fn read_predicate(path: &Path) -> Result<serde_json::Value> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_PREDICATE + 1),
        &mut bytes,
    )
    .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_PREDICATE {
        bail!(
            "{}: a predicate may have at most {MAX_PREDICATE} bytes, so that its envelope fits a registry's 4 MiB document",
            path.display()
        );
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))
}

/// The image a command attaches to: as given, parsed, how its registry is reached, and
/// read (of a registry image, only what is read is fetched).
struct Target<'a> {
    image: &'a str,
    reference: ImageRef,
    registry: RegistryOptions,
    source: transport::Source,
}

impl<'a> Target<'a> {
    async fn open(
        image: &'a str,
        registry: &RegistryArgs,
        cache_root: &Path,
    ) -> Result<Target<'a>> {
        let reference: ImageRef = image.parse()?;
        let registry = registry.options()?;
        let source = open(image, &reference, &registry, cache_root).await?;
        Ok(Target {
            image,
            reference,
            registry,
            source,
        })
    }

    /// The signer of `key`, naming the repository signed unless the options name another.
    fn signer(&self, key: &str, options: &SignOptions) -> Result<Signer> {
        options.signer(key, repository_of(&self.reference))
    }

    /// Attaches `attachments`, made with `signer`'s key, and says what each became.
    async fn attach(&self, signer: &Signer, attachments: Vec<Attachment>) -> Result<SignReport> {
        let sink = transport::sink(&self.reference, &self.registry)?;
        let outcomes = sink
            .attach(&attachments)
            .await
            .with_context(|| format!("attaching to {}", self.image))?;
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
        Ok(SignReport {
            image: self.image.to_string(),
            digest: self.source.top.digest().to_string(),
            key: signer.key.public().hint(),
            signatures,
        })
    }
}

/// Prints what `sign` or `attest` did, saying `done` of what was written and `there` of
/// what was there already.
fn print_attached(
    report: &SignReport,
    json: bool,
    (done, there): (&str, &str),
) -> Result<ExitCode> {
    if json {
        print_json(report)?;
    } else {
        for s in &report.signatures {
            let said = match s.outcome {
                Outcome::Written => done,
                Outcome::Present => there,
            };
            println!("{} {}: {said} ({})", s.format, s.subject, report.key);
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
    /// Verify attestations of this type instead of signatures (repeat for several):
    /// slsaprovenance1, spdx, cyclonedx, openvex, custom, or a predicate type's URI
    #[arg(long, value_name = "TYPE")]
    attestation: Vec<AttestationType>,
    /// Check the verified attestations against a policy file (TOML), which also names the
    /// attestation types it needs
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Verify one platform's image (--arch) instead of the index
    #[arg(long)]
    platform_only: bool,
    /// The platform --platform-only verifies
    #[arg(long, default_value = "amd64")]
    arch: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// What verifying attestations, and a policy, found.
#[derive(Serialize)]
struct AttestationReport {
    digest: String,
    key: String,
    /// Each type's attestations, valid or not.
    attestations: Vec<Verification>,
    /// Each check of the policy.
    policy: Vec<PolicyCheck>,
    /// Whether every type has a valid attestation and every check passed.
    verified: bool,
}

pub async fn cmd_verify(args: VerifyArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    let registry = args.registry.options()?;
    let key = public_key(&args.key)?;
    let policy = args.policy.as_deref().map(read_policy).transpose()?;
    let source = open(&args.image, &reference, &registry, cache_root).await?;
    let subject = match args.platform_only {
        true => Index::pick(&*source.blobs, &source.top, &args.arch)?,
        false => source.top.clone(),
    };
    let verifying = |wanted: &Wanted| {
        verify::verify(&*source.blobs, &subject, &key, wanted)
            .with_context(|| format!("verifying {}", args.image))
    };
    if args.attestation.is_empty() && policy.is_none() {
        let verification = verifying(&Wanted::Signature)?;
        if json {
            print_json(&verification)?;
        } else {
            print_verification(&verification);
        }
        return exit(&args.image, verification.failure());
    }
    let mut types: Vec<String> = args.attestation.iter().map(ToString::to_string).collect();
    types.extend(policy.iter().flat_map(Policy::types));
    types.sort();
    types.dedup();
    let mut attestations = Vec::new();
    let mut statements = BTreeMap::new();
    for kind in &types {
        let kind: AttestationType = kind.parse().map_err(anyhow::Error::msg)?;
        let verification = verifying(&Wanted::Attestation(kind.predicate_type().into()))?;
        let valid = verification.valid().filter_map(|c| c.statement.clone());
        statements.insert(kind.to_string(), valid.collect::<Vec<_>>());
        attestations.push(verification);
    }
    let checks = (policy.iter())
        .flat_map(|p| p.check(&statements, std::time::SystemTime::now()))
        .collect::<Vec<_>>();
    let failures: Vec<String> = (attestations.iter().filter_map(Verification::failure))
        .chain(
            checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("policy: {}: {}", c.check, c.detail)),
        )
        .collect();
    let report = AttestationReport {
        digest: subject.digest().to_string(),
        key: key.hint(),
        attestations,
        policy: checks,
        verified: failures.is_empty(),
    };
    if json {
        print_json(&report)?;
    } else {
        for v in &report.attestations {
            print_verification(v);
        }
        for c in &report.policy {
            let mark = if c.passed { "passed" } else { "FAILED" };
            println!("policy {mark}: {} ({})", c.check, c.detail);
        }
    }
    exit(
        &args.image,
        (!failures.is_empty()).then(|| failures.join("\n")),
    )
}

/// Exits 0, or, with the reason, [`NOT_VERIFIED`].
fn exit(image: &str, failure: Option<String>) -> Result<ExitCode> {
    match failure {
        None => Ok(ExitCode::SUCCESS),
        Some(reason) => {
            eprintln!("error: {image}: {reason}");
            Ok(ExitCode::from(NOT_VERIFIED))
        }
    }
}

/// The policy file at `path`.
fn read_policy(path: &Path) -> Result<Policy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Policy::parse(&text, &path.display().to_string()).map_err(anyhow::Error::msg)
}

fn print_verification(v: &Verification) {
    let what = match v.predicate_type.as_str() {
        COSIGN_SIGN => "signature".to_string(),
        t => format!("{} attestation", AttestationType::of(t)),
    };
    for c in v.valid() {
        println!(
            "Verified {} {what} of {} ({}) with key {}",
            c.format, v.digest, c.location, v.key
        );
    }
    let invalid = v.signatures.iter().filter(|c| c.refused.is_some()).count();
    if invalid > 0 && v.failure().is_none() {
        eprintln!(
            "warning: {invalid} other {what}(s) of {} are not valid for this key",
            v.digest
        );
    }
}

/// A public key (PEM), from a file or `env://VAR`.
pub fn public_key(key: &str) -> Result<PublicKey> {
    let (text, origin) = key::key_text(key)?;
    Ok(PublicKey::from_pem(&text, &origin)?)
}
