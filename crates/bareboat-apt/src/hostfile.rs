//! Small files a user names (keyrings, CA certificates): read only when they are regular
//! files, and never past a cap, so that `/dev/zero`, a FIFO or a huge file is refused with a
//! clear error rather than read without end.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads the regular file at `path` (a symlink to one is followed: the user named it), which
/// must hold at most `limit` bytes.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let not_regular = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO or directory cannot be read as one)",
        )
    };
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    // Non-blocking, so that a FIFO swapped in after the check cannot stall the open.
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {limit}-byte limit"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.asc");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_capped(&file, 10).unwrap(), b"0123456789");
        let e = read_capped(&file, 9).unwrap_err().to_string();
        assert!(e.contains("9-byte limit"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_capped(&link, 10).unwrap(), b"0123456789");
        for special in [Path::new("/dev/zero"), dir.path()] {
            let e = read_capped(special, 1 << 20).unwrap_err().to_string();
            assert!(
                e.contains("not a regular file"),
                "{}: {e}",
                special.display()
            );
        }
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_capped(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
