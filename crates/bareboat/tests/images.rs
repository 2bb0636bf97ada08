//! Catalogue images built from the real Debian archive (through the host's apt mirror),
//! checked with umoci, oci-image-tool and skopeo, and booted with runc and podman (and
//! qemu-user for arm64). Test programs are compiled here with the host's gcc.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{
    assert_no_shell_or_package_manager, bareboat, build, compile, layer_digests, podman, run, runc,
    runc_command, tool, unpack,
};
use serde_json::{Value, json};

const HELLO_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("hello from C, uid %d\n", (int)getuid()); return 0; }
"#;

/// Prints the locale that the environment selects and its character set, as a C program
/// started by a runtime sees them.
const LOCALE_C: &str = r#"
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    const char *locale = setlocale(LC_ALL, "");
    printf("uid %d, locale %s, codeset %s\n", (int)getuid(), locale ? locale : "(none)",
           nl_langinfo(CODESET));
    return 0;
}
"#;

/// What a catalogue image with glibc prints running [`LOCALE_C`].
const UTF8_LOCALE: &str = "uid 65532, locale C.UTF-8, codeset UTF-8\n";

/// The groups of every image, in order.
const GROUPS: &str = "root:x:0:\ntty:x:5:\nstaff:x:50:\nnogroup:x:65534:\nnonroot:x:65532:\n";

/// The regular files under `root`, relative to it.
fn regular_files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(root).unwrap();
                out.insert(relative.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// The files `pkg`'s md5sums list, each checked against the file in `rootfs` with the host's
/// md5sum.
fn md5sums_checked(rootfs: &Path, pkg: &str) -> BTreeSet<String> {
    let list = format!("var/lib/dpkg/status.d/{pkg}.md5sums");
    run(Command::new(tool("md5sum"))
        .current_dir(rootfs)
        .args(["--check", "--quiet", "--strict", &list]));
    let sums = std::fs::read_to_string(rootfs.join(&list)).unwrap();
    sums.lines()
        .map(|line| line.split_once("  ").unwrap().1.to_string())
        .collect()
}

#[test]
fn static_runs_a_static_binary_as_nonroot() {
    let dir = tempfile::tempdir().unwrap();
    let report = build(dir.path(), &["catalog:static", "-o", "oci:out:static"]);
    let bundle = unpack(dir.path(), "out", "static");
    let rootfs = bundle.join("rootfs");
    // Scanners' view: every package is recorded, its md5sums list exactly the files it
    // left in the image, and the rest is what bareboat writes.
    let packages = [
        "base-files",
        "netbase",
        "tzdata",
        "tzdata-legacy",
        "media-types",
        "ca-certificates",
    ];
    let mut listed = BTreeSet::new();
    for pkg in packages {
        let status =
            std::fs::read_to_string(rootfs.join("var/lib/dpkg/status.d").join(pkg)).unwrap();
        assert!(status.starts_with(&format!("Package: {pkg}\n")), "{status}");
        let files = md5sums_checked(&rootfs, pkg);
        assert!(
            !files.iter().any(|p| p.contains("usr/share/man/")),
            "{pkg}: {files:?} should have been sliced"
        );
        listed.extend(files);
    }
    let made: BTreeSet<String> = regular_files(&rootfs)
        .difference(&listed)
        .cloned()
        .collect();
    let mut expected: BTreeSet<String> = [
        "etc/group",
        "etc/nsswitch.conf",
        "etc/passwd",
        "etc/ssl/certs/ca-certificates.crt",
    ]
    .map(String::from)
    .into();
    for pkg in packages {
        expected.insert(format!("var/lib/dpkg/status.d/{pkg}"));
        expected.insert(format!("var/lib/dpkg/status.d/{pkg}.md5sums"));
    }
    assert_eq!(made, expected);
    // Of ca-certificates, as in distroless, only the bundle made of its certificates and
    // its copyright.
    assert_eq!(
        md5sums_checked(&rootfs, "ca-certificates"),
        BTreeSet::from(["usr/share/doc/ca-certificates/copyright".to_string()])
    );
    assert!(!rootfs.join("usr/share/ca-certificates").exists());
    // No libc, so no locale to name.
    assert!(
        !common::bundle_env(&bundle)
            .iter()
            .any(|e| e.starts_with("LANG=")),
        "{:?}",
        common::bundle_env(&bundle)
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/group")).unwrap(),
        GROUPS
    );
    compile(&bundle, "gcc", HELLO_C, "c", &["-static"]);
    assert_eq!(runc(&bundle, &["/test/prog"]), "hello from C, uid 65532\n");
    assert_no_shell_or_package_manager(&rootfs);
    assert!(
        std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt"))
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count()
            > 100
    );
    assert!(
        std::fs::read_to_string(rootfs.join("etc/os-release"))
            .unwrap()
            .contains("ID=debian")
    );
    assert!(rootfs.join("usr/share/doc/tzdata/copyright").exists());
    assert!(
        !rootfs
            .join("usr/share/doc/tzdata/changelog.Debian.gz")
            .exists()
    );
    let home = std::fs::metadata(rootfs.join("home/nonroot")).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (home.uid(), home.gid(), home.permissions().mode() & 0o7777),
        (65532, 0, 0o770)
    );
    assert_eq!(
        std::fs::metadata(rootfs.join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert_eq!(report["images"][0]["packages"], 6);
}

#[test]
fn base_nossl_runs_a_c_program() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        &["catalog:base-nossl", "-o", "oci:out:base-nossl"],
    );
    let bundle = unpack(dir.path(), "out", "base-nossl");
    assert_c_utf8_locale(&bundle);
    compile(&bundle, "gcc", LOCALE_C, "c", &[]);
    assert_eq!(runc(&bundle, &["/test/prog"]), UTF8_LOCALE);
    assert_no_shell_or_package_manager(&bundle.join("rootfs"));
}

