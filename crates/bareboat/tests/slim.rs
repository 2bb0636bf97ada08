//! `bareboat slim` on fat images that bareboat did not build: Debian trixie roots made by
//! mmdebstrap from the host's mirror, carrying what official language images carry
//! (minbase, build-essential, git, curl) and the apps' runtimes, each with one app: a C++
//! program linked to a Debian library, a Flask app on Debian's python3, a Node app with a
//! node_modules tree, a Java jar with a library on its manifest's class path, and a static
//! Go program. Each slim image prints what the original prints under runc, podman and
//! Docker, audits clean, lists exactly its packages, and is at most 1.2 times the size of
//! the same app built on the matching catalogue image.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::dockerd::daemon;
use common::{CACHE_FILL, bareboat, build, podman, run, tool, unpack};
use serde_json::{Value, json};

/// The apps' sources.
fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slim")
}

/// The fat images, in one layout: `fat` (the root alone) and a tag per app.
struct Fat {
    dir: PathBuf,
    /// Each app's files, under `TAG/app`.
    apps: PathBuf,
    /// The fat root, unpacked once, where the originals run.
    rootfs: PathBuf,
}

/// What the fat root holds besides minbase.
const FAT_PACKAGES: &str = "build-essential,git,curl,libboost-program-options-dev,python3-flask,nodejs,openjdk-21-jre-headless";

/// Each app: its tag, where its files go, its config (entrypoint, cmd, working directory),
/// the catalogue level its slim image must start from, and what it prints.
struct App {
    tag: &'static str,
    entrypoint: &'static [&'static str],
    cmd: &'static [&'static str],
    workdir: &'static str,
    level: &'static str,
    prints: &'static str,
}

const APPS: [App; 5] = [
    App {
        tag: "cpp",
        entrypoint: &["/app/server"],
        cmd: &["--greeting=hi"],
        workdir: "",
        level: "cc",
        prints: "hi from C++\n",
    },
    App {
        tag: "python",
        entrypoint: &["python3"],
        cmd: &["app.py"],
        workdir: "/app",
        level: "python3",
        prints: "200 {\"greeting\": \"hello from Flask\"}\n",
    },
    App {
        tag: "node",
        entrypoint: &["node", "/app/server.js"],
        cmd: &[],
        workdir: "",
        level: "nodejs",
        prints: "hello from Node\n",
    },
    App {
        tag: "java",
        entrypoint: &["java", "-jar"],
        cmd: &["/app/app.jar"],
        workdir: "/app",
        level: "java21",
        prints: "hello from Java UTF-8\n",
    },
    App {
        tag: "go",
        entrypoint: &["/app/server"],
        cmd: &[],
        workdir: "/",
        level: "static",
        prints: "hello from Go (time zones: true)\n",
    },
];

/// The host's Debian mirror, as bareboat reads it from apt's configuration.
fn host_mirror() -> String {
    let mirrors = bareboat_apt::sources::Mirrors::from_host(Path::new("/")).unwrap();
    mirrors
        .archive
        .expect("the host's apt configuration names no Debian mirror")
}

