//! Image documents: the config, the manifest and the index.

use std::collections::HashMap;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, History, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use serde::Serialize;

use crate::Error;
use crate::blob::Layer;
use crate::layer::LayerBlob;
use crate::layout::Layout;
use crate::mutate::Mutable;

/// What the image's config says about running it.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// The user the process runs as (`NAME`, `UID` or `UID:GID`); empty for the default.
    pub user: String,
    /// The program to run and its first arguments; empty for none.
    pub entrypoint: Vec<String>,
    /// The default arguments, or the command when there is no entrypoint; empty for none.
    pub cmd: Vec<String>,
    /// The working directory, when one is set.
    pub workdir: Option<String>,
    /// `NAME=value` pairs, in order.
    pub env: Vec<String>,
    /// Such as `8080/tcp`.
    pub exposed_ports: Vec<String>,
    /// Config labels, as name and value.
    pub labels: Vec<(String, String)>,
    /// Docker's `Healthcheck.Test` (such as `["CMD", "/usr/local/bin/health", URL]`), which
    /// Docker and podman run; the OCI config has no field of its own for it.
    pub healthcheck: Option<Vec<String>>,
}

/// One image for one platform.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// A Debian architecture name: `amd64`, `arm64`, ...
    pub arch: String,
    /// How the image's process is run.
    pub run: RunConfig,
    /// The image's creation time, RFC 3339.
    pub created: String,
    /// Manifest annotations.
    pub annotations: Vec<(String, String)>,
    /// The layers of the base image this one is built on, if any.
    pub base: Option<BaseLayers>,
}

/// What an image built on another one keeps of it: its layers (already in the layout), as
/// the base's manifest and config list them.
#[derive(Clone, Debug, Default)]
pub struct BaseLayers {
    /// The base's layer descriptors, bottom first.
    pub layers: Vec<Descriptor>,
    /// Their diff_ids, as the base's config lists them.
    pub diff_ids: Vec<String>,
    /// The base's config history, which this image's continues.
    pub history: Vec<History>,
}

/// A layer and what made it, for the config's history.
pub struct BuiltLayer {
    /// The written layer.
    pub blob: LayerBlob,
    /// What made it, for the history's `created_by`.
    pub created_by: String,
    /// The layer's time, RFC 3339.
    pub created: String,
}

/// The OCI platform of a Debian architecture.
pub fn platform(debian_arch: &str) -> (Arch, Option<&'static str>) {
    match debian_arch {
        "amd64" => (Arch::Amd64, None),
        "arm64" => (Arch::ARM64, Some("v8")),
        "armhf" => (Arch::ARM, Some("v7")),
        "armel" => (Arch::ARM, Some("v5")),
        "i386" => (Arch::i386, None),
        "ppc64el" => (Arch::PowerPC64le, None),
        "s390x" => (Arch::s390x, None),
        "riscv64" => (Arch::RISCV64, None),
        other => (Arch::Other(other.to_string()), None),
    }
}

/// The Debian architecture of an OCI platform: the architecture, and the variant where it
/// tells two apart (armhf from armel); `None` for one Debian does not release.
pub fn debian_arch(arch: &str, variant: Option<&str>) -> Option<&'static str> {
    const DEBIAN: &[&str] = &[
        "amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "s390x", "riscv64",
    ];
    DEBIAN.iter().copied().find(|d| {
        let (a, v) = platform(d);
        a.to_string() == arch && (variant.is_none() || v.is_none() || v == variant)
    })
}

/// The layers of the image `what` (as errors name it), whose manifest lists `layers` and
/// whose config lists `diff_ids`, each with its diff_id; refused unless there are as many
/// of each, and each diff_id is a digest.
pub fn layers(what: &str, layers: &[Descriptor], diff_ids: &[String]) -> Result<Vec<Layer>, Error> {
    let refused = |reason: String| Error::Image {
        what: what.to_string(),
        reason,
    };
    if layers.len() != diff_ids.len() {
        return Err(refused(format!(
            "its manifest lists {} layers, and its config's rootfs.diff_ids {}: each layer needs the diff_id of its uncompressed content",
            layers.len(),
            diff_ids.len()
        )));
    }
    layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            Ok(Layer {
                descriptor: d.clone(),
                diff_id: diff_id
                    .parse()
                    .map_err(|e| refused(format!("the diff_id of layer {}: {e}", d.digest())))?,
            })
        })
        .collect()
}