/// LANG names C.UTF-8, and of libc-bin the image has glibc's C.utf8 locale alone (and its
/// copyright), recorded for scanners.
fn assert_c_utf8_locale(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    assert!(common::bundle_env(bundle).contains(&"LANG=C.UTF-8".to_string()));
    let status = std::fs::read_to_string(rootfs.join("var/lib/dpkg/status.d/libc-bin")).unwrap();
    assert!(
        status.starts_with("Package: libc-bin\n") && status.contains("Source: glibc"),
        "{status}"
    );
    let mut expected: BTreeSet<String> = regular_files(&rootfs.join("usr/lib/locale/C.utf8"))
        .into_iter()
        .map(|f| format!("usr/lib/locale/C.utf8/{f}"))
        .collect();
    assert!(
        expected.contains("usr/lib/locale/C.utf8/LC_CTYPE"),
        "{expected:?}"
    );
    expected.insert("usr/share/doc/libc-bin/copyright".into());
    assert_eq!(md5sums_checked(&rootfs, "libc-bin"), expected);
    for tool in ["usr/sbin/ldconfig", "usr/bin/ldd", "usr/bin/locale"] {
        assert!(!rootfs.join(tool).exists(), "{tool}");
    }
}

#[test]
fn cc_runs_a_cpp_program_and_shares_base_layers() {
    let dir = tempfile::tempdir().unwrap();
    let cc = build(dir.path(), &["catalog:cc", "-o", "oci:out:cc"]);
    let base = build(dir.path(), &["catalog:base", "-o", "oci:out:base"]);
    let (cc_layers, base_layers) = (layer_digests(&cc), layer_digests(&base));
    assert_eq!(
        base_layers.len(),
        3,
        "static, base-nossl and base: {base_layers:?}"
    );
    assert_eq!(
        cc_layers[..3],
        base_layers[..],
        "cc's lower layers are base's"
    );
    let bundle = unpack(dir.path(), "out", "cc");
    compile(
        &bundle,
        "g++",
        "#include <iostream>\n#include <vector>\nint main() { std::vector<int> v{1,2,3}; std::cout << \"hello from C++ \" << v.size() << std::endl; }\n",
        "cpp",
        &[],
    );
    assert_eq!(runc(&bundle, &["/test/prog"]), "hello from C++ 3\n");
}

#[test]
fn base_trusts_the_spec_ca_in_a_tls_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::make_test_ca(d);
    std::fs::write(
        d.join("bareboat.toml"),
        "from = \"catalog:base\"\nca_certs = [\"ca.pem\"]\n",
    )
    .unwrap();
    build(d, &["bareboat.toml", "-o", "oci:out:tls"]);
    assert!(
        d.join("bareboat.lock").exists(),
        "a spec file's lock is written beside it"
    );
    let bundle = unpack(d, "out", "tls");
    compile(&bundle, "gcc", TLS_CLIENT, "c", &["-lssl", "-lcrypto"]);
    let server = common::TlsServer::start(d);
    let port = server.port;
    let out = runc(&bundle, &["/test/prog", &port.to_string()]);
    drop(server);
    assert_eq!(out, "verified handshake\n");
}

const TLS_CLIENT: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
int main(int argc, char **argv) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!SSL_CTX_set_default_verify_paths(ctx)) return 2;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%s", argv[1]);
    BIO *bio = BIO_new_ssl_connect(ctx);
    SSL *ssl;
    BIO_get_ssl(bio, &ssl);
    SSL_set1_host(ssl, "localhost");
    SSL_set_tlsext_host_name(ssl, "localhost");
    BIO_set_conn_hostname(bio, addr);
    if (BIO_do_handshake(bio) <= 0 || SSL_get_verify_result(ssl) != X509_V_OK) {
        ERR_print_errors_fp(stderr);
        printf("handshake failed: %ld\n", SSL_get_verify_result(ssl));
        return 1;
    }
    printf("verified handshake\n");
    return 0;
}
"#;

#[test]
fn debug_images_have_busybox_and_root_variants_run_as_root() {
    let dir = tempfile::tempdir().unwrap();
    let report = build(
        dir.path(),
        &["catalog:static:debug-root", "-o", "oci:out:debug-root"],
    );
    let bundle = unpack(dir.path(), "out", "debug-root");
    assert_eq!(
        runc(&bundle, &["/busybox/sh", "-c", "echo ok; id -u"]),
        "ok\n0\n"
    );
    let status =
        std::fs::read_to_string(bundle.join("rootfs/var/lib/dpkg/status.d/busybox-static"))
            .unwrap();
    assert!(status.contains("Source: busybox"), "{status}");
    let sums =
        std::fs::read_to_string(bundle.join("rootfs/var/lib/dpkg/status.d/busybox-static.md5sums"))
            .unwrap();
    assert!(sums.contains("  busybox/busybox\n"), "{sums}");
    let history = report["images"][0]["layers"].as_array().unwrap();
    assert!(
        history.last().unwrap()["created_by"]
            .as_str()
            .unwrap()
            .contains("busybox")
    );

    build(dir.path(), &["catalog:static:debug", "-o", "oci:out:debug"]);
    let bundle = unpack(dir.path(), "out", "debug");
    assert_eq!(
        runc(&bundle, &["/busybox/sh", "-c", "echo ok; id -u"]),
        "ok\n65532\n"
    );
}

