//! Dynamic probes: an image run, as its own user, to see what its application touches that
//! the static pass cannot (a plugin loaded by name, a file named at run time), and run
//! again once slimmed, to see that it still behaves the same.
//!
//! The image is written out onto a tmpfs of its own and run there with runc. Two witnesses
//! record what it touches, as was measured to work: fanotify, marking that whole
//! filesystem, sees every open and exec by any process (an inode mark is not recursive, and
//! a mount mark on the bundle would see the host too); strace (ptrace) sees what fanotify
//! does not report, stat calls and the paths that were not found. Every symlink on the way
//! to a recorded path is kept by whoever keeps the path. Both need root.
//!
//! A probe is a command run in place of the image's own, whose exit status is compared,
//! or a URL asked of the image's own command (a server) once it listens, whose status and
//! body are compared.

mod container;
mod trace;
mod watch;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bareboat_oci::stack::Stack;
use serde::Serialize;

use container::{Container, Process, Tmpfs};
use watch::Watch;

/// The most bytes of an HTTP response read.
const MAX_RESPONSE: u64 = 1 << 20;

/// What is run in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A command line, run in place of the image's entrypoint and command.
    Command(Vec<String>),
    /// A URL asked of the image's own command once its port listens.
    Http {
        /// The URL, as given.
        url: String,
        /// Where it connects.
        host: String,
        /// The URL's port, which it asks.
        port: u16,
        /// The port it waits for (`--probe-port`, else the URL's).
        listen: u16,
        /// The path it asks for.
        path: String,
    },
}

impl Probe {
    /// A command probe: `line` split at spaces, run without a shell.
    pub fn command(line: &str) -> Result<Probe, Error> {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        match argv.is_empty() {
            true => Err(Error::Bad(format!("--probe {line:?}: no command"))),
            false => Ok(Probe::Command(argv)),
        }
    }

    /// An HTTP probe of `url` (`http://HOST[:PORT]/PATH` on this machine), waiting for
    /// `port` (the URL's, by default) to listen.
    pub fn http(url: &str, port: Option<u16>) -> Result<Probe, Error> {
        let bad = |why: &str| Error::Bad(format!("--http-probe {url}: {why}"));
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are probed"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // An IPv6 host is bracketed, its colons inside the brackets.
        let host_end = match authority.starts_with('[') {
            true => authority.find(']').map_or(authority.len(), |i| i + 1),
            false => authority.find(':').unwrap_or(authority.len()),
        };
        let (host, after) = authority.split_at(host_end);
        let url_port = match after.strip_prefix(':') {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
            None if after.is_empty() => 80,
            None => return Err(bad("what follows the host is not a port")),
        };
        if !["127.0.0.1", "localhost", "[::1]"].contains(&host) {
            return Err(bad("the container listens on this machine: use 127.0.0.1"));
        }
        Ok(Probe::Http {
            url: url.to_string(),
            host: host.trim_matches(['[', ']']).to_string(),
            port: url_port,
            listen: port.unwrap_or(url_port),
            path: format!("/{path}"),
        })
    }

    /// The probe as the command line gives it.
    pub fn describe(&self) -> String {
        match self {
            Probe::Command(argv) => format!("--probe '{}'", argv.join(" ")),
            Probe::Http { url, .. } => format!("--http-probe {url}"),
        }
    }
}

/// What one run of a probe gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The probe.
    pub probe: String,
    /// A command's exit status (128 and the signal, if killed).
    pub exit: Option<i32>,
    /// An HTTP probe's status.
    pub status: Option<u16>,
    /// An HTTP probe's body.
    pub body: Option<String>,
    /// The end of what the program wrote to its standard error, for the report.
    pub stderr: String,
}

impl Outcome {
    /// What it gave, in words.
    pub fn summary(&self) -> String {
        match (self.exit, self.status) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(status)) => format!(
                "HTTP {status}, {} bytes",
                self.body.as_deref().map_or(0, str::len)
            ),
            (None, None) => "no exit status".into(),
        }
    }

    /// What is compared between the original and the slim image: a command's exit status,
    /// a URL's status and body.
    pub fn same_as(&self, other: &Outcome) -> bool {
        (self.exit, self.status, &self.body) == (other.exit, other.status, &other.body)
    }
}

/// What one probe of an image recorded.
#[derive(Debug)]
pub struct Recorded {
    /// What it gave.
    pub outcome: Outcome,
    /// Every path (relative to the root) opened, executed or looked at.
    pub found: BTreeSet<String>,
    /// Every path looked for and not found.
    pub absent: BTreeSet<String>,
}