/// Builds the fat images once for every test of this binary, and keeps the root's tar in
/// the target directory for later runs.
fn fat() -> &'static Fat {
    static FAT: OnceLock<Fat> = OnceLock::new();
    FAT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("slim-fat");
        std::fs::create_dir_all(&dir).unwrap();
        // Named by what makes it, so that a changed recipe makes it again.
        let source = sources().join("cpp/server.cpp");
        let recipe = format!("{FAT_PACKAGES}\n{}", std::fs::read_to_string(&source).unwrap());
        let key = &bareboat_testkit::sha256(recipe.as_bytes())[..16];
        let root_tar = dir.join(format!("trixie-{key}.tar"));
        let cpp = dir.join(format!("server-{key}"));
        if !root_tar.exists() || !cpp.exists() {
            let partial = dir.join("root.tar.partial");
            run(Command::new(tool("mmdebstrap"))
                .args(["--quiet", "--variant=minbase"])
                .arg(format!("--include={FAT_PACKAGES}"))
                .arg(format!("--customize-hook=copy-in {} /tmp", source.display()))
                .arg("--customize-hook=chroot \"$1\" g++ -O2 -o /tmp/server /tmp/server.cpp -lboost_program_options")
                .arg(format!("--customize-hook=copy-out /tmp/server {}", dir.display()))
                .arg(format!("--customize-hook=mv {}/server {}", dir.display(), cpp.display()))
                .arg("--customize-hook=rm -f \"$1/tmp/server\" \"$1/tmp/server.cpp\"")
                .args(["--format=tar", "trixie"])
                .arg(&partial)
                .arg(format!("deb {} trixie main", host_mirror())));
            std::fs::rename(&partial, &root_tar).unwrap();
        }
        let apps = dir.join("apps");
        let _ = std::fs::remove_dir_all(&apps);
        std::fs::create_dir_all(&apps).unwrap();
        stage_apps(&apps, &cpp);
        let layout = dir.join("layout");
        let _ = std::fs::remove_dir_all(&layout);
        let umoci = tool("umoci");
        let image = |tag: &str| format!("{}:{tag}", layout.display());
        run(Command::new(&umoci).args(["init", "--layout"]).arg(&layout));
        run(Command::new(&umoci).args(["new", "--image", &image("empty")]));
        run(Command::new(&umoci)
            .args(["raw", "add-layer", "--image", &image("empty")])
            .arg(&root_tar)
            .args(["--tag", "fat"]));
        for app in &APPS {
            let layer = apps.join(format!("{}.tar", app.tag));
            run(Command::new("tar")
                .args(["--create", "--owner=0", "--group=0", "--numeric-owner", "-f"])
                .arg(&layer)
                .arg("-C")
                .arg(apps.join(app.tag))
                .arg("app"));
            run(Command::new(&umoci)
                .args(["raw", "add-layer", "--image", &image("fat")])
                .arg(&layer)
                .args(["--tag", app.tag]));
            let mut config = Command::new(&umoci);
            config.args(["config", "--image", &image(app.tag), "--tag", app.tag]);
            for e in app.entrypoint {
                config.arg(format!("--config.entrypoint={e}"));
            }
            for c in app.cmd {
                config.arg(format!("--config.cmd={c}"));
            }
            if !app.workdir.is_empty() {
                config.arg(format!("--config.workingdir={}", app.workdir));
            }
            run(&mut config);
        }
        // The originals run in the fat root, each with its app's files mounted at /app.
        let bundle = dir.join("originals");
        let _ = std::fs::remove_dir_all(&bundle);
        run(Command::new(&umoci)
            .args(["unpack", "--image", &image("fat")])
            .arg(&bundle));
        std::fs::create_dir_all(bundle.join("rootfs/app")).unwrap();
        Fat {
            dir: layout,
            apps,
            rootfs: bundle.join("rootfs"),
        }
    })
}

/// Each app's files under `apps/TAG/app`: the C++ program built in the fat root, the
/// Python and Node sources (the Node app's node_modules tree is committed), the Java jars
/// compiled here, and the Go program built here, statically.
fn stage_apps(apps: &Path, cpp: &Path) {
    let app = |tag: &str| {
        let dir = apps.join(tag).join("app");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };
    std::fs::copy(cpp, app("cpp").join("server")).unwrap();
    std::fs::copy(
        sources().join("python/app.py"),
        app("python").join("app.py"),
    )
    .unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(sources().join("node/server.js"))
        .arg(sources().join("node/node_modules"))
        .arg(app("node")));
    let java = app("java");
    let classes = apps.join("java-classes");
    run(Command::new(tool("javac"))
        .args(["--release", "17", "-d"])
        .arg(&classes)
        .arg(sources().join("java/app/Main.java"))
        .arg(sources().join("java/greet/Greeting.java")));
    std::fs::create_dir_all(java.join("lib")).unwrap();
    run(Command::new(tool("jar"))
        .arg("--create")
        .arg("--file")
        .arg(java.join("lib/greet.jar"))
        .arg("-C")
        .arg(&classes)
        .arg("greet"));
    let manifest = apps.join("MANIFEST.MF");
    std::fs::write(
        &manifest,
        "Main-Class: app.Main\nClass-Path: lib/greet.jar\n",
    )
    .unwrap();
    run(Command::new(tool("jar"))
        .arg("--create")
        .arg("--file")
        .arg(java.join("app.jar"))
        .arg("--manifest")
        .arg(&manifest)
        .arg("-C")
        .arg(&classes)
        .arg("app"));
    // Go's build cache outlives the staged apps, as the fat root does.
    let go_cache = apps.with_file_name("go-cache");
    run(Command::new(tool("go"))
        .current_dir(sources().join("go"))
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", &go_cache)
        .env("GOPATH", apps.join("go-path"))
        .env("GO111MODULE", "off")
        .args(["build", "-o"])
        .arg(app("go").join("server"))
        .arg("main.go"));
}

