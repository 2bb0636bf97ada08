//! `bareboat build`: the arguments, and the report printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_apt::cache::Cache;
use bareboat_build::build::BuildOptions;
use bareboat_build::pipeline::{Build, BuildReport, SharedOptions};
use bareboat_inspect::inspect::inspect_with_filesystem;
use bareboat_inspect::{vex, vulndb};
use bareboat_oci::media::Compression;
use bareboat_oci::model::Image;
use bareboat_oci::reference::{DockerName, ImageRef};
use bareboat_sign::formats::AttestationType;
use bareboat_sign::sign::Signer;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::args::{
    AppArgs, ArchiveArgs, DEFAULT_SPEC, Machinery, RegistryArgs, SbomFormat, SpecArgs,
};
use crate::output::{human_bytes, print_auto, print_json, print_push};
use crate::signing::{SignOptions, repository_of};
use crate::vulns::Stating;

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:NAME:TAG] or docker://REGISTRY/REPO[:TAG] (repeat for several)
    #[arg(short, long = "output", value_name = "REF", required = true)]
    output: Vec<String>,
    /// Lockfile to use [default: bareboat.lock beside a spec file; a catalogue image is
    /// resolved afresh]
    #[arg(long)]
    lockfile: Option<PathBuf>,
    /// Layer compression: gzip, zstd, or none (plain tar)
    #[arg(long, default_value = "gzip")]
    compression: Compression,
    /// The most layers an image may have
    #[arg(long = "layers", default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=127))]
    max_layers: u16,
    /// Clamp every file time to this (seconds since the epoch)
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    /// Attach SBOMs to each platform's image, in every output, as OCI referrers: spdx
    /// (SPDX 2.3 JSON), cyclonedx (CycloneDX 1.6 JSON), or both, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "FORMATS")]
    sbom: Vec<SbomFormat>,
    /// Also write each SBOM as a file beside each layout and archive output:
    /// OUTPUT.spdx.json, OUTPUT.cdx.json (OUTPUT.ARCH.… for several platforms)
    #[arg(long, requires = "sbom")]
    sbom_files: bool,
    /// Sign the image and each platform's with this private key (a file, or env://VAR),
    /// in every output
    #[arg(long, value_name = "KEY")]
    sign: Option<String>,
    /// Attest the build, signed with --key (or --sign's key), in every output:
    /// slsaprovenance1 (SLSA provenance v1 about the image and each platform's), spdx or
    /// cyclonedx (each platform's SBOM), comma-separated
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    attest: Vec<AttestationType>,
    /// The private key --attest signs with (a file, or env://VAR)
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Attest each platform's OpenVEX document (what `bareboat vex` writes), signed with
    /// --key, in every output, where `trivy --vex oci` finds it
    #[arg(long)]
    vex: bool,
    /// The tracker's JSON data --vex states from [default: the cache's, which `bareboat db
    /// update` fetches]
    #[arg(long, value_name = "FILE", requires = "vex")]
    vex_db: Option<PathBuf>,
    /// Rules naming the paths of CVEs' code, for --vex (see `bareboat vex --rules`)
    #[arg(long, value_name = "FILE", requires = "vex")]
    vex_rules: Option<PathBuf>,
    /// Build even when an added program needs symbol versions (GLIBC_2.38, say) that the
    /// image's libraries lack, warning of each: the program will not start
    #[arg(long)]
    allow_abi_mismatch: bool,
    #[command(flatten)]
    sign_options: SignOptions,
    #[command(flatten)]
    shared: SharedArgs,
    #[command(flatten)]
    app: AppArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

/// The registry as a build cache that CI runners share.
#[derive(Args)]
struct SharedArgs {
    /// Build on the package layers this signed cache map knows (docker://REGISTRY/REPO[:TAG],
    /// repeat for several): they are neither fetched, unpacked nor compressed
    #[arg(long = "cache-from", value_name = "REF", requires = "cache_verify_key")]
    cache_from: Vec<String>,
    /// The public key (a file, or env://VAR) that --cache-from's maps must be signed with
    #[arg(long, value_name = "PUB")]
    cache_verify_key: Option<String>,
    /// Publish the build's package layers to the cache map REF (docker://REGISTRY/REPO[:TAG]),
    /// signed with --cache-sign-key; from protected branches only, since every reader
    /// trusts what it says
    #[arg(long = "cache-to", value_name = "REF", requires = "cache_sign_key")]
    cache_to: Option<String>,
    /// The private key (a file, or env://VAR) that signs the map --cache-to publishes
    #[arg(long, value_name = "KEY")]
    cache_sign_key: Option<String>,
}

