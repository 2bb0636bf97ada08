//! bareboat-build: the pipeline from a spec to images.
//!
//! - [`pipeline`] is the library call behind `bareboat lock` and `bareboat build`: a
//!   [`pipeline::Lock`] or a [`pipeline::Build`], run, gives a typed report;
//! - [`lock`] turns a spec into a lockfile and a lockfile into cached, verified packages;
//! - [`base`] reads a base image that bareboat builds on: its layers, config and the
//!   Debian packages it has installed;
//! - [`hostfiles`] expands the spec's `[[files]]`, and [`deps`] finds what those files need
//!   at run time (ELF libraries and interpreters, script interpreters); [`abi`] refuses a
//!   program that needs symbol versions the image's libraries lack;
//! - [`build`] writes one platform's image from the lock; [`probe`] is the health probe an
//!   image can carry;
//! - [`rebase`] puts an image's own layers on another base, checked;
//! - [`provenance`] is the SLSA provenance of a build, and what a rebuild reads back;
//!   [`rebuild`] takes an image's added files back out of it, and finds where a rebuilt
//!   image first differs.
//!
//! Specs and the catalogue are `bareboat-spec`'s; the tree a build fills is
//! `bareboat-rootfs`'s.

#![deny(missing_docs)]

mod error;

pub mod abi;
pub mod base;
pub mod build;
mod config;
mod content;
pub mod deps;
pub mod hostfiles;
pub mod lock;
mod package;
pub mod pipeline;
mod plan;
pub mod probe;
pub mod provenance;
pub mod rebase;
pub mod rebuild;
pub mod shared;

pub use error::Error;
