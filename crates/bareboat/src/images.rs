//! `bareboat copy`, `bareboat login` and `bareboat sbom`: moving images, registry
//! credentials, and the SBOM of any image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_apt::cache::Cache;
use bareboat_oci::credentials;
use bareboat_oci::layout::write_atomic;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::referrer::{self, Follow, Referrer};
use bareboat_oci::registry::{PushReport, Registry};
use bareboat_oci::transport::{self, Fetch};
use bareboat_sbom::Format;
use clap::Args;
use serde::Serialize;

use crate::analysis;
use crate::args::{RegistryArgs, SbomFormat};
use crate::output::{print_json, print_push};

#[derive(Args)]
pub struct CopyArgs {
    /// The image to read
    source: String,
    /// Where to write it
    destination: String,
    /// Copy only this architecture's image out of a multi-platform one
    #[arg(long)]
    arch: Option<String>,
    /// Carry referrers of every artifact type, not only those bareboat knows (SBOMs,
    /// signatures, attestations, VEX)
    #[arg(long)]
    all_referrers: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// What `bareboat copy` did.
#[derive(Serialize)]
struct CopyReport<'a> {
    /// The image read.
    source: &'a str,
    /// Where it was written.
    destination: &'a str,
    /// The digest written.
    digest: String,
    /// For a push, what moved.
    push: Option<PushReport>,
    /// The referrers not carried, for their artifact type.
    left_behind: Vec<Referrer>,
}

pub async fn cmd_copy(args: CopyArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let source: ImageRef = args.source.parse()?;
    let destination: ImageRef = args.destination.parse()?;
    let registry = args.registry.options()?;
    let cache = Cache::open(cache_root)?;
    let follow = if args.all_referrers {
        Follow::All
    } else {
        Follow::Known
    };
    let scratch = cache.root().join("tmp");
    let source = transport::open(&source, &scratch, &registry, Fetch::Whole(follow))
        .await
        .with_context(|| format!("reading {}", args.source))?;
    let sink = transport::sink(&destination, &registry)?;
    let arch = args.arch.as_deref();
    let written = transport::write(&*source.blobs, &source.top, &*sink, arch, follow)
        .await
        .with_context(|| format!("writing {}", args.destination))?;
    // A registry image leaves them behind as it is pulled, any other as it is written.
    let left_behind: Vec<Referrer> = source
        .left_behind
        .into_iter()
        .chain(written.left_behind)
        .collect();
    warn_left_behind(&left_behind);
    let report = CopyReport {
        source: &args.source,
        destination: &args.destination,
        digest: written.top.digest().to_string(),
        push: written.push,
        left_behind,
    };
    if json {
        print_json(&report)?;
    } else {
        println!("Copied {} -> {}", report.digest, args.destination);
        if let Some(p) = &report.push {
            print_push(p);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Names on standard error the referrers a copy did not carry.
fn warn_left_behind(left_behind: &[Referrer]) {
    if left_behind.is_empty() {
        return;
    }
    eprintln!(
        "warning: {} referrer(s) not copied, of artifact types bareboat does not know (--all-referrers copies every artifact manifest):",
        left_behind.len()
    );
    for r in left_behind {
        let artifact_type = r.artifact.artifact_type().as_ref();
        eprintln!(
            "  {} ({}), referring to {}",
            r.artifact.digest(),
            artifact_type.map_or("no artifact type".into(), ToString::to_string),
            r.subject
        );
    }
}

#[derive(Args)]
pub struct LoginArgs {
    /// The registry host, with its port if any
    registry: String,
    /// The user name
    #[arg(short, long)]
    username: String,
    #[command(flatten)]
    registry_args: RegistryArgs,
}

/// What `bareboat login` stored.
#[derive(Serialize)]
struct LoginReport<'a> {
    /// The registry logged in to.
    registry: &'a str,
    /// The file the credentials went to.
    file: PathBuf,
}

pub async fn cmd_login(args: LoginArgs, json: bool) -> Result<ExitCode> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!(
            "no password on standard input\n  hint: echo \"$PASSWORD\" | bareboat login {} -u {}",
            args.registry,
            args.username
        );
    }
    let creds = (args.username.clone(), password);
    let mut opts = args.registry_args.options()?;
    opts.creds = Some(creds.clone());
    Registry::new(&opts, &args.registry)?
        .check_login(&args.registry)
        .await?;
    let file = credentials::login_file()?;
    credentials::store(&file, &args.registry, &creds)?;
    if json {
        print_json(&LoginReport {
            registry: &args.registry,
            file,
        })?;
    } else {
        println!(
            "Logged in to {}; credentials in {}",
            args.registry,
            file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["image", "from_registry"])))]