/// What `app` prints in the fat image, run with runc as its config says, its files
/// mounted read-only at /app of the shared fat root.
fn run_original(app: &App) -> String {
    let fat = fat();
    let bundle = tempfile::tempdir().unwrap();
    let args: Vec<&str> = app.entrypoint.iter().chain(app.cmd).copied().collect();
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": if app.workdir.is_empty() { "/" } else { app.workdir },
        },
        "root": {"path": fat.rootfs, "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
            {
                "destination": "/app",
                "type": "bind",
                "source": fat.apps.join(app.tag).join("app"),
                "options": ["rbind", "ro"],
            },
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]},
    });
    std::fs::write(bundle.path().join("config.json"), config.to_string()).unwrap();
    let id = format!("bareboat-slim-original-{}-{}", std::process::id(), app.tag);
    let out = run(Command::new(tool("runc"))
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(id));
    String::from_utf8(out.stdout).unwrap()
}

/// `bareboat --json slim ARGS` in `dir`; returns the report.
fn slim(dir: &Path, args: &[&str]) -> Value {
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(&mut bareboat(dir, "slim", args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The spec of the same app on the catalogue image its slim image starts from: its files,
/// and the packages (beyond the runtime) it needs.
fn on_catalogue(dir: &Path, app: &App) -> String {
    let apps = fat()
        .dir
        .parent()
        .unwrap()
        .join("apps")
        .join(app.tag)
        .join("app");
    let packages = match app.tag {
        // trixie's Boost is 1.83 for the release's life, in the package's name.
        "cpp" => "[\"libboost-program-options1.83.0\"]",
        "python" => "[\"python3-flask\"]",
        _ => "[]",
    };
    let spec = format!(
        "from = \"catalog:{}\"\npackages = {packages}\nauto_deps = false\n\n[[files]]\nsrc = \"{}\"\ndst = \"/app\"\n",
        app.level,
        apps.display()
    );
    let path = dir.join(format!("{}.toml", app.tag));
    std::fs::write(&path, spec).unwrap();
    path.display().to_string()
}

/// The compressed size of the layers a build or slim report lists for its image.
fn compressed(images: &Value) -> u64 {
    images[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum()
}

/// The packages the status.d of an unpacked root lists, each with the files its md5sums
/// name, every one of them present in the root.
fn status_d(rootfs: &Path) -> Vec<(String, BTreeSet<String>)> {
    let dir = rootfs.join("var/lib/dpkg/status.d");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md5sums") {
            continue;
        }
        let sums = std::fs::read_to_string(dir.join(format!("{name}.md5sums"))).unwrap();
        let files: BTreeSet<String> = sums
            .lines()
            .map(|l| l.split_once("  ").unwrap().1.to_string())
            .collect();
        for f in &files {
            assert!(
                rootfs.join(f).symlink_metadata().is_ok(),
                "{name}'s md5sums lists {f}, which the image lacks"
            );
        }
        out.push((name, files));
    }
    out.sort();
    out
}

/// Slims `app`, and checks the slim image against the original and the catalogue.
fn slims(tag: &str) {
    let app = APPS.iter().find(|a| a.tag == tag).unwrap();
    let fat = fat();
    let dir = tempfile::tempdir().unwrap();
    let original = run_original(app);
    assert_eq!(original, app.prints, "the original {tag} app");

    let source = format!("oci:{}:{tag}", fat.dir.display());
    let archive = format!("docker-archive:{tag}.tar:slim/{tag}:1");
    let report = slim(dir.path(), &[&source, "-o", "oci:out:slim", "-o", &archive]);
    let plan = &report["plan"];
    assert_eq!(plan["level"], app.level, "{plan}");
    assert_eq!(plan["release"], "trixie");
    // What the analysis misses is what the source lacks too (the JRE's sound and font
    // libraries, which a headless JRE never loads).
    for missing in report["missing"].as_array().unwrap() {
        let need = missing["need"].as_str().unwrap();
        let found = run(Command::new("find").arg(&fat.rootfs).args(["-name", need]));
        assert!(
            found.stdout.is_empty(),
            "{need} is in the source: {missing}"
        );
    }
    // The source ran as root: the slim image runs as nonroot, and says so.
    assert_eq!(plan["user"]["slim"], "65532", "{plan}");
    assert!(plan["user"]["note"].as_str().unwrap().contains("root"));
    let before = report["before"]["findings"].as_object().unwrap();
    assert!(
        before.values().any(|n| n.as_u64().unwrap() > 0),
        "{before:?}"
    );

    // The same output under runc, podman and Docker.
    let bundle = unpack(dir.path(), "out", "slim");
    let (mut runc, _) = common::runc_command(&bundle, &[]);
    assert_eq!(String::from_utf8(run(&mut runc).stdout).unwrap(), original);
    // (podman names an image it runs from a layout by the layout's path, which must be
    // lower case: a relative one.)
    let podman_out =
        run(podman(dir.path()).args(["run", "--rm", "--network=none", "oci:out:slim"]));
    assert_eq!(String::from_utf8(podman_out.stdout).unwrap(), original);
    let docker = daemon();
    docker.load(
        &dir.path().join(format!("{tag}.tar")),
        &format!("slim/{tag}:1"),
    );
    assert_eq!(docker.run(&[&format!("slim/{tag}:1")]), original);

    // No shell, no package manager, nothing for audit to find.
    common::assert_no_shell_or_package_manager(&bundle.join("rootfs"));
    let audit = run(&mut bareboat(dir.path(), "audit", &["oci:out:slim"]));
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(audit["findings"], json!([]), "{audit}");

    // Scanners see exactly what is there: status.d lists the packages the report keeps and
    // the catalogue level's, each package's md5sums only files the image has, and a
    // sliced package's exactly the regular files kept of it, with its copyright.
    let listed = status_d(&bundle.join("rootfs"));
    let names: BTreeSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    for kept in plan["packages"].as_array().unwrap() {
        let name = kept["name"].as_str().unwrap();
        assert!(names.contains(name), "{name} is kept but status.d lacks it");
        let status =
            std::fs::read_to_string(bundle.join("rootfs/var/lib/dpkg/status.d").join(name))
                .unwrap();
        let version = kept["version"].as_str().unwrap();
        assert!(
            status.contains(&format!("\nVersion: {version}\n")),
            "{name}: the image's version {version}:\n{status}"
        );
        if kept["from_catalogue"] == false {
            let files = &listed.iter().find(|(n, _)| n == name).unwrap().1;
            let regular: BTreeSet<String> = (kept["paths"].as_array().unwrap().iter())
                .map(|p| p.as_str().unwrap().to_string())
                .filter(|p| {
                    bundle
                        .join("rootfs")
                        .join(p)
                        .symlink_metadata()
                        .is_ok_and(|m| m.is_file())
                })
                .collect();
            assert_eq!(files, &regular, "{name}'s md5sums");
        }
    }
    let excluded: BTreeSet<&str> = (plan["excluded"].as_array().unwrap().iter())
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(names.is_disjoint(&excluded), "{names:?} {excluded:?}");
    let sbom = run(&mut bareboat(
        dir.path(),
        "sbom",
        &["oci:out:slim", "--format", "spdx"],
    ));
    let sbom: Value = serde_json::from_slice(&sbom.stdout).unwrap();
    let in_sbom: BTreeSet<&str> = (sbom["packages"].as_array().unwrap().iter())
        .filter(|p| {
            p["externalRefs"].as_array().is_some_and(|r| {
                r.iter().any(|r| {
                    r["referenceLocator"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("pkg:deb/")
                })
            })
        })
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(in_sbom, names, "the SBOM's Debian packages");

    // At most 1.2 times the same app built on the matching catalogue image.
    let spec = on_catalogue(dir.path(), app);
    let built = build(dir.path(), &[&spec, "-o", "oci:out:catalogue"]);
    let (slim_size, catalogue_size) = (
        compressed(&report["build"]["images"]),
        compressed(&built["images"]),
    );
    let ratio = slim_size as f64 / catalogue_size as f64;
    eprintln!(
        "{tag}: slim {slim_size} bytes, on catalog:{} {catalogue_size} bytes ({ratio:.2}x); the source {} bytes",
        app.level, report["before"]["size"]
    );
    assert!(
        ratio <= 1.2,
        "{tag}: {ratio:.2}x the catalogue image's size"
    );
}

#[test]
fn slims_a_cpp_program_onto_cc() {
    slims("cpp");
}

#[test]
fn slims_a_flask_app_onto_python3() {
    slims("python");
}

#[test]
fn slims_a_node_app_and_its_node_modules_onto_nodejs() {
    slims("node");
}

#[test]
fn slims_a_jar_and_its_class_path_onto_java21() {
    slims("java");
}

#[test]
fn slims_a_static_go_program_onto_static() {
    slims("go");
}

/// A layout of its own in `dir`, holding the fat image `tag` (its blobs linked, not
/// copied), for a test to add images to without racing the others.
fn own_layout(dir: &Path, tag: &str) -> PathBuf {
    let shared = &fat().dir;
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::copy(shared.join("oci-layout"), layout.join("oci-layout")).unwrap();
    for blob in std::fs::read_dir(shared.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap().path();
        std::fs::hard_link(&blob, blobs.join(blob.file_name().unwrap())).unwrap();
    }
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(shared.join("index.json")).unwrap()).unwrap();
    (index["manifests"].as_array_mut().unwrap())
        .retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag);
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    layout
}

/// Adds a layer of `files` (path, content, mode) to `layout:from` as `layout:to`, with
/// umoci's `config` flags (`--config.user=app`).
fn add_layer(layout: &Path, from: &str, to: &str, files: &[(&str, Vec<u8>, u32)], config: &[&str]) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    let layer = layout.with_extension("layer.tar");
    std::fs::write(&layer, tar.into_inner().unwrap()).unwrap();
    let image = |tag: &str| format!("{}:{tag}", layout.display());
    run(Command::new(tool("umoci"))
        .args(["raw", "add-layer", "--image", &image(from)])
        .arg(&layer)
        .args(["--tag", to]));
    run(Command::new(tool("umoci"))
        .args(["config", "--image", &image(to), "--tag", to])
        .args(config));
}

