//! Compiles the health probe (`probe/health.c`) statically for every architecture Debian
//! releases, with Debian's gcc and its cross compilers (`probe/targets.rs`), for images to
//! carry (see `src/probe.rs`). The Rust toolchain here targets only the host, so the probe
//! is C. A missing compiler leaves that architecture without a probe, and a build that asks
//! for it says how to get it.

use std::path::PathBuf;
use std::process::Command;

include!("probe/targets.rs");

fn main() {
    println!("cargo:rerun-if-changed=probe/health.c");
    println!("cargo:rerun-if-changed=probe/targets.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (arch, compiler, packages) in TARGETS {
        let dest = out.join(format!("health-{arch}"));
        let built = Command::new(compiler)
            .args(["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror"])
            .arg("-Wl,--build-id=none")
            .arg("-o")
            .arg(&dest)
            .arg("probe/health.c")
            .status()
            .is_ok_and(|s| s.success());
        if !built {
            println!(
                "cargo:warning=no {arch} health probe: {compiler} is missing or failed (apt-get install {packages})"
            );
            std::fs::write(&dest, b"").expect("write to OUT_DIR");
        }
    }
}
