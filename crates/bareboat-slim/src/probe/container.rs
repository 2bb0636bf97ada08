//! A probe's container: runc, given a bundle whose root is the image written out onto a
//! tmpfs of its own, made (`runc create`) so that a tracer can attach before the program
//! starts, started, and deleted when dropped. It has its own PID, IPC, UTS and mount
//! namespaces and the host's network, so that an HTTP probe reaches it on 127.0.0.1.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// How the program runs.
pub struct Process<'a> {
    /// Its command line.
    pub argv: &'a [String],
    /// Its environment, `NAME=VALUE`.
    pub env: &'a [String],
    /// Its working directory.
    pub cwd: &'a str,
    /// Its user and group ids.
    pub user: (u32, u32),
}

/// A tmpfs mounted for one probe run, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a new tmpfs of at most `size` bytes at `at`, an empty directory.
    pub fn mount(at: &Path, size: u64) -> io::Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        let target = CString::new(at.as_os_str().as_bytes())?;
        let fstype = c"tmpfs";
        let options = CString::new(format!("mode=0755,size={size}"))?;
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let mounted = unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        if mounted < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.0.as_os_str().as_bytes()) {
            // SAFETY: a NUL-terminated string that outlives the call.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// A container made and not yet deleted.
pub struct Container {
    id: String,
    runc: String,
    /// What the program writes to its standard error.
    pub stderr: PathBuf,
}

/// What a container can do without capabilities beyond Docker's defaults.
const CAPABILITIES: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_AUDIT_WRITE",
];

impl Container {
    /// Makes the container `id` from the bundle directory `bundle` (its config written
    /// there) over `rootfs`; the program waits to be started.
    pub fn create(
        runc: &str,
        id: &str,
        bundle: &Path,
        rootfs: &Path,
        process: &Process<'_>,
    ) -> io::Result<Container> {
        std::fs::write(
            bundle.join("config.json"),
            spec(rootfs, process).to_string(),
        )?;
        let stderr = bundle.join("stderr");
        let out = Command::new(runc)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(bundle.join("stdout"))?)
            .stderr(std::fs::File::create(&stderr)?)
            .status()?;
        if !out.success() {
            // What it made of the container, if anything, goes.
            let _ = Command::new(runc).args(["delete", "--force", id]).output();
            let said = std::fs::read_to_string(&stderr).unwrap_or_default();
            return Err(io::Error::other(format!(
                "runc create failed ({out}): {}",
                said.trim()
            )));
        }
        Ok(Container {
            id: id.to_string(),
            runc: runc.to_string(),
            stderr,
        })
    }

    /// The host's id of the process that will run the program.
    pub fn pid(&self) -> io::Result<u32> {
        let out = self.runc(&["state", &self.id])?;
        let state: Value = serde_json::from_slice(&out).map_err(io::Error::other)?;
        (state["pid"].as_u64())
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| io::Error::other("runc state names no pid"))
    }

    /// Starts the program.
    pub fn start(&self) -> io::Result<()> {
        self.runc(&["start", &self.id]).map(drop)
    }

    /// Kills the program.
    pub fn kill(&self) {
        let _ = self.runc(&["kill", &self.id, "KILL"]);
    }

    fn runc(&self, args: &[&str]) -> io::Result<Vec<u8>> {
        let out = Command::new(&self.runc)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        match out.status.success() {
            true => Ok(out.stdout),
            false => Err(io::Error::other(format!(
                "runc {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.runc(&["delete", "--force", &self.id]);
    }
}

/// The runtime spec of a probe's container.
fn spec(rootfs: &Path, process: &Process<'_>) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": process.user.0, "gid": process.user.1},
            "args": process.argv,
            "env": process.env,
            "cwd": if process.cwd.is_empty() { "/" } else { process.cwd },
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
            },
            "noNewPrivileges": true,
        },
        "root": {"path": rootfs, "readonly": false},
        "hostname": "probe",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    })
}
