//! What strace saw: every path a traced process named to the kernel (`-e trace=%file`:
//! opens, execs, stats, accesses, readlinks), whether it was there, and how each process
//! ended. ptrace sees what fanotify cannot: stat calls, and paths that were not found.

use std::collections::{BTreeMap, BTreeSet};

/// What a trace says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// Paths (relative to the root) a process reached.
    pub found: BTreeSet<String>,
    /// Paths it looked for and did not find (`ENOENT`).
    pub absent: BTreeSet<String>,
    /// How each process ended: its exit status, or 128 and the signal that killed it.
    pub exits: BTreeMap<u32, i32>,
}

/// Reads strace's output `text` (`-f -y -s 4096`): container paths as named, paths of
/// descriptors as the host sees them under `rootfs`, relative paths from `cwd` (a `chdir`
/// is not followed). A call strace shows in two parts (`<unfinished ...>`, then
/// `<... resumed>`) is read when it resumes, with its result.
pub fn parse(text: &str, rootfs: &str, cwd: &str) -> Trace {
    let mut trace = Trace::default();
    let mut unfinished: BTreeMap<u32, String> = BTreeMap::new();
    let record = |args: &str, result: &str, trace: &mut Trace| {
        let absent = result.starts_with("-1 ENOENT");
        for path in paths(args, rootfs, cwd) {
            match absent {
                true => trace.absent.insert(path),
                false => trace.found.insert(path),
            };
        }
    };
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(ended) = rest.strip_prefix("+++ ") {
            if let Some(status) = ended.strip_prefix("exited with ") {
                let code = status.trim_end_matches(" +++").trim().parse().unwrap_or(-1);
                trace.exits.insert(pid, code);
            } else if let Some(signal) = ended.strip_prefix("killed by ") {
                let name = signal.split_whitespace().next().unwrap_or_default();
                trace.exits.insert(pid, 128 + signal_number(name));
            }
            continue;
        }
        if rest.starts_with("<... ") {
            if let Some(args) = unfinished.remove(&pid) {
                let result = rest.split_once(") = ").map_or("", |(_, r)| r);
                record(&args, result, &mut trace);
            }
            continue;
        }
        let Some(open) = rest.find('(') else {
            continue;
        };
        if let Some(args) = rest.strip_suffix("<unfinished ...>") {
            unfinished.insert(pid, args[open + 1..].to_string());
            continue;
        }
        let (args, result) = match rest.rfind(") = ") {
            Some(at) => (&rest[open + 1..at], &rest[at + 4..]),
            None => (&rest[open + 1..], ""),
        };
        record(args, result, &mut trace);
    }
    // A call that never resumed reached what it named, as far as anyone knows.
    for args in unfinished.into_values() {
        record(&args, "", &mut trace);
    }
    // A path found once was there, whatever other lookups said.
    let found = trace.found.clone();
    trace.absent.retain(|p| !found.contains(p));
    trace
}

/// The number of the signal strace names (`SIGSEGV`); 0 for one it does not know.
fn signal_number(name: &str) -> i32 {
    const SIGNALS: [&str; 15] = [
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
        "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
    ];
    (SIGNALS.iter().position(|s| *s == name)).map_or(0, |i| i as i32 + 1)
}

