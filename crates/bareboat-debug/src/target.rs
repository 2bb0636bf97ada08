//! What is debugged: a process of a running container, found through its runtime or by its
//! PID, or an image.

use std::process::Command;

use crate::Error;

/// A target, as `bareboat debug TARGET` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `pid:N`, or a bare number: a process.
    Pid(u32),
    /// `runc:ID`: a container of runc, by id.
    Runc(String),
    /// `podman:NAME`: a container of podman, by name or id.
    Podman(String),
    /// `docker:NAME`: a container of Docker's engine, by name or id (`DOCKER_HOST` is
    /// followed).
    Docker(String),
    /// `nerdctl:ID`, `crictl:ID` or `containerd:ID`: a container of containerd, reached by
    /// its PID (see [`Target::pid`]).
    Containerd(String),
    /// Anything else: an image reference (`oci:`, `oci-archive:`, `docker-archive:`,
    /// `docker://`).
    Image(String),
}

impl Target {
    /// Reads a target. Containers of runtimes that are not joined (containerd's `nerdctl:`
    /// and `crictl:`) are named so that [`Target::pid`] can say what to do instead.
    pub fn parse(text: &str) -> Target {
        if let Ok(pid) = text.parse() {
            return Target::Pid(pid);
        }
        match text.split_once(':') {
            Some(("pid", n)) if n.parse::<u32>().is_ok() => Target::Pid(n.parse().unwrap_or(0)),
            Some(("runc", id)) => Target::Runc(id.to_string()),
            Some(("podman", name)) => Target::Podman(name.to_string()),
            Some(("docker", name)) if !name.starts_with("//") => Target::Docker(name.to_string()),
            Some(("nerdctl" | "crictl" | "containerd", id)) => Target::Containerd(id.to_string()),
            _ => Target::Image(text.to_string()),
        }
    }

    /// The host PID of the container's main process (its PID 1), asking its runtime.
    pub fn pid(&self) -> Result<u32, Error> {
        let pid = match self {
            Target::Pid(pid) => *pid,
            Target::Runc(id) => {
                let out = ask("runc", &["state", id], id)?;
                let state: serde_json::Value = serde_json::from_str(&out).map_err(|e| {
                    no_container("runc", id, format!("`runc state` printed no state: {e}"))
                })?;
                if state["status"] != "running" {
                    return Err(no_container(
                        "runc",
                        id,
                        format!("it is {}", state["status"]),
                    ));
                }
                state["pid"].as_u64().unwrap_or(0) as u32
            }
            Target::Podman(name) => inspected("podman", name)?,
            Target::Containerd(id) => {
                return Err(Error::Unsupported(format!(
                    "containerd's container {id:?} is debugged by its PID: find it with \
                     `ctr -n k8s.io task ls` or `crictl inspect --output go-template \
                     --template '{{{{.info.pid}}}}' {id}`, then run `bareboat debug pid:PID`"
                )));
            }
            Target::Docker(name) => inspected("docker", name)?,
            Target::Image(reference) => {
                return Err(Error::Image(format!(
                    "{reference} is an image: it has no process to join"
                )));
            }
        };
        if pid == 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(Error::NoProcess(pid));
        }
        Ok(pid)
    }
}

/// The PID podman's or Docker's `inspect` gives the container `name`.
fn inspected(runtime: &'static str, name: &str) -> Result<u32, Error> {
    let out = ask(
        runtime,
        &["inspect", "--format", "{{.State.Pid}}", name],
        name,
    )?;
    match out.trim().parse() {
        Ok(0) | Err(_) => Err(no_container(runtime, name, "it is not running".into())),
        Ok(pid) => Ok(pid),
    }
}

/// Runs `runtime ARGS` and returns what it printed, or names the container it has not.
fn ask(runtime: &'static str, args: &[&str], name: &str) -> Result<String, Error> {
    let out = Command::new(runtime)
        .args(args)
        .output()
        .map_err(|e| no_container(runtime, name, format!("running {runtime}: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(no_container(runtime, name, said));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn no_container(runtime: &'static str, name: &str, reason: String) -> Error {
    Error::NoContainer {
        runtime,
        name: name.to_string(),
        reason,
        list: match runtime {
            "runc" => "runc list",
            "podman" => "podman ps",
            _ => "docker ps",
        },
    }
}

/// What the debugger needs to know of a process: its owner, and the Debian release its
/// filesystem says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Its PID on the host.
    pub pid: u32,
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
    /// Its permitted capabilities, as a bit set.
    pub capabilities: u64,
}

impl Process {
    /// Reads `/proc/PID/status`.
    pub fn of(pid: u32) -> Result<Process, Error> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).map_err(|_| Error::NoProcess(pid))?;
        // `Uid:` and `Gid:` give the real, effective, saved and filesystem ids.
        let effective = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|id| id.parse().ok())
                .unwrap_or(0)
        };
        let capabilities = status
            .lines()
            .find_map(|l| l.strip_prefix("CapPrm:"))
            .and_then(|bits| u64::from_str_radix(bits.trim(), 16).ok())
            .unwrap_or(0);
        Ok(Process {
            pid,
            uid: effective("Uid:"),
            gid: effective("Gid:"),
            capabilities,
        })
    }
}

/// The first bytes of `/etc/debian_version` in the filesystem of process `pid`, read as
/// the process itself would: every link resolved inside its root (a hostile
/// `etc/debian_version -> /dev/zero` leads nowhere on this machine), a regular file only,
/// 64 bytes at most.
pub fn debian_version(pid: u32) -> Option<String> {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd};
    let root = std::fs::File::open(format!("/proc/{pid}/root")).ok()?;
    // openat2(2)'s `struct open_how` (libc's is non-exhaustive).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c"etc/debian_version".as_ptr(),
            &how,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor was just opened, and nothing else owns it.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The Debian release (`trixie`, `bookworm`) of the root filesystem whose
/// `etc/debian_version` is `text`, if it is one bareboat builds.
pub fn release_of(debian_version: &str) -> Option<&'static str> {
    let first = debian_version.lines().next()?.trim();
    let major = first.split(['.', '/']).next()?;
    match major {
        "13" | "trixie" => Some("trixie"),
        "12" | "bookworm" => Some("bookworm"),
        _ => None,
    }
}

/// The Debian name of the machine's architecture, which a toolbox must have to run here.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_told_apart_by_their_prefix() {
        assert_eq!(Target::parse("1234"), Target::Pid(1234));
        assert_eq!(Target::parse("pid:77"), Target::Pid(77));
        assert_eq!(Target::parse("runc:web"), Target::Runc("web".into()));
        assert_eq!(Target::parse("podman:web"), Target::Podman("web".into()));
        assert_eq!(Target::parse("docker:web"), Target::Docker("web".into()));
        for image in [
            "docker://registry.example/app:1",
            "oci:out:app",
            "oci-archive:a.tar",
        ] {
            assert_eq!(Target::parse(image), Target::Image(image.into()));
        }
    }

    #[test]
    fn releases_are_read_from_debian_version() {
        assert_eq!(release_of("13.2\n"), Some("trixie"));
        assert_eq!(release_of("12.11"), Some("bookworm"));
        assert_eq!(release_of("trixie/sid\n"), Some("trixie"));
        assert_eq!(release_of("11.3"), None);
        assert_eq!(release_of(""), None);
    }
}
