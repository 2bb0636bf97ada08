//! Pure transforms on images, in the shape of go-containerregistry's `mutate`: an image is
//! taken apart into its config (kept whole, as JSON, so that every field the source had
//! survives: volumes, stop signal, labels, history and those no type here knows), its
//! layers and its annotations; it is changed (layers appended, the config edited, the base
//! swapped, annotations set); and its new config and manifest are staged for any sink to
//! write, drawing the blobs it does not change from a [`Union`] of the images it came from.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType, Platform};
use serde_json::{Value, json};

use crate::Error;
use crate::attach::Staged;
use crate::blob::Layer;
use crate::image::canonical_json;
use crate::layout::Layout;
use crate::model::Image;
use crate::source::BlobSource;

/// An image taken apart, to be changed and written again.
#[derive(Clone, Debug)]
pub struct Mutable {
    /// The config, whole.
    pub config: Value,
    /// The layers, bottom first, each with its diff_id.
    pub layers: Vec<Layer>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The platform its descriptor names in an index.
    pub platform: Option<Platform>,
}

/// Where [`Mutable::write`] puts the config and manifest it makes: a [`Staged`] source for
/// any sink to write, or a layout.
pub trait Documents {
    /// Keeps `bytes`, a document of `media_type`, and describes it.
    fn put_document(&mut self, media_type: MediaType, bytes: Vec<u8>) -> Result<Descriptor, Error>;
}

impl Documents for Staged<'_> {
    fn put_document(&mut self, media_type: MediaType, bytes: Vec<u8>) -> Result<Descriptor, Error> {
        self.put(media_type, bytes)
    }
}

impl Documents for &Layout {
    fn put_document(&mut self, media_type: MediaType, bytes: Vec<u8>) -> Result<Descriptor, Error> {
        self.put_json(media_type, &bytes)
    }
}

impl Mutable {
    /// An image with no layers yet, of the config `config` (its `rootfs` is made from the
    /// layers when it is written), for `platform`.
    pub fn new(config: Value, platform: Option<Platform>) -> Mutable {
        Mutable {
            config,
            layers: Vec::new(),
            annotations: BTreeMap::new(),
            platform,
        }
    }

    /// `image`, taken apart: its config read again as it is stored, whole.
    pub fn of(image: &Image) -> Result<Mutable, Error> {
        let config = image.source.read_described(image.manifest.config())?;
        let config = serde_json::from_slice(&config).map_err(|error| Error::BadDocument {
            what: format!("config {}", image.manifest.config().digest()),
            error,
        })?;
        Ok(Mutable {
            config,
            layers: image.layers.clone(),
            annotations: (image.manifest.annotations().clone().unwrap_or_default())
                .into_iter()
                .collect(),
            platform: image.descriptor.platform().clone(),
        })
    }

    /// Appends `layer`, made by `created_by` at `created` (RFC 3339), with its history
    /// entry.
    pub fn append(&mut self, layer: Layer, created_by: &str, created: &str) {
        self.layers.push(layer);
        let mut history = self.history();
        history.push(json!({"created": created, "created_by": created_by}));
        self.config["history"] = Value::Array(history);
    }

    /// Edits the config in place; whatever `edit` leaves alone stays as it was.
    pub fn edit_config(&mut self, edit: impl FnOnce(&mut Value)) {
        edit(&mut self.config);
    }

    /// Sets the manifest annotation `key`.
    pub fn annotate(&mut self, key: &str, value: &str) {
        self.annotations.insert(key.to_string(), value.to_string());
    }

    /// Swaps the base: `old`'s layers must be this image's first layers (by digest); they,
    /// and the history entries that made them, give way to `new`'s layers and history.
    pub fn rebase(&mut self, old: &Mutable, new: &Mutable) -> Result<(), Error> {
        let prefix = old.layers.len();
        let matches = self.layers.len() >= prefix
            && (self.layers.iter().zip(&old.layers))
                .all(|(a, b)| a.descriptor.digest() == b.descriptor.digest());
        if !matches {
            return Err(Error::Image {
                what: "the image".into(),
                reason: format!(
                    "its first {prefix} layers are not the old base's: it was not built on it"
                ),
            });
        }
        let own = self.layers.split_off(prefix);
        self.layers = new.layers.clone();
        self.layers.extend(own);
        // The history entries the old base wrote: its whole history, when the image's
        // starts with it (as a build on a base writes it); else as many entries as made its
        // layers, with the empty ones among them.
        let history = self.history();
        let theirs = old.history();
        let cut = if history.starts_with(&theirs) {
            theirs.len()
        } else {
            let mut made = 0;
            history
                .iter()
                .position(|h| {
                    let reached = made == prefix;
                    if h["empty_layer"] != true {
                        made += 1;
                    }
                    reached
                })
                .unwrap_or(history.len())
        };
        let mut rebased = new.history();
        rebased.extend(history.into_iter().skip(cut));
        self.config["history"] = Value::Array(rebased);
        Ok(())
    }

