//! `bareboat rebuild`: builds an image again from its SLSA provenance, and says whether the
//! same digest came out, or where the rebuilt image first differs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_apt::lockfile::Lockfile;
use bareboat_build::build::BuildOptions;
use bareboat_build::lock::{ArchiveCheck, check_against_archive};
use bareboat_build::provenance::Recorded;
use bareboat_build::rebuild::{Difference, extract_added, first_difference, make_removable};
use bareboat_oci::layout::Layout;
use bareboat_oci::media::Kind;
use bareboat_oci::model::{Image, Index};
use bareboat_oci::reference::ImageRef;
use bareboat_oci::source::BlobSource;
use bareboat_oci::transport::{self, Fetch};
use bareboat_sign::formats::SLSA_PROVENANCE;
use bareboat_sign::verify::{self, Wanted};
use clap::Args;
use oci_spec::image::Descriptor;
use serde::Serialize;
use serde_json::Value;

use crate::args::{ArchiveArgs, Machinery, RegistryArgs};
use crate::build::Request;
use crate::output::print_json;
use crate::signing::{NOT_VERIFIED, public_key};

/// The exit status of `rebuild` when the digest is not reproduced.
const NOT_REPRODUCED: u8 = 7;

#[derive(Args)]
pub struct RebuildArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: String,
    /// The public key the provenance must be signed with (a file, or env://VAR); without
    /// it, the provenance is read unverified, and the report says so
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

/// Where one platform's rebuilt image first differs.
#[derive(Serialize)]
struct PlatformDifference {
    arch: String,
    #[serde(flatten)]
    difference: Option<Difference>,
}

/// What `rebuild` found.
#[derive(Serialize)]
struct RebuildReport<'a> {
    image: &'a str,
    /// The image's digest.
    digest: String,
    /// The rebuilt image's digest.
    rebuilt: String,
    reproduced: bool,
    /// Whether the provenance was verified with a key.
    provenance_verified: bool,
    /// How the lock's packages stand against the archive's signed indexes.
    archive: ArchiveCheck,
    /// Where each platform's rebuilt image first differs, when it does.
    differences: Vec<PlatformDifference>,
}

pub async fn cmd_rebuild(args: RebuildArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    let registry = args.registry.options()?;
    let key = args.key.as_deref().map(public_key).transpose()?;
    let machinery = Machinery::new(cache_root, &args.archive, Some(&args.registry))?;
    let scratch = machinery.cache().root().join("tmp");
    let source = transport::open(&reference, &scratch, &registry, Fetch::OnDemand)
        .await
        .with_context(|| format!("reading {}", args.image))?;
    let (blobs, top) = (&*source.blobs, &source.top);
    let Some(statement) = provenance(blobs, top, key.as_ref(), &args.image)? else {
        return Ok(ExitCode::from(NOT_VERIFIED));
    };
    if key.is_none() {
        eprintln!(
            "warning: {}: the provenance is not verified (no --key): it is taken as it says",
            args.image
        );
    }
    let recorded = Recorded::read(&statement["predicate"])
        .map_err(|e| anyhow::anyhow!("{}: its provenance: {e}", args.image))?;
    let machinery = machinery.accepting(recorded.inreleases.clone());
    let work = tempfile::Builder::new()
        .prefix("bareboat-rebuild-")
        .tempdir_in(&scratch)
        .context("making a scratch directory")?;
    let rebuilding = Rebuilding {
        recorded: &recorded,
        work: work.path(),
        blobs,
        top,
    };
    let outcome = rebuilding
        .run(&machinery, args.archive.mirrors_named())
        .await;
    // The added files came out with their own modes, which may deny removing them.
    make_removable(work.path());
    let outcome = outcome?;
    let reproduced = outcome.digest == outcome.rebuilt;
    let report = RebuildReport {
        image: &args.image,
        digest: outcome.digest,
        rebuilt: outcome.rebuilt,
        reproduced,
        provenance_verified: key.is_some(),
        archive: outcome.check,
        differences: outcome.differences,
    };
    if json {
        print_json(&report)?;
    } else {
        print_rebuild(&report);
    }
    Ok(match reproduced {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(NOT_REPRODUCED),
    })
}

