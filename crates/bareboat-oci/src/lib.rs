#![deny(missing_docs)]

//! bareboat-oci: the image model and the OCI formats it is written in.
//!
//! - [`digest`] hashes and counts bytes as they stream past;
//! - [`blob`] opens blobs without following links and checks them as they stream: size,
//!   digest, and a layer's diff_id;
//! - [`source`] is where blobs are read from ([`source::BlobSource`]: layouts, archives,
//!   registries), with the checks and the walk of an image's graph made once for all;
//! - [`sink`] is where images are written ([`sink::Sink`]: layouts, archives, registries);
//! - [`media`] tells what a media type names (index, manifest, config, layer);
//! - [`overlay`] reads a layer's tar stream as an overlay filesystem stacks it, with the
//!   checks every reader of a layer needs, for a visitor to apply; [`stack`] is the one
//!   visitor that stacks layers as runtimes do (whiteouts, parents through symlinks, one
//!   resolver), keeping file contents on disk where its caller asks;
//! - [`model`] decodes one platform's [`model::Image`] from any source;
//! - [`layer`] writes a deterministic, compressed tar layer from a sorted list of entries,
//!   computing its diff_id and digest in the same pass;
//! - [`image`] assembles the config, manifest and index documents; [`mutate`] changes an
//!   image (layers appended, config edited, base swapped, annotations set) and draws its
//!   blobs from a union of the images it came from;
//! - [`layout`] stores blobs and tags in an OCI image layout directory;
//! - [`archive`] writes and reads `oci-archive` and `docker-archive` tar files;
//! - [`credentials`] finds registry credentials where Docker and podman keep them;
//! - [`attach`] makes what is attached to an image after it is written (signatures,
//!   attestations, SBOMs), as OCI 1.1 referrers and as cosign's legacy tagged images, for
//!   every sink to write ([`sink::Sink::attach`]);
//! - [`referrer`] finds the artifacts and legacy images that refer to an image, checking
//!   each it follows against its listing, within bounds;
//! - [`registry`] pushes images to and pulls them from registries;
//! - [`transport`] opens an image by reference (`oci:`, `oci-archive:`,
//!   `docker-archive:`, `docker://`) and writes one to any reference;
//! - [`reference`] parses image references in the transport syntax of skopeo and podman,
//!   and normalises image names as Docker does.
//!
//! ```no_run
//! # fn run() -> Result<(), bareboat_oci::Error> {
//! use bareboat_oci::{layer::{Entry, LayerWriter}, layout::Layout, media::Compression};
//! let layout = Layout::create(std::path::Path::new("out"))?;
//! let entries = vec![Entry::dir("etc", 0o755, 0)];
//! let layer = LayerWriter::new(Compression::Gzip, None).write(&layout, &entries)?;
//! println!("{} (diff_id {})", layer.digest, layer.diff_id);
//! # Ok(()) }
//! ```

pub mod archive;
pub mod attach;
pub mod blob;
pub mod credentials;
pub mod digest;
mod error;
pub mod image;
pub mod layer;
pub mod layout;
pub mod media;
pub mod model;
pub mod mutate;
pub mod overlay;
pub mod reference;
pub mod referrer;
pub mod registry;
pub mod seal;
pub mod sink;
pub mod source;
pub mod stack;
pub mod tar_bounds;
pub mod transport;
pub mod unpack;

pub use error::Error;