    /// The config's history entries.
    fn history(&self) -> Vec<Value> {
        self.config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Puts the config and manifest in `to` and returns the manifest's descriptor, with the
    /// platform. The config's `rootfs.diff_ids` are the layers'.
    pub fn write(&self, to: &mut dyn Documents) -> Result<Descriptor, Error> {
        let mut config = self.config.clone();
        let diff_ids: Vec<String> = self.layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        let config = to.put_document(MediaType::ImageConfig, canonical_json(&config)?)?;
        let layers = self
            .layers
            .iter()
            .map(|l| l.descriptor.clone())
            .collect::<Vec<_>>();
        let mut manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(layers);
        if !self.annotations.is_empty() {
            let annotations: HashMap<String, String> =
                self.annotations.clone().into_iter().collect();
            manifest = manifest.annotations(annotations);
        }
        let mut d = to.put_document(
            MediaType::ImageManifest,
            canonical_json(&manifest.build()?)?,
        )?;
        d.set_platform(self.platform.clone());
        Ok(d)
    }
}

/// The blobs of several images as one source: each blob read from the source registered
/// for it, as a rebased image draws its base's layers from one image and its own from
/// another.
pub struct Union<'a> {
    sources: Vec<&'a dyn BlobSource>,
    by_digest: HashMap<String, usize>,
}

impl<'a> Union<'a> {
    /// No source yet.
    pub fn new() -> Union<'a> {
        Union {
            sources: Vec::new(),
            by_digest: HashMap::new(),
        }
    }

    /// Reads the blobs `blobs` describes from `source`, unless an earlier source has them.
    pub fn with(mut self, source: &'a dyn BlobSource, blobs: &[Descriptor]) -> Union<'a> {
        let i = self.sources.len();
        self.sources.push(source);
        for d in blobs {
            self.by_digest.entry(d.digest().to_string()).or_insert(i);
        }
        self
    }
}

impl Default for Union<'_> {
    fn default() -> Self {
        Union::new()
    }
}

impl BlobSource for Union<'_> {
    fn name(&self) -> String {
        let names: Vec<String> = self.sources.iter().map(|s| s.name()).collect();
        names.join(" + ")
    }

    fn stored(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
        match self.by_digest.get(d.digest().as_ref()) {
            Some(&i) => self.sources[i].stored(d),
            None => Err(Error::Blob {
                digest: d.digest().to_string(),
                reason: format!("none of {} holds it", self.name()),
            }),
        }
    }

    fn check_present(&self, d: &Descriptor) -> Result<(), Error> {
        match self.by_digest.get(d.digest().as_ref()) {
            Some(&i) => self.sources[i].check_present(d),
            None => self.stored(d).map(drop),
        }
    }

    fn origin(&self, d: &Descriptor) -> Option<crate::reference::DockerName> {
        let &i = self.by_digest.get(d.digest().as_ref())?;
        self.sources[i].origin(d)
    }

    fn concurrency(&self) -> usize {
        self.sources
            .iter()
            .map(|s| s.concurrency())
            .max()
            .unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn layer(name: &str) -> Layer {
        let digest = Digest::of(name.as_bytes()).to_string();
        Layer {
            descriptor: Descriptor::new(
                MediaType::ImageLayerGzip,
                1,
                oci_spec::image::Digest::try_from(digest.clone()).unwrap(),
            ),
            diff_id: digest.parse().unwrap(),
        }
    }

    fn image(layers: &[&str], history: Value) -> Mutable {
        Mutable {
            config: json!({
                "architecture": "amd64", "os": "linux",
                "config": {"StopSignal": "SIGQUIT", "Volumes": {"/data": {}}},
                "history": history,
                "x-unknown": 1,
            }),
            layers: layers.iter().map(|l| layer(l)).collect(),
            annotations: BTreeMap::new(),
            platform: None,
        }
    }

    #[test]
    fn a_rebase_swaps_the_base_layers_and_history_and_keeps_everything_else() {
        let old = image(
            &["a", "b"],
            json!([{"created_by": "a"}, {"created_by": "env", "empty_layer": true}, {"created_by": "b"}]),
        );
        let new = image(&["n"], json!([{"created_by": "n"}]));
        let mut app = image(
            &["a", "b", "app"],
            json!([{"created_by": "a"}, {"created_by": "env", "empty_layer": true}, {"created_by": "b"}, {"created_by": "app"}]),
        );
        app.rebase(&old, &new).unwrap();
        let names: Vec<Layer> = vec![layer("n"), layer("app")];
        assert_eq!(app.layers, names);
        let made: Vec<&str> = (app.config["history"].as_array().unwrap().iter())
            .map(|h| h["created_by"].as_str().unwrap())
            .collect();
        assert_eq!(made, ["n", "app"]);
        assert_eq!(app.config["config"]["StopSignal"], "SIGQUIT");
        assert_eq!(app.config["x-unknown"], 1, "fields no type knows are kept");

        // Written, the diff_ids are the layers'.
        let mut staged = Staged::over(None);
        app.annotate("k", "v");
        let d = app.write(&mut staged).unwrap();
        let manifest: Value = serde_json::from_slice(&staged.read_described(&d).unwrap()).unwrap();
        assert_eq!(manifest["annotations"]["k"], "v");
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);

        // A layer appended, and the config edited: the rest stays.
        app.append(layer("more"), "bareboat: more", "2026-12-07T00:00:00Z");
        app.edit_config(|c| c["config"]["User"] = "65532".into());
        assert_eq!(app.layers.last(), Some(&layer("more")));
        let history = app.config["history"].as_array().unwrap();
        assert_eq!(history.last().unwrap()["created_by"], "bareboat: more");
        assert_eq!(app.config["config"]["User"], "65532");
        assert_eq!(app.config["config"]["Volumes"], json!({"/data": {}}));

        // An image not built on the base is refused.
        let mut other = image(&["x", "app"], json!([]));
        let err = format!("{:#}", other.rebase(&old, &new).unwrap_err());
        assert!(err.contains("are not the old base's"), "{err}");
    }
}
