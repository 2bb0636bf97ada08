//! Running a command of the toolbox beside its target: in a running process's PID,
//! network, IPC and UTS namespaces, or beside an image's filesystem.
//!
//! The command runs in a mount namespace of its own, with the toolbox as its root
//! (read-only), a `/proc` of the target's PID namespace, a private `/tmp` and the host's
//! `/dev`; `/target` in the toolbox links to `/proc/1/root`, the target's filesystem. For an
//! image, a new PID namespace is made whose PID 1 holds the image's files (read-only) as its
//! root, so `/target` shows them the same way. Three processes carry a session:
//!
//! ```text
//! bareboat ── intermediate (host PID namespace: joins the namespaces, waits)
//!               ├─ [image] holder: PID 1 of the new namespace, rooted in the image
//!               └─ reaper (target's PID namespace): mounts, collects orphans
//!                    └─ the command (chrooted into the toolbox)
//! ```
//!
//! When the command ends, the reaper kills what it left running and the intermediate ends
//! the holder: no process, mount or file of the session remains, and the target's own
//! processes are never signalled.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

use crate::Error;
use crate::target::Process;

/// What a session runs beside.
#[derive(Clone, Copy, Debug)]
pub enum Attach<'a> {
    /// A running process, by its host PID.
    Process {
        /// The PID.
        pid: u32,
    },
    /// An image's files, written out at `rootfs`.
    Image {
        /// The directory.
        rootfs: &'a Path,
    },
}

/// Whom a session's command runs as, when not as root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    /// The uid.
    pub uid: u32,
    /// The gid, also the only group.
    pub gid: u32,
    /// The capabilities it keeps across exec (a bit set): the target's own, so that the
    /// kernel lets it read the target's files and memory as the target itself could.
    pub capabilities: u64,
}

/// A command to run in a toolbox beside a target.
pub struct Session<'a> {
    /// The toolbox, written out (see [`crate::toolbox`]).
    pub toolbox: &'a Path,
    /// What it runs beside.
    pub attach: Attach<'a>,
    /// Whom to run as; `None` runs as root, with every capability (CAP_SYS_PTRACE among
    /// them, which reading `/proc/1/root` of a nonroot target and tracing it need).
    pub user: Option<User>,
    /// The command's whole environment.
    pub env: Vec<(String, String)>,
    /// Its working directory, inside the toolbox.
    pub cwd: String,
    /// The command and its arguments; the command is looked up inside the toolbox.
    pub argv: Vec<String>,
}

impl Session<'_> {
    /// Runs the command and returns its exit status (128 + the signal, if one ended it).
    pub fn run(&self) -> Result<i32, Error> {
        check_root()?;
        self.check_command()?;
        let namespaces = match self.attach {
            Attach::Process { pid } => Some(Namespaces::open(pid)?),
            Attach::Image { .. } => None,
        };
        for dir in ["proc", "tmp", "dev"] {
            let path = self.toolbox.join(dir);
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                return Err(Error::Toolbox(format!(
                    "{} is not a toolbox: it has no /{dir} directory",
                    self.toolbox.display()
                )));
            }
        }
        let c = |path: &Path| {
            CString::new(path.as_os_str().as_bytes())
                .map_err(|_| Error::Start(io::Error::other("a path holds a NUL byte")))
        };
        let plan = Plan {
            root: c(self.toolbox)?,
            proc_: c(&self.toolbox.join("proc"))?,
            children: c(&self.toolbox.join("proc/thread-self/children"))?,
            tmp: c(&self.toolbox.join("tmp"))?,
            dev: c(&self.toolbox.join("dev"))?,
            image: match self.attach {
                Attach::Image { rootfs } => Some(c(rootfs)?),
                Attach::Process { .. } => None,
            },
            namespaces: namespaces
                .as_ref()
                .map(|n| [&n.net, &n.ipc, &n.uts, &n.pid].map(|f| f.as_raw_fd())),
            cwd: CString::new(self.cwd.as_bytes())
                .map_err(|_| Error::Start(io::Error::other("the directory holds a NUL byte")))?,
            user: self.user,
        };
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .env_clear()
            .envs(self.env.iter().cloned());
        // SAFETY: `enter` runs in the forked child before exec, and makes only system calls
        // on what `plan` prepared before the fork: it allocates nothing.
        unsafe {
            cmd.pre_exec(move || plan.enter());
        }
        // As system(3) does: the terminal's interrupts are for the session, not for
        // bareboat, which waits for it.
        let ignored =
            unsafe { [libc::SIGINT, libc::SIGQUIT].map(|s| (s, libc::signal(s, libc::SIG_IGN))) };
        let status = cmd.status();
        for (s, old) in ignored {
            unsafe { libc::signal(s, old) };
        }
        drop(namespaces);
        let status = status.map_err(Error::Start)?;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

