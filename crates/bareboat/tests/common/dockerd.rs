//! The tests' own Docker Engine: Debian's docker.io dockerd with its own data root, exec
//! root, pidfile and socket, vfs storage, no iptables and no bridge, so it touches nothing
//! of the host's; shared by the tests that run at the same time, and stopped when the last
//! of them ends. Containers run without a network.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The docker.io package's client and daemon, which `.ci/run` installs: another docker
/// client may be earlier on PATH, so neither is looked up there.
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";

/// A dockerd of the tests' own.
pub struct Daemon {
    child: Mutex<Child>,
    socket: PathBuf,
    exec_root: PathBuf,
    log: PathBuf,
    client_config: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

/// The running daemon, shared by the tests that run at the same time; the last one to
/// drop its handle stops it (statics are never dropped, so the map holds no handle).
static DAEMON: Mutex<Weak<Daemon>> = Mutex::new(Weak::new());

pub fn daemon() -> Arc<Daemon> {
    let mut shared = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(daemon) = shared.upgrade() {
        return daemon;
    }
    let daemon = Arc::new(Daemon::start());
    *shared = Arc::downgrade(&daemon);
    daemon
}

impl Daemon {
    fn start() -> Daemon {
        for program in [DOCKER, DOCKERD] {
            assert!(
                Path::new(program).is_file(),
                "{program} is missing: .ci/run installs Debian's docker.io (apt-get install docker.io)"
            );
        }
        let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&target_tmp).unwrap();
        let root = tempfile::Builder::new()
            .prefix("docker-")
            .tempdir_in(&target_tmp)
            .unwrap();
        // containerd puts sockets under the exec root, and a unix socket's path is at most
        // 108 bytes: a deep checkout gets a short directory under the system's temp dir.
        let short = if root.path().as_os_str().len() > 60 {
            Some(tempfile::Builder::new().prefix("dk-").tempdir().unwrap())
        } else {
            None
        };
        let run_dir = short.as_ref().unwrap_or(&root).path().to_path_buf();
        let (data_root, exec_root) = (root.path().join("data"), run_dir.join("e"));
        let socket = run_dir.join("docker.sock");
        let client_config = root.path().join("client");
        std::fs::create_dir_all(&client_config).unwrap();
        // The host's /etc/docker/daemon.json is no business of the tests'.
        let daemon_config = root.path().join("daemon.json");
        std::fs::write(&daemon_config, "{}\n").unwrap();
        let log = root.path().join("dockerd.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(DOCKERD)
            .args(["--iptables=false", "--ip-forward=false", "--bridge=none"])
            .args(["--storage-driver=vfs", "--data-root"])
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(run_dir.join("docker.pid"))
            .arg("--config-file")
            .arg(&daemon_config)
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("{DOCKERD}: {e}"));
        let mut dirs = vec![root];
        dirs.extend(short);
        let daemon = Daemon {
            child: Mutex::new(child),
            socket,
            exec_root,
            log,
            client_config,
            _dirs: dirs,
        };
        daemon.wait_until_up(Duration::from_secs(60));
        daemon
    }

    fn wait_until_up(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let out = self
                .command(&["version", "--format", "{{.Server.Version}}"])
                .output();
            if out.as_ref().is_ok_and(|o| o.status.success()) {
                return;
            }
            let exited = self.child.lock().unwrap().try_wait().unwrap();
            if exited.is_some() || start.elapsed() > timeout {
                panic!(
                    "dockerd did not answer within {timeout:?} (exit status {exited:?}); `docker version` says {:?}\ndockerd's log:\n{}",
                    out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The docker.io client talking to this daemon only, with a config of its own (no
    /// credential helpers or contexts of the host's user).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.client_config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .args(args);
        cmd
    }

    /// Runs `docker ARGS`, and on failure says why, with the end of dockerd's log.
    pub fn docker(&self, args: &[&str]) -> Output {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("{DOCKER} {args:?}: {e}"));
        if !out.status.success() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "docker {args:?} failed ({}):\n{}\n{}\nthe end of dockerd's log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        out
    }

    pub fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8(self.docker(args).stdout).unwrap()
    }

    /// `docker load` of the archive `file`, which must bring the image `name`.
    pub fn load(&self, file: &Path, name: &str) {
        let out = self.stdout(&["load", "-i", file.to_str().unwrap()]);
        assert!(out.contains(&format!("Loaded image: {name}\n")), "{out}");
    }

    /// What `docker run --rm --network none ARGS` printed on standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        self.stdout(&all)
    }

    pub fn inspect(&self, name: &str) -> Value {
        let out = self.docker(&["image", "inspect", name]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        // SIGTERM, so that dockerd stops its containerd and unmounts what it mounted.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if child.try_wait().ok().flatten().is_none() {
            eprintln!("dockerd ignored SIGTERM for 30 s: killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
        // A containerd that outlived its dockerd is this test's, by its pidfile in our
        // exec root.
        let pidfile = self.exec_root.join("containerd/containerd.pid");
        if let Ok(pid) = std::fs::read_to_string(pidfile) {
            let pid = pid.trim();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours =
                String::from_utf8_lossy(&cmdline).contains(&self.exec_root.display().to_string());
            if ours {
                eprintln!("containerd {pid} outlived dockerd: killing it");
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
    }
}