impl SharedArgs {
    /// The shared cache the arguments name, its keys read.
    fn options(&self) -> Result<SharedOptions> {
        let from = (self.cache_from.iter())
            .map(|r| cache_reference(r, "--cache-from"))
            .collect::<Result<Vec<_>>>()?;
        let verify = (self.cache_verify_key.as_deref())
            .map(crate::signing::public_key)
            .transpose()?;
        let to = match (&self.cache_to, &self.cache_sign_key) {
            (Some(r), Some(key)) => Some((
                cache_reference(r, "--cache-to")?,
                crate::key::private_key(key)?,
            )),
            _ => None,
        };
        Ok(SharedOptions { from, verify, to })
    }
}

/// The repository and tag of a cache map, from `docker://REGISTRY/REPO[:TAG]`.
fn cache_reference(reference: &str, flag: &str) -> Result<DockerName> {
    match reference.parse::<ImageRef>()? {
        ImageRef::Docker { name, digest: None } => Ok(name),
        _ => bail!(
            "{flag} {reference}: a cache map is a tag of a registry repository\n  hint: name it as docker://REGISTRY/REPO[:TAG]"
        ),
    }
}

/// What a build is asked for, as the command line gives it: the spec and the application
/// on it. The provenance records it, and a rebuild reads it back.
#[derive(Clone, Serialize, Deserialize)]
pub struct Request {
    /// The spec, as named (with `--from` in its place).
    pub spec: SpecArgs,
    /// The spec's text, when it is a file.
    pub spec_text: Option<String>,
    /// The application on top of it.
    pub app: AppArgs,
}

impl Request {
    /// The request `spec` and `app` make: `--from` stands in for the spec.
    pub fn of(spec: &SpecArgs, app: &AppArgs) -> Result<Request> {
        let spec = match &app.from {
            Some(from) if spec.spec != DEFAULT_SPEC => {
                bail!("give a spec ({}) or --from {from}, not both", spec.spec)
            }
            Some(from) => SpecArgs {
                spec: from.clone(),
                ..spec.clone()
            },
            None => spec.clone(),
        };
        let spec_text = match spec.is_file() {
            true => Some(
                std::fs::read_to_string(&spec.spec)
                    .with_context(|| format!("reading the spec {}", spec.spec))?,
            ),
            false => None,
        };
        Ok(Request {
            spec,
            spec_text,
            app: app.clone(),
        })
    }

    /// The build of this request into `outputs`, from `lockfile` when given (else the spec
    /// file's own), with `options`.
    pub fn build(
        &self,
        outputs: &[String],
        lockfile: Option<PathBuf>,
        options: BuildOptions,
    ) -> Result<Build> {
        // A bad reference is named before anything else is read.
        for output in outputs {
            output.parse::<ImageRef>()?;
        }
        let (mut spec, default_lock) = self.spec.load()?;
        self.app.apply(&mut spec)?;
        let lockfile = lockfile.or(self.spec.is_file().then_some(default_lock));
        Ok(Build {
            request: serde_json::to_value(self)?,
            ..Build::new(spec, &self.spec.spec, lockfile, outputs.to_vec(), options)
        })
    }
}

impl BuildArgs {
    /// The build the arguments ask for.
    fn build(&self) -> Result<Build> {
        let request = Request::of(&self.spec, &self.app)?;
        let options = BuildOptions {
            compression: self.compression,
            source_date_epoch: self.source_date_epoch,
            max_layers: usize::from(self.max_layers),
            allow_abi_mismatch: self.allow_abi_mismatch,
            ..BuildOptions::default()
        };
        Ok(Build {
            sbom: self.sbom.iter().map(|&f| f.into()).collect(),
            sbom_files: self.sbom_files,
            signer: self.signer()?,
            sign: self.sign.is_some(),
            attest: self.attest.clone(),
            shared: self.shared.options()?,
            ..request.build(&self.output, self.lockfile.clone(), options)?
        })
    }

