//! `bareboat slim`: an image from any source read whole (capped and checked as inspect
//! reads one, its files' contents kept on disk), what its application needs found, the
//! plan for a distroless image made of verified packages and the image's own files, built
//! by the build pipeline into any sinks, and the two images compared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bareboat_apt::archive::Universe;
use bareboat_apt::sources::Distribution;
use bareboat_build::build::BuildOptions;
use bareboat_build::pipeline::{Build, BuildReport, Context};
use bareboat_inspect::compare::Column;
use bareboat_inspect::filesystem::{self, Kept, Limits, read_keeping};
use bareboat_inspect::inspect::Report;
use bareboat_oci::model::Image;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::referrer::Follow;
use bareboat_oci::registry::PushReport;
use bareboat_oci::stack::Store;
use bareboat_oci::transport::{self, Fetch};
use bareboat_spec::catalog;
use oci_spec::image::Config;
use serde::Serialize;

use crate::needs::{self, Missing};
use crate::owners::Owners;
use crate::plan::{self, Plan};
use crate::probe::{self, Outcome, Probe};

/// The most bytes of file contents a slim keeps on disk while it reads the source.
pub const MAX_KEPT: u64 = 16 << 30;

/// A slim, as asked for.
pub struct Slim {
    /// The source image, in any transport's syntax.
    pub source: String,
    /// Where the slim image goes, in any transport's syntax.
    pub outputs: Vec<String>,
    /// The platform's Debian architecture.
    pub arch: String,
    /// Globs of paths kept whatever the analysis finds.
    pub keep: Vec<String>,
    /// Setuid bits and the user.
    pub options: plan::Options,
    /// How the slim image is built.
    pub build: BuildOptions,
    /// The tracker's data that vulnerabilities are counted with, before and after.
    pub vulnerabilities: Option<PathBuf>,
    /// The probes.
    pub probing: Probing,
}

/// What a slim did.
#[derive(Debug, Serialize)]
pub struct SlimReport {
    /// The source image, as named.
    pub source: String,
    /// The architecture slimmed.
    pub arch: String,
    /// Each path the application needs, with why.
    pub needed: BTreeMap<String, Vec<String>>,
    /// What the application needs that the source image lacks.
    pub missing: Vec<Missing>,
    /// What the slim image is made of.
    pub plan: Plan,
    /// The source's figures.
    pub before: Column,
    /// The slim image's.
    pub after: Column,
    /// Each probe's outcome in the source and in the slim image, the same.
    pub probes: Vec<Compared>,
    /// What the report must say besides: probes that could not run.
    pub notes: Vec<String>,
    /// The build of the slim image.
    pub build: BuildReport,
}

/// A probe's outcome in both images.
#[derive(Debug, Serialize)]
pub struct Compared {
    /// In the source.
    pub source: Outcome,
    /// In the slim image.
    pub slim: Outcome,
}

/// How the image is probed.
#[derive(Debug, Default)]
pub struct Probing {
    /// Probes whose touched paths are kept, and whose outcomes must match.
    pub record: Vec<Probe>,
    /// Probes whose outcomes must match, and nothing more.
    pub verify: Vec<Probe>,
    /// Environment variables added to the image's (`NAME=VALUE`).
    pub env: Vec<String>,
    /// How long one probe may take.
    pub timeout: Duration,
}

