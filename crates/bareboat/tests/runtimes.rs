//! The catalogue's language runtimes, built from the real Debian archive (through the
//! host's apt mirror) and run with runc through their own entrypoints, and for arm64 under
//! qemu-user.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_no_shell_or_package_manager, build, run, runc, tool, unpack};

/// Builds `catalog:IMAGE` with `args` added into the layout `dir/TAG` and unpacks it. (A
/// layout per image: oci-image-tool cannot pick one tag out of three or more.)
fn build_runtime(dir: &Path, image: &str, tag: &str, args: &[&str]) -> std::path::PathBuf {
    let from = format!("catalog:{image}");
    let out = format!("oci:{tag}:{tag}");
    let mut all = vec!["--from", &from, "-o", &out];
    all.extend_from_slice(args);
    build(dir, &all);
    let bundle = unpack(dir, tag, tag);
    assert_no_shell_or_package_manager(&bundle.join("rootfs"));
    bundle
}

const PYTHON_SCRIPT: &str = r#"
import json, ssl, sqlite3, zlib
db = sqlite3.connect(":memory:")
db.execute("create table t (v text)")
db.execute("insert into t values (?)", (json.dumps({"ok": True}),))
(value,) = db.execute("select v from t").fetchone()
packed = zlib.compress(value.encode())
ctx = ssl.create_default_context()
print(json.loads(zlib.decompress(packed))["ok"], ctx.cert_store_stats()["x509_ca"] > 100)
"#;

#[test]
fn python3_runs_a_script_with_ssl_sqlite3_json_and_zlib() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("main.py"), PYTHON_SCRIPT).unwrap();
    let bundle = build_runtime(
        d,
        "python3",
        "py",
        &["--add", "main.py:/app/main.py", "--cmd", "/app/main.py"],
    );
    // The image's own entrypoint (/usr/bin/python3) runs the script; the CA bundle loads.
    assert_eq!(runc(&bundle, &[]), "True True\n");
}

const FETCH_JAVA: &str = r#"
import java.net.URI;
import javax.net.ssl.HttpsURLConnection;

public class Fetch {
    public static void main(String[] args) throws Exception {
        var url = URI.create("https://127.0.0.1:" + args[0] + "/").toURL();
        var conn = (HttpsURLConnection) url.openConnection();
        System.out.println("status " + conn.getResponseCode() + " from "
            + conn.getServerCertificates()[0].getType());
    }
}
"#;

#[test]
fn java_trusts_the_spec_ca_through_the_synthesized_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::make_test_ca(d);
    std::fs::write(d.join("Fetch.java"), FETCH_JAVA).unwrap();
    run(Command::new(tool("javac"))
        .current_dir(d)
        .args(["--release", "17", "Fetch.java"]));
    run(Command::new(tool("jar")).current_dir(d).args([
        "--create",
        "--file",
        "fetch.jar",
        "--main-class",
        "Fetch",
        "Fetch.class",
    ]));
    let server = common::TlsServer::start(d);
    for image in ["java21", "java25"] {
        // A directory per spec, as each spec's lock sits beside it.
        let d = &d.join(image);
        std::fs::create_dir(d).unwrap();
        std::fs::copy(dir.path().join("ca.pem"), d.join("ca.pem")).unwrap();
        std::fs::copy(dir.path().join("fetch.jar"), d.join("fetch.jar")).unwrap();
        std::fs::write(
            d.join("bareboat.toml"),
            format!(
                "from = \"catalog:{image}\"\nca_certs = [\"ca.pem\"]\ncmd = [\"/app/fetch.jar\"]\n\
                 [[files]]\nsrc = \"fetch.jar\"\ndst = \"/app/fetch.jar\"\n"
            ),
        )
        .unwrap();
        build(d, &["bareboat.toml", "-o", &format!("oci:out:{image}")]);
        let bundle = unpack(d, "out", image);
        let rootfs = bundle.join("rootfs");
        assert_no_shell_or_package_manager(&rootfs);
        // The JDK's own keytool reads the keystore: Debian's certificates under
        // ca-certificates-java's names, and the spec's CA under its file name.
        let keystore = rootfs.join("etc/ssl/certs/java/cacerts");
        let list = run(Command::new(tool("keytool"))
            .args(["-list", "-storepass", "changeit", "-keystore"])
            .arg(&keystore)
            .args(["-alias", "ca"]));
        assert!(
            String::from_utf8_lossy(&list.stdout).contains("trustedCertEntry"),
            "{}",
            String::from_utf8_lossy(&list.stdout)
        );
        let all = run(Command::new(tool("keytool"))
            .args(["-list", "-storepass", "changeit", "-keystore"])
            .arg(&keystore));
        let all = String::from_utf8_lossy(&all.stdout);
        assert!(all.contains("debian:isrg_root_x1.pem,"), "{all}");
        let java = std::fs::read_link(rootfs.join("usr/bin/java")).unwrap();
        assert!(
            java.starts_with(format!("/usr/lib/jvm/java-{}-openjdk-amd64", &image[4..])),
            "{java:?}"
        );
        // `java -jar /app/fetch.jar PORT`: the image's entrypoint, its cmd and the port.
        let port = server.port.to_string();
        let out = runc(&bundle, &["/usr/bin/java", "-jar", "/app/fetch.jar", &port]);
        assert_eq!(out, "status 200 from X.509\n", "{image}");
    }
}