#[test]
fn builds_are_reproducible_across_directories_and_times() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = build(a.path(), &["catalog:base-nossl", "-o", "oci:x:one"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build(
        b.path(),
        &["catalog:base-nossl", "-o", "oci:elsewhere/deeper:two"],
    );
    assert_eq!(first["digest"], second["digest"]);
    // A second tag in the same layout reuses every blob.
    let before = std::fs::read_dir(a.path().join("x/blobs/sha256"))
        .unwrap()
        .count();
    build(a.path(), &["catalog:base-nossl", "-o", "oci:x:again"]);
    assert_eq!(
        std::fs::read_dir(a.path().join("x/blobs/sha256"))
            .unwrap()
            .count(),
        before
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(a.path().join("x/index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
}

#[test]
fn zstd_and_uncompressed_images_read_back_with_skopeo_and_umoci() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (compression, media_type) in [
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("none", "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let layout = format!("oci:out:{compression}");
        let report = build(
            d,
            &[
                "catalog:static",
                "--compression",
                compression,
                "-o",
                &layout,
            ],
        );
        let manifest = run(Command::new(tool("skopeo"))
            .current_dir(d)
            .args(["inspect", "--raw", &layout]));
        let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], media_type);
        assert_eq!(layer["digest"], report["images"][0]["layers"][0]["digest"]);
        // skopeo copy checks every blob's digest as it reads it.
        run(Command::new(tool("skopeo")).current_dir(d).args([
            "copy",
            &layout,
            &format!("dir:copied-{compression}"),
        ]));
    }
    // umoci unpacks the layers and checks each against its diff_id (Debian's umoci reads no
    // zstd layers).
    run(Command::new(tool("umoci")).current_dir(d).args([
        "unpack",
        "--rootless",
        "--image",
        "out:none",
        "bundle",
    ]));
    assert!(d.join("bundle/rootfs/etc/passwd").is_file());
    // An uncompressed layer is its own tar stream: its digest is its diff_id.
    let config = run(Command::new(tool("skopeo")).current_dir(d).args([
        "inspect",
        "--config",
        "--raw",
        "oci:out:none",
    ]));
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    let manifest =
        run(Command::new(tool("skopeo"))
            .current_dir(d)
            .args(["inspect", "--raw", "oci:out:none"]));
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        manifest["layers"][0]["digest"]
    );
}

#[test]
fn bookworm_packages_are_moved_under_usr() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        &[
            "catalog:base-nossl",
            "--release",
            "bookworm",
            "-o",
            "oci:out:bookworm",
        ],
    );
    let bundle = unpack(dir.path(), "out", "bookworm");
    let rootfs = bundle.join("rootfs");
    for link in ["bin", "lib", "lib64", "sbin"] {
        let meta = std::fs::symlink_metadata(rootfs.join(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "/{link} is not a link");
    }
    assert!(rootfs.join("usr/lib/x86_64-linux-gnu/libc.so.6").exists());
    assert!(
        std::fs::read_to_string(rootfs.join("etc/debian_version"))
            .unwrap()
            .starts_with("12.")
    );
    assert_c_utf8_locale(&bundle);
    compile(&bundle, "gcc", LOCALE_C, "c", &[]);
    assert_eq!(runc(&bundle, &["/test/prog"]), UTF8_LOCALE);
}

