//! `bareboat inspect` on images bareboat builds, checked against what the build reported,
//! what the layout holds and what umoci unpacks.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bareboat, build, fails_with, run, skopeo_raw, tool, unpack};
use serde_json::{Value, json};

fn inspect(dir: &Path, args: &[&str]) -> Value {
    let out = run(&mut bareboat(dir, "inspect", args));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn inspect_reports_exact_sizes_packages_and_wasted_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let built = build(d, &["catalog:cc", "-o", "oci:out:cc"]);
    let report = inspect(d, &["oci:out:cc"]);
    assert_eq!(report["image"], built["digest"]);
    assert_eq!(report["config"]["user"], "65532");

    // Each layer as skopeo reads the manifest, with its tar stream's length as gzip or zstd
    // decompresses the blob, and what made it as the build said; the totals are their sums.
    let layers = report["layers"].as_array().unwrap();
    let manifest = skopeo_raw(d, "oci:out:cc");
    let listed = manifest["layers"].as_array().unwrap();
    let wrote = built["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), listed.len());
    let (mut size, mut uncompressed_size) = (0, 0);
    for ((l, m), w) in layers.iter().zip(listed).zip(wrote) {
        assert_eq!(l["digest"], m["digest"]);
        assert_eq!(l["size"], m["size"]);
        let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let decompress = match m["mediaType"].as_str().unwrap() {
            t if t.ends_with("+zstd") => tool("zstd"),
            _ => tool("gzip"),
        };
        let tar = run(Command::new(decompress)
            .arg("-dc")
            .arg(d.join("out/blobs/sha256").join(hex)));
        assert_eq!(l["uncompressed_size"], tar.stdout.len());
        assert_eq!(l["created_by"], w["created_by"]);
        size += m["size"].as_u64().unwrap();
        uncompressed_size += tar.stdout.len();
    }
    assert_eq!(report["size"], size);
    assert_eq!(report["uncompressed_size"], uncompressed_size);

    // The packages are those whose dpkg entries umoci unpacks, with their versions.
    let rootfs = unpack(d, "out", "cc").join("rootfs");
    let status_d = rootfs.join("var/lib/dpkg/status.d");
    let mut expected: Vec<(String, String)> = std::fs::read_dir(&status_d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".md5sums"))
        .map(|n| {
            let text = std::fs::read_to_string(status_d.join(&n)).unwrap();
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("Version: "))
                .unwrap()
                .to_string();
            (n, version)
        })
        .collect();
    expected.sort();
    let packages: Vec<(String, String)> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("version"))
        })
        .collect();
    assert_eq!(packages, expected);

    // The regular files and their bytes are those find sees in umoci's rootfs.
    let found = run(Command::new(tool("find"))
        .arg(&rootfs)
        .args(["-type", "f", "-printf", "%s\\n"]));
    let sizes: Vec<u64> = String::from_utf8_lossy(&found.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(report["files"], sizes.len());
    assert_eq!(report["file_bytes"], sizes.iter().sum::<u64>());

    // The largest file is the one on disk, at its size.
    let largest = &report["largest_files"][0];
    let on_disk = rootfs.join(largest["path"].as_str().unwrap().trim_start_matches('/'));
    assert_eq!(largest["size"], std::fs::metadata(&on_disk).unwrap().len());
    assert_eq!(report["wasted_bytes"], 0);
    assert_eq!(report["repeated"], serde_json::json!([]));

    // A layer that deletes a large file of a lower one wastes exactly its bytes.
    let libstdcxx = report["largest_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().contains("libstdc++.so.6.0"))
        .unwrap();
    let path = libstdcxx["path"].as_str().unwrap();
    std::fs::write(
        d.join("bareboat.toml"),
        format!("from = \"oci:out:cc\"\nremove = [\"{path}\"]\n"),
    )
    .unwrap();
    build(d, &["-o", "oci:slim:app"]);
    let slim = inspect(d, &["oci:slim:app"]);
    assert_eq!(slim["wasted_bytes"], libstdcxx["size"]);
    let waste = &slim["waste"][0];
    assert_eq!(waste["path"], path.trim_start_matches('/'));
    assert_eq!(waste["how"], "deleted");
    assert_eq!(waste["layer"], 3);
    assert_eq!(waste["by_layer"], 4);
    assert_eq!(slim["files"], report["files"].as_u64().unwrap() - 1);

    // --tree lists a directory as the finished image shows it.
    let tree = inspect(d, &["oci:out:cc", "--tree", "/etc"]);
    let names: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"/etc/passwd") && names.contains(&"/etc/os-release"),
        "{names:?}"
    );
    fails_with(
        &mut bareboat(d, "inspect", &["oci:out:cc", "--tree", "/no/such"]),
        "the image has no directory there",
    );
}