const UTF8_JAVA: &str = r#"
import java.nio.file.Files;
import java.nio.file.Path;

public class Utf8 {
    public static void main(String[] args) throws Exception {
        System.out.println("sun.jnu.encoding=" + System.getProperty("sun.jnu.encoding"));
        Path created = Files.createFile(Path.of("/tmp/h\u00e9llo.txt"));
        System.out.println("created " + created);
    }
}
"#;

/// Each runtime under the C.UTF-8 locale that base-nossl brings (LANG and glibc's locale
/// files): without the files, setlocale fails and Java and Ruby fall back to ASCII.
#[test]
fn runtimes_read_and_write_utf8_under_the_c_utf8_locale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("utf8.py"),
        "import locale, sys\nprint(locale.setlocale(locale.LC_ALL, \"\"), sys.getfilesystemencoding())\n",
    )
    .unwrap();
    std::fs::write(d.join("utf8.rb"), "puts Encoding.default_external\n").unwrap();
    std::fs::write(d.join("Utf8.java"), UTF8_JAVA).unwrap();
    run(Command::new(tool("javac"))
        .current_dir(d)
        .args(["--release", "17", "Utf8.java"]));
    run(Command::new(tool("jar")).current_dir(d).args([
        "--create",
        "--file",
        "utf8.jar",
        "--main-class",
        "Utf8",
        "Utf8.class",
    ]));
    for (image, program, expected) in [
        ("python3", "utf8.py", "C.UTF-8 utf-8\n"),
        ("ruby", "utf8.rb", "UTF-8\n"),
        (
            "java21",
            "utf8.jar",
            "sun.jnu.encoding=UTF-8\ncreated /tmp/h\u{e9}llo.txt\n",
        ),
    ] {
        let add = format!("{program}:/app/{program}");
        let cmd = format!("/app/{program}");
        let tag = format!("{image}-utf8");
        let bundle = build_runtime(d, image, &tag, &["--add", &add, "--cmd", &cmd]);
        assert!(
            common::bundle_env(&bundle).contains(&"LANG=C.UTF-8".to_string()),
            "{image}"
        );
        assert_eq!(runc(&bundle, &[]), expected, "{image}");
        if image == "java21" {
            assert!(bundle.join("rootfs/tmp/h\u{e9}llo.txt").is_file());
            assert_keystore_holds_the_bundle(&bundle.join("rootfs"));
        }
    }
}