/// Why a slim failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source could not be opened or read.
    #[error("reading {source_name}: {error}")]
    Source {
        /// The source as named.
        source_name: String,
        /// What went wrong.
        error: bareboat_inspect::Error,
    },
    /// The slim image could not be planned.
    #[error(transparent)]
    Plan(#[from] plan::Error),
    /// The slim image could not be built.
    #[error(transparent)]
    Build(Box<bareboat_build::Error>),
    /// No output was named.
    #[error("a slim needs somewhere to write the slim image: give -o REF")]
    NoOutput,
    /// A probe could not run.
    #[error(transparent)]
    Probe(#[from] probe::Error),
    /// A probe gave another result in the slim image than in the source.
    #[error(
        "{} gives another result in the slim image ({}) than in the source ({}); nothing was written. {}{}",
        original.probe,
        slim.summary(),
        original.summary(),
        match missing.is_empty() {
            true => "It found every path it looked for that the source has".to_string(),
            false => format!("It looked for what the source has and the slim image lacks: {}. Keep them with --keep, or record them with --probe", missing.join(", ")),
        },
        user.as_deref().map(|u| format!(". {u}: that may be the difference (--user)")).unwrap_or_default()
    )]
    Differs {
        /// The outcome in the source.
        original: Box<Outcome>,
        /// The outcome in the slim image.
        slim: Box<Outcome>,
        /// Paths the slim image's run looked for and did not find, which the source has.
        missing: Vec<String>,
        /// How the slim image's user differs from the source's, when it does.
        user: Option<String>,
    },
    /// The slim image could not be read back.
    #[error("reading the slim image {output}: {error}")]
    Output {
        /// The output as named.
        output: String,
        /// What went wrong.
        error: bareboat_inspect::Error,
    },
}

impl From<bareboat_build::Error> for Error {
    fn from(error: bareboat_build::Error) -> Error {
        Error::Build(Box::new(error))
    }
}

impl Slim {
    /// Reads the source, probes it, plans, builds, probes the slim image and compares, and
    /// writes every output.
    pub async fn run(&self, cx: &Context<'_>) -> Result<SlimReport, Error> {
        if self.outputs.is_empty() {
            return Err(Error::NoOutput);
        }
        let scratch_root = cx.archive.cache.root().join("tmp");
        let scratch = (tempfile::Builder::new().prefix("bareboat-slim-"))
            .tempdir_in(&scratch_root)
            .map_err(|e| self.source_error(bareboat_apt::Error::io(&scratch_root, e).into()))?;
        let source = read(&self.source, &self.arch, cx, &scratch.path().join("source"))
            .await
            .map_err(|e| self.source_error(e))?;
        let data = self.vulnerabilities.as_deref();
        let before = Column::of(&self.source, &source.report, &source.files, data)
            .map_err(|e| self.source_error(e))?;
        let config = &source.config;
        let kept = &source.files;
        let owners = Owners::read(kept).map_err(|e| self.source_error(io(scratch.path(), e)))?;
        let mut notes = Vec::new();
        let probes: Vec<Probe> = (self.probing.record.iter())
            .chain(&self.probing.verify)
            .cloned()
            .collect();
        let probing = !probes.is_empty() && probe::runs_here(&self.arch);
        if !probes.is_empty() && !probing {
            notes.push(format!(
                "the probes did not run: {} programs do not run on this machine (qemu-user-static's binfmt handler is not registered); the static pass alone found what is kept",
                self.arch
            ));
        }
        let originals = match probing {
            true => {
                let at = scratch.path().join("probe-source");
                probe::record(&kept.view, &probes, &self.runner(kept, config, &at)?)?
            }
            false => Vec::new(),
        };
        let probed: BTreeSet<String> = (originals.iter().take(self.probing.record.len()))
            .flat_map(|r| r.found.iter().cloned())
            .collect();
        let analysis = scratch.path().join("analysis");
        std::fs::create_dir_all(&analysis).map_err(|e| self.source_error(io(&analysis, e)))?;
        let request = needs::Request {
            config,
            arch: &self.arch,
            owners: &owners,
            keep: &self.keep,
            probed: &probed,
            scratch: &analysis,
        };
        let needs = needs::find(kept, &request).map_err(|e| self.source_error(io(&analysis, e)))?;
        let (distribution, release) = plan::release_of(kept)?;
        let archive = match release {
            Some(release) => Some(self.archive(cx, release).await?),
            None => None,
        };
        let staging = scratch.path().join("files");
        std::fs::create_dir_all(&staging).map_err(|e| self.source_error(io(&staging, e)))?;
        let image = plan::Source {
            files: kept,
            config,
            arch: &self.arch,
            release,
            distribution,
            owners: &owners,
        };
        let plan = plan::plan(&image, &needs, archive.as_ref(), &self.options, &staging)?;
        let name = format!("the slim image of {}", self.source);
        // With probes, the slim image is built aside, probed, and written out only when it
        // behaves as the source does.
        // With probes, the slim image is read once, to probe it and to report on it.
        let (built, compared, probed) = match probing {
            false => {
                let build = Build::new(
                    plan.spec.clone(),
                    &name,
                    None,
                    self.outputs.clone(),
                    self.build.clone(),
                );
                (build.run(cx).await?, Vec::new(), None)
            }
            true => {
                let aside = format!("oci:{}:slim", scratch.path().join("built").display());
                let build = Build::new(
                    plan.spec.clone(),
                    &name,
                    None,
                    vec![aside.clone()],
                    self.build.clone(),
                );
                let mut built = build.run(cx).await?;
                let (compared, probed) = self
                    .verify(cx, &aside, &source, originals, &probes, scratch.path())
                    .await
                    .map_err(|e| match e {
                        Error::Differs {
                            original,
                            slim,
                            missing,
                            ..
                        } => Error::Differs {
                            original,
                            slim,
                            missing,
                            user: plan.user.note.clone(),
                        },
                        e => e,
                    })?;
                built.pushes = self.write_out(cx, &aside).await?;
                built.outputs = self.outputs.clone();
                (built, compared, Some(probed))
            }
        };
        let after =
            match probed {
                Some(slim) => Column::of(&self.outputs[0], &slim.report, &slim.files, data)
                    .map_err(|error| Error::Output {
                        output: self.outputs[0].clone(),
                        error,
                    })?,
                None => self.after(cx, &scratch_root, data).await?,
            };
        Ok(SlimReport {
            source: self.source.clone(),
            arch: self.arch.clone(),
            needed: (needs.paths.iter())
                .map(|(p, whys)| {
                    (
                        format!("/{p}"),
                        whys.iter().map(ToString::to_string).collect(),
                    )
                })
                .collect(),
            missing: needs.missing,
            plan,
            probes: compared,
            notes,
            before,
            after,
            build: built,
        })
    }

