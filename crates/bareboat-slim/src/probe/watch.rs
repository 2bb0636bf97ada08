//! What fanotify saw: every file and directory opened or executed on the probe's own
//! tmpfs, by any process. The whole filesystem is marked (`FAN_MARK_FILESYSTEM`), since an
//! inode mark is not recursive and a mount mark on the bundle would see the host too; it
//! needs root. Each event carries an open descriptor, whose path (`/proc/self/fd`) says
//! which file it was.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::trace::normalize;

/// A watch on a filesystem, reading its events on a thread of its own.
pub struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    reader: Option<JoinHandle<io::Result<()>>>,
}

impl Watch {
    /// Watches the filesystem `root` is on (a tmpfs of the probe's own, so every event is
    /// about the image), recording what is opened.
    pub fn start(root: &Path) -> io::Result<Watch> {
        let flags = libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK;
        let events = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32;
        // SAFETY: fanotify_init takes no pointers; its result is checked.
        let fd = unsafe { libc::fanotify_init(flags, events) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor this watch owns from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = CString::new(root.as_os_str().as_bytes())?;
        let mask = libc::FAN_OPEN | libc::FAN_OPEN_EXEC | libc::FAN_ONDIR;
        let how = libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM;
        // SAFETY: path is a NUL-terminated string that outlives the call.
        let marked = unsafe {
            libc::fanotify_mark(fd.as_raw_fd(), how, mask, libc::AT_FDCWD, path.as_ptr())
        };
        if marked < 0 {
            return Err(io::Error::last_os_error());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let prefix = root.to_string_lossy().into_owned();
        let reader = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || read_events(fd, &prefix, &stop, &seen))
        };
        Ok(Watch {
            stop,
            seen,
            reader: Some(reader),
        })
    }

    /// Stops watching, after the events already queued are read; returns the paths seen,
    /// relative to the root.
    pub fn finish(mut self) -> io::Result<BTreeSet<String>> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            reader
                .join()
                .map_err(|_| io::Error::other("the fanotify reader panicked"))??;
        }
        Ok(std::mem::take(
            &mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Reads events until told to stop and none is left, recording the path of each under
/// `prefix`.
fn read_events(
    fd: OwnedFd,
    prefix: &str,
    stop: &AtomicBool,
    seen: &Mutex<BTreeSet<String>>,
) -> io::Result<()> {
    let size = std::mem::size_of::<libc::fanotify_event_metadata>();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, valid for the call.
        let ready = unsafe { libc::poll(&mut poll, 1, 50) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if ready == 0 {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            continue;
        }
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                continue;
            }
            return Err(e);
        }
        let mut at = 0usize;
        // Every event's descriptor is taken (and so closed) before any error is returned.
        let mut failed = None;
        while at + size <= n as usize {
            // SAFETY: at least one whole event is left at `at`; it may be unaligned.
            let event: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
            if event.vers != libc::FANOTIFY_METADATA_VERSION || (event.event_len as usize) < size {
                return Err(io::Error::other(
                    "fanotify's events are not of the version read",
                ));
            }
            if event.mask & libc::FAN_Q_OVERFLOW != 0 {
                failed = Some(io::Error::other(
                    "fanotify's queue overflowed: events were lost",
                ));
            }
            if event.fd >= 0 {
                // SAFETY: the event's descriptor is ours to close.
                let file = unsafe { OwnedFd::from_raw_fd(event.fd) };
                let link = format!("/proc/self/fd/{}", file.as_raw_fd());
                if let Ok(path) = std::fs::read_link(link) {
                    // A file the container opened reads as the container names it once its
                    // root is pivoted; one opened through the host's view, under `prefix`.
                    let path = path.to_string_lossy();
                    let inside = path.strip_prefix(prefix).unwrap_or(&path);
                    if let Some(inside) = normalize(inside) {
                        seen.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(inside);
                    }
                }
            }
            at += event.event_len as usize;
        }
        if let Some(error) = failed {
            return Err(error);
        }
    }
}