/// A rebuild under way: what the provenance recorded, a scratch directory, and the image.
struct Rebuilding<'a> {
    recorded: &'a Recorded,
    work: &'a Path,
    blobs: &'a dyn BlobSource,
    top: &'a Descriptor,
}

/// What a rebuild came to.
struct Outcome {
    digest: String,
    rebuilt: String,
    check: ArchiveCheck,
    differences: Vec<PlatformDifference>,
}

impl Rebuilding<'_> {
    /// Checks the lock against the archive, takes the added files out, builds, and
    /// compares.
    async fn run(
        &self,
        machinery: &Machinery,
        mirrors: (Option<&str>, Option<&str>),
    ) -> Result<Outcome> {
        let (recorded, w, blobs, top) = (self.recorded, self.work, self.blobs, self.top);
        let lock = with_mirrors(&recorded.lock, mirrors);
        let lockfile = w.join("bareboat.lock");
        lock.write(&lockfile)?;
        let request = request(recorded, &lock, w)?;
        // Of one platform's image, only that platform is taken out and compared.
        let only = match Kind::of(top.media_type().as_ref()) {
            Kind::Manifest => Some(arch_of(blobs, top)?),
            _ => None,
        };
        let wanted = |arch: &str| only.as_deref().is_none_or(|o| o == arch);
        for (arch, files) in recorded.added.iter().filter(|(a, _)| wanted(a)) {
            let image = Image::open(blobs, top, arch)?;
            extract_added(&image, files, &w.join("files").join(arch))?;
        }
        let cx = machinery.context();
        let check = check_against_archive(&lock, cx.archive, &*cx.stages.stage("indexes")).await?;
        let output = format!("oci:{}:rebuilt", w.join("rebuilt").display());
        let options = BuildOptions {
            compression: recorded.compression.parse().map_err(anyhow::Error::msg)?,
            source_date_epoch: recorded.source_date_epoch,
            max_layers: recorded.max_layers,
            ..BuildOptions::default()
        };
        let mut build = request.build(std::slice::from_ref(&output), Some(lockfile), options)?;
        for f in &mut build.spec.files {
            f.src = added_source(w, &f.src, &f.dst);
        }
        let built = build.run(&cx).await?;
        let rebuilt = Layout::create(&w.join("rebuilt"))?;
        let rebuilt_top = rebuilt.resolve("rebuilt")?;
        let compared = match &only {
            Some(arch) => Index::pick(&rebuilt, &rebuilt_top, arch)?,
            None => rebuilt_top.clone(),
        };
        let digest = top.digest().to_string();
        let mut differences = Vec::new();
        if digest != compared.digest().as_ref() {
            for arch in built.images.iter().map(|i| &i.arch).filter(|a| wanted(a)) {
                let original = Image::open(blobs, top, arch)?;
                let again = Image::open(&rebuilt, &rebuilt_top, arch)?;
                if original.descriptor.digest() != again.descriptor.digest() {
                    differences.push(PlatformDifference {
                        arch: arch.clone(),
                        difference: first_difference(&original, &again)?,
                    });
                }
            }
        }
        Ok(Outcome {
            digest,
            rebuilt: compared.digest().to_string(),
            check,
            differences,
        })
    }
}

/// The newest SLSA provenance about `top` (verified with `key` when given); `None`, with
/// the reason told, when there is none valid.
fn provenance(
    blobs: &dyn BlobSource,
    top: &Descriptor,
    key: Option<&bareboat_sign::key::PublicKey>,
    image: &str,
) -> Result<Option<Value>> {
    let wanted = Wanted::Attestation(SLSA_PROVENANCE.into());
    let statements = match key {
        Some(key) => {
            let verification = verify::verify(blobs, top, key, &wanted)?;
            if let Some(reason) = verification.failure() {
                eprintln!("error: {image}: {reason}");
                return Ok(None);
            }
            verification
                .valid()
                .filter_map(|c| c.statement.clone())
                .collect()
        }
        None => verify::unverified(blobs, top, &wanted)?,
    };
    let newest = bareboat_sign::policy::newest(&statements).cloned();
    if newest.is_none() {
        eprintln!("error: {image}: no SLSA provenance is attested about it");
    }
    Ok(newest)
}

