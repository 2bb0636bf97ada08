//! bareboat-build: what an image is made of and how it is put together.
//!
//! - [`spec`] reads `bareboat.toml` and validates it, naming the line of any error;
//! - [`base`] reads a base image that bareboat builds on: its layers, config and the
//!   Debian packages it has installed;
//! - [`catalog`] holds the built-in images (`catalog:static`, `catalog:cc`, ...) and variants;
//! - [`lock`] turns a spec into a lockfile and a lockfile into cached, verified packages;
//! - [`hostfiles`] expands the spec's `[[files]]`, and [`deps`] finds what those files need
//!   at run time (ELF libraries and interpreters, script interpreters);
//! - [`rootfs`], [`policy`], [`synth`] and [`build`] assemble the image; [`runtimes`] and
//!   [`jks`] stand in for the language runtimes' maintainer scripts; [`probe`] is the
//!   health probe an image can carry.
//!
//! ```
//! use bareboat_build::catalog;
//! use bareboat_apt::sources::Distribution;
//! let spec = catalog::spec("static", None, Distribution::Trixie, vec!["amd64".into()]).unwrap();
//! assert!(spec.exclude.contains(&"debconf".to_string()));
//! ```

pub mod base;
pub mod build;
pub mod catalog;
pub mod deps;
pub mod hostfiles;
pub mod jks;
pub mod lock;
pub mod policy;
pub mod probe;
pub mod rootfs;
pub mod runtimes;
pub mod spec;
pub mod synth;
pub mod treecache;