/// How the image runs under its probes.
pub struct Runner<'a> {
    /// The image's own command line, which HTTP probes run.
    pub argv: Vec<String>,
    /// Its environment, with `--probe-env`'s.
    pub env: Vec<String>,
    /// Its working directory.
    pub cwd: String,
    /// Its user and group ids.
    pub user: (u32, u32),
    /// How long a probe may take.
    pub timeout: Duration,
    /// Where the image is written out and the bundles made.
    pub scratch: &'a Path,
}

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not running as root.
    #[error(
        "probes need root (a tmpfs, fanotify's FAN_MARK_FILESYSTEM and runc): run slim as root, or without probes (the static pass alone, with --keep for what it cannot see)"
    )]
    NotRoot,
    /// A tool is missing.
    #[error("{0} is not installed: probes need it (apt-get install {0})")]
    Missing(&'static str),
    /// A probe as given cannot be run.
    #[error("{0}")]
    Bad(String),
    /// A probe took too long.
    #[error("{probe} did not finish within {seconds} s (--probe-timeout)")]
    Timeout {
        /// The probe.
        probe: String,
        /// The time it had.
        seconds: u64,
    },
    /// Running it failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        error: io::Error,
    },
}

/// Whether programs of Debian architecture `arch` run on this machine: its own, or one
/// that qemu-user-static's binfmt handler runs.
pub fn runs_here(arch: &str) -> bool {
    let (native, qemu) = match arch {
        "amd64" => ("x86_64", "x86_64"),
        "arm64" => ("aarch64", "aarch64"),
        "armhf" | "armel" => ("arm", "arm"),
        "ppc64el" => ("powerpc64", "ppc64le"),
        "riscv64" => ("riscv64", "riscv64"),
        "s390x" => ("s390x", "s390x"),
        _ => return false,
    };
    native == std::env::consts::ARCH
        || std::fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/qemu-{qemu}"))
            .is_ok_and(|s| s.starts_with("enabled"))
}

/// Runs each probe in the image `view` shows (its contents kept), and records what each
/// touched and gave.
pub fn record(view: &Stack, probes: &[Probe], runner: &Runner<'_>) -> Result<Vec<Recorded>, Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotRoot);
    }
    let runc = tool("runc")?;
    let strace = tool("strace")?;
    let failed = |what: &str| {
        let what = what.to_string();
        move |error| Error::Io { what, error }
    };
    // Room for the image and as much again for what it writes.
    let bytes: u64 = view.values().map(|n| n.size).sum();
    let size = bytes.saturating_mul(2).saturating_add(256 << 20);
    let tmpfs =
        Tmpfs::mount(&runner.scratch.join("rootfs"), size).map_err(failed("mounting a tmpfs"))?;
    let rootfs = tmpfs.path();
    (view.unpack(rootfs, true)).map_err(failed("writing the image out"))?;
    let mut recorded = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let bundle = runner.scratch.join(format!("bundle-{i}"));
        std::fs::create_dir_all(&bundle).map_err(failed("making a bundle"))?;
        let run = Run {
            runc: &runc,
            strace: &strace,
            rootfs,
            bundle: &bundle,
            id: format!("bareboat-probe-{}-{i}", std::process::id()),
        };
        let watch = Watch::start(rootfs).map_err(failed("watching with fanotify"))?;
        let (outcome, trace) = run.probe(probe, runner)?;
        let mut found = trace.found;
        found.extend(
            watch
                .finish()
                .map_err(failed("reading fanotify's events"))?,
        );
        let mut absent = trace.absent;
        absent.retain(|p| !found.contains(p));
        recorded.push(Recorded {
            outcome,
            found,
            absent,
        });
    }
    Ok(recorded)
}

/// The path of a tool on `PATH`.
fn tool(name: &'static str) -> Result<String, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or(Error::Missing(name))
}

/// One probe's run.
struct Run<'a> {
    runc: &'a str,
    strace: &'a str,
    rootfs: &'a Path,
    bundle: &'a Path,
    id: String,
}