/// Builds a fat image into `oci:fat:fat` in `d`, with bareboat itself: shells, package
/// managers, a setuid program, a world-writable directory, a private key, running as root.
fn fat_image(d: &Path) {
    std::fs::create_dir(d.join("app")).unwrap();
    std::fs::create_dir(d.join("drop")).unwrap();
    // A directory keeps its host mode.
    let world_writable = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(d.join("drop"), world_writable).unwrap();
    std::fs::write(d.join("app/tool"), "#!/usr/bin/perl\nprint 1;\n").unwrap();
    run(std::process::Command::new("openssl").current_dir(d).args([
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        "app/id_key",
    ]));
    std::fs::write(
        d.join("bareboat.toml"),
        r#"packages = ["bash", "dash", "coreutils", "apt", "dpkg", "perl-base"]
user = "0"
auto_deps = false

[[files]]
src = "app/tool"
dst = "/app/tool"
mode = "4755"

[[files]]
src = "app/id_key"
dst = "/app/id_key"
mode = "0600"

[[files]]
src = "drop"
dst = "/srv/drop"
"#,
    )
    .unwrap();
    build(d, &["-o", "oci:fat:fat"]);
}

#[test]
fn audit_finds_every_planted_issue_and_nothing_in_clean_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fat_image(d);
    let out = bareboat(d, "audit", &["oci:fat:fat", "--fail-on", "high"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, String)> = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap_or("-").to_string();
            (f["id"].as_str().unwrap().to_string(), path)
        })
        .collect();
    for planted in [
        ("secret", "/app/id_key"),
        ("shell", "/usr/bin/bash"),
        ("shell", "/usr/bin/dash"),
        ("package-manager", "/usr/bin/apt"),
        ("package-manager", "/usr/bin/apt-get"),
        ("package-manager", "/usr/bin/dpkg"),
        ("setuid", "/app/tool"),
        ("world-writable", "/srv/drop"),
        ("root-user", "-"),
    ] {
        let planted = (planted.0.to_string(), planted.1.to_string());
        assert!(found.contains(&planted), "{planted:?} not in {found:?}");
    }
    assert_eq!(
        audit["findings"][0]["severity"], "critical",
        "the most severe first"
    );
    assert!(audit["counts"]["high"].as_u64().unwrap() >= 6);

    // The catalogue's images are clean, but for the busybox a debug variant declares.
    build(d, &["catalog:static", "-o", "oci:clean:static"]);
    let out = bareboat(d, "audit", &["oci:clean:static", "--fail-on", "unknown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let clean: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(clean["findings"], serde_json::json!([]));
    build(d, &["catalog:base:debug", "-o", "oci:clean:debug"]);
    let debug: Value = serde_json::from_slice(
        &run(&mut bareboat(
            d,
            "audit",
            &["oci:clean:debug", "--fail-on", "medium"],
        ))
        .stdout,
    )
    .unwrap();
    let ids: Vec<&str> = debug["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["debug-shell"]);
}

/// How many pixels of `png` are within a small distance of the colour `#rrggbb`.
fn pixels_of(png: &Path, colour: &str) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let want: Vec<i32> = (0..3)
        .map(|i| i32::from_str_radix(&colour[1 + 2 * i..3 + 2 * i], 16).unwrap())
        .collect();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| (0..3).all(|i| (px[i] as i32 - want[i]).abs() <= 6))
        .count()
}

