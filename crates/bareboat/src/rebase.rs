//! `bareboat rebase`: an image's own layers put on another base, unchanged; and
//! `rebase --check`, which says whether the base's tag has moved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_apt::cache::Cache;
use bareboat_build::base::{BaseImage, recorded_name, recorded_reference};
use bareboat_build::rebase::{Rebase, named_base};
use bareboat_inspect::Severity;
use bareboat_inspect::inspect::inspect_with_filesystem;
use bareboat_inspect::vulndb;
use bareboat_oci::attach::{Artifact, Attachment, Staged};
use bareboat_oci::media::Kind;
use bareboat_oci::model::{Image, Index};
use bareboat_oci::mutate::Union;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::referrer::{self, Follow};
use bareboat_oci::registry::{PushReport, RegistryOptions};
use bareboat_oci::source::BlobSource;
use bareboat_oci::transport::{self, Fetch, Source};
use bareboat_sbom::Format;
use clap::Args;
use oci_spec::image::{Descriptor, MediaType};
use serde::Serialize;

use crate::analysis;
use crate::args::RegistryArgs;
use crate::output::print_json;

/// The exit status of `rebase --check` when the base has moved.
const REBASE_DUE: u8 = 3;

#[derive(Args)]
pub struct RebaseArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: String,
    /// The base to put it on
    #[arg(long, value_name = "IMAGE", required_unless_present = "check")]
    onto: Option<String>,
    /// Where to write the rebased image
    #[arg(
        short,
        long = "output",
        value_name = "REF",
        required_unless_present = "check"
    )]
    output: Option<String>,
    /// The base it was built on [default: the one its annotations name]
    #[arg(long, value_name = "IMAGE")]
    old_base: Option<String>,
    /// Only say whether the base's tag now names another image, and what changed in its
    /// packages; exit 3 when a rebase is due
    #[arg(long, conflicts_with_all = ["onto", "output"])]
    check: bool,
    /// With --check, the tracker's JSON data to tell the CVEs the new base fixes [default:
    /// the cache's, which `bareboat db update` fetches]
    #[arg(long, value_name = "FILE", requires = "check")]
    db: Option<PathBuf>,
    /// With --check, the Debian release codename to match CVEs against, when the base's
    /// os-release names none
    #[arg(long, value_name = "CODENAME", requires = "check")]
    release: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// An image opened, as named.
struct Opened {
    name: String,
    source: Source,
}

impl Opened {
    /// `name`, each blob read when it is used: layers the output's sink has, or mounts,
    /// are never read.
    async fn open(name: &str, registry: &RegistryOptions, scratch: &Path) -> Result<Opened> {
        let reference: ImageRef = name.parse()?;
        let source = transport::open(&reference, scratch, registry, Fetch::OnDemand)
            .await
            .with_context(|| format!("reading {name}"))?;
        Ok(Opened {
            name: recorded_name(&reference),
            source,
        })
    }

    /// The base `base` (as a build records its name) at `digest`, though its tag may have
    /// moved since.
    async fn base_at(
        base: &str,
        digest: &str,
        registry: &RegistryOptions,
        scratch: &Path,
    ) -> Result<Opened> {
        let name = recorded_reference(base);
        let reference: ImageRef = name.parse()?;
        let digest = bareboat_oci::digest::Digest::named(digest)?;
        let source = transport::open_at(&reference, &digest, scratch, registry, Fetch::OnDemand)
            .await
            .with_context(|| format!("reading {name} at {digest}"))?;
        Ok(Opened {
            name: base.to_string(),
            source,
        })
    }

    fn blobs(&self) -> &dyn BlobSource {
        &*self.source.blobs
    }

    fn image(&self, arch: &str) -> Result<Image<'_>> {
        Ok(Image::open(self.blobs(), &self.source.top, arch)?)
    }

    fn base(&self, arch: &str) -> Result<BaseImage<'_>> {
        Ok(BaseImage::open(
            self.blobs(),
            &self.source.top,
            arch,
            &self.name,
        )?)
    }
}