#[test]
fn arm64_images_run_under_qemu() {
    let dir = tempfile::tempdir().unwrap();
    build(
        dir.path(),
        &[
            "catalog:base-nossl:debug",
            "--arch",
            "arm64",
            "--health",
            "file:///etc/passwd",
            "-o",
            "oci:out:arm64",
        ],
    );
    let bundle = unpack(dir.path(), "out", "arm64");
    let rootfs = bundle.join("rootfs");
    let qemu = tool("qemu-aarch64-static");
    let out = run(Command::new(&qemu)
        .arg(rootfs.join("busybox/busybox"))
        .args(["sh", "-c", "echo ok"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    let src = dir.path().join("hello.c");
    std::fs::write(&src, HELLO_C).unwrap();
    run(Command::new(tool("aarch64-linux-gnu-gcc"))
        .arg(&src)
        .arg("-o")
        .arg(rootfs.join("hello")));
    let out = run(Command::new(&qemu)
        .arg("-L")
        .arg(&rootfs)
        .arg(rootfs.join("hello")));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello from C"));
    // The arm64 health probe, against a port that listens and then one that does not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let probe = rootfs.join("usr/local/bin/health");
    let out = run(Command::new(&qemu).arg(&probe).arg(&url));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("healthy: connected"));
    drop(listener);
    let out = Command::new(&qemu).arg(&probe).arg(&url).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn multi_arch_index_reads_back_and_podman_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let report = build(
        dir.path(),
        &[
            "catalog:static:debug",
            "--arch",
            "amd64,arm64",
            "-o",
            "oci:out:multi",
        ],
    );
    let index = run(Command::new(tool("skopeo")).current_dir(dir.path()).args([
        "inspect",
        "--raw",
        "oci:out:multi",
    ]));
    let index: Value = serde_json::from_slice(&index.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(platforms, [("linux", "amd64"), ("linux", "arm64")]);

    // skopeo picks the arm64 image out of the index and checks its blobs on the way.
    run(Command::new(tool("skopeo")).current_dir(dir.path()).args([
        "--override-arch",
        "arm64",
        "copy",
        "oci:out:multi",
        "dir:arm64",
    ]));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("arm64/manifest.json")).unwrap())
            .unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap();
    let config: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("arm64").join(&config["sha256:".len()..])).unwrap(),
    )
    .unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(report["images"][1]["arch"], "arm64");

    // podman pulls the host's image out of the index into its own store and runs it.
    let out = run(podman(dir.path())
        .args(["run", "--rm", "--network=none", "oci:out:multi"])
        .args(["-c", "echo ok; id -u"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n65532\n");
}

#[test]
fn multi_arch_apps_take_each_architectures_build_of_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("hello.c"), HELLO_C).unwrap();
    for (arch, compiler) in [("amd64", "gcc"), ("arm64", "aarch64-linux-gnu-gcc")] {
        std::fs::create_dir_all(d.join("dist").join(arch)).unwrap();
        run(Command::new(tool(compiler)).current_dir(d).args([
            "hello.c",
            "-o",
            &format!("dist/{arch}/hello"),
        ]));
    }
    build(
        d,
        &[
            "--from",
            "catalog:static",
            "--arch",
            "amd64,arm64",
            "--add",
            "dist/{arch}/hello:/app/hello",
            "--entrypoint",
            "/app/hello",
            "--lockfile",
            "app.lock",
            "-o",
            "oci:out:app",
        ],
    );
    // Each architecture's program needs its own libc6, found by auto-deps.
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(d.join("app.lock")).unwrap()).unwrap();
    let mut needed: Vec<&str> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str() == Some("libc6"))
        .filter(|p| {
            let reasons = p["reasons"].as_array().unwrap();
            reasons
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("needed: "))
        })
        .map(|p| p["target"].as_str().unwrap())
        .collect();
    needed.sort();
    assert_eq!(needed, ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        run(Command::new(tool("skopeo")).current_dir(d).args([
            "--override-arch",
            arch,
            "copy",
            "oci:out:app",
            &format!("oci:{arch}:app-{arch}"),
        ]));
        let bundle = unpack(d, arch, &format!("app-{arch}"));
        let program = bundle.join("rootfs/app/hello");
        assert_eq!(
            std::fs::read(&program).unwrap(),
            std::fs::read(d.join("dist").join(arch).join("hello")).unwrap(),
            "{arch} image holds the {arch} build"
        );
        let out = if arch == "amd64" {
            runc(&bundle, &[])
        } else {
            let qemu = tool("qemu-aarch64-static");
            let rootfs = bundle.join("rootfs");
            let out = run(Command::new(qemu).arg("-L").arg(&rootfs).arg(&program));
            String::from_utf8(out.stdout).unwrap()
        };
        assert!(out.starts_with("hello from C"), "{arch}: {out}");
    }
}

const LIBS_CPP: &str = r#"
#include <cstdio>
#include <string>
#include <zlib.h>
#include <openssl/ssl.h>
int main() {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    std::string s = std::string("zlib ") + zlibVersion();
    std::printf("%s, ssl %s\n", s.c_str(), ctx ? "ok" : "failed");
    SSL_CTX_free(ctx);
    return 0;
}
"#;