/// `lock` with its Debian sources (the release's own suites, not a vendor's) at the mirrors
/// the command line names: a rebuild fetches from there (a snapshot archive, say) what the
/// lock names by path and SHA256.
fn with_mirrors(lock: &Lockfile, (archive, security): (Option<&str>, Option<&str>)) -> Lockfile {
    let mut lock = lock.clone();
    let release = lock.release.clone();
    for s in lock
        .sources
        .iter_mut()
        .filter(|s| s.suite.starts_with(&release))
    {
        let mirror = match s.suite.ends_with("-security") {
            true => security,
            false => archive,
        };
        if let Some(m) = mirror {
            s.url = m.trim_end_matches('/').to_string();
        }
    }
    lock
}

/// The request the provenance records, its spec file (if any) written under `work`, and a
/// base image pinned to the digest the lock was made on.
fn request(recorded: &Recorded, lock: &Lockfile, work: &Path) -> Result<Request> {
    let mut request: Request = serde_json::from_value(recorded.request.clone())
        .context("the provenance's request is not one bareboat makes")?;
    match &request.spec_text {
        Some(text) => {
            let path = work.join("spec").join("bareboat.toml");
            std::fs::create_dir_all(work.join("spec"))?;
            std::fs::write(&path, text)?;
            request.spec.spec = path.display().to_string();
        }
        // Never a file of this machine's, taken for the one the provenance meant.
        None if request.spec.is_file() => {
            bail!(
                "the provenance names the spec file {} without its text",
                request.spec.spec
            )
        }
        None => {}
    }
    if let (Some(digest), Ok(ImageRef::Docker { name, .. })) =
        (&lock.base, request.spec.spec.parse::<ImageRef>())
    {
        request.spec.spec = format!("docker://{}/{}@{digest}", name.registry, name.repository);
    }
    Ok(request)
}

/// Where a rebuild takes the added file `dst` from (the spec gave `src`): what the image's
/// layer of added files holds there, per architecture, with a glob's file-name pattern
/// kept.
fn added_source(work: &Path, src: &Path, dst: &str) -> PathBuf {
    let base = work
        .join("files")
        .join("{arch}")
        .join(dst.trim_start_matches('/'));
    let glob = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| bareboat_build::hostfiles::is_glob(Path::new(n)));
    match glob {
        Some(pattern) => base.join(pattern),
        None => base,
    }
}

/// The Debian architecture of the one-platform image `top`, from its config.
fn arch_of(blobs: &dyn BlobSource, top: &Descriptor) -> Result<String> {
    // `top` is one platform's manifest: any architecture picks it.
    let config = Image::open(blobs, top, "any")?.config;
    let oci = config.architecture().to_string();
    match bareboat_oci::image::debian_arch(&oci, config.variant().as_deref()) {
        Some(arch) => Ok(arch.to_string()),
        None => bail!("the image's architecture {oci} is not one Debian releases"),
    }
}

fn print_rebuild(report: &RebuildReport) {
    for source in &report.archive.unpinned {
        eprintln!(
            "warning: {source}: the provenance's lockfile (format 1) names no InRelease: its packages are checked by their SHA256s only (`bareboat lock` records it)"
        );
    }
    for source in &report.archive.moved {
        eprintln!(
            "warning: {source} now serves another InRelease than the provenance names: its packages are checked by their SHA256s only (--mirror a snapshot archive to check them against the signed indexes)"
        );
    }
    if report.reproduced {
        println!("reproduced: {}", report.digest);
        return;
    }
    println!(
        "not reproduced: {} rebuilt as {}",
        report.digest, report.rebuilt
    );
    for p in &report.differences {
        match &p.difference {
            Some(d) => {
                let made = d.created_by.as_deref().unwrap_or("unknown");
                println!("  {}: layer {} ({made}) differs", p.arch, d.layer + 1);
                if let Some(entry) = &d.entry {
                    println!("    first difference: {entry}");
                }
            }
            None => println!("  {}: the layers are the same; the config differs", p.arch),
        }
    }
}
