//! bareboat-slim: an existing image turned into a distroless one.
//!
//! - [`needs`] finds, statically, what an application needs of the image it runs in.

#![deny(missing_docs)]

pub mod needs;