/// The fat root's `path`, with `line` added.
fn with_line(path: &str, line: &str) -> Vec<u8> {
    let mut text = std::fs::read_to_string(fat().rootfs.join(path)).unwrap();
    text.push_str(line);
    text.into_bytes()
}

/// The fat root's dpkg status with `package` claimed at `version`.
fn status_claiming(package: &str, version: &str) -> Vec<u8> {
    let status = std::fs::read_to_string(fat().rootfs.join("var/lib/dpkg/status")).unwrap();
    let paragraphs: Vec<String> = (status.split("\n\n"))
        .map(|p| match p.starts_with(&format!("Package: {package}\n")) {
            true => (p.lines())
                .map(|l| match l.starts_with("Version: ") {
                    true => format!("Version: {version}"),
                    false => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            false => p.to_string(),
        })
        .collect();
    paragraphs.join("\n\n").into_bytes()
}

#[test]
fn slim_keeps_the_user_the_modified_files_and_what_keep_names_and_replaces_a_version_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layout = own_layout(d, "go");
    // The image runs as a user of its own, has modified a conffile of base-files, and its
    // database claims a version of libpam0g (which su needs) that the archive never had.
    let issue = b"modified in the image\n".to_vec();
    let extras = [
        (
            "etc/passwd",
            with_line(
                "etc/passwd",
                "app:x:1000:1000::/home/app:/usr/sbin/nologin\n",
            ),
            0o644,
        ),
        ("etc/group", with_line("etc/group", "app:x:1000:\n"), 0o644),
        ("etc/issue", issue.clone(), 0o644),
        (
            "var/lib/dpkg/status",
            status_claiming("libpam0g", "1.5.0-1"),
            0o644,
        ),
    ];
    add_layer(&layout, "go", "extras", &extras, &["--config.user=app"]);
    let keep = ["--keep", "etc/issue", "--keep", "/usr/bin/su"];
    let mut args = vec!["oci:layout:extras", "-o", "oci:out:slim"];
    args.extend(keep);
    let report = slim(d, &args);
    let plan = &report["plan"];
    assert_eq!(plan["level"], "base-nossl", "{plan}");
    assert_eq!(plan["user"]["slim"], "1000:1000", "{plan}");
    assert_eq!(plan["user"]["note"], Value::Null);
    let issue_copied =
        json!({"path": "/etc/issue", "origin": "modified_in_image", "package": "base-files"});
    assert!(
        plan["copied"].as_array().unwrap().contains(&issue_copied),
        "{plan}"
    );
    assert!(
        report["needed"]["/usr/bin/su"]
            .as_array()
            .unwrap()
            .contains(&json!("--keep /usr/bin/su"))
    );
    assert_eq!(plan["setuid_stripped"], json!(["/usr/bin/su"]));
    let package = |name: &str| {
        (plan["packages"].as_array().unwrap().iter())
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not kept: {plan}"))
            .clone()
    };
    assert_eq!(
        package("util-linux")["paths"],
        json!(["usr/bin/su", "usr/share/doc/util-linux/copyright"])
    );
    let pam = package("libpam0g");
    assert_eq!(
        pam["replaced"],
        json!({"name": "libpam0g", "version": "1.5.0-1"})
    );
    let pam_version = pam["version"].as_str().unwrap();
    assert_ne!(pam_version, "1.5.0-1");

    let bundle = unpack(d, "out", "slim");
    let rootfs = bundle.join("rootfs");
    let config: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 1000);
    assert_eq!(config["process"]["user"]["gid"], 1000);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("app:x:1000:1000:")),
        "{passwd}"
    );
    assert_eq!(std::fs::read(rootfs.join("etc/issue")).unwrap(), issue);
    use std::os::unix::fs::PermissionsExt;
    let su = std::fs::metadata(rootfs.join("usr/bin/su")).unwrap();
    assert_eq!(
        su.permissions().mode() & 0o6000,
        0,
        "su keeps no setuid bit"
    );
    let listed = status_d(&rootfs);
    let util_linux = &listed.iter().find(|(n, _)| n == "util-linux").unwrap().1;
    let expected: BTreeSet<String> = ["usr/bin/su", "usr/share/doc/util-linux/copyright"]
        .map(String::from)
        .into();
    assert_eq!(util_linux, &expected);
    let pam_status =
        std::fs::read_to_string(rootfs.join("var/lib/dpkg/status.d/libpam0g")).unwrap();
    assert!(
        pam_status.contains(&format!("\nVersion: {pam_version}\n")),
        "{pam_status}"
    );
    // It runs, as the source's user.
    let (mut runc, _) = common::runc_command(&bundle, &[]);
    assert_eq!(
        String::from_utf8(run(&mut runc).stdout).unwrap(),
        APPS[4].prints
    );

    // --keep-setuid keeps the bit, and audit reports it.
    let mut args = vec![
        "oci:layout:extras",
        "-o",
        "oci:setuid:slim",
        "--keep-setuid",
    ];
    args.extend(keep);
    let report = slim(d, &args);
    assert_eq!(report["plan"]["setuid_stripped"], json!([]));
    let audit = run(&mut bareboat(d, "audit", &["oci:setuid:slim"]));
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let findings = audit["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["id"] == "setuid" && f["path"] == "/usr/bin/su"),
        "{audit}"
    );

    // A version newer than any the archive has cannot be replaced by an older one.
    let newer = [(
        "var/lib/dpkg/status",
        status_claiming("libpam0g", "99:1.0-1"),
        0o644,
    )];
    add_layer(&layout, "extras", "newer", &newer, &[]);
    let mut args = vec!["oci:layout:newer", "-o", "oci:newer:slim"];
    args.extend(keep);
    let out = bareboat(d, "slim", &args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("libpam0g 99:1.0-1 is gone from the archive")
            && stderr.contains("slim never installs an older one"),
        "{stderr}"
    );
    assert!(!d.join("newer").exists(), "nothing is written");
}

