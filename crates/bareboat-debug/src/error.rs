//! Errors of debugging, each naming the target or the step at fault and what to do next.

/// Errors of debugging.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime knows no running container by that name.
    #[error(
        "{runtime} has no running container {name:?}: {reason}\n  hint: list them with `{list}`"
    )]
    NoContainer {
        /// runc, podman or docker.
        runtime: &'static str,
        /// The container's name or id.
        name: String,
        /// What the runtime said.
        reason: String,
        /// The command that lists the runtime's containers.
        list: &'static str,
    },

    /// A runtime bareboat does not join: its containers are named, with what to do instead.
    #[error("{0}")]
    Unsupported(String),

    /// No process has that PID.
    #[error(
        "no process {0} is running\n  hint: give the PID of the container's main process, as `ps` on the host shows it"
    )]
    NoProcess(u32),

    /// The process's namespaces could not be opened or joined.
    #[error(
        "cannot join the namespaces of process {pid} (uid {uid}): {reason}\n  hint: joining another user's process needs root (run `sudo bareboat debug ...`), or CAP_SYS_ADMIN and CAP_SYS_PTRACE"
    )]
    Join {
        /// The process.
        pid: u32,
        /// Its owner.
        uid: u32,
        /// What the system said.
        reason: String,
    },

    /// Debugging here needs root: joining namespaces and mounting.
    #[error(
        "bareboat debug needs root: it joins the target's namespaces and mounts the toolbox\n  hint: run `sudo bareboat debug ...`, or --print-kubectl for a cluster"
    )]
    NotRoot,

    /// The command asked for is not in the toolbox.
    #[error(
        "{0} is not in the toolbox\n  hint: add the Debian package that has it with --with PKG (for example --with strace, --with curl)"
    )]
    NoCommand(String),

    /// The session could not be started.
    #[error("starting the debug session: {0}")]
    Start(std::io::Error),

    /// The toolbox could not be built or written out.
    #[error("building the toolbox: {0}")]
    Toolbox(String),

    /// The image to debug could not be read.
    #[error("{0}")]
    Image(String),

    /// A file or directory could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
}

impl Error {
    /// An I/O error at `path`.
    pub fn io(path: impl Into<std::path::PathBuf>, error: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}