    /// The signer `--sign` or `--attest` needs, naming the first registry output's
    /// repository.
    fn signer(&self) -> Result<Option<Signer>> {
        let key = match (&self.sign, &self.key) {
            (Some(a), Some(b)) if a != b => {
                bail!("--sign {a} and --key {b}: a build signs and attests with one key")
            }
            (Some(key), _) | (None, Some(key)) => key,
            (None, None) if !self.attest.is_empty() || self.vex => {
                bail!("--attest and --vex need a key to sign with: give --key KEY")
            }
            (None, None) => return Ok(None),
        };
        let pushed = (self.output.iter())
            .filter_map(|o| repository_of(&o.parse().ok()?))
            .next();
        Ok(Some(self.sign_options.signer(key, pushed)?))
    }
}

pub async fn cmd_build(args: BuildArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let mut build = args.build()?;
    if args.vex {
        let stating = Stating {
            data: vulndb::data_file(args.vex_db.as_deref(), &Cache::open(cache_root)?)?,
            release: None,
            rules: match &args.vex_rules {
                Some(path) => vex::Rules::read(path)?.rules,
                None => Vec::new(),
            },
            repository: (args.output.iter()).find_map(|o| repository_of(&o.parse().ok()?)),
            author: "bareboat".into(),
            source_date_epoch: args.source_date_epoch,
        };
        // Each platform's image, read back from the layout it was built into.
        build.stated.push((
            AttestationType::OpenVex,
            Box::new(move |layout, manifest| {
                let image = Image::open(layout, manifest, "").map_err(|e| e.to_string())?;
                let (report, files) = inspect_with_filesystem(&image).map_err(|e| e.to_string())?;
                let nothing = |e: &anyhow::Error| {
                    let stated = e.downcast_ref::<bareboat_inspect::Error>();
                    matches!(stated, Some(bareboat_inspect::Error::NothingToState { .. }))
                };
                match stating.document(&report, &files) {
                    Ok(document) => serde_json::to_value(document)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    // A clean image has nothing to state: no document is attested about it.
                    Err(e) if nothing(&e) => {
                        eprintln!("warning: {e}: no OpenVEX attestation about it");
                        Ok(None)
                    }
                    Err(e) => Err(format!("{e:#}")),
                }
            }),
        ));
    }
    let machinery = Machinery::new(cache_root, &args.archive, Some(&args.registry))?;
    let report = build.run(&machinery.context()).await?;
    for m in report.images.iter().flat_map(|i| &i.abi) {
        eprintln!(
            "warning: {m}: {} (built anyway: --allow-abi-mismatch)",
            m.consequence()
        );
    }
    if json {
        print_json(&report)?;
    } else {
        print_build(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_build(report: &BuildReport) {
    print_auto(&report.auto_deps);
    for image in &report.images {
        let size: u64 = image.layers.iter().map(|l| l.size).sum();
        let unpacked: u64 = image.layers.iter().map(|l| l.uncompressed_size).sum();
        let resumed = match (image.resumed_layers, image.shared_layers) {
            (0, _) => String::new(),
            (n, 0) => format!(" ({n} unpacked by an earlier build)"),
            (_, n) => format!(" ({n} from the shared cache)"),
        };
        let on_base = match &report.base {
            Some(b) => format!(" on {} base layers of {}", image.base_layers, b.name),
            None => String::new(),
        };
        println!(
            "{} {}: {} packages, {} layers{resumed}{on_base}, {} compressed, {} unpacked",
            image.arch,
            image.manifest.digest(),
            image.packages,
            image.layers.len(),
            human_bytes(size),
            human_bytes(unpacked)
        );
        for l in &image.layers {
            println!("  {:>10}  {}", human_bytes(l.size), l.created_by);
        }
    }
    for p in &report.pushes {
        print_push(p);
    }
    if let Some(shared) = &report.shared {
        for note in &shared.notes {
            println!("note: {note}");
        }
        if let Some(p) = &shared.published {
            println!(
                "Published the cache map {}: {} entries ({} from this build, {} dropped)",
                p.map, p.entries, p.recorded, p.dropped
            );
        }
    }
    println!(
        "Built {} in {:.2}s -> {}",
        report.digest,
        report.seconds,
        report.outputs.join(", ")
    );
}
