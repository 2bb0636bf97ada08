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
/// descriptors as the host sees them under `rootfs`, relative paths from `cwd`.
pub fn parse(text: &str, rootfs: &str, cwd: &str) -> Trace {
    let mut trace = Trace::default();
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
            } else if ended.starts_with("killed by ") {
                trace.exits.insert(pid, 128 + 9);
            }
            continue;
        }
        let Some(open) = rest.find('(') else {
            continue;
        };
        let (args, result) = match rest.rfind(") = ") {
            Some(at) => (&rest[open + 1..at], &rest[at + 4..]),
            None => (&rest[open + 1..], ""),
        };
        let absent = result.starts_with("-1 ENOENT");
        for path in paths(args, rootfs, cwd) {
            match absent {
                true => trace.absent.insert(path),
                false => trace.found.insert(path),
            };
        }
    }
    // A path found once was there, whatever other lookups said.
    let found = trace.found.clone();
    trace.absent.retain(|p| !found.contains(p));
    trace
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
                let mut s = String::new();
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    match (escaped, c) {
                        (true, c) => {
                            s.push(c);
                            escaped = false;
                        }
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        (false, c) => s.push(c),
                    }
                }
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
            ',' => {}
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
102 +++ killed by SIGKILL +++
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
        ]
        .map(String::from)
        .into();
        assert_eq!(trace.found, found);
        let absent: BTreeSet<String> = ["etc/ld.so.preload", "usr/lib/x\"y"]
            .map(String::from)
            .into();
        assert_eq!(trace.absent, absent);
        assert_eq!(trace.exits, BTreeMap::from([(101, 3), (102, 137)]));
        assert_eq!(normalize("/a/../../b/./c"), Some("b/c".into()));
        assert_eq!(normalize("/"), None);
    }
}