impl Session<'_> {
    /// Refuses a command the toolbox does not have, before anything is joined: the exec
    /// would only say "No such file or directory".
    fn check_command(&self) -> Result<(), Error> {
        let program = &self.argv[0];
        // Links are looked at, not followed: an absolute one leads out of the toolbox here.
        let has = |path: &str| {
            std::fs::symlink_metadata(self.toolbox.join(path.trim_start_matches('/'))).is_ok()
        };
        let found = match program.contains('/') {
            true => has(program),
            false => self
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .is_some_and(|(_, path)| path.split(':').any(|d| has(&format!("{d}/{program}")))),
        };
        match found {
            true => Ok(()),
            false => Err(Error::NoCommand(program.clone())),
        }
    }
}

/// Whether this process runs as root, which a session needs (it joins namespaces and
/// mounts): checked before an image is written out or a toolbox built for it.
pub fn check_root() -> Result<(), Error> {
    match unsafe { libc::geteuid() } {
        0 => Ok(()),
        _ => Err(Error::NotRoot),
    }
}

/// Whether this process may join the namespaces of `pid`: checked before a toolbox is
/// built for it, so that a refusal comes first.
pub fn check_joinable(pid: u32) -> Result<(), Error> {
    Namespaces::open(pid).map(drop)
}

/// A process's namespaces, opened (the check that bareboat may join them).
struct Namespaces {
    net: File,
    ipc: File,
    uts: File,
    pid: File,
}

impl Namespaces {
    fn open(pid: u32) -> Result<Namespaces, Error> {
        let process = Process::of(pid)?;
        let refused = |reason: String| Error::Join {
            pid,
            uid: process.uid,
            reason,
        };
        let open = |name: &str| {
            File::open(format!("/proc/{pid}/ns/{name}")).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::NoProcess(pid),
                _ => refused(format!("opening its {name} namespace: {e}")),
            })
        };
        let namespaces = Namespaces {
            net: open("net")?,
            ipc: open("ipc")?,
            uts: open("uts")?,
            pid: open("pid")?,
        };
        let user = |of: &str| std::fs::read_link(format!("/proc/{of}/ns/user")).ok();
        if user(&pid.to_string()) != user("self") {
            return Err(refused(
                "it runs in a user namespace of its own (a rootless container, whose files \
                 and capabilities are mapped): bareboat joins the containers of rootful \
                 runtimes; run the runtime as root, or start a debug image beside it"
                    .into(),
            ));
        }
        Ok(namespaces)
    }
}

/// What the forked child needs, made before the fork.
struct Plan {
    root: CString,
    proc_: CString,
    /// The reaper's children, as its own /proc lists them.
    children: CString,
    tmp: CString,
    dev: CString,
    image: Option<CString>,
    /// The net, IPC, UTS and PID namespaces to join.
    namespaces: Option<[i32; 4]>,
    cwd: CString,
    user: Option<User>,
}

/// A system call's result, or the error it set.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

const NONE: *const libc::c_char = std::ptr::null();

impl Plan {
    /// In the child of bareboat: joins the namespaces and carries the session. Returns
    /// only in the process that is to exec the command.
    fn enter(&self) -> io::Result<()> {
        unsafe {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                NONE,
                c"/".as_ptr(),
                NONE,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            match self.namespaces {
                Some([net, ipc, uts, pid]) => {
                    for fd in [net, ipc, uts] {
                        check(libc::setns(fd, 0))?;
                    }
                    // Takes effect for the children made from here on.
                    check(libc::setns(pid, libc::CLONE_NEWPID))?;
                }
                None => check(libc::unshare(
                    libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS,
                ))
                .map(drop)?,
            }
            let holder = match &self.image {
                Some(image) => Some(self.hold(image)?),
                None => None,
            };
            let reaper = check(libc::fork())?;
            if reaper == 0 {
                return self.reap();
            }
            let code = wait_for(reaper);
            if let Some(holder) = holder {
                // PID 1 going takes the whole namespace with it.
                libc::kill(holder, libc::SIGKILL);
                wait_for(holder);
            }
            libc::_exit(code)
        }
    }