    /// How the image `files` runs under probes, as `config` says, with `--probe-env`.
    fn runner<'a>(
        &self,
        files: &Kept,
        config: &Config,
        scratch: &'a Path,
    ) -> Result<probe::Runner<'a>, Error> {
        let account = plan::account(files, config.user().as_deref().unwrap_or_default())?;
        let mut env = config.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={}", needs::DEFAULT_PATH));
        }
        env.extend(self.probing.env.iter().cloned());
        Ok(probe::Runner {
            argv: (config.entrypoint().iter().flatten())
                .chain(config.cmd().iter().flatten())
                .cloned()
                .collect(),
            env,
            cwd: config.working_dir().clone().unwrap_or_default(),
            user: (account.uid, account.gid),
            timeout: self.probing.timeout,
            scratch,
        })
    }

    /// Runs the probes in the slim image built at `aside`, and compares what each gives
    /// with what it gave in the source; a difference fails the slim, naming the paths the
    /// slim image lacked that the source has. Returns the comparisons, and the slim image
    /// as it was read.
    async fn verify(
        &self,
        cx: &Context<'_>,
        aside: &str,
        source: &Read,
        originals: Vec<probe::Recorded>,
        probes: &[Probe],
        scratch: &Path,
    ) -> Result<(Vec<Compared>, Read), Error> {
        let slim = read(aside, &self.arch, cx, &scratch.join("slim"))
            .await
            .map_err(|error| Error::Output {
                output: aside.to_string(),
                error,
            })?;
        let at = scratch.join("probe-slim");
        let runner = self.runner(&slim.files, &slim.config, &at)?;
        let slimmed = probe::record(&slim.files.view, probes, &runner)?;
        let mut compared = Vec::new();
        for (original, slim) in originals.into_iter().zip(slimmed) {
            if !original.outcome.same_as(&slim.outcome) {
                let missing = (slim.absent.iter())
                    .filter(|p| {
                        needs::follow(&source.files, p)
                            .is_some_and(|(real, _)| source.files.view.contains_key(&real))
                    })
                    .map(|p| format!("/{p}"))
                    .collect();
                return Err(Error::Differs {
                    original: Box::new(original.outcome),
                    slim: Box::new(slim.outcome),
                    missing,
                    user: None,
                });
            }
            compared.push(Compared {
                source: original.outcome,
                slim: slim.outcome,
            });
        }
        Ok((compared, slim))
    }

    /// Writes the image built at `aside` to every output.
    async fn write_out(&self, cx: &Context<'_>, aside: &str) -> Result<Vec<PushReport>, Error> {
        let reference: ImageRef = aside.parse().map_err(bareboat_build::Error::from)?;
        let scratch = cx.archive.cache.root().join("tmp");
        let built = transport::open(&reference, &scratch, cx.registry, Fetch::OnDemand)
            .await
            .map_err(bareboat_build::Error::from)?;
        let mut pushes = Vec::new();
        for output in &self.outputs {
            let failed = |error| bareboat_build::Error::Output {
                output: output.clone(),
                error,
            };
            let reference: ImageRef = output.parse().map_err(failed)?;
            let sink = transport::sink(&reference, cx.registry).map_err(failed)?;
            let written = transport::write(&*built.blobs, &built.top, &*sink, None, Follow::Known)
                .await
                .map_err(failed)?;
            pushes.extend(written.push);
        }
        Ok(pushes)
    }

    /// The packages the archive has for `release`, from the mirrors a build would use.
    async fn archive(&self, cx: &Context<'_>, release: Distribution) -> Result<Universe, Error> {
        let spec = catalog::spec("static", None, release, vec![self.arch.clone()])
            .map_err(bareboat_build::Error::from)?;
        let progress = cx.stages.stage("indexes");
        Ok(bareboat_build::lock::universe(&spec, &self.arch, cx.archive, &*progress).await?)
    }

    /// The slim image's figures, read back from the first output.
    async fn after(
        &self,
        cx: &Context<'_>,
        scratch: &Path,
        data: Option<&Path>,
    ) -> Result<Column, Error> {
        let output = &self.outputs[0];
        let failed = |error: bareboat_inspect::Error| Error::Output {
            output: output.clone(),
            error,
        };
        let reference: ImageRef = output
            .parse()
            .map_err(|e: bareboat_oci::Error| failed(e.into()))?;
        let opened = transport::open(&reference, scratch, cx.registry, Fetch::OnDemand)
            .await
            .map_err(|e| failed(e.into()))?;
        let image =
            Image::open(&*opened.blobs, &opened.top, &self.arch).map_err(|e| failed(e.into()))?;
        let fs =
            filesystem::read(image.source, &image.layers, Limits::default()).map_err(failed)?;
        let report = bareboat_inspect::inspect::report(&image, &fs);
        Column::of(output, &report, &fs, data).map_err(failed)
    }

    fn source_error(&self, error: bareboat_inspect::Error) -> Error {
        Error::Source {
            source_name: self.source.clone(),
            error,
        }
    }
}

/// An image read whole, its files' contents kept.
struct Read {
    /// Its files.
    files: Kept,
    /// How it runs.
    config: Config,
    /// The inspect report on it.
    report: Report,
}

/// Opens `name` (any transport) and reads `arch`'s image whole, its contents kept under
/// `scratch`, with the caps inspect reads any image within.
async fn read(
    name: &str,
    arch: &str,
    cx: &Context<'_>,
    scratch: &Path,
) -> Result<Read, bareboat_inspect::Error> {
    let reference: ImageRef = name.parse()?;
    let opened = transport::open(&reference, scratch, cx.registry, Fetch::OnDemand).await?;
    let image = Image::open(&*opened.blobs, &opened.top, arch)?;
    let store = Store::new(&scratch.join("kept"), MAX_KEPT).map_err(|e| io(scratch, e))?;
    let files = read_keeping(image.source, &image.layers, Limits::default(), store)?;
    Ok(Read {
        report: bareboat_inspect::inspect::report(&image, &files),
        config: image.config.config().clone().unwrap_or_default(),
        files,
    })
}

/// A local I/O failure at `path`, as the readers report one.
fn io(path: &Path, e: std::io::Error) -> bareboat_inspect::Error {
    bareboat_apt::Error::io(path, e).into()
}
