//! Where images go and where they come from: writing an image from a layout to any output
//! reference, and opening any source reference as a layout.

use std::path::Path;

use anyhow::{Context, Result, bail};
use bareboat_oci::archive;
use bareboat_oci::layout::Layout;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::referrer;
use bareboat_oci::registry::{PushReport, Registry, RegistryOptions};
use oci_spec::image::Descriptor;

/// An image to read: a layout and the descriptor of the image (or index) in it. An archive
/// is unpacked into a temporary layout that lives as long as this.
pub struct Source {
    pub layout: Layout,
    pub top: Descriptor,
    _unpacked: Option<tempfile::TempDir>,
}

impl Source {
    /// The image as a base to build on, named `name`.
    pub fn base(&self, name: &str) -> bareboat_build::base::Base<'_> {
        bareboat_build::base::Base {
            name: name.to_string(),
            layout: &self.layout,
            top: self.top.clone(),
        }
    }
}

/// Opens `source`; archives and registry images are unpacked or pulled under `scratch`,
/// every blob checked.
pub async fn open(source: &ImageRef, scratch: &Path, registry: &RegistryOptions) -> Result<Source> {
    let temporary = || -> Result<(tempfile::TempDir, Layout)> {
        let dir = tempfile::Builder::new()
            .prefix("bareboat-source-")
            .tempdir_in(scratch)
            .with_context(|| format!("{}", scratch.display()))?;
        let layout = Layout::create(dir.path())?;
        Ok((dir, layout))
    };
    let unpack = |file: &Path, tag: Option<&str>| -> Result<Source> {
        let (dir, layout) = temporary()?;
        let top = archive::read(file, &layout, tag)?;
        Ok(Source {
            layout,
            top,
            _unpacked: Some(dir),
        })
    };
    match source {
        ImageRef::Docker { name, digest } => {
            let (dir, layout) = temporary()?;
            let client = Registry::new(registry, &name.registry)?;
            let top = client.pull(name, digest.as_ref(), &layout).await?;
            // The image's SBOMs come along; an image is still usable without them.
            if let Err(e) = client.pull_referrers(name, &layout, &top).await {
                tracing::warn!("the referrers of {} were not pulled: {e}", name.full());
            }
            Ok(Source {
                layout,
                top,
                _unpacked: Some(dir),
            })
        }
        ImageRef::Oci { dir, tag } => {
            if !dir.join("oci-layout").is_file() {
                bail!(
                    "{}: not an OCI layout (no oci-layout file)\n  hint: check the path, or use oci-archive: for a tar file",
                    dir.display()
                );
            }
            let layout = Layout::create(dir)?;
            let top = layout.resolve(tag)?;
            Ok(Source {
                layout,
                top,
                _unpacked: None,
            })
        }
        ImageRef::OciArchive { file, tag } => unpack(file, tag.as_deref()),
        ImageRef::DockerArchive { file, name } => {
            let name = name.as_ref().map(|n| n.full());
            unpack(file, name.as_deref())
        }
    }
}

/// Whether `output` can hold an image of several platforms.
pub fn holds_several_platforms(output: &ImageRef) -> bool {
    !matches!(output, ImageRef::DockerArchive { .. })
}

/// What writing an image did.
pub struct Written {
    /// The image (or index) written.
    pub top: Descriptor,
    /// For a push, what moved.
    pub push: Option<PushReport>,
}

/// Writes the image (or index) `top` of `layout` to `output`. `arch` picks one platform
/// out of an index, which a docker archive needs.
pub async fn write(
    layout: &Layout,
    top: &Descriptor,
    output: &ImageRef,
    arch: Option<&str>,
    registry: &RegistryOptions,
) -> Result<Written> {
    let mut push = None;
    let top = match arch {
        Some(arch) => layout.platform_manifest(top, arch)?,
        None => top.clone(),
    };
    match output {
        ImageRef::Oci { dir, tag } => {
            let pending = Layout::pending(dir)?;
            layout.copy_image(pending.layout(), &top)?;
            for (_, artifact) in referrer::of_image(layout, &top)? {
                layout.copy_image(pending.layout(), &artifact)?;
                pending.layout().add_untagged(&artifact)?;
            }
            pending.layout().tag(&top, std::slice::from_ref(tag))?;
            pending.commit()?;
        }
        ImageRef::OciArchive { file, tag } => {
            archive::write_oci(layout, &top, tag.as_deref().unwrap_or("latest"), file)?;
        }
        ImageRef::DockerArchive { file, name } => {
            if top.media_type().to_string().ends_with("index.v1+json") {
                bail!(
                    "a docker archive holds one platform's image, and this image has several\n  hint: choose one with --arch, or write oci-archive: instead"
                );
            }
            archive::write_docker(layout, &top, name.as_ref(), file)?;
        }
        ImageRef::Docker { name, digest } => {
            if digest
                .as_ref()
                .is_some_and(|d| d.to_string() != top.digest().to_string())
            {
                bail!(
                    "{} names {}, but the image is {}\n  hint: push to a tag, or to the image's own digest",
                    name.full(),
                    digest.as_ref().map(ToString::to_string).unwrap_or_default(),
                    top.digest()
                );
            }
            let by_digest = digest.is_some();
            let client = Registry::new(registry, &name.registry)?;
            let mut report = client.push(layout, &top, name, !by_digest).await?;
            report.referrers = client.push_referrers(layout, &top, name).await?;
            push = Some(report);
        }
    }
    Ok(Written { top, push })
}
