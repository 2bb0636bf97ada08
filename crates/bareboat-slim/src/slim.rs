//! `bareboat slim`: an image from any source read whole (capped and checked as inspect
//! reads one, its files' contents kept on disk), what its application needs found, the
//! plan for a distroless image made of verified packages and the image's own files, built
//! by the build pipeline into any sinks, and the two images compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bareboat_apt::archive::Universe;
use bareboat_apt::sources::Distribution;
use bareboat_build::build::BuildOptions;
use bareboat_build::pipeline::{Build, BuildReport, Context};
use bareboat_inspect::compare::Column;
use bareboat_inspect::filesystem::{self, Limits, read_keeping};
use bareboat_oci::model::Image;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::stack::Store;
use bareboat_oci::transport::{self, Fetch};
use bareboat_spec::catalog;
use serde::Serialize;

use crate::needs::{self, Missing};
use crate::owners::Owners;
use crate::plan::{self, Plan};

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
    /// The build of the slim image.
    pub build: BuildReport,
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
    Build(#[from] bareboat_build::Error),
    /// The slim image could not be read back.
    #[error("reading the slim image {output}: {error}")]
    Output {
        /// The output as named.
        output: String,
        /// What went wrong.
        error: bareboat_inspect::Error,
    },
}

impl Slim {
    /// Reads the source, plans, builds into every output, and compares.
    pub async fn run(&self, cx: &Context<'_>) -> Result<SlimReport, Error> {
        let scratch_root = cx.archive.cache.root().join("tmp");
        let scratch = (tempfile::Builder::new().prefix("bareboat-slim-"))
            .tempdir_in(&scratch_root)
            .map_err(|e| self.source_error(bareboat_apt::Error::io(&scratch_root, e).into()))?;
        let reference: ImageRef =
            (self.source.parse()).map_err(|e: bareboat_oci::Error| self.source_error(e.into()))?;
        let opened = transport::open(&reference, scratch.path(), cx.registry, Fetch::OnDemand)
            .await
            .map_err(|e| self.source_error(e.into()))?;
        let image = Image::open(&*opened.blobs, &opened.top, &self.arch)
            .map_err(|e| self.source_error(e.into()))?;
        let store = Store::new(&scratch.path().join("kept"), MAX_KEPT)
            .map_err(|e| self.source_error(io(scratch.path(), e)))?;
        let kept = read_keeping(image.source, &image.layers, Limits::default(), store)
            .map_err(|e| self.source_error(e))?;
        let report = bareboat_inspect::inspect::report(&image, &kept);
        let data = self.vulnerabilities.as_deref();
        let before =
            Column::of(&self.source, &report, &kept, data).map_err(|e| self.source_error(e))?;
        let config = image.config.config().clone().unwrap_or_default();
        let owners = Owners::read(&kept).map_err(|e| self.source_error(io(scratch.path(), e)))?;
        let analysis = scratch.path().join("analysis");
        std::fs::create_dir_all(&analysis).map_err(|e| self.source_error(io(&analysis, e)))?;
        let request = needs::Request {
            config: &config,
            arch: &self.arch,
            owners: &owners,
            keep: &self.keep,
            scratch: &analysis,
        };
        let needs =
            needs::find(&kept, &request).map_err(|e| self.source_error(io(&analysis, e)))?;
        let release = plan::release_of(&kept)?;
        let archive = self.archive(cx, release).await?;
        let staging = scratch.path().join("files");
        std::fs::create_dir_all(&staging).map_err(|e| self.source_error(io(&staging, e)))?;
        let source = plan::Source {
            files: &kept,
            config: &config,
            arch: &self.arch,
            release,
            owners: &owners,
        };
        let plan = plan::plan(&source, &needs, &archive, &self.options, &staging)?;
        // The source's contents are no longer needed: only the staged files are.
        drop(kept);
        let name = format!("the slim image of {}", self.source);
        let build = Build::new(
            plan.spec.clone(),
            &name,
            None,
            self.outputs.clone(),
            self.build.clone(),
        );
        let built = build.run(cx).await?;
        let after = self.after(cx, &scratch_root, data).await?;
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
            before,
            after,
            build: built,
        })
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

/// A local I/O failure at `path`, as the readers report one.
fn io(path: &Path, e: std::io::Error) -> bareboat_inspect::Error {
    bareboat_apt::Error::io(path, e).into()
}