/// What `rebase` did.
#[derive(Serialize)]
struct RebaseReport {
    image: String,
    onto: String,
    output: String,
    /// The rebased image (or index).
    digest: String,
    /// What a push to a registry uploaded, and what it mounted or found there.
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<PushReport>,
}

pub async fn cmd_rebase(args: RebaseArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let registry = args.registry.options()?;
    // The cache stays open (its lock held) while the rebase stages files in its tmp/: a
    // process that finds the cache unused clears what is there.
    let cache = Cache::open(cache_root)?;
    let scratch = cache.root().join("tmp");
    let image = Opened::open(&args.image, &registry, &scratch).await?;
    let arches = platforms(&image)?;
    if arches.is_empty() {
        bail!(
            "{}: none of its platforms is one Debian releases",
            args.image
        );
    }
    if args.check {
        // Without data, the packages that changed are still said; with a broken --db, not.
        let data = match vulndb::data_file(args.db.as_deref(), &cache) {
            Ok(data) => Some(data),
            Err(bareboat_inspect::Error::NoData) => None,
            Err(e) => return Err(e.into()),
        };
        let scan = data.as_deref().map(|data| Cves {
            data,
            release: args.release.as_deref(),
        });
        return check(&image, &arches, &registry, &scratch, scan, json).await;
    }
    let (Some(onto), Some(output)) = (&args.onto, &args.output) else {
        bail!("give --onto IMAGE and -o REF, or --check");
    };
    let new = Opened::open(onto, &registry, &scratch).await?;
    let mut staged = Staged::over(None);
    let mut manifests = Vec::new();
    for arch in &arches {
        let this = image.image(arch)?;
        // Each platform's base is its own manifest, which its annotations name.
        let old = match &args.old_base {
            Some(name) => Opened::open(name, &registry, &scratch).await?,
            None => {
                let Some((base, digest)) = named_base(&this) else {
                    bail!(
                        "{} ({arch}) names no base it was built on\n  hint: name it with --old-base IMAGE",
                        args.image
                    );
                };
                Opened::base_at(&base, &digest, &registry, &scratch).await?
            }
        };
        let (old_image, new_image) = (old.image(arch)?, new.image(arch)?);
        let (old_base, new_base) = (old.base(arch)?, new.base(arch)?);
        let rebase = Rebase {
            image: &this,
            old: &old_base,
            old_image: &old_image,
            new: &new_base,
            new_image: &new_image,
            arch,
        };
        let rebased = rebase.rebased(&scratch)?;
        manifests.push(rebased.write(&mut staged)?);
    }
    let top = match manifests.as_slice() {
        [one] if Kind::of(image.source.top.media_type().as_ref()) == Kind::Manifest => one.clone(),
        _ => {
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests,
            });
            staged.put(
                MediaType::ImageIndex,
                bareboat_oci::image::canonical_json(&index)?,
            )?
        }
    };
    let mut documents = manifests.clone();
    documents.push(top.clone());
    let union = Union::new()
        .with(&staged, &staged_blobs(&staged, &documents)?)
        .with(image.blobs(), &own_blobs(&image, &arches)?)
        .with(new.blobs(), &own_blobs(&new, &arches)?);
    let sink = transport::sink(&output.parse()?, &registry)?;
    let written = transport::write(&union, &top, &*sink, None, Follow::None)
        .await
        .with_context(|| format!("writing {output}"))?;
    attach_sboms(
        &image, output, &arches, &manifests, &*sink, &registry, cache_root,
    )
    .await?;
    let report = RebaseReport {
        image: args.image.clone(),
        onto: onto.clone(),
        output: output.clone(),
        digest: written.top.digest().to_string(),
        push: written.push,
    };
    if json {
        print_json(&report)?;
    } else {
        println!(
            "Rebased {} onto {onto} -> {output} ({})",
            args.image, report.digest
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The Debian architectures of the image's platforms.
fn platforms(image: &Opened) -> Result<Vec<String>> {
    let top = &image.source.top;
    if Kind::of(top.media_type().as_ref()) != Kind::Index {
        let config = Image::open(image.blobs(), top, "any")?.config;
        let arch = config.architecture().to_string();
        return match bareboat_oci::image::debian_arch(&arch, config.variant().as_deref()) {
            Some(a) => Ok(vec![a.to_string()]),
            None => bail!(
                "{}: its architecture {arch} is not one Debian releases",
                image.name
            ),
        };
    }
    let index = Index::open(image.blobs(), top)?;
    let arches = (index.manifests().iter())
        .filter_map(|m| m.platform().as_ref())
        .filter_map(|p| {
            bareboat_oci::image::debian_arch(&p.architecture().to_string(), p.variant().as_deref())
        })
        .map(String::from)
        .collect::<Vec<_>>();
    let mut seen = std::collections::BTreeSet::new();
    Ok(arches
        .into_iter()
        .filter(|a| seen.insert(a.clone()))
        .collect())
}

/// The descriptors of the blobs `staged` holds for `documents` and their configs.
fn staged_blobs(staged: &Staged, documents: &[Descriptor]) -> Result<Vec<Descriptor>> {
    let mut out = documents.to_vec();
    for d in documents
        .iter()
        .filter(|d| Kind::of(d.media_type().as_ref()) == Kind::Manifest)
    {
        let manifest: oci_spec::image::ImageManifest =
            serde_json::from_slice(&staged.read_described(d)?)?;
        out.push(manifest.config().clone());
    }
    Ok(out)
}

/// The layers of `image`'s platforms.
fn own_blobs(image: &Opened, arches: &[String]) -> Result<Vec<Descriptor>> {
    let mut out = Vec::new();
    for arch in arches {
        out.extend(
            image
                .image(arch)?
                .layers
                .iter()
                .map(|l| l.descriptor.clone()),
        );
    }
    Ok(out)
}

/// Attaches to each rebased platform image the SBOMs (of the formats the image had) of
/// what it now holds.
async fn attach_sboms(
    image: &Opened,
    output: &str,
    arches: &[String],
    manifests: &[Descriptor],
    sink: &dyn bareboat_oci::sink::Sink,
    registry: &RegistryOptions,
    cache_root: &Path,
) -> Result<()> {
    let had = referrer::of_image(image.blobs(), &image.source.top, Follow::Known)?;
    let formats: Vec<Format> = [Format::Spdx, Format::Cyclonedx]
        .into_iter()
        .filter(|f| {
            had.followed.iter().any(|r| {
                r.artifact
                    .artifact_type()
                    .as_ref()
                    .map(ToString::to_string)
                    .as_deref()
                    == Some(f.media_type())
            })
        })
        .collect();
    if formats.is_empty() {
        return Ok(());
    }
    let mut attachments = Vec::new();
    for (arch, manifest) in arches.iter().zip(manifests) {
        let (report, fs) = analysis::read_image(output, arch, registry, cache_root).await?;
        let sbom = bareboat_inspect::sbom::of_image(&report, &fs);
        for format in &formats {
            attachments.push(Attachment::Referrer(Box::new(Artifact {
                subject: manifest.clone(),
                artifact_type: format.media_type().into(),
                content: format.document(&sbom),
                annotations: BTreeMap::from([(
                    referrer::CREATED.to_string(),
                    sbom.created.clone(),
                )]),
            })));
        }
    }
    sink.attach(&attachments).await?;
    Ok(())
}

/// What `rebase --check` found for one platform.
#[derive(Serialize)]
struct Moved {
    arch: String,
    base: String,
    /// The base's digest the image was built on.
    built_on: String,
    /// The digest the base's tag names now.
    now: String,
    /// The packages that changed: `+ NAME VERSION`, `- NAME VERSION`, `NAME OLD -> NEW`.
    packages: Vec<String>,
    /// The CVEs the base's new packages fix, from the tracker's data; `None` without data.
    cves_fixed: Option<Vec<Fixed>>,
}

/// A CVE the base had that its tag's image now does not.
#[derive(Serialize)]
struct Fixed {
    cve: String,
    package: String,
    severity: Severity,
}

/// The tracker's data to tell fixed CVEs from, and the release to match.
struct Cves<'a> {
    data: &'a Path,
    release: Option<&'a str>,
}

impl Cves<'_> {
    /// The CVEs of `then` that `now` no longer has.
    fn fixed(&self, then: &Image, now: &Image) -> Result<Vec<Fixed>> {
        let scan = |image: &Image| -> Result<Vec<(String, String, Severity)>> {
            let (report, _) = inspect_with_filesystem(image)?;
            let found = vulndb::scan_image(&report, self.data, self.release)?;
            Ok(found
                .vulnerabilities
                .into_iter()
                .map(|v| (v.cve, v.package, v.severity))
                .collect())
        };
        let now = scan(now)?;
        let mut fixed: Vec<Fixed> = scan(then)?
            .into_iter()
            .filter(|(cve, package, _)| !now.iter().any(|(c, p, _)| c == cve && p == package))
            .map(|(cve, package, severity)| Fixed {
                cve,
                package,
                severity,
            })
            .collect();
        fixed.sort_by(|a, b| (b.severity, &a.cve).cmp(&(a.severity, &b.cve)));
        Ok(fixed)
    }
}