/// Compiles the C program that loads a plugin by name, and the plugin, into `dir`.
fn plugin_program(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let sources = sources().join("plugin");
    run(Command::new(tool("gcc"))
        .args(["-O2", "-o"])
        .arg(dir.join("server"))
        .arg(sources.join("main.c")));
    run(Command::new(tool("gcc"))
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(dir.join("libgreetplugin.so"))
        .arg(sources.join("plugin.c")));
    (
        std::fs::read(dir.join("server")).unwrap(),
        std::fs::read(dir.join("libgreetplugin.so")).unwrap(),
    )
}

#[test]
fn a_probe_keeps_a_plugin_loaded_by_name_and_a_slim_without_it_fails_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layout = own_layout(d, "fat");
    // The plugin lies where the loader looks by default and no application lives.
    let (server, plugin) = plugin_program(d);
    let files = [
        ("app/server", server, 0o755),
        ("usr/lib/libgreetplugin.so", plugin, 0o644),
    ];
    add_layer(
        &layout,
        "fat",
        "plugin",
        &files,
        &["--config.entrypoint=/app/server"],
    );

    // The static pass alone keeps the program and not its plugin; a check with the
    // plugin's command line finds the difference and writes nothing.
    let report = slim(d, &["oci:layout:plugin", "-o", "oci:static:slim"]);
    assert!(
        report["needed"].get("/usr/lib/libgreetplugin.so").is_none(),
        "{report}"
    );
    let mut check = bareboat(
        d,
        "slim",
        &[
            "oci:layout:plugin",
            "-o",
            "oci:checked:slim",
            "--verify-probe",
            "/app/server --plugin",
        ],
    );
    let out = check.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("--probe '/app/server --plugin' gives another result in the slim image (exit status 3) than in the source (exit status 0)")
            && stderr.contains("/usr/lib/libgreetplugin.so")
            && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert!(!d.join("checked").exists());

    // A probe that loads it keeps it, and the slim image behaves as the source does.
    let report = slim(
        d,
        &[
            "oci:layout:plugin",
            "-o",
            "oci:probed:slim",
            "--probe",
            "/app/server --plugin",
        ],
    );
    let why = &report["needed"]["/usr/lib/libgreetplugin.so"];
    assert!(
        why.as_array()
            .unwrap()
            .contains(&json!("opened by a probe")),
        "{report}"
    );
    let probe = &report["probes"][0];
    assert_eq!(probe["source"]["exit"], 0, "{probe}");
    assert_eq!(probe["slim"]["exit"], 0, "{probe}");
    let bundle = unpack(d, "probed", "slim");
    let (mut runc, _) = common::runc_command(&bundle, &["/app/server", "--plugin"]);
    assert_eq!(
        String::from_utf8(run(&mut runc).stdout).unwrap(),
        "hello from a plugin\n"
    );
}