/// The packages a lock added for added files.
fn auto_added(lock: &Path) -> Vec<String> {
    let lock: toml::Value = toml::from_str(&std::fs::read_to_string(lock).unwrap()).unwrap();
    let mut names: Vec<String> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("needed: "))
        })
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn auto_deps_add_exactly_the_packages_of_a_programs_libraries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("prog.cc"), LIBS_CPP).unwrap();
    run(Command::new(tool("g++"))
        .current_dir(d)
        .args(["prog.cc", "-o", "prog", "-lssl", "-lcrypto", "-lz"]));
    std::fs::write(
        d.join("bareboat.toml"),
        "from = \"catalog:base-nossl\"\nentrypoint = [\"/app/prog\"]\n\n\
         [[files]]\nsrc = \"prog\"\ndst = \"/app/prog\"\n",
    )
    .unwrap();
    build(d, &["-o", "oci:out:app"]);
    // What the program links, as binutils reads it, decides whether libgcc-s1 is expected.
    let dynamic = run(Command::new(tool("readelf"))
        .args(["-d"])
        .arg(d.join("prog")));
    let mut expected = vec!["libssl3t64", "libstdc++6", "zlib1g"];
    if String::from_utf8_lossy(&dynamic.stdout).contains("libgcc_s.so.1") {
        expected.push("libgcc-s1");
        expected.sort();
    }
    assert_eq!(auto_added(&d.join("bareboat.lock")), expected);
    let bundle = unpack(d, "out", "app");
    let out = runc(&bundle, &[]);
    // zlib's version is checked for its shape, major.minor[.patch]: a point release may
    // take zlib to another patch level.
    let version = out
        .strip_prefix("zlib ")
        .and_then(|o| o.split([',', ' ']).next());
    let shaped = version.is_some_and(|v| {
        let parts: Vec<&str> = v.split('.').collect();
        (2..=3).contains(&parts.len()) && parts.iter().all(|p| p.parse::<u32>().is_ok())
    });
    assert!(shaped && out.ends_with("ssl ok\n"), "{out}");

    // A library no package ships is an error naming the file and the library ...
    std::fs::write(d.join("own.c"), "int own(void) { return 7; }\n").unwrap();
    run(Command::new(tool("gcc")).current_dir(d).args([
        "-shared",
        "-fPIC",
        "own.c",
        "-o",
        "libbbown.so",
    ]));
    std::fs::write(
        d.join("use.c"),
        "int own(void); int main(void) { return own() - 7; }\n",
    )
    .unwrap();
    run(Command::new(tool("gcc"))
        .current_dir(d)
        .args(["use.c", "-o", "use", "-L.", "-lbbown"]));
    let out = bareboat(
        d,
        "build",
        &[
            "--from",
            "catalog:base-nossl",
            "--add",
            "use:/app/use",
            "-o",
            "oci:out:own",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/app/use needs libbbown.so"), "{err}");
    let index = std::fs::read_to_string(d.join("out/index.json")).unwrap();
    assert!(
        !index.contains("\"own\""),
        "a refused build tags nothing: {index}"
    );
    // ... unless the image gets the library from the user.
    build(
        d,
        &[
            "--from",
            "catalog:base-nossl",
            "--add",
            "use:/app/use",
            "--add",
            "libbbown.so:/usr/lib/x86_64-linux-gnu/libbbown.so",
            "--entrypoint",
            "/app/use",
            "-o",
            "oci:out:own",
        ],
    );
    let bundle = unpack(d, "out", "own");
    runc(&bundle, &[]);
}

const HTTP_SERVER_RS: &str = r#"
use std::io::{Read, Write};
fn main() {
    let port = std::env::args().nth(1).expect("a port");
    let listener = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    for stream in listener.incoming() {
        let mut stream = stream.unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let body = "hello from a rust server";
        let _ = write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    }
}
"#;

#[test]
fn a_rust_server_added_with_auto_deps_serves_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let project = d.join("server");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"server\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(project.join("src/main.rs"), HTTP_SERVER_RS).unwrap();
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&project)
            .args(["build", "--release", "--quiet"])
            .env("CARGO_TARGET_DIR", project.join("target")),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let health = format!("http://127.0.0.1:{port}/");
    let args = [
        "--from",
        "catalog:static",
        "--add",
        "server/target/release/server:/app/server",
        "--entrypoint",
        "/app/server",
        "--cmd",
        &port,
        "--health",
        &health,
        "-o",
        "oci:out:server",
    ];
    let report = build(d, &args);
    let added: Vec<&str> = report["auto_deps"]["amd64"]["packages"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(added.contains(&"libc6"), "{added:?}");

    let bundle = unpack(d, "out", "server");
    let (mut cmd, id) = runc_command(&bundle, &[]);
    let mut child = cmd.spawn().unwrap();
    let mut page = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(format!("127.0.0.1:{port}")) {
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            s.read_to_string(&mut page).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The health probe, run in the server's container as Docker or a Kubernetes exec probe
    // would, is healthy while the server runs...
    let probe = Command::new(tool("runc"))
        .args(["exec", &id, "/usr/local/bin/health", &health])
        .output()
        .unwrap();
    let _ = Command::new(tool("runc"))
        .args(["kill", &id, "KILL"])
        .status();
    let _ = child.wait();
    assert!(page.ends_with("hello from a rust server"), "{page:?}");
    assert!(probe.status.success(), "{probe:?}");
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout),
        "healthy: status 200\n"
    );
    // ...and unhealthy (exit 1) once it has stopped.
    let (mut cmd, _) = runc_command(&bundle, &["/usr/local/bin/health", &health]);
    let stopped = cmd.output().unwrap();
    assert_eq!(stopped.status.code(), Some(1), "{stopped:?}");
    assert!(String::from_utf8_lossy(&stopped.stdout).starts_with("unhealthy: connect"));
    // The image config tells Docker and podman to run it.
    let config = run(Command::new(tool("skopeo")).current_dir(d).args([
        "inspect",
        "--config",
        "--raw",
        "oci:out:server",
    ]));
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(
        config["config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/local/bin/health", health])
    );

    // A changed program rewrites only the top layer.
    let mut program = std::fs::read(d.join("server/target/release/server")).unwrap();
    program.push(0);
    std::fs::write(d.join("server/target/release/server"), program).unwrap();
    let again = build(d, &args);
    let (before, after) = (layer_digests(&report), layer_digests(&again));
    assert_eq!(before.len(), after.len());
    let n = before.len();
    assert_eq!(before[..n - 1], after[..n - 1]);
    assert_ne!(before[n - 1], after[n - 1]);
}

#[test]
fn spec_groups_and_ca_certs_on_static() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::make_test_ca(d);
    let spec = |groups: &str| {
        format!(
            "from = \"catalog:static\"\nca_certs = [\"ca.pem\"]\n\
             [[users]]\nname = \"app\"\nuid = 1000\n{groups}"
        )
    };
    // staff is built in: naming it again with its gid is the same group.
    let groups = "[[groups]]\nname = \"staff\"\ngid = 50\n[[groups]]\nname = \"web\"\ngid = 2000\n";
    std::fs::write(d.join("bareboat.toml"), spec(groups)).unwrap();
    build(d, &["bareboat.toml", "-o", "oci:out:spec"]);
    let rootfs = unpack(d, "out", "spec").join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/group")).unwrap(),
        format!("{GROUPS}app:x:1000:\nweb:x:2000:\n")
    );
    // The bundle: every certificate of the ca-certificates package, in path order, then
    // the spec's.
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(d.join("bareboat.lock")).unwrap()).unwrap();
    let sha256 = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("ca-certificates"))
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let deb = bareboat_apt::cache::Cache::open(&common::cache())
        .unwrap()
        .deb_path(&sha256)
        .unwrap();
    run(Command::new(tool("dpkg-deb"))
        .arg("-x")
        .arg(&deb)
        .arg(d.join("package")));
    let crts: Vec<String> = regular_files(&d.join("package/usr/share/ca-certificates"))
        .into_iter()
        .filter(|p| p.ends_with(".crt"))
        .collect();
    let mut expected: Vec<String> = crts
        .iter()
        .flat_map(|p| {
            let pem = std::fs::read_to_string(d.join("package/usr/share/ca-certificates").join(p));
            common::pem_bodies(&pem.unwrap())
        })
        .collect();
    assert!(expected.len() > 100, "{crts:?}");
    expected.extend(common::pem_bodies(
        &std::fs::read_to_string(d.join("ca.pem")).unwrap(),
    ));
    let bundle = std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert_eq!(common::pem_bodies(&bundle), expected);

    // A group that shares only its name or only its gid with a built-in one is refused.
    for (groups, error) in [
        (
            "[[groups]]\nname = \"staff\"\ngid = 51\n",
            "group \"staff\" with gid 51: every image has group staff with gid 50",
        ),
        (
            "[[groups]]\nname = \"wheel\"\ngid = 5\n",
            "group \"wheel\" with gid 5: gid 5 is the built-in group tty",
        ),
    ] {
        std::fs::write(d.join("bareboat.toml"), spec(groups)).unwrap();
        common::fails_with(
            &mut bareboat(d, "build", &["bareboat.toml", "-o", "oci:refused:spec"]),
            error,
        );
        assert!(!d.join("refused").exists());
    }
}