pub struct SbomArgs {
    /// The image to describe: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:NAME:TAG] or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: Option<String>,
    /// The image whose attached SBOM to fetch, wherever it is: a pushed image
    /// (docker://REGISTRY/REPO[:TAG|@DIGEST]), a layout or an archive
    #[arg(long, visible_alias = "attached", value_name = "REF")]
    from_registry: Option<String>,
    /// Which SBOM
    #[arg(long, value_enum, default_value = "spdx")]
    format: SbomFormat,
    /// The platform, for a multi-platform image
    #[arg(long, default_value = "amd64")]
    arch: String,
    /// Write it here instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// What `bareboat sbom -o FILE` wrote.
#[derive(Serialize)]
struct SbomReport<'a> {
    /// The image described: its platform manifest's digest.
    image: &'a str,
    /// The artifact the SBOM was fetched as, when it was.
    sbom: Option<&'a str>,
    /// The SBOM's media type.
    media_type: &'a str,
    /// The file written.
    file: &'a Path,
}

pub async fn cmd_sbom(args: SbomArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let format = Format::from(args.format);
    // The image described, the document, and the artifact it was fetched as, if it was.
    let (subject, document, artifact) = match (&args.image, &args.from_registry) {
        (Some(image), _) => {
            let options = args.registry.options()?;
            let (report, fs) =
                analysis::read_image(image, &args.arch, &options, cache_root).await?;
            let sbom = bareboat_inspect::sbom::of_image(&report, &fs);
            (report.image, format.document(&sbom), None)
        }
        (None, Some(reference)) => {
            let (subject, document, artifact) = fetch_sbom(&args, reference, cache_root).await?;
            (subject, document, Some(artifact))
        }
        (None, None) => unreachable!("clap requires IMAGE or --from-registry"),
    };
    let wanted = format.media_type();
    let Some(path) = &args.output else {
        std::io::stdout().write_all(&document)?;
        return Ok(ExitCode::SUCCESS);
    };
    write_atomic(path, &document)?;
    if json {
        print_json(&SbomReport {
            image: &subject,
            sbom: artifact.as_deref(),
            media_type: wanted,
            file: path,
        })?;
    } else {
        let from = artifact.map(|a| format!(", {a}")).unwrap_or_default();
        println!("Wrote {} ({wanted}{from}) for {subject}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The SBOM attached to the image `reference`: the image's platform manifest digest, the
/// document, and the artifact's digest. Of a registry image only what is read is fetched:
/// the documents, and the SBOM's one layer.
async fn fetch_sbom(
    args: &SbomArgs,
    reference: &str,
    cache_root: &Path,
) -> Result<(String, Vec<u8>, String)> {
    let image_ref: ImageRef = reference.parse()?;
    let scratch = Cache::open(cache_root)?.root().join("tmp");
    let options = args.registry.options()?;
    let source = transport::open(&image_ref, &scratch, &options, Fetch::OnDemand)
        .await
        .with_context(|| format!("reading {reference}"))?;
    let image = bareboat_oci::model::Index::pick(&*source.blobs, &source.top, &args.arch)?;
    let subject = image.digest().to_string();
    let format = Format::from(args.format);
    let wanted = format.media_type();
    let found = referrer::of_image(&*source.blobs, &image, Follow::Only(wanted))?;
    let artifact = referrer::newest(&found.followed).with_context(|| {
        format!(
            "no {wanted} SBOM refers to {reference} ({subject})\n  hint: build with --sbom {}, or describe the image itself: bareboat sbom {reference}",
            format.extension().trim_end_matches(".json")
        )
    })?;
    let document = referrer::content(&*source.blobs, artifact)?;
    Ok((subject, document, artifact.digest().to_string()))
}

#[cfg(test)]
mod tests {
    use bareboat_oci::media::KNOWN_ARTIFACTS;
    use bareboat_sbom::Format;

    #[test]
    fn copy_carries_the_sboms_bareboat_writes() {
        for format in [Format::Spdx, Format::Cyclonedx] {
            assert!(KNOWN_ARTIFACTS.contains(&format.media_type()));
        }
    }
}
