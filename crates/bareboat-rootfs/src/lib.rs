//! bareboat-rootfs: the root filesystem of an image, put together layer by layer.
//!
//! - [`rootfs`] unpacks packages and base layers into a tree of layers, with merged /usr,
//!   slicing ([`policy`]), conflict checks and no path out of the root;
//! - [`synth`] writes what maintainer scripts or an installer would have made (accounts,
//!   the CA bundle, os-release, dpkg's status), and [`runtimes`] and [`jks`] what the
//!   language runtimes' scripts would have;
//! - [`treecache`] saves unpacked trees so that a later build resumes from them.

#![deny(missing_docs)]

pub mod jks;
pub mod policy;
pub mod rootfs;
pub mod runtimes;
pub mod synth;
pub mod treecache;

/// A problem with what a package or the spec puts in the tree.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An entry the tree will not take: a path out of the root or through a symlink, a kind
    /// or size an image must not have, content that cannot be staged, or a path that
    /// cannot be removed or moved.
    #[error("{origin}: entry {path:?}: {reason}")]
    Refused {
        /// Where it came from: `package NAME`, a base image's layer, `bareboat`, or
        /// `remove` for a path the spec removes from the base image.
        origin: String,
        /// The entry's path, as its origin names it.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// Two packages, or a package and the base image, put different things at one path.
    #[error(
        "{path}: {first} and {second} both ship it, with different content\n  hint: exclude one of them, or drop the path with [slice] drop"
    )]
    Conflict {
        /// The path, absolute.
        path: String,
        /// What put it there first: `package NAME`, `the base image`, or, for a file
        /// bareboat made, `package bareboat`.
        first: String,
        /// The package that ships it too: `package NAME`.
        second: String,
    },
    /// A file could not be staged, or read from the host.
    // The cause is in the message, not a `source`: a chain printed whole would say it twice.
    #[error("{origin}: {error}")]
    Io {
        /// The image path being added, the host file, or the staging directory.
        origin: String,
        /// What the system said.
        error: std::io::Error,
    },
    /// A file whose content is held only in a layer blob elsewhere (a layer a shared cache
    /// supplied whole) was to be written out.
    #[error(
        "/{path}: its content is held only in a layer blob of the shared cache, not here, and a new layer would carry it"
    )]
    Elsewhere {
        /// The path.
        path: String,
    },
    /// A pattern of the spec (slicing, setuid) that is not a valid glob.
    #[error("invalid glob {pattern:?}: {reason}")]
    Glob {
        /// The pattern, as given (all of them, when the set as a whole fails).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}
