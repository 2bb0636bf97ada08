//! `bareboat build`: the arguments, and the report printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use bareboat_build::build::BuildOptions;
use bareboat_build::pipeline::{Build, BuildReport};
use bareboat_oci::media::Compression;
use bareboat_oci::reference::ImageRef;
use bareboat_sign::sign::Signer;
use clap::Args;

use crate::args::{
    AppArgs, ArchiveArgs, DEFAULT_SPEC, Machinery, RegistryArgs, SbomFormat, SpecArgs,
};
use crate::output::{human_bytes, print_auto, print_json, print_push};
use crate::signing::{SignOptions, repository_of};

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
    #[command(flatten)]
    sign_options: SignOptions,
    #[command(flatten)]
    app: AppArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

impl BuildArgs {
    /// The build the arguments ask for.
    fn build(&self) -> Result<Build> {
        // A bad reference is named before anything else is read.
        for output in &self.output {
            output.parse::<ImageRef>()?;
        }
        let spec_args = match &self.app.from {
            Some(from) if self.spec.spec != DEFAULT_SPEC => {
                bail!(
                    "give a spec ({}) or --from {from}, not both",
                    self.spec.spec
                )
            }
            Some(from) => SpecArgs {
                spec: from.clone(),
                ..self.spec.clone()
            },
            None => self.spec.clone(),
        };
        let (mut spec, default_lock) = spec_args.load()?;
        self.app.apply(&mut spec)?;
        let lockfile = self
            .lockfile
            .clone()
            .or(spec_args.is_file().then_some(default_lock));
        Ok(Build {
            spec,
            spec_name: spec_args.spec,
            lockfile,
            outputs: self.output.clone(),
            options: BuildOptions {
                compression: self.compression,
                source_date_epoch: self.source_date_epoch,
                max_layers: usize::from(self.max_layers),
                ..BuildOptions::default()
            },
            sbom: self.sbom.iter().map(|&f| f.into()).collect(),
            sbom_files: self.sbom_files,
            sign: self.signer()?,
        })
    }

    /// The signer `--sign` asks for, naming the first registry output's repository.
    fn signer(&self) -> Result<Option<Signer>> {
        let Some(key) = &self.sign else {
            return Ok(None);
        };
        let pushed = (self.output.iter())
            .filter_map(|o| repository_of(&o.parse().ok()?))
            .next();
        Ok(Some(self.sign_options.signer(key, pushed)?))
    }
}

pub async fn cmd_build(args: BuildArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let build = args.build()?;
    let machinery = Machinery::new(cache_root, &args.archive, Some(&args.registry))?;
    let report = build.run(&machinery.context()).await?;
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
        let resumed = match image.resumed_layers {
            0 => String::new(),
            n => format!(" ({n} unpacked by an earlier build)"),
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
    println!(
        "Built {} in {:.2}s -> {}",
        report.digest,
        report.seconds,
        report.outputs.join(", ")
    );
}