#[test]
fn bad_application_input_is_refused_with_the_fix_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("notes.txt"), "not a program\n").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "--from",
                "catalog:nginx",
                "--add",
                "notes.txt:/app/notes.txt",
            ],
            &["unknown catalogue image \"nginx\"", "static, base-nossl"],
        ),
        (
            &[
                "--from",
                "catalog:cc",
                "--add",
                "missing/server:/app/server",
            ],
            &["missing/server"],
        ),
        (
            &["--from", "catalog:cc", "--add", "notes.txt:app/notes.txt"],
            &["expected SRC:DST with DST an absolute path"],
        ),
        (
            &[
                "--from",
                "catalog:cc",
                "--add",
                "notes.txt:/app/notes.txt",
                "--entrypoint",
                "/app/notes.txt",
            ],
            &[
                "/app/notes.txt is neither an ELF program nor a script",
                "hint:",
            ],
        ),
        (
            &["--from", "catalog:static", "--health", "https://127.0.0.1/"],
            &["--health", "expected http://HOST[:PORT][/PATH]"],
        ),
    ];
    for (args, expected) in cases {
        let out = bareboat(d, "build", &[args, &["-o", "oci:out:bad"][..]].concat())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        for e in *expected {
            assert!(err.contains(e), "{args:?}: {err}");
        }
        assert!(!d.join("out").exists(), "{args:?} wrote a layout");
        assert!(!d.join("bareboat.lock").exists(), "{args:?} wrote a lock");
    }
}