#[test]
fn an_http_probe_asks_the_running_server_and_the_slim_image_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layout = own_layout(d, "go");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    add_layer(
        &layout,
        "go",
        "server",
        &[],
        &["--config.cmd=serve", &format!("--config.cmd={address}")],
    );
    let url = format!("http://{address}/");
    let report = slim(
        d,
        &[
            "oci:layout:server",
            "-o",
            "oci:out:slim",
            "--http-probe",
            &url,
        ],
    );
    let probe = &report["probes"][0];
    assert_eq!(probe["source"]["status"], 200, "{probe}");
    assert_eq!(probe["source"]["body"], APPS[4].prints);
    assert_eq!(probe["slim"], probe["source"]);
    assert_eq!(report["plan"]["level"], "static");
    // What the server read to answer (the time zone) was seen by the probe.
    let paris = &report["needed"]["/usr/share/zoneinfo/Europe/Paris"];
    assert!(
        paris
            .as_array()
            .unwrap()
            .contains(&json!("opened by a probe")),
        "{report}"
    );
}

#[test]
fn an_image_of_another_distribution_is_carried_and_its_apk_database_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A runtime built into /usr/local, on a hand-made root of another distribution whose
    // apk database lists its C library, a busybox and documentation.
    let local = sources().join("local");
    run(Command::new(tool("gcc"))
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(d.join("libgreet.so"))
        .arg(local.join("libgreet.c")));
    run(Command::new(tool("gcc"))
        .args(["-O2", "-o"])
        .arg(d.join("greet"))
        .arg(local.join("greet.c"))
        .arg(format!("-L{}", d.display()))
        .args(["-lgreet", "-Wl,-rpath,/usr/local/lib"]));
    let host = |p: &str| std::fs::read(p).unwrap();
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    let apk_db = "C:Q1one=\nP:libc-compat\nV:2.36-r0\nA:x86_64\no:glibc\nF:lib\nR:libc.so.6\nZ:Q1two=\nF:lib64\nR:ld-linux-x86-64.so.2\nZ:Q1three=\n\n\
C:Q1four=\nP:busybox\nV:1.36.1-r0\nF:bin\nR:busybox\nZ:Q1five=\n\n\
C:Q1six=\nP:acme-docs\nV:1-r0\nF:usr/share/doc/acme\nR:README\n\n";
    let files = [
        (
            "etc/os-release",
            b"ID=acme\nNAME=\"Acme Linux\"\nVERSION_ID=1\nPRETTY_NAME=\"Acme Linux 1\"\n".to_vec(),
            0o644,
        ),
        (
            "lib/libc.so.6",
            host(&format!("/lib/{triplet}/libc.so.6")),
            0o755,
        ),
        (
            "lib64/ld-linux-x86-64.so.2",
            host(&format!("/lib/{triplet}/ld-linux-x86-64.so.2")),
            0o755,
        ),
        ("bin/busybox", host("/bin/true"), 0o755),
        ("usr/share/doc/acme/README", b"docs\n".to_vec(), 0o644),
        (
            "usr/local/lib/libgreet.so",
            std::fs::read(d.join("libgreet.so")).unwrap(),
            0o755,
        ),
        (
            "usr/local/bin/greet",
            std::fs::read(d.join("greet")).unwrap(),
            0o755,
        ),
        ("lib/apk/db/installed", apk_db.as_bytes().to_vec(), 0o644),
    ];
    let layout = d.join("layout");
    let umoci = tool("umoci");
    run(Command::new(&umoci).args(["init", "--layout"]).arg(&layout));
    run(Command::new(&umoci).args(["new", "--image", &format!("{}:empty", layout.display())]));
    add_layer(
        &layout,
        "empty",
        "acme",
        &files,
        &["--config.entrypoint=/usr/local/bin/greet"],
    );

    let report = slim(d, &["oci:layout:acme", "-o", "oci:out:slim"]);
    let plan = &report["plan"];
    assert_eq!(plan["level"], "none", "{plan}");
    assert_eq!(plan["release"], "Acme Linux 1 (acme)");
    let kept: Vec<&str> = (plan["packages"].as_array().unwrap().iter())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["libc-compat"], "{plan}");
    assert_eq!(
        plan["packages"][0]["paths"],
        json!(["lib/libc.so.6", "lib64/ld-linux-x86-64.so.2"])
    );
    assert_eq!(plan["excluded"], json!([]), "apk's packages are not dpkg's");

    let bundle = unpack(d, "out", "slim");
    let rootfs = bundle.join("rootfs");
    let (mut runc, _) = common::runc_command(&bundle, &[]);
    assert_eq!(
        String::from_utf8(run(&mut runc).stdout).unwrap(),
        "hello from /usr/local\n"
    );
    let trimmed = std::fs::read_to_string(rootfs.join("lib/apk/db/installed")).unwrap();
    assert_eq!(
        trimmed,
        "C:Q1one=\nP:libc-compat\nV:2.36-r0\nA:x86_64\no:glibc\nF:lib\nR:libc.so.6\nZ:Q1two=\nF:lib64\nR:ld-linux-x86-64.so.2\nZ:Q1three=\n\n"
    );
    assert!(!rootfs.join("bin/busybox").exists());
    assert!(!rootfs.join("usr/share/doc/acme").exists());
    assert!(
        !rootfs.join("etc/debian_version").exists(),
        "no Debian is claimed"
    );
    let os_release = std::fs::read_to_string(rootfs.join("etc/os-release")).unwrap();
    assert!(os_release.starts_with("ID=acme\n"), "{os_release}");
    // Scanners see the one package that remains.
    let inspect = run(&mut bareboat(d, "inspect", &["oci:out:slim"]));
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let packages: Vec<(&str, &str)> = (inspect["packages"].as_array().unwrap().iter())
        .map(|p| (p["name"].as_str().unwrap(), p["manager"].as_str().unwrap()))
        .collect();
    assert_eq!(packages, [("libc-compat", "apk")]);
}

#[test]
fn a_hostile_source_is_refused_as_inspect_refuses_it_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2 GiB of zeros in a few kilobytes.
    common::write_layers(
        &d.join("bomb"),
        "t",
        &[common::zstd_layer(&[("zeros", 2 << 30)], 0)],
    );
    let out = bareboat(d, "slim", &["oci:bomb:t", "-o", "oci:out:slim"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("reading oci:bomb:t") && stderr.contains("decompression bomb"),
        "{stderr}"
    );
    assert!(!d.join("out").exists());
}
