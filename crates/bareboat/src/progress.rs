//! Download, push and pull progress on a terminal; nothing when standard error is not one.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bareboat_apt::download::Progress;
use bareboat_oci::registry::BlobProgress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A spinner counting bytes received and items finished, shown only on a terminal.
pub struct Bar {
    bar: ProgressBar,
    finished: AtomicU64,
}

impl Bar {
    pub fn new(label: &'static str) -> Bar {
        let bar = ProgressBar::with_draw_target(None, draw_target());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix}: {msg}, {binary_bytes} received ({binary_bytes_per_sec})",
            )
            .expect("valid template"),
        );
        bar.set_prefix(label);
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar {
            bar,
            finished: AtomicU64::new(0),
        }
    }
}

/// A stage's bar goes when the stage is over.
impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn advance(&self, _what: &str, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn done(&self, what: &str) {
        let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.set_message(format!("{n} done, last {what}"));
    }
}

/// A bar per blob moving to or from a registry, each named by its short digest.
#[derive(Debug)]
pub struct Blobs {
    bars: MultiProgress,
    moving: Mutex<HashMap<String, ProgressBar>>,
}

impl Blobs {
    pub fn new() -> Blobs {
        Blobs {
            bars: MultiProgress::with_draw_target(draw_target()),
            moving: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, digest: &str) -> Option<ProgressBar> {
        let moving = self.moving.lock().unwrap_or_else(|e| e.into_inner());
        moving.get(digest).cloned()
    }
}

/// `sha256:0123456789ab`: enough of a digest to tell blobs apart.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

impl BlobProgress for Blobs {
    fn start(&self, digest: &str, size: u64) {
        let bar = self.bars.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(short(digest).to_string());
        let mut moving = self.moving.lock().unwrap_or_else(|e| e.into_inner());
        // A retried blob starts a new bar in place of the old.
        if let Some(old) = moving.insert(digest.to_string(), bar) {
            old.finish_and_clear();
            self.bars.remove(&old);
        }
    }

    fn advance(&self, digest: &str, bytes: u64) {
        if let Some(bar) = self.bar(digest) {
            bar.inc(bytes);
        }
    }

    fn finish(&self, digest: &str, outcome: &str) {
        let bar = self
            .moving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
        let line = format!("{} {outcome}", short(digest));
        match bar {
            Some(bar) => {
                bar.set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
                bar.finish_with_message(line);
            }
            None => {
                let _ = self.bars.println(line);
            }
        }
    }
}