/// `bareboat --json build ARGS` in `dir` with the cache at `cache`.
fn build_with_cache(dir: &Path, cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bareboat"))
        .current_dir(dir)
        .arg("--cache")
        .arg(cache)
        .args(["--json", "build"])
        .args(args)
        .env_remove("BAREBOAT_MIRROR")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn report(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A cache of a test's own in `d`, holding the shared cache's downloads (as hard links,
/// which the tests replace rather than write through), so that what builds save is theirs
/// alone.
fn own_cache(d: &Path) -> std::path::PathBuf {
    let cache = d.join("cache");
    std::fs::create_dir(&cache).unwrap();
    for sub in ["debs", "indexes", "releases", "verified"] {
        run(Command::new("cp")
            .arg("-al")
            .arg(common::cache().join(sub))
            .arg(cache.join(sub)));
    }
    cache
}

/// Changes one byte in the middle of the file at `path`, in place: same size, same inode.
fn flip_a_byte(path: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(&[byte[0] ^ 0xff]).unwrap();
}

#[test]
fn saved_unpacked_layers_give_the_same_image_and_damaged_ones_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = build(d, &["catalog:base-nossl", "-o", "oci:shared:t"]);
    let cache = own_cache(d);
    let trees = cache.join("trees");
    let saved = |ext: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&trees)
            .map(|r| r.map(|e| e.unwrap().path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect()
    };
    let unpacked = report(&build_with_cache(
        d,
        &cache,
        &["catalog:base-nossl", "-o", "oci:one:t"],
    ));
    assert_eq!(unpacked["images"][0]["resumed_layers"], 0);
    assert_eq!(unpacked["digest"], first["digest"]);
    assert_eq!(saved("json").len(), 2, "one saved tree per package layer");

    // A new layout: the package layers come from the saved trees, and are byte for byte
    // what unpacking gave.
    let resumed = report(&build_with_cache(
        d,
        &cache,
        &["catalog:base-nossl", "-o", "oci:two:t"],
    ));
    assert_eq!(resumed["images"][0]["resumed_layers"], 2);
    assert_eq!(resumed["digest"], first["digest"]);
    assert_eq!(layer_digests(&resumed), layer_digests(&first));
    run(Command::new(tool("umoci"))
        .args(["unpack", "--rootless", "--image", "two:t", "bundle"])
        .current_dir(d));
    assert!(
        d.join("bundle/rootfs/usr/lib/x86_64-linux-gnu/libc.so.6")
            .exists()
    );

    // Truncated segments: the saved trees are ignored and the packages unpacked again.
    for seg in saved("seg") {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(1)
            .unwrap();
    }
    let again = report(&build_with_cache(
        d,
        &cache,
        &["catalog:base-nossl", "-o", "oci:three:t"],
    ));
    assert_eq!(again["images"][0]["resumed_layers"], 0);
    assert_eq!(again["digest"], first["digest"]);

    // Segments changed at their length: the stamps moved, a full check finds the damage,
    // and the packages are unpacked again.
    for seg in saved("seg") {
        flip_a_byte(&seg);
    }
    let out = build_with_cache(d, &cache, &["catalog:base-nossl", "-o", "oci:five:t"]);
    let damaged = report(&out);
    assert_eq!(damaged["images"][0]["resumed_layers"], 0);
    assert_eq!(damaged["digest"], first["digest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match its SHA256"), "{err}");

    // A package corrupted in the cache (same size, one byte changed) is refused when it is
    // unpacked, removed, and downloaded afresh by the next run.
    std::fs::remove_dir_all(&trees).unwrap();
    run(&mut bareboat(
        d,
        "lock",
        &[
            "catalog:base-nossl",
            "--lockfile",
            "base-nossl.lock",
            "--no-fetch",
        ],
    ));
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(d.join("base-nossl.lock")).unwrap()).unwrap();
    let sha256 = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("libc6"))
        .and_then(|p| p["sha256"].as_str())
        .expect("libc6 is locked");
    let libc6 = cache.join("debs").join(format!("{sha256}.deb"));
    let mut bytes = std::fs::read(&libc6).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::remove_file(&libc6).unwrap();
    std::fs::write(&libc6, &bytes).unwrap();
    let refused = build_with_cache(d, &cache, &["catalog:base-nossl", "-o", "oci:four:t"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("does not match its SHA256"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert!(!libc6.exists(), "the corrupt entry is removed");
    assert!(!d.join("four").exists(), "nothing written");
    let healed = report(&build_with_cache(
        d,
        &cache,
        &["catalog:base-nossl", "-o", "oci:four:t"],
    ));
    assert_eq!(healed["digest"], first["digest"]);
}

#[test]
fn damaged_layer_records_and_layout_blobs_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = own_cache(d);
    let static_ = report(&build_with_cache(
        d,
        &cache,
        &["catalog:static", "-o", "oci:same:static"],
    ));
    let cc = report(&build_with_cache(
        d,
        &cache,
        &["catalog:cc", "-o", "oci:same:cc"],
    ));
    let layer = |r: &Value, i: usize| r["images"][0]["layers"][i].clone();
    let (ours, theirs) = (
        layer(&static_, 0),
        layer(&cc, cc["images"][0]["layers"].as_array().unwrap().len() - 1),
    );
    assert_ne!(ours["digest"], theirs["digest"]);

    // static's layer record, edited to name cc's top layer (also in this layout), with its
    // size: the record fails its seal, is reported, and the layer is compressed again.
    let records: Vec<_> = std::fs::read_dir(cache.join("layers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains(ours["digest"].as_str().unwrap())
        })
        .collect();
    assert_eq!(records.len(), 1);
    let text = std::fs::read_to_string(&records[0]).unwrap();
    let edited = text
        .replace(
            ours["digest"].as_str().unwrap(),
            theirs["digest"].as_str().unwrap(),
        )
        .replace(
            &format!("\"size\":{},", ours["size"]),
            &format!("\"size\":{},", theirs["size"]),
        );
    assert_ne!(edited, text);
    std::fs::write(&records[0], edited).unwrap();
    let out = build_with_cache(d, &cache, &["catalog:static", "-o", "oci:same:static"]);
    let rebuilt = report(&out);
    assert_eq!(rebuilt["digest"], static_["digest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a damaged layer record"), "{err}");

    // The layout's blob of that layer, changed at its size: it is checked against its
    // digest, found damaged, and written again.
    let blob = d.join("same/blobs/sha256").join(
        ours["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    flip_a_byte(&blob);
    let out = build_with_cache(d, &cache, &["catalog:static", "-o", "oci:same:static"]);
    assert_eq!(report(&out)["digest"], static_["digest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match its digest"), "{err}");
    let sha = run(Command::new("sha256sum").arg(&blob));
    assert!(
        String::from_utf8_lossy(&sha.stdout).starts_with(
            ours["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        ),
        "the blob holds its digest's bytes again"
    );
    unpack(d, "same", "static");

    // A new layout copies each layer the cache keeps instead of compressing it again: a
    // file of its own, not a link to the cache's.
    let hex = ours["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let kept = cache.join("blobs").join(hex);
    let verbose = |layout: &str| {
        let out = build_with_cache(d, &cache, &["-vv", "catalog:static", "-o", layout]);
        assert_eq!(report(&out)["digest"], static_["digest"]);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = verbose("oci:fresh:fresh");
    assert!(
        err.contains("copied a layer an earlier build compressed"),
        "{err}"
    );
    assert!(!err.contains("compressed a layer"), "{err}");
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let copied = d.join("fresh/blobs/sha256").join(hex);
    assert_ne!(inode(&copied), inode(&kept));
    unpack(d, "fresh", "fresh");

    // A kept blob changed at its size is checked against its digest, removed, and the layer
    // compressed and kept again.
    flip_a_byte(&kept);
    let err = verbose("oci:again:again");
    assert!(
        err.contains("does not match its digest") && err.contains("compressed a layer"),
        "{err}"
    );
    let sha = run(Command::new("sha256sum").arg(&kept));
    assert!(String::from_utf8_lossy(&sha.stdout).starts_with(hex));
    unpack(d, "again", "again");
}

#[test]
fn globs_never_copy_files_through_a_symlinked_host_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host_etc = d.join("host-etc");
    std::fs::create_dir_all(&host_etc).unwrap();
    std::fs::write(host_etc.join("shadow"), "root:$6$secret").unwrap();
    std::fs::create_dir_all(d.join("dist/lib")).unwrap();
    std::fs::create_dir_all(d.join("dist/bin")).unwrap();
    std::fs::write(d.join("dist/bin/shadow"), "not a secret").unwrap();
    std::os::unix::fs::symlink(&host_etc, d.join("dist/lib/vendor")).unwrap();
    std::fs::write(
        d.join("bareboat.toml"),
        "from = \"catalog:static\"\n\n[[files]]\nsrc = \"dist/**/shadow\"\ndst = \"/app\"\n",
    )
    .unwrap();
    build(d, &["-o", "oci:out:app"]);
    let bundle = unpack(d, "out", "app");
    let app = bundle.join("rootfs/app");
    let names: Vec<String> = std::fs::read_dir(&app)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["shadow"]);
    assert_eq!(
        std::fs::read_to_string(app.join("shadow")).unwrap(),
        "not a secret"
    );
}

#[test]
fn builds_into_one_new_layout_at_once_all_land_and_refused_writes_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build(d, &["catalog:static", "-o", "oci:warm:static"]);
    let _guard = common::CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    for round in 0..4 {
        let here = d.join(format!("round{round}"));
        std::fs::create_dir(&here).unwrap();
        let builds: Vec<_> = ["static", "base-nossl"]
            .iter()
            .map(|image| {
                bareboat(
                    &here,
                    "build",
                    &[
                        &format!("catalog:{image}"),
                        "-o",
                        &format!("oci:same:{image}"),
                    ],
                )
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        for b in builds {
            let out = b.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        unpack(&here, "same", "static");
        unpack(&here, "same", "base-nossl");
    }

    // A directory that is not a layout is refused before anything is written into it.
    std::fs::create_dir(d.join("notes")).unwrap();
    std::fs::write(d.join("notes/readme.txt"), "mine").unwrap();
    let out = bareboat(d, "build", &["catalog:static", "-o", "oci:notes:x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not an OCI layout"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(d.join("notes"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["readme.txt"]);

    // What a killed writer left is cleaned by the next writer that finds no other alive
    // (none holds the layout's writers' lock), whatever its age: temporary blobs of a
    // layout, and a new layout's staging directory beside it. A live writer's are kept.
    let left = d.join("warm/blobs/.tmp-killed");
    std::fs::write(&left, "partial").unwrap();
    let staging = d.join(".bareboat-layout-killed");
    std::fs::create_dir_all(staging.join("blobs")).unwrap();
    std::fs::write(staging.join(".writers.lock"), "").unwrap();
    // Past the moment a live writer's lock is free, between opening and taking it.
    let a_minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::open(&staging)
        .unwrap()
        .set_modified(a_minute_ago)
        .unwrap();
    let writing = d.join(".bareboat-layout-writing");
    std::fs::create_dir_all(writing.join("blobs")).unwrap();
    let live = std::fs::File::create(writing.join(".writers.lock")).unwrap();
    live.lock_shared().unwrap();
    let live_layout = std::fs::File::open(d.join("warm/.writers.lock")).unwrap();
    live_layout.lock_shared().unwrap();
    drop(_guard);
    build(d, &["catalog:static", "-o", "oci:warm:static"]);
    assert!(left.exists(), "another writer holds the lock");
    drop(live_layout);
    build(d, &["catalog:static", "-o", "oci:warm:static"]);
    build(d, &["catalog:static", "-o", "oci:another:static"]);
    assert!(!left.exists());
    assert!(!staging.exists());
    assert!(
        writing.exists(),
        "a staged layout whose writer is alive is kept"
    );
    drop(live);
}

/// Writes `$HOME/state` and `/tmp/scratch`, and says as whom and whether it could.
const WRITES_HOME_AND_TMP: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    const char *home = getenv("HOME");
    char path[4096];
    snprintf(path, sizeof path, "%s/state", home ? home : "");
    FILE *h = fopen(path, "w");
    FILE *t = fopen("/tmp/scratch", "w");
    printf("uid %d gid %d HOME %s: home %s, tmp %s\n", (int)getuid(), (int)getgid(),
           home ? home : "(unset)", h ? "written" : "refused", t ? "written" : "refused");
    return 0;
}
"#;

#[test]
fn an_arbitrary_uid_in_group_0_writes_its_home_and_tmp_as_openshift_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("prog.c");
    std::fs::write(&src, WRITES_HOME_AND_TMP).unwrap();
    run(Command::new(tool("gcc"))
        .arg(&src)
        .arg("-o")
        .arg(d.join("prog")));
    build(
        d,
        &[
            "--from",
            "catalog:cc",
            "--add",
            "prog:/app/prog",
            "--entrypoint",
            "/app/prog",
            "--no-auto-deps",
            "-o",
            "oci:out:app",
        ],
    );
    let written = |uid: &str, gid: &str| {
        format!("uid {uid} gid {gid} HOME /home/nonroot: home written, tmp written\n")
    };
    // runc, with OpenShift's kind of process.user.
    let bundle = unpack(d, "out", "app");
    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["user"] = json!({"uid": 1000650000u32, "gid": 0});
    std::fs::write(&config_path, config.to_string()).unwrap();
    assert_eq!(runc(&bundle, &[]), written("1000650000", "0"));
    // podman, the way OpenShift's restricted policy runs it, and as the image says.
    // Relative: podman names the image after the path, which must be lowercase.
    let layout = "oci:out:app";
    for (user, expected) in [
        (Some("1000650000:0"), written("1000650000", "0")),
        (None, written("65532", "65532")),
        // Not weakened: another uid outside group 0 cannot write the home.
        (
            Some("1000650000:1000650000"),
            "uid 1000650000 gid 1000650000 HOME /home/nonroot: home refused, tmp written\n"
                .to_string(),
        ),
    ] {
        let mut podman = podman(d);
        podman.args(["run", "--rm", "--network=none"]);
        if let Some(user) = user {
            podman.args(["--user", user]);
        }
        let out = run(podman.arg(layout));
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{user:?}");
    }
}