#[test]
fn compare_puts_images_side_by_side_and_its_report_renders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fat_image(d);
    build(d, &["catalog:cc", "-o", "oci:out:cc"]);
    build(d, &["catalog:static", "-o", "oci:out:static"]);
    let images = ["oci:fat:fat", "oci:out:cc", "oci:out:static"];
    // Vulnerability data in the tracker's format: a shell, perl and the C library are open.
    let open =
        |urgency: &str| json!({"releases": {"trixie": {"status": "open", "urgency": urgency}}});
    let data = json!({
        "bash": {"CVE-2026-1000": open("high")},
        "perl": {"CVE-2026-1001": open("medium")},
        "glibc": {"CVE-2026-1002": open("low")},
    });
    std::fs::write(d.join("tracker.json"), data.to_string()).unwrap();

    let mut args = vec!["--db", "tracker.json", "--html", "report.html"];
    args.extend(images);
    let compared: Value =
        serde_json::from_slice(&run(&mut bareboat(d, "compare", &args)).stdout).unwrap();
    // Each column says what inspect, audit and scan say of that image.
    for (column, image) in compared["images"].as_array().unwrap().iter().zip(images) {
        assert_eq!(column["label"], image);
        let report = inspect(d, &[image]);
        for key in [
            "image",
            "size",
            "uncompressed_size",
            "files",
            "wasted_bytes",
        ] {
            assert_eq!(column[key], report[key], "{image} {key}");
        }
        assert_eq!(
            column["packages"],
            report["packages"].as_array().unwrap().len()
        );
        assert_eq!(column["layers"], report["layers"].as_array().unwrap().len());
        let audit = bareboat(d, "audit", &[image]).output().unwrap();
        let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
        assert_eq!(column["findings"], audit["counts"], "{image}");
        let scan = bareboat(d, "scan", &[image, "--db", "tracker.json"])
            .output()
            .unwrap();
        let scan: Value = serde_json::from_slice(&scan.stdout).unwrap();
        assert_eq!(column["vulnerabilities"], scan["counts"], "{image}");
    }
    let column = |i: usize, key: &str| compared["images"][i][key].as_u64().unwrap();
    assert!(column(0, "size") > column(1, "size") && column(1, "size") > column(2, "size"));
    assert!(column(0, "packages") > column(1, "packages"));
    assert_eq!(compared["images"][0]["vulnerabilities"]["high"], 1);
    // In cc, both of glibc's packages (libc6, and libc-bin for the C.UTF-8 locale) have it.
    assert_eq!(compared["images"][1]["vulnerabilities"]["low"], 2);
    assert_eq!(compared["images"][2]["vulnerabilities"]["low"], 0);

    // The text table: a column per image, a row per figure.
    let text = run(std::process::Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(d)
        .arg("--cache")
        .arg(common::cache())
        .args(["compare", "--db", "tracker.json"])
        .args(images));
    let text = String::from_utf8_lossy(&text.stdout);
    let header = text.lines().next().unwrap();
    assert!(images.iter().all(|i| header.contains(i)), "{text}");
    for row in [
        "compressed",
        "packages",
        "audit findings",
        "vulnerabilities",
    ] {
        assert!(text.lines().any(|l| l.starts_with(row)), "{row}: {text}");
    }

    // Headless Chromium renders the report's charts; the screenshot is kept as an artifact.
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("src=") && !html.contains("href="));
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("compare.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    run(std::process::Command::new(common::tool("chromium"))
        .env("HOME", profile.path())
        .arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--hide-scrollbars")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1100,1400")
        .arg(format!("file://{}", d.join("report.html").display())));
    eprintln!("compare report screenshot: {}", shot.display());
    // Bars of each chart are drawn: compressed size, packages, high vulnerabilities.
    for (what, colour, at_least) in [
        ("compressed size bars", "#2563eb", 2000),
        ("package bars", "#059669", 5000),
        ("high vulnerability bars", "#dc2626", 1000),
    ] {
        let n = pixels_of(&shot, colour);
        assert!(
            n >= at_least,
            "{what}: {n} pixels of {colour} in {}",
            shot.display()
        );
    }
}