    /// Makes PID 1 of the new namespace, rooted in the image (read-only), so that
    /// `/proc/1/root` shows the image's files. Returns its PID.
    unsafe fn hold(&self, image: &CString) -> io::Result<libc::pid_t> {
        unsafe {
            check(libc::mount(
                image.as_ptr(),
                image.as_ptr(),
                NONE,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                NONE,
                image.as_ptr(),
                NONE,
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                std::ptr::null(),
            ))?;
            // The holder says, on this pipe, that it is rooted: until then /proc/1/root
            // would show the host's root.
            let mut ready = [0; 2];
            check(libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC))?;
            let holder = check(libc::fork())?;
            if holder == 0 {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::close(ready[0]);
                if libc::chroot(image.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    libc::_exit(1);
                }
                libc::write(ready[1], [1u8].as_ptr().cast(), 1);
                libc::close(ready[1]);
                loop {
                    libc::pause();
                }
            }
            libc::close(ready[1]);
            let mut byte = 0u8;
            let read = libc::read(ready[0], (&raw mut byte).cast(), 1);
            libc::close(ready[0]);
            if read != 1 {
                return Err(io::Error::other("the image's holder process did not start"));
            }
            Ok(holder)
        }
    }

    /// In the target's PID namespace: mounts the toolbox, runs the command in it, and
    /// when it ends kills what it left running. Returns only in the command's process.
    fn reap(&self) -> io::Result<()> {
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // Orphans of the command come back here, not to the target's PID 1.
            check(libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1))?;
            self.mount_toolbox()?;
            let command = check(libc::fork())?;
            if command == 0 {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // bareboat ignores the terminal's interrupts while it waits; the command
                // must not inherit that, or Ctrl-C would stop nothing it runs.
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGQUIT, libc::SIG_DFL);
                check(libc::chroot(self.root.as_ptr()))?;
                check(libc::chdir(self.cwd.as_ptr()))?;
                if let Some(user) = self.user {
                    become_user(user)?;
                }
                return Ok(());
            }
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGQUIT, libc::SIG_IGN);
            let code = wait_for(command);
            self.end_leftovers();
            libc::_exit(code)
        }
    }

    /// The toolbox, bound read-only over itself, with the target's /proc, a private /tmp
    /// and the host's /dev, in this process's own mount namespace.
    unsafe fn mount_toolbox(&self) -> io::Result<()> {
        let bind = libc::MS_BIND | libc::MS_REC;
        unsafe {
            check(libc::mount(
                self.root.as_ptr(),
                self.root.as_ptr(),
                NONE,
                bind,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"proc".as_ptr(),
                self.proc_.as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"tmpfs".as_ptr(),
                self.tmp.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=1777".as_ptr().cast(),
            ))?;
            check(libc::mount(
                c"/dev".as_ptr(),
                self.dev.as_ptr(),
                NONE,
                bind,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                NONE,
                self.root.as_ptr(),
                NONE,
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                std::ptr::null(),
            ))?;
        }
        Ok(())
    }

    /// Kills and reaps every process the command left: this reaper's children, as the
    /// toolbox's /proc (of the target's PID namespace) lists them, until none is left.
    /// Only system calls and the stack: this runs in a child of a multithreaded process.
    fn end_leftovers(&self) {
        // Bounded: each round kills every child listed, and a killed process makes no more.
        for _ in 0..1000 {
            let mut listed = [0u8; 4096];
            let n = unsafe {
                let fd = libc::open(self.children.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return;
                }
                let n = libc::read(fd, listed.as_mut_ptr().cast(), listed.len());
                libc::close(fd);
                n
            };
            let Ok(n) = usize::try_from(n) else { return };
            let mut any = false;
            for pid in listed[..n].split(|b| b.is_ascii_whitespace()) {
                let Some(pid) = pid_of(pid) else { continue };
                any = true;
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
            if !any {
                return;
            }
        }
    }
}

/// The PID `digits` spell, if they do.
fn pid_of(digits: &[u8]) -> Option<libc::pid_t> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0, |n, d| n * 10 + libc::pid_t::from(d - b'0')),
    )
}

/// Takes `user`'s ids, keeping its capabilities (permitted, effective, inheritable and
/// ambient, so that they last across exec), and only those.
unsafe fn become_user(user: User) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let caps = user.capabilities;
    let half = |bits: u64| Data {
        effective: bits as u32,
        permitted: bits as u32,
        inheritable: bits as u32,
    };
    unsafe {
        // Nothing beyond the target's capabilities, even for a root target, whose exec
        // would otherwise take back every capability the bounding set allows.
        for cap in (0..64).filter(|c| caps & (1 << c) == 0) {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) == -1
                && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
            {
                return Err(io::Error::last_os_error());
            }
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setgid(user.gid))?;
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 1))?;
        check(libc::setuid(user.uid))?;
        // Changing ids clears the parent-death signal.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let data = [half(caps), half(caps >> 32)];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()) as libc::c_int)?;
        for cap in (0..64).filter(|c| caps & (1 << c) != 0) {
            check(libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                cap,
                0,
                0,
            ))?;
        }
    }
    Ok(())
}

/// Waits for `pid` and returns its exit code (128 + the signal, if one ended it).
fn wait_for(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r == -1 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 125;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}
