#![deny(missing_docs)]

//! bareboat-apt: a Debian archive client that gets exactly the right packages, provably
//! untampered, and fast.
//!
//! - [`keyring`] verifies `InRelease` signatures against Debian's embedded archive keys;
//! - [`release`] and [`index`] read the signed Release file and the `Packages` indexes it
//!   vouches for;
//! - [`archive`] loads sources into a [`archive::Universe`] of packages;
//! - [`solver`] chooses an install set with a SAT solver;
//! - [`lockfile`] records it, [`syntax`] checks the names it and the indexes give;
//!   [`cache`] and [`download`] fetch and keep the `.deb` files, through the proxy
//!   [`proxy`] finds in apt's configuration and the environment;
//! - [`deb`] reads a package as a stream;
//! - [`dpkg`] reads an installed system's dpkg database, and says where merged /usr puts a
//!   package's paths.
//!
//! ```no_run
//! # async fn run() -> Result<(), bareboat_apt::Error> {
//! use bareboat_apt::{archive::{LoadOptions, Universe}, cache::Cache, download::{Client, Silent},
//!     keyring::Keyring, solver::{solve, Request, SolveRequest}, sources::{Distribution, Mirrors}};
//! let mirrors = Mirrors::from_host(std::path::Path::new("/"))?;
//! let sources = mirrors.sources(Distribution::Trixie)?;
//! let cache = Cache::open(&Cache::default_root())?;
//! let opts = LoadOptions { arch: "amd64".into(), offline: false,
//!     keyring: Keyring::debian().into(), now: std::time::SystemTime::now(),
//!     locked: Vec::new(), allow_older_release: false, accept_releases: Vec::new() };
//! let universe = Universe::load(&Client::new(), &cache, &sources, &opts, &Silent).await?;
//! let solution = solve(&universe, &SolveRequest {
//!     packages: vec![Request::parse("python3")], exclude: vec!["dpkg".into()], ..Default::default() })?;
//! println!("{} packages", solution.packages.len());
//! # Ok(()) }
//! ```

pub mod archive;
pub mod cache;
pub mod contents;
pub mod deb;
pub mod download;
pub mod dpkg;
mod error;
pub mod hostfile;
pub mod index;
pub mod keyring;
pub mod lockfile;
pub mod proxy;
pub mod relation;
pub mod release;
pub mod solver;
pub mod sources;
pub mod syntax;

pub use error::{Error, Result};
