//! How reports reach standard output: `--json` documents, and the pieces of text several
//! commands print.

use anyhow::Result;
use bareboat_apt::lockfile::Change;
use bareboat_build::pipeline::AutoDeps;
use bareboat_oci::registry::PushReport;

/// Prints a `--json` report.
pub fn print_json<T: serde::Serialize + ?Sized>(report: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

/// `n` bytes in decimal units: `1.5 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Says what a push moved.
pub fn print_push(p: &PushReport) {
    let mounted = match p.mounted_blobs {
        0 => String::new(),
        n => format!(", {n} mounted from the base's repository"),
    };
    let referrers = match p.referrers {
        0 => String::new(),
        n => format!(", {n} referrers attached"),
    };
    println!(
        "Pushed {}: {} blobs uploaded ({}), {} already there{mounted}{referrers}",
        p.digest,
        p.uploaded_blobs,
        human_bytes(p.uploaded_bytes),
        p.skipped_blobs
    );
}

/// Lists a lock's version changes.
pub fn print_changes(changes: &[Change], inputs_changed: bool) {
    if inputs_changed {
        println!("  (the requested packages or excludes changed)");
    }
    if changes.is_empty() {
        println!("No version changes.");
    } else {
        println!("Changes:");
        for c in changes {
            println!("  {c}");
        }
    }
}

/// Says what auto-deps added and why, and what it noticed.
pub fn print_auto(auto: &AutoDeps) {
    for (arch, found) in auto {
        let arch = if auto.len() > 1 {
            format!(" [{arch}]")
        } else {
            String::new()
        };
        if found.packages.is_empty() {
            println!("Auto-deps{arch}: the added files need no packages beyond the base");
        }
        for (package, why) in &found.packages {
            println!("Auto-deps{arch}: + {package} ({})", why.join("; "));
        }
        for note in &found.notes {
            println!("  note: {note}");
        }
    }
}
