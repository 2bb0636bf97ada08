//! The ABI guard: an added program that needs symbol versions the image's libraries lack
//! cannot start, and is refused (or, asked for, built with a warning), naming the program,
//! the version, the library and what it has, and the fix; `deps` reports the same. The
//! programs are trixie's own, taken from its packages: `jq` (C, `GLIBC_2.38`) and `re2c`
//! (C++, `GLIBCXX_3.4.32`), which bookworm's glibc 2.36 and libstdc++ (3.4.30) lack.

mod common;

use std::path::Path;

use common::{CACHE_FILL, bareboat, run, trixie_programs};
use serde_json::Value;

/// `bareboat build --from catalog:cc --release RELEASE --add PROGRAM:/app/PROGRAM MORE`.
fn build_on(dir: &Path, release: &str, program: &str, more: &[&str]) -> std::process::Output {
    let add = format!("{program}:/app/{program}");
    let entrypoint = format!("/app/{program}");
    let output = format!("oci:{release}-{program}:app");
    let mut args = vec![
        "--from",
        "catalog:cc",
        "--release",
        release,
        "--add",
        &add,
        "--entrypoint",
        &entrypoint,
        "-o",
        &output,
    ];
    args.extend_from_slice(more);
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    bareboat(dir, "build", &args).output().unwrap()
}

#[test]
fn programs_that_need_newer_symbol_versions_than_the_image_has_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trixie_programs(d);
    common::hello(d, "#include <stdio.h>\nint main(void){puts(\"hi\");}\n");

    // C: jq needs glibc 2.38; bookworm's is 2.36.
    let out = build_on(d, "bookworm", "jq", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/app/jq needs GLIBC_2.38 from /usr/lib/x86_64-linux-gnu/libc.so.6, which defines at most GLIBC_2.36"),
        "{err}"
    );
    assert!(
        err.contains("build the image for trixie (--release trixie)"),
        "{err}"
    );
    assert!(!d.join("bookworm-jq").exists(), "nothing is written");
    // C++: re2c needs libstdc++'s GLIBCXX_3.4.32; bookworm's has 3.4.30.
    let out = build_on(d, "bookworm", "re2c", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/app/re2c needs GLIBCXX_3.4.32"), "{err}");
    assert!(
        err.contains("which defines at most GLIBCXX_3.4.30"),
        "{err}"
    );

    // On trixie both start; a program built here, needing only older versions, passes on
    // bookworm.
    for program in ["jq", "re2c"] {
        let out = build_on(d, "trixie", program, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = build_on(d, "bookworm", "hello", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Asked for, the image is built anyway, with the warning and the report.
    let out = build_on(d, "bookworm", "jq", &["--allow-abi-mismatch"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: /app/jq needs GLIBC_2.38"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["images"][0]["abi"][0]["needs"], "GLIBC_2.38",
        "{report}"
    );

    // deps says the same, without building anything the user keeps.
    let out = run(&mut bareboat(
        d,
        "deps",
        &[
            "jq",
            "re2c",
            "hello",
            "--from",
            "catalog:cc",
            "--release",
            "bookworm",
        ],
    ));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, String)> = report["abi"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["program"].as_str().unwrap().into(),
                m["needs"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("/app/jq".to_string(), "GLIBC_2.38".to_string()),
            ("/app/re2c".to_string(), "GLIBCXX_3.4.32".to_string())
        ],
        "{report}"
    );
    assert_eq!(report["abi"][0]["highest"], "GLIBC_2.36");
}