/// The JDK's keytool finds in the image's Java keystore exactly the certificates of its CA
/// bundle, which bareboat makes from ca-certificates' package (the image keeps none of its
/// certificate files).
fn assert_keystore_holds_the_bundle(rootfs: &Path) {
    assert!(!rootfs.join("usr/share/ca-certificates").exists());
    let bundle = std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    let mut in_bundle = common::pem_bodies(&bundle);
    assert!(in_bundle.len() > 100, "{} certificates", in_bundle.len());
    let list = run(Command::new(tool("keytool"))
        .args(["-list", "-rfc", "-storepass", "changeit", "-keystore"])
        .arg(rootfs.join("etc/ssl/certs/java/cacerts")));
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains(&format!(
            "Your keystore contains {} entries",
            in_bundle.len()
        )),
        "{list}"
    );
    let mut in_keystore = common::pem_bodies(&list);
    in_bundle.sort();
    in_keystore.sort();
    assert_eq!(in_keystore, in_bundle);
}

/// A script for each interpreter that reads a data file beside it and prints it.
const SCRIPTS: &[(&str, &str, &str)] = &[
    (
        "nodejs",
        "main.js",
        "const fs = require('fs');\nconsole.log('node read ' + fs.readFileSync('/app/data.txt', 'utf8').trim());\n",
    ),
    (
        "ruby",
        "main.rb",
        "require 'json'\nputs \"ruby read #{File.read('/app/data.txt').strip} #{JSON.generate([1])}\"\n",
    ),
    (
        "php",
        "main.php",
        "<?php\necho 'php read ', trim(file_get_contents('/app/data.txt')), ' ', extension_loaded('ctype') && extension_loaded('Zend OPcache') ? 'modules' : 'no modules', \"\\n\";\n",
    ),
];

#[test]
fn nodejs_ruby_and_php_run_scripts_through_their_entrypoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data.txt"), "the data\n").unwrap();
    for (image, script, text) in SCRIPTS {
        std::fs::write(d.join(script), text).unwrap();
        let add = format!("{script}:/app/{script}");
        let cmd = format!("/app/{script}");
        let args = [
            "--add",
            add.as_str(),
            "--add",
            "data.txt:/app/data.txt",
            "--cmd",
            cmd.as_str(),
        ];
        let bundle = build_runtime(d, image, image, &args);
        let out = runc(&bundle, &[]);
        let expected = match *image {
            "nodejs" => "node read the data\n",
            "ruby" => "ruby read the data [1]\n",
            _ => "php read the data modules\n",
        };
        assert_eq!(out, expected, "{image}");
    }
}

/// The architectures besides the host's whose runtimes start here, with the qemu that runs
/// their programs: those the host's mirror serves whole (armel, ppc64el and s390x lack
/// point-release packages there; see tests/architectures.rs, which names the files).
const FOREIGN: &[(&str, &str)] = &[
    ("arm64", "qemu-aarch64-static"),
    ("armhf", "qemu-arm-static"),
    ("riscv64", "qemu-riscv64-static"),
];