async fn check(
    image: &Opened,
    arches: &[String],
    registry: &RegistryOptions,
    scratch: &Path,
    cves: Option<Cves<'_>>,
    json: bool,
) -> Result<ExitCode> {
    let mut moved = Vec::new();
    for arch in arches {
        let this = image.image(arch)?;
        let Some((base, digest)) = named_base(&this) else {
            bail!("{} names no base it was built on", image.name);
        };
        let now = Opened::open(&recorded_reference(&base), registry, scratch).await?;
        let current = now.base(arch)?;
        if current.manifest.digest().as_ref() == digest {
            continue;
        }
        let then = Opened::base_at(&base, &digest, registry, scratch).await?;
        let cves_fixed = match &cves {
            Some(cves) => Some(cves.fixed(&then.image(arch)?, &now.image(arch)?)?),
            None => None,
        };
        moved.push(Moved {
            arch: arch.clone(),
            base: base.clone(),
            built_on: digest.clone(),
            now: current.manifest.digest().to_string(),
            packages: changes(&then.base(arch)?, &current)?,
            cves_fixed,
        });
    }
    if json {
        print_json(&moved)?;
    } else if moved.is_empty() {
        println!("{}: its base is current", image.name);
    } else {
        for m in &moved {
            println!(
                "{} ({}): {} moved from {} to {}",
                image.name, m.arch, m.base, m.built_on, m.now
            );
            for p in &m.packages {
                println!("  {p}");
            }
            match &m.cves_fixed {
                Some(fixed) if fixed.is_empty() => println!("  fixes no known CVE"),
                Some(fixed) => {
                    println!("  fixes {} CVEs:", fixed.len());
                    for f in fixed {
                        println!("    {} {} ({})", f.cve, f.package, f.severity.name());
                    }
                }
                None => println!(
                    "  (no vulnerability data: run `bareboat db update` to see the CVEs it fixes)"
                ),
            }
        }
    }
    Ok(match moved.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(REBASE_DUE),
    })
}

/// How the packages of `then` became those of `now`.
fn changes(then: &BaseImage, now: &BaseImage) -> Result<Vec<String>> {
    let versions = |b: &BaseImage| -> Result<BTreeMap<String, String>> {
        let index = b.installed()?;
        Ok(index
            .iter()
            .map(|p| (p.name().to_string(), p.version().to_string()))
            .collect())
    };
    let (then, now) = (versions(then)?, versions(now)?);
    let mut out = Vec::new();
    for (name, old) in &then {
        match now.get(name) {
            None => out.push(format!("- {name} {old}")),
            Some(new) if new != old => out.push(format!("{name} {old} -> {new}")),
            Some(_) => {}
        }
    }
    for (name, new) in now.iter().filter(|(n, _)| !then.contains_key(*n)) {
        out.push(format!("+ {name} {new}"));
    }
    Ok(out)
}
