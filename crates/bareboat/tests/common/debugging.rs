//! `bareboat debug` in the tests: a nonroot server image to debug, and what a debug
//! session must find in it, for every runtime the tests run.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{build, run, tool};

/// A static server that answers every connection with one line.
pub const SERVER: &str = r#"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) return 1;
    const char *reply = "HTTP/1.0 200 OK\r\nContent-Length: 22\r\n\r\nhello from the target\n";
    for (;;) {
        int c = accept(s, 0, 0);
        char buf[1024];
        read(c, buf, sizeof buf);
        write(c, reply, strlen(reply));
        close(c);
    }
}
"#;

/// A nonroot `catalog:static` image of the server on `port`, written to `output`.
pub fn server_image(dir: &Path, port: u16, output: &str) {
    let src = dir.join("server.c");
    std::fs::write(&src, SERVER).unwrap();
    run(Command::new(tool("gcc"))
        .args(["-static", "-O2"])
        .arg(&src)
        .arg("-o")
        .arg(dir.join("server")));
    build(
        dir,
        &[
            "--from",
            "catalog:static",
            "--add",
            "server:/app/server",
            "--entrypoint",
            "/app/server",
            "--cmd",
            &port.to_string(),
            "-o",
            output,
        ],
    );
}

/// Every path under `root` with its size, mode and owner: what must not change. The
/// runtime's mounts (`/proc`, `/sys`, `/dev`) are left out.
pub fn listing(root: &Path) -> BTreeMap<PathBuf, (u64, u32, u32, u32)> {
    let mounts = ["proc", "sys", "dev"].map(|m| root.join(m));
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if mounts.contains(&path) {
                continue;
            }
            let m = std::fs::symlink_metadata(&path).unwrap();
            if m.is_dir() {
                pending.push(path.clone());
            }
            let size = if m.is_dir() { 0 } else { m.size() };
            out.insert(path, (size, m.mode(), m.uid(), m.gid()));
        }
    }
    out
}

/// `bareboat debug ARGS` in `dir`, with the shared cache, and `dir/bin` first on PATH.
pub fn debug_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareboat"));
    cmd.current_dir(dir)
        .arg("--cache")
        .arg(super::cache())
        .arg("debug")
        .args(args)
        .env("PATH", path_with(dir))
        .env_remove("BAREBOAT_MIRROR")
        .stdin(Stdio::null());
    cmd
}

/// Runs a debug command, printing what it said on standard error.
/// Debug sessions run one at a time in the tests, so that a process one leaves behind is
/// known to be that session's: the tests of a binary run side by side.
static SESSIONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The right to run a debug session now; see [`SESSIONS`].
pub fn one_session() -> std::sync::MutexGuard<'static, ()> {
    SESSIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a debug command, alone, printing what it said on standard error, and checks that
/// it left no process behind.
pub fn debugged(cmd: &mut Command) -> Output {
    let _alone = one_session();
    let out = cmd.output().unwrap();
    eprintln!(
        "{:?}: {:?}\n{}",
        cmd.get_args().collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        toolbox_processes().is_empty(),
        "left behind: {:?}",
        toolbox_processes()
    );
    let names: Vec<String> = std::fs::read_dir(super::cache().join("tmp"))
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let images: Vec<&String> = names.iter().filter(|n| n.starts_with("debug-")).collect();
    assert!(images.is_empty(), "an image's files were left: {images:?}");
    out
}

/// `bareboat debug ARGS` in `dir`, run.
pub fn debug(dir: &Path, args: &[&str]) -> Output {
    debugged(&mut debug_command(dir, args))
}

/// PATH with `dir/bin` first, where the tests' podman wrapper is.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `bareboat debug TARGET` with strace in the toolbox, running [`probe`]`(port)`.
pub fn probing(dir: &Path, target: &str, port: u16) -> Command {
    let script = probe(port);
    let args = [
        target,
        "--with",
        "strace",
        "--",
        "/busybox/sh",
        "-c",
        &script,
    ];
    debug_command(dir, &args)
}

/// What the toolbox checks in a running target: its process, its port, its files through
/// /proc/1/root and /target, and strace attached to it while it answers.
pub fn probe(port: u16) -> String {
    format!(
        "ps; wget -qO- http://127.0.0.1:{port}/; cat /proc/1/root/etc/passwd; \
         test -d /target/app && echo target-ok; \
         strace -f -p 1 -e trace=accept,accept4 -o /tmp/trace & tracer=$!; sleep 1; \
         wget -qO- http://127.0.0.1:{port}/ >/dev/null; sleep 1; kill $tracer; wait $tracer; \
         cat /tmp/trace; sleep 300 & echo left-behind"
    )
}

/// The debug sessions' processes still running anywhere: any whose root is a toolbox
/// in the cache, or the files of an image written out for a session (`tmp/debug-*`).
pub fn toolbox_processes() -> Vec<String> {
    let cache = std::fs::canonicalize(super::cache()).unwrap();
    let (toolboxes, tmp) = (cache.join("toolboxes"), cache.join("tmp"));
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let root = std::fs::read_link(e.path().join("root")).ok()?;
            let image = root
                .strip_prefix(&tmp)
                .is_ok_and(|r| r.starts_with("debug-"));
            (root.starts_with(&toolboxes) || image)
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

pub fn assert_probed(out: &Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("/app/server"),
        "ps does not show the target: {text}"
    );
    assert!(text.contains("hello from the target"), "{text}");
    assert!(text.contains("nonroot:x:65532:65532"), "{text}");
    assert!(text.contains("target-ok"), "{text}");
    // What strace wrote, not the script's own `-e trace=accept,...` that ps may show.
    let traced = |l: &str| l.contains("accept(") || l.contains("accept4(");
    assert!(
        text.lines().any(|l| traced(l) && !l.contains("trace=")),
        "strace saw no accept: {text}"
    );
    assert!(text.contains("left-behind"), "{text}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("toolboxes"), "{mounts}");
}