impl Run<'_> {
    /// Runs `probe`, traced, and returns what it gave and what the trace saw.
    fn probe(&self, probe: &Probe, runner: &Runner<'_>) -> Result<(Outcome, trace::Trace), Error> {
        let described = probe.describe();
        let failed = |error: io::Error| Error::Io {
            what: described.clone(),
            error,
        };
        let argv = match probe {
            Probe::Command(argv) => argv,
            Probe::Http { host, listen, .. } => {
                // Something else listening there would answer for the image.
                if TcpStream::connect((host.as_str(), *listen)).is_ok() {
                    return Err(Error::Bad(format!(
                        "{described}: something on this machine listens on port {listen} already, and would answer for the image"
                    )));
                }
                &runner.argv
            }
        };
        let process = Process {
            argv,
            env: &runner.env,
            cwd: &runner.cwd,
            user: runner.user,
        };
        let container = Container::create(self.runc, &self.id, self.bundle, self.rootfs, &process)
            .map_err(failed)?;
        let pid = container.pid().map_err(failed)?;
        let output = self.bundle.join("trace");
        let mut tracer = self.attach(pid, &output).map_err(failed)?;
        if let Err(e) = container.start() {
            let _ = tracer.kill();
            let _ = tracer.wait();
            return Err(failed(e));
        }
        let deadline = Instant::now() + runner.timeout;
        let timeout = || Error::Timeout {
            probe: described.clone(),
            seconds: runner.timeout.as_secs(),
        };
        let mut outcome = Outcome {
            probe: described.clone(),
            exit: None,
            status: None,
            body: None,
            stderr: String::new(),
        };
        if let Probe::Http {
            host,
            port,
            listen,
            path,
            ..
        } = probe
        {
            let mut running = || tracer.try_wait().is_ok_and(|t| t.is_none());
            let response = ask(host, (*listen, *port), path, deadline, &mut running);
            container.kill();
            let (status, body) = response.map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut => timeout(),
                io::ErrorKind::NotConnected => Error::Bad(format!(
                    "{described}: the image's command ended before it listened on port {listen}: {}",
                    tail(&container.stderr)
                )),
                _ => failed(e),
            })?;
            outcome.status = Some(status);
            outcome.body = Some(body);
        }
        loop {
            if tracer.try_wait().map_err(failed)?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                container.kill();
                let _ = tracer.wait();
                return Err(timeout());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&output).map_err(failed)?;
        let rootfs = self.rootfs.to_string_lossy();
        let trace = trace::parse(&text, &rootfs, &runner.cwd);
        if matches!(probe, Probe::Command(_)) {
            // Without it, nothing would be compared.
            let exit = trace.exits.get(&pid).copied();
            outcome.exit =
                Some(exit.ok_or_else(|| {
                    failed(io::Error::other("strace did not see the program end"))
                })?);
        }
        outcome.stderr = tail(&container.stderr);
        Ok((outcome, trace))
    }

    /// strace, attached to `pid` and everything it starts, writing to `output`; returns
    /// once the process is traced.
    fn attach(&self, pid: u32, output: &Path) -> io::Result<Child> {
        let mut tracer = Command::new(self.strace)
            .args(["-f", "-q", "-y", "-s", "4096", "-e", "trace=%file", "-o"])
            .arg(output)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = PathBuf::from(format!("/proc/{pid}/status"));
        loop {
            let traced = std::fs::read_to_string(&status)?
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .is_some_and(|t| t.trim() != "0");
            if traced {
                return Ok(tracer);
            }
            if Instant::now() > deadline || tracer.try_wait()?.is_some() {
                let _ = tracer.kill();
                return Err(io::Error::other("strace could not attach to the container"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The last lines of a program's output file, up to 2 KiB.
fn tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(2048);
    String::from_utf8_lossy(&text[from..]).trim().to_string()
}

/// Asks `host` for `path` on the URL's port once the `listen` port accepts (HTTP/1.0, so
/// the body ends with the connection), until `deadline` or until the program stops
/// `running`; returns the status and the body.
fn ask(
    host: &str,
    (listen, port): (u16, u16),
    path: &str,
    deadline: Instant,
    running: &mut dyn FnMut() -> bool,
) -> io::Result<(u16, String)> {
    loop {
        match TcpStream::connect((host, listen)) {
            Ok(_) => break,
            Err(_) if !running() => {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "it ended"));
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(io::Error::new(io::ErrorKind::TimedOut, e)),
        }
    }
    let mut stream = TcpStream::connect((host, port))?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    stream.set_read_timeout(Some(left))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = (head.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_read_from_the_command_line() {
        assert_eq!(
            Probe::command(" /app/server  --plugin ").unwrap(),
            Probe::Command(vec!["/app/server".into(), "--plugin".into()])
        );
        let err = Probe::command("  ").unwrap_err().to_string();
        assert!(err.contains("no command"), "{err}");
        let http = Probe::http("http://127.0.0.1:8080/healthz?x=1", None).unwrap();
        assert_eq!(
            http,
            Probe::Http {
                url: "http://127.0.0.1:8080/healthz?x=1".into(),
                host: "127.0.0.1".into(),
                port: 8080,
                listen: 8080,
                path: "/healthz?x=1".into(),
            }
        );
        assert_eq!(
            http.describe(),
            "--http-probe http://127.0.0.1:8080/healthz?x=1"
        );
        let other = Probe::http("http://localhost/", Some(9000)).unwrap();
        assert!(matches!(
            other,
            Probe::Http {
                port: 80,
                listen: 9000,
                ..
            }
        ));
        let six = Probe::http("http://[::1]:8443/x", None).unwrap();
        assert!(matches!(six, Probe::Http { ref host, port: 8443, .. } if host == "::1"));
        for (bad, why) in [
            ("https://127.0.0.1/", "only http:// URLs are probed"),
            ("http://example.com/", "use 127.0.0.1"),
            ("http://127.0.0.1:x/", "the port is not a number"),
            ("http://[::1]x/", "what follows the host is not a port"),
        ] {
            let err = Probe::http(bad, None).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(runs_here(match std::env::consts::ARCH {
            "aarch64" => "arm64",
            _ => "amd64",
        }));
    }
}
