//! Download progress on a terminal; nothing when standard error is not one.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bareboat_apt::download::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner counting bytes received and items finished, shown only on a terminal.
pub struct Bar {
    bar: ProgressBar,
    finished: AtomicU64,
}

impl Bar {
    pub fn new(label: &'static str) -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
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

    pub fn finish(&self) {
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
