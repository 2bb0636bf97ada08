//! `bareboat resolve`: builds the images Kubernetes YAML names as `bareboat://SPEC`, pushes
//! each once, and writes the YAML back with each reference replaced by the pushed image's
//! digest; with `--pin`, tag references to any image too. Nothing is written unless every
//! reference resolves.

mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_build::build::BuildOptions;
use bareboat_oci::layout::write_atomic;
use bareboat_oci::reference::DockerName;
use bareboat_oci::registry::{Registry, Remote};
use clap::Args;
use serde::Serialize;

use crate::args::{AppArgs, ArchiveArgs, Machinery, RegistryArgs, SpecArgs};
use crate::build::Request;
use crate::output::print_json;
use crate::signing::SignOptions;

/// The largest YAML file read.
const MAX_YAML: u64 = 16 << 20;

#[derive(Args)]
pub struct ResolveArgs {
    /// A YAML file, or a directory of them (*.yaml, *.yml, found recursively); repeat
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// Where to write: a file for one file given, else a directory, each file under its
    /// own path [default: standard output, the documents one after another]
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Where what is built is pushed: REGISTRY/PREFIX, each image as REGISTRY/PREFIX/NAME
    #[arg(long, value_name = "REGISTRY/PREFIX")]
    repo: Option<String>,
    /// Also replace tag references to any image (the values of `image` keys) with the
    /// digest their tag names now
    #[arg(long)]
    pin: bool,
    /// Sign what is pushed with this private key (a file, or env://VAR)
    #[arg(long, value_name = "KEY")]
    sign: Option<String>,
    #[command(flatten)]
    sign_options: SignOptions,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

/// What `resolve` did.
#[derive(Serialize)]
struct ResolveReport {
    /// Each reference, and what replaced it.
    resolved: BTreeMap<String, String>,
    /// The files written.
    written: Vec<PathBuf>,
    /// The documents, resolved, when no `-o` names where to write them.
    #[serde(skip_serializing_if = "Option::is_none")]
    yaml: Option<String>,
}

pub async fn cmd_resolve(args: ResolveArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let inputs = inputs(&args.files)?;
    let mut documents = Vec::new();
    for path in &inputs {
        let text = read_yaml(path)?;
        let found = yaml::scan(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        documents.push((path.clone(), text, found));
    }
    let mut resolved: BTreeMap<String, String> = BTreeMap::new();
    let wanted =
        (documents.iter()).flat_map(|(path, _, found)| found.iter().map(move |f| (path, f)));
    for (path, f) in wanted {
        if resolved.contains_key(&f.value) {
            continue;
        }
        let to = match f.value.strip_prefix(yaml::BAREBOAT) {
            Some(spec) => build_and_push(spec, &args, cache_root).await,
            None if args.pin && f.image_key && !f.value.is_empty() && !f.value.contains('@') => {
                pin(&f.value, &args).await
            }
            None => continue,
        };
        let to = to.with_context(|| format!("{}: {}", path.display(), f.value))?;
        resolved.insert(f.value.clone(), to);
    }
    // Only now, with every reference resolved, is anything written: to the one file a
    // single file input names, else under the output directory.
    let one_file = args.files.len() == 1 && !args.files[0].is_dir();
    let outputs: Vec<(Option<PathBuf>, String)> = documents
        .iter()
        .map(|(path, text, found)| {
            let replacements = (found.iter())
                .filter_map(|f| Some((f.span.clone(), resolved.get(&f.value)?.clone())))
                .collect();
            (
                output_path(&args.output, path, one_file),
                yaml::replace(text, replacements),
            )
        })
        .collect();
    let mut written = Vec::new();
    let mut stdout = String::new();
    for (path, text) in outputs {
        match path {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                write_atomic(&path, text.as_bytes())?;
                written.push(path);
            }
            None => {
                if !stdout.is_empty() {
                    if !stdout.ends_with('\n') {
                        stdout.push('\n');
                    }
                    stdout.push_str("---\n");
                }
                stdout.push_str(&text);
            }
        }
    }
    if json {
        let yaml = (!stdout.is_empty()).then_some(stdout);
        print_json(&ResolveReport {
            resolved,
            written,
            yaml,
        })?;
    } else {
        print!("{stdout}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The YAML files `paths` name: files as they are, directories searched for `*.yaml` and
/// `*.yml`, in order.
fn inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        let mut pending = vec![path.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                let p = entry.path();
                if kind.is_dir() {
                    pending.push(p);
                } else if kind.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml")
                {
                    found.push(p);
                }
            }
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn read_yaml(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_YAML + 1), &mut text)
        .with_context(|| format!("reading {}: it is not UTF-8 text", path.display()))?;
    if text.len() as u64 > MAX_YAML {
        bail!("{}: larger than {MAX_YAML} bytes", path.display());
    }
    Ok(text)
}

/// Where the resolved `input` goes: `output` itself for one file given, the input's path
/// under `output` otherwise; `None` for standard output.
fn output_path(output: &Option<PathBuf>, input: &Path, one_file: bool) -> Option<PathBuf> {
    let output = output.as_ref()?;
    if one_file {
        return Some(output.clone());
    }
    // Under the output directory, whatever the input's path: no `..` or root climbs out.
    let inside: PathBuf = (input.components())
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    Some(output.join(inside))
}

/// The name an image of `spec` is pushed under: `catalog:cc:debug` as `cc-debug`, a spec
/// file as its directory's name (or its own, if it is not `bareboat.toml`).
fn image_name(spec: &str) -> String {
    let name = match spec.strip_prefix("catalog:") {
        Some(image) => image.replace(':', "-"),
        None => {
            let path = Path::new(spec);
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            match stem.as_deref() {
                Some("bareboat") | None => (path.parent())
                    .and_then(|p| std::fs::canonicalize(p).ok())
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "app".into()),
                Some(stem) => stem.to_string(),
            }
        }
    };
    let clean: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean.trim_matches(['-', '.']).to_string()
}

/// Builds `spec`, pushes it under `--repo`, and returns the reference by digest.
async fn build_and_push(spec: &str, args: &ResolveArgs, cache_root: &Path) -> Result<String> {
    let Some(repo) = &args.repo else {
        bail!("bareboat://{spec}: give --repo REGISTRY/PREFIX to push what is built to");
    };
    let target = format!("{}/{}", repo.trim_end_matches('/'), image_name(spec));
    let name: DockerName = target
        .parse()
        .with_context(|| format!("--repo {repo}: {target} is not an image name"))?;
    let spec_args = SpecArgs {
        spec: spec.to_string(),
        release: None,
        arch: Vec::new(),
    };
    let request = Request::of(&spec_args, &AppArgs::default())?;
    let output = format!("docker://{}", name.full());
    let mut build = request.build(std::slice::from_ref(&output), None, BuildOptions::default())?;
    if let Some(key) = &args.sign {
        let identity = Some(format!("{}/{}", name.registry, name.repository));
        build.signer = Some(args.sign_options.signer(key, identity)?);
        build.sign = true;
    }
    let machinery = Machinery::new(cache_root, &args.archive, Some(&args.registry))?;
    let report = build
        .run(&machinery.context())
        .await
        .with_context(|| format!("building bareboat://{spec}"))?;
    Ok(format!(
        "{}/{}@{}",
        name.registry, name.repository, report.digest
    ))
}

/// The digest `reference`'s tag names now, as a reference.
async fn pin(reference: &str, args: &ResolveArgs) -> Result<String> {
    let name: DockerName = reference
        .parse()
        .with_context(|| format!("--pin: {reference:?} is not an image reference"))?;
    let registry = Registry::new(&args.registry.options()?, &name.registry)?;
    let (_, top) = Remote::open(registry, &name, None)
        .await
        .with_context(|| format!("--pin: reading {reference}"))?;
    Ok(format!(
        "{}/{}@{}",
        name.registry,
        name.repository,
        top.digest()
    ))
}