/// The paths a call's arguments name, relative to the root: its strings outside arrays and
/// structures (not `execve`'s argv), each from the directory of the descriptor before it,
/// or `cwd`, when relative; and the descriptors' own paths. `/proc`, `/dev` and `/sys` are
/// the runtime's.
fn paths(args: &str, rootfs: &str, cwd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut dir: Option<String> = None;
    let mut chars = args.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            '"' => {
                // C escapes, as strace writes them: octal bytes (`\303\251`), `\n` and the like.
                let mut bytes = Vec::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next().map(|(_, e)| e) {
                            Some(d @ '0'..='7') => {
                                let mut value = d.to_digit(8).unwrap_or(0);
                                for _ in 0..2 {
                                    match chars.peek().and_then(|(_, n)| n.to_digit(8)) {
                                        Some(n) => {
                                            value = value * 8 + n;
                                            chars.next();
                                        }
                                        None => break,
                                    }
                                }
                                bytes.push(value as u8);
                            }
                            Some('n') => bytes.push(b'\n'),
                            Some('t') => bytes.push(b'\t'),
                            Some('r') => bytes.push(b'\r'),
                            Some('v') => bytes.push(0x0b),
                            Some('f') => bytes.push(0x0c),
                            Some(other) => {
                                let mut utf8 = [0; 4];
                                bytes.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes());
                            }
                            None => break,
                        },
                        c => {
                            let mut utf8 = [0; 4];
                            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                        }
                    }
                }
                let s = String::from_utf8_lossy(&bytes).into_owned();
                if depth == 0 && !s.is_empty() {
                    let base = dir.take().unwrap_or_else(|| cwd.to_string());
                    let full = match s.starts_with('/') {
                        true => s,
                        false => format!("{base}/{s}"),
                    };
                    out.extend(normalize(&full));
                }
            }
            '<' if args[..i].ends_with(|c: char| c.is_ascii_digit()) => {
                let end = args[i..].find('>').map_or(args.len(), |e| i + e);
                let host = &args[i + 1..end];
                let inside = host.strip_prefix(rootfs).unwrap_or(host);
                let inside = if inside.is_empty() { "/" } else { inside };
                out.extend(normalize(inside));
                dir = Some(inside.to_string());
                while chars.peek().is_some_and(|(j, _)| *j <= end) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    out
}

/// `path` without `.` and `..` (kept inside the root) and without its leading `/`; `None`
/// for the root itself and the runtime's `/proc`, `/dev` and `/sys`.
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let first = *parts.first()?;
    (!["proc", "dev", "sys"].contains(&first)).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_results_and_exits_are_read_from_a_trace() {
        let text = r#"101 execve("/usr/bin/python3", ["python3", "/not/a/path"], 0x7ffc /* 4 vars */) = 0
101 access("/etc/ld.so.preload", R_OK) = -1 ENOENT (No such file or directory)
101 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3</host/root/etc/ld.so.cache>
101 newfstatat(3</host/root/usr/lib/python3.13>, "os.py", {st_mode=S_IFREG|0644, st_size=1}, 0) = 0
101 openat(AT_FDCWD, "app.py", O_RDONLY) = 4</host/root/app/app.py>
101 readlink("/proc/self/exe", "/usr/bin/python3.13", 4096) = 19
101 stat("/usr/lib/../lib/x\"y", 0x1) = -1 ENOENT (No such file or directory)
101 openat(AT_FDCWD, "/usr/lib/plugin.so", O_RDONLY <unfinished ...>
103 openat(AT_FDCWD, "/gone", O_RDONLY <unfinished ...>
103 <... openat resumed>) = -1 ENOENT (No such file or directory)
103 stat("/caf\303\251/x\ty", 0x1) = 0
102 +++ killed by SIGKILL +++
103 +++ killed by SIGSEGV (core dumped) +++
101 +++ exited with 3 +++
"#;
        let trace = parse(text, "/host/root", "/app");
        let found: BTreeSet<String> = [
            "usr/bin/python3",
            "etc/ld.so.cache",
            "usr/lib/python3.13",
            "usr/lib/python3.13/os.py",
            "app/app.py",
            "usr/bin/python3.13",
            "usr/lib/plugin.so",
            "café/x\ty",
        ]
        .map(String::from)
        .into();
        assert_eq!(trace.found, found);
        let absent: BTreeSet<String> = ["etc/ld.so.preload", "usr/lib/x\"y", "gone"]
            .map(String::from)
            .into();
        assert_eq!(trace.absent, absent);
        assert_eq!(
            trace.exits,
            BTreeMap::from([(101, 3), (102, 137), (103, 139)])
        );
        assert_eq!(normalize("/a/../../b/./c"), Some("b/c".into()));
        assert_eq!(normalize("/"), None);
    }
}