/// Writes the config and manifest of an image whose layers are already in `layout`, and
/// returns the manifest's descriptor, with the platform: the image is made from `spec`'s
/// config and base, and changed by [`Mutable`]'s transforms (each layer appended, each
/// annotation set), as every other image bareboat changes is.
pub fn write_image(
    layout: &Layout,
    spec: &ImageSpec,
    layers: &[BuiltLayer],
) -> Result<Descriptor, Error> {
    let (arch, variant) = platform(&spec.arch);
    let mut platform = PlatformBuilder::default()
        .architecture(arch.clone())
        .os(Os::Linux);
    if let Some(v) = variant {
        platform = platform.variant(v);
    }
    let mut image = Mutable::new(config_of(spec)?, Some(platform.build()?));
    if let Some(base) = &spec.base {
        put_on(&mut image, base)?;
    }
    for l in layers {
        let descriptor = Descriptor::new(
            MediaType::Other(l.blob.media_type.to_string()),
            l.blob.size,
            oci_spec::image::Digest::try_from(l.blob.digest.to_string())?,
        );
        let layer = Layer {
            descriptor,
            diff_id: l.blob.diff_id.clone(),
        };
        image.append(layer, &l.created_by, &l.created);
    }
    for (key, value) in &spec.annotations {
        image.annotate(key, value);
    }
    image.write(&mut &*layout)
}

/// The config `spec` describes, without layers or history yet.
fn config_of(spec: &ImageSpec) -> Result<serde_json::Value, Error> {
    let (arch, variant) = platform(&spec.arch);
    let run = &spec.run;
    let mut config = ConfigBuilder::default()
        .user(run.user.clone())
        .env(run.env.clone());
    if !run.entrypoint.is_empty() {
        config = config.entrypoint(run.entrypoint.clone());
    }
    if !run.cmd.is_empty() {
        config = config.cmd(run.cmd.clone());
    }
    if let Some(dir) = &run.workdir {
        config = config.working_dir(dir.clone());
    }
    if !run.exposed_ports.is_empty() {
        config = config.exposed_ports(run.exposed_ports.clone());
    }
    if !run.labels.is_empty() {
        config = config.labels(run.labels.iter().cloned().collect::<HashMap<_, _>>());
    }
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(Vec::<String>::new())
        .build()?;
    let mut image = ImageConfigurationBuilder::default()
        .created(spec.created.clone())
        .architecture(arch)
        .os(Os::Linux)
        .config(config.build()?)
        .rootfs(rootfs)
        .history(Vec::new());
    if let Some(v) = variant {
        image = image.variant(v);
    }
    let mut config = serde_json::to_value(image.build()?).map_err(oci_spec::OciSpecError::from)?;
    if let Some(test) = &run.healthcheck {
        config["config"]["Healthcheck"] = serde_json::json!({ "Test": test });
    }
    Ok(config)
}

/// Puts `image` (with no layers yet) on the base `base`: its layers, and its history, which
/// the image's continues.
fn put_on(image: &mut Mutable, base: &BaseLayers) -> Result<(), Error> {
    image.layers = layers("the base image", &base.layers, &base.diff_ids)?;
    let mut history = base.history.clone();
    // History entries pair with layers in order, skipping `empty_layer` ones: a base with
    // fewer entries than layers would have the first new layer credited to the base.
    let recorded = history
        .iter()
        .filter(|h| h.empty_layer() != Some(true))
        .count();
    for _ in recorded..base.layers.len() {
        history.push(
            HistoryBuilder::default()
                .created_by("(a layer of the base image, which recorded no history for it)")
                .build()?,
        );
    }
    let history = serde_json::to_value(history).map_err(oci_spec::OciSpecError::from)?;
    image.edit_config(|config| config["history"] = history);
    Ok(())
}

/// Writes an image index over per-platform manifests and returns its descriptor.
pub fn write_index(layout: &Layout, manifests: Vec<Descriptor>) -> Result<Descriptor, Error> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()?;
    layout.put_json(MediaType::ImageIndex, &canonical_json(&index)?)
}

/// JSON with object keys sorted, so that documents holding maps serialize the same way
/// every time.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let value = serde_json::to_value(value).map_err(oci_spec::OciSpecError::from)?;
    Ok(serde_json::to_vec(&value).map_err(oci_spec::OciSpecError::from)?)
}
