//! bareboat-debug: debugging distroless containers and images, which have no shell.
//!
//! - [`target`] names what is debugged: a running container (runc, podman, Docker) or a
//!   process, found by its PID, or an image that will not start;
//! - [`toolbox`] builds the tools (busybox, and any Debian package asked for) from the
//!   same verified packages as the images, for the target's release, cached by its
//!   lockfile, and writes them out as a directory;
//! - [`environment`] says what the command is given beside a process or an image;
//! - [`session`] runs a command of the toolbox in the target's PID, network, IPC and UTS
//!   namespaces, with the toolbox as its root (read-only) and the target's filesystem at
//!   `/target` (`/proc/1/root`): nothing of the target is written, and nothing of the
//!   session outlives it.
//!
//! ```no_run
//! # fn run(toolbox: &std::path::Path) -> Result<(), bareboat_debug::Error> {
//! use bareboat_debug::{session::{Attach, Session}, target::Target};
//! let pid = Target::parse("runc:web").pid()?;
//! let _status = Session {
//!     toolbox,
//!     attach: Attach::Process { pid },
//!     user: None,
//!     env: vec![("PATH".into(), "/busybox".into())],
//!     cwd: "/".into(),
//!     argv: vec!["/busybox/ps".into()],
//! }
//! .run()?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod environment;
mod error;
pub mod kubectl;
pub mod session;
pub mod target;
pub mod toolbox;

pub use error::Error;
