//! bareboat-slim: an existing image turned into a distroless one.
//!
//! - [`needs`] finds, statically, what an application needs of the image it runs in;
//! - [`owners`] tells which of the image's packages owns each path, and whether the image
//!   modified it;
//! - [`plan`] makes the spec the slim image is built from: a catalogue level, the needed
//!   packages at the image's versions, sliced to what is needed, and the image's own files;
//! - [`slim`] runs it all, from any source to any sink, and reports.

#![deny(missing_docs)]

mod apk;
mod jar;
pub mod needs;
pub mod owners;
pub mod plan;
pub mod probe;
pub mod slim;