#[test]
fn runtimes_start_under_qemu_on_other_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("script.py"), PYTHON_SCRIPT).unwrap();
    // Each runtime's version is checked only as far as the catalogue names it: the
    // language's major (and minor) version that trixie ships, which a point release keeps.
    // Its patch level (Python 3.13.5, node 20.19.2) may move, and is not checked; only a
    // new language version in stable, which Debian does not do, would break this.
    let checks: &[(&str, &[&str], &str)] = &[
        ("python3", &["/usr/bin/python3", "--version"], "Python 3.13"),
        (
            "java21",
            &["/usr/bin/java", "-version"],
            "openjdk version \"21",
        ),
        (
            "java25",
            &["/usr/bin/java", "-version"],
            "openjdk version \"25",
        ),
        ("nodejs", &["/usr/bin/node", "--version"], "v20."),
        ("ruby", &["/usr/bin/ruby", "--version"], "ruby 3.3"),
        ("php", &["/usr/bin/php", "--version"], "PHP 8.4"),
    ];
    // Each program runs with the image as its root (chroot), by qemu copied into it, so
    // that the image's own loader and libraries run it and its absolute links (the
    // alternatives, the JVM's jvm.cfg in /etc) resolve inside the image.
    for (arch, qemu) in FOREIGN {
        let qemu = tool(qemu);
        for (image, args, expected) in checks {
            let tag = format!("{image}-{arch}");
            let rootfs = build_runtime(d, image, &tag, &["--arch", arch]).join("rootfs");
            std::fs::copy(&qemu, rootfs.join("qemu-user")).unwrap();
            let in_image = |args: &[&str]| {
                let out = Command::new(tool("chroot"))
                    .arg(&rootfs)
                    .arg("/qemu-user")
                    .args(args)
                    .output()
                    .unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                (out.status.success(), text)
            };
            let started = std::time::Instant::now();
            let (ran, text) = in_image(args);
            // The JVM reads the MMU's address mode at start, which the qemu-user of
            // Debian 12 does not give for riscv64: that is left to a riscv64 machine.
            if !ran && *arch == "riscv64" && text.contains("Unsupported satp mode") {
                eprintln!("SKIPPED riscv64 {image}: this qemu-user gives no satp mode: {text}");
                continue;
            }
            assert!(ran && text.starts_with(expected), "{arch} {image}: {text}");
            eprintln!(
                "{arch} {image}: started in {:.1} s, by {qemu} in the image's root",
                started.elapsed().as_secs_f64()
            );
            // python3 runs a script that uses ssl, sqlite3 and zlib from the image.
            if *image == "python3" {
                std::fs::copy(d.join("script.py"), rootfs.join("script.py")).unwrap();
                let (ran, text) = in_image(&["/usr/bin/python3", "/script.py"]);
                assert!(ran && text == "True True\n", "{arch}: {text}");
            }
        }
    }
}

/// The files of `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_build_killed_mid_write_leaves_the_layout_whole_and_the_next_run_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build(d, &["catalog:static", "-o", "oci:out:old"]);
    // The packages are fetched once, so the kills land in unpacking, compressing and
    // writing java21's layers (about 200 MB) into the layout, not in downloads.
    build(d, &["catalog:java21", "-o", "oci:warm:java"]);
    let _guard = common::CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    // Each round kills a build into its own copy of a layout that holds only the old
    // image: as the first temporary blob appears, or once 2, 4 or 6 new blobs have landed
    // (the index is written after the last).
    for (round, new_blobs) in [0, 2, 4, 6].into_iter().enumerate() {
        let here = d.join(format!("round{round}"));
        std::fs::create_dir(&here).unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(d.join("out"))
            .arg(here.join("out")));
        let blobs = here.join("out/blobs");
        let count = || named(&blobs.join("sha256"), "").len();
        let at_start = count();
        let reached = || match new_blobs {
            0 => !named(&blobs, ".tmp-").is_empty(),
            n => count() >= at_start + n,
        };
        let mut child = common::bareboat(&here, "build", &["catalog:java21", "-o", "oci:out:java"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !reached() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "round {round}: the build ended before {new_blobs} new blobs"
            );
            assert!(
                started.elapsed().as_secs() < 300,
                "round {round}: the build hangs"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!(
            "round {round}: killed at {new_blobs} new blobs, after {:?}",
            started.elapsed()
        );
        // The old image is intact, and whatever the index names is whole: oci-image-tool
        // validates it and umoci unpacks it, checking every digest and diff_id.
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(here.join("out/index.json")).unwrap()).unwrap();
        let tags: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            tags,
            ["old"],
            "round {round}: the index names what was not written"
        );
        unpack(&here, "out", "old");
        // The next run succeeds, and cleans what the killed one left.
        run(&mut common::bareboat(
            &here,
            "build",
            &["catalog:java21", "-o", "oci:out:java"],
        ));
        assert!(
            named(&blobs, ".tmp-").is_empty(),
            "{:?}",
            named(&blobs, ".tmp-")
        );
        assert!(named(&here, ".bareboat-layout-").is_empty());
        let bundle = unpack(&here, "out", "java");
        assert!(bundle.join("rootfs/usr/lib/jvm").is_dir());
    }
}
