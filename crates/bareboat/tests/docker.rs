//! Docker Engine, for real: Debian's docker.io (20.10) loads bareboat's docker archives and
//! runs every catalogue image, builds a multi-stage Dockerfile on bareboat images, and
//! saves images that share layers into an archive that bareboat reads back.
//!
//! The tests start their own dockerd (its own data root, exec root, pidfile and socket, vfs
//! storage, no iptables and no bridge, so it touches nothing of the host's) and stop it when
//! the last test using it ends. Containers run without a network.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::dockerd::{Daemon, daemon};
use common::{bareboat, build, run, tool, unpack};
use serde_json::Value;

/// Builds with `args` into the docker archive `dir/FILE.tar` named `name`, loads it, and
/// returns the build report.
fn build_and_load(docker: &Daemon, dir: &Path, name: &str, args: &[&str]) -> Value {
    let file = format!("{}.tar", name.replace(['/', ':'], "-"));
    let output = format!("docker-archive:{file}:{name}");
    let mut all = args.to_vec();
    all.extend(["-o", &output]);
    let report = build(dir, &all);
    docker.load(&dir.join(&file), name);
    report
}

/// Compiles `source` (C, or C++ for g++) into the program `out`.
fn compile(compiler: &str, source: &str, out: &Path, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join(if compiler == "g++" {
        "prog.cpp"
    } else {
        "prog.c"
    });
    std::fs::write(&src, source).unwrap();
    run(Command::new(tool(compiler))
        .arg(&src)
        .arg("-o")
        .arg(out)
        .args(flags));
}

const HELLO_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("C ran as uid %d\n", (int)getuid()); return 0; }
"#;

/// Needs base's own libraries, loaded from the image: libc, libssl and zlib.
const DYNAMIC_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <zlib.h>
int main(void) {
    printf("dynamic C ran as uid %d with OpenSSL %lu and zlib %c\n", (int)getuid(),
           OpenSSL_version_num() >> 28, zlibVersion()[0]);
    return 0;
}
"#;

/// Needs cc's libstdc++ and libgcc_s.
const HELLO_CPP: &str = r#"
#include <iostream>
#include <vector>
#include <unistd.h>
int main() {
    std::vector<int> v{1, 2, 3};
    std::cout << "C++ ran as uid " << getuid() << " with " << v.size() << " elements" << std::endl;
}
"#;

const JAVA: &str = r#"
import java.nio.file.Files;
import java.nio.file.Path;

public class Hello {
    public static void main(String[] args) throws Exception {
        String uid = Files.readAllLines(Path.of("/proc/self/status")).stream()
            .filter(l -> l.startsWith("Uid:")).findFirst().get().split("\\s+")[1];
        System.out.println("java " + Runtime.version().feature() + " ran as uid " + uid);
    }
}
"#;

/// For each interpreter: its script, and what it prints.
const SCRIPTS: &[(&str, &str, &str, &str)] = &[
    (
        "python3",
        "main.py",
        "import json, os, ssl\nprint(f'python3 ran as uid {os.getuid()}, {json.dumps(ssl.OPENSSL_VERSION[:7])}')\n",
        "python3 ran as uid 65532, \"OpenSSL\"\n",
    ),
    (
        "nodejs",
        "main.js",
        "console.log(`nodejs ran as uid ${process.getuid()}, ${JSON.stringify([1 + 1])}`);\n",
        "nodejs ran as uid 65532, [2]\n",
    ),
    (
        "ruby",
        "main.rb",
        "require 'json'\nputs \"ruby ran as uid #{Process.uid}, #{JSON.generate([1 + 1])}\"\n",
        "ruby ran as uid 65532, [2]\n",
    ),
    (
        "php",
        "main.php",
        "<?php\npreg_match('/^Uid:\\s+(\\d+)/m', file_get_contents('/proc/self/status'), $m);\necho 'php ran as uid ', $m[1], ', ', json_encode([1 + 1]), \"\\n\";\n",
        "php ran as uid 65532, [2]\n",
    ),
];

/// What `docker run` of the image `name` printed, after checking the image's user is
/// numeric and nonroot, as Kubernetes' `runAsNonRoot` needs.
fn run_nonroot(docker: &Daemon, name: &str) -> String {
    assert_eq!(docker.inspect(name)["Config"]["User"], "65532", "{name}");
    docker.run(&[name])
}

#[test]
fn docker_loads_and_runs_every_catalogue_image_as_nonroot() {
    let docker = daemon();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A program for each image below the runtimes, using what that image adds.
    let programs: &[(&str, &str, &str, &[&str], &str)] = &[
        (
            "static",
            "gcc",
            HELLO_C,
            &["-static"],
            "C ran as uid 65532\n",
        ),
        ("base-nossl", "gcc", HELLO_C, &[], "C ran as uid 65532\n"),
        (
            "base",
            "gcc",
            DYNAMIC_C,
            &["-lssl", "-lcrypto", "-lz"],
            "dynamic C ran as uid 65532 with OpenSSL 3 and zlib 1\n",
        ),
        (
            "cc",
            "g++",
            HELLO_CPP,
            &[],
            "C++ ran as uid 65532 with 3 elements\n",
        ),
    ];
    for (image, compiler, source, flags, expected) in programs {
        let program = format!("{image}-prog");
        compile(compiler, source, &d.join(&program), flags);
        let name = format!("bareboat-test/{image}:app");
        let from = format!("catalog:{image}");
        let add = format!("{program}:/app/prog");
        let mut args = vec!["--from", &from, "--add", &add, "--entrypoint", "/app/prog"];
        // The image already holds every library its program needs: nothing to look up.
        if *image != "static" {
            args.push("--no-auto-deps");
        }
        build_and_load(&docker, d, &name, &args);
        assert_eq!(run_nonroot(&docker, &name), *expected, "{image}");
    }

    for (image, script, text, expected) in SCRIPTS {
        std::fs::write(d.join(script), text).unwrap();
        let name = format!("bareboat-test/{image}:app");
        let add = format!("{script}:/app/{script}");
        let cmd = format!("/app/{script}");
        let from = format!("catalog:{image}");
        build_and_load(
            &docker,
            d,
            &name,
            &["--from", &from, "--add", &add, "--cmd", &cmd],
        );
        // Through the runtime's own entrypoint.
        assert_eq!(run_nonroot(&docker, &name), *expected, "{image}");
    }

    std::fs::write(d.join("Hello.java"), JAVA).unwrap();
    run(Command::new(tool("javac"))
        .current_dir(d)
        .args(["--release", "17", "Hello.java"]));
    run(Command::new(tool("jar")).current_dir(d).args([
        "--create",
        "--file",
        "hello.jar",
        "--main-class",
        "Hello",
        "Hello.class",
    ]));
    for java in ["java21", "java25"] {
        let name = format!("bareboat-test/{java}:app");
        let from = format!("catalog:{java}");
        build_and_load(
            &docker,
            d,
            &name,
            &[
                "--from",
                &from,
                "--add",
                "hello.jar:/app/hello.jar",
                "--cmd",
                "/app/hello.jar",
            ],
        );
        assert_eq!(
            run_nonroot(&docker, &name),
            format!("java {} ran as uid 65532\n", &java[4..])
        );
    }
}

/// Copied out of the debug stage by the Dockerfile; links libstdc++, which cc has.
const GREET_CPP: &str = r#"
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>
int main() {
    std::ifstream made("/app/made.txt");
    std::string line;
    std::getline(made, line);
    std::cout << "C++ ran as uid " << getuid() << " and read: " << line << std::endl;
}
"#;

/// The debug image has no /bin/sh, and runs as 65532, who may write only under /tmp and
/// its home.
const DOCKERFILE: &str = r#"FROM cc:debug AS build
COPY greet /src/greet
RUN ["/busybox/sh", "-c", "mkdir /tmp/out && cp /src/greet /tmp/out/greet && echo \"made by uid $(id -u) in $(pwd)\" > /tmp/out/made.txt"]

FROM cc
COPY --from=build /tmp/out/ /app/
ENTRYPOINT ["/app/greet"]
"#;

#[test]
fn docker_builds_a_multi_stage_dockerfile_on_bareboat_images() {
    let docker = daemon();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build_and_load(&docker, d, "cc:debug", &["catalog:cc:debug"]);
    build_and_load(&docker, d, "cc:latest", &["catalog:cc"]);

    // The context holds only what the Dockerfile uses, far from dockerd's data root.
    let context = d.join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), DOCKERFILE).unwrap();
    compile("g++", GREET_CPP, &context.join("greet"), &[]);
    let mut build = docker.command(&[
        "build",
        "--network",
        "none",
        "-t",
        "bareboat-test/greet:1",
        ".",
    ]);
    // The classic builder, Docker 20.10's default, whatever the caller's environment says.
    build.env("DOCKER_BUILDKIT", "0").current_dir(&context);
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "docker build failed:\n{}\n{}\ndockerd's log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        docker.log_text()
    );

    assert_eq!(
        run_nonroot(&docker, "bareboat-test/greet:1"),
        "C++ ran as uid 65532 and read: made by uid 65532 in /home/nonroot\n"
    );
    // The result is the distroless stage: busybox stayed in the build stage.
    let shell = docker
        .command(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/busybox/sh",
            "bareboat-test/greet:1",
            "-c",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!shell.status.success(), "the final image has a shell");
    let err = String::from_utf8_lossy(&shell.stderr);
    assert!(err.contains("no such file or directory"), "{err}");
}

/// A layer as `bareboat inspect` reports it: digest, uncompressed size and what made it.
type InspectedLayer = (String, u64, String);

/// The layers of `bareboat --json inspect REFERENCE`, and its packages as (name, version).
fn inspected(dir: &Path, reference: &str) -> (Vec<InspectedLayer>, Vec<(String, String)>) {
    let out = run(&mut bareboat(dir, "inspect", &[reference]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["uncompressed_size"].as_u64().unwrap(),
                l["created_by"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let packages = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (layers, packages)
}

#[test]
fn docker_save_of_images_sharing_layers_reads_back_with_bareboat() {
    let docker = daemon();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let images = [
        ("bareboat-test/cc:1", "catalog:cc"),
        ("bareboat-test/python3:1", "catalog:python3"),
    ];
    let mut reports = Vec::new();
    for (name, spec) in images {
        reports.push(build_and_load(&docker, d, name, &[spec]));
    }
    // What Docker made of them: cc's layers are python3's lower layers.
    let diff_ids: Vec<Vec<String>> = images
        .iter()
        .map(|(name, _)| {
            let layers = &docker.inspect(name)["RootFS"]["Layers"];
            serde_json::from_value(layers.clone()).unwrap()
        })
        .collect();
    assert_eq!(diff_ids[0].len(), 4, "{diff_ids:?}");
    assert_eq!(diff_ids[0][..], diff_ids[1][..4], "python3 is built on cc");

    let saved = d.join("saved.tar");
    docker.docker(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        images[0].0,
        images[1].0,
    ]);
    // A layer both images hold under different layer ids (cc's top layer, python3's
    // fourth) is written once, and the other copy is a symlink to it.
    let mut archive = tar::Archive::new(std::fs::File::open(&saved).unwrap());
    let links: Vec<(String, String)> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type().is_symlink())
        .map(|e| {
            let name = e.path().unwrap().display().to_string();
            let target = e.link_name().unwrap().unwrap().display().to_string();
            (name, target)
        })
        .collect();
    assert!(
        links
            .iter()
            .any(|(name, target)| name.ends_with("/layer.tar")
                && target.starts_with("../")
                && target.ends_with("/layer.tar")),
        "docker save wrote no layer as a symlink, the case this test is for: {links:?}"
    );

    for ((name, _), (report, diff_ids)) in images.iter().zip(reports.iter().zip(&diff_ids)) {
        let (layers, packages) = inspected(d, &format!("docker-archive:saved.tar:{name}"));
        // The same image as bareboat wrote it: the layers, now as the uncompressed tars
        // the config's diff_ids name, with their history, and the same packages.
        let built = report["images"][0]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), built.len(), "{name}");
        for (i, ((digest, size, created_by), b)) in layers.iter().zip(built).enumerate() {
            assert_eq!(digest, &diff_ids[i], "{name} layer {i}");
            assert_eq!(
                Some(*size),
                b["uncompressed_size"].as_u64(),
                "{name} layer {i}"
            );
            assert_eq!(
                Some(created_by.as_str()),
                b["created_by"].as_str(),
                "{name}"
            );
        }
        let file = format!("{}.tar", name.replace(['/', ':'], "-"));
        let (_, original_packages) = inspected(d, &format!("docker-archive:{file}:{name}"));
        assert_eq!(packages, original_packages, "{name}");
        assert_eq!(
            packages.len() as u64,
            report["images"][0]["packages"].as_u64().unwrap(),
            "{name}"
        );
    }

    // Copied out into an OCI layout, the python3 image validates, unpacks with every
    // diff_id checked, and runs.
    run(&mut bareboat(
        d,
        "copy",
        &[
            "docker-archive:saved.tar:bareboat-test/python3:1",
            "oci:copied:py",
        ],
    ));
    let bundle = unpack(d, "copied", "py");
    assert_eq!(
        common::runc(
            &bundle,
            &[
                "/usr/bin/python3",
                "-c",
                "import ssl; print('copied', ssl.OPENSSL_VERSION[:7])"
            ]
        ),
        "copied OpenSSL\n"
    );
    run(&mut bareboat(
        d,
        "copy",
        &[
            "docker-archive:saved.tar:bareboat-test/cc:1",
            "oci:copied:cc",
        ],
    ));
    let bundle = unpack(d, "copied", "cc");
    assert!(
        bundle
            .join("rootfs/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
            .exists()
    );
}

#[test]
fn bareboat_debug_joins_a_nonroot_static_container_of_docker() {
    use common::debugging::{assert_probed, debugged, listing, probing, server_image};
    let docker = daemon();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = 18932;
    server_image(d, port, "docker-archive:server.tar:bareboat-test/server:1");
    docker.load(&d.join("server.tar"), "bareboat-test/server:1");
    let id = docker.stdout(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "debugged",
        "bareboat-test/server:1",
    ]);
    let id = id.trim();
    let pid = docker.stdout(&["inspect", "--format", "{{.State.Pid}}", id]);
    let rootfs = PathBuf::from(format!("/proc/{}/root", pid.trim()));
    let before = listing(&rootfs);
    let client = docker.command(&[]);
    let mut cmd = probing(d, "docker:debugged", port);
    for (key, value) in client.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    assert_probed(&debugged(&mut cmd));
    assert_eq!(listing(&rootfs), before, "the target's files changed");
    docker.docker(&["rm", "-f", id]);
}

#[test]
fn docker_loads_and_runs_a_signed_archive_that_keeps_its_signatures() {
    let docker = daemon();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    compile("gcc", HELLO_C, &d.join("hello"), &["-static"]);
    let password = |cmd: &mut Command| {
        cmd.env("BAREBOAT_KEY_PASSWORD", "pw");
    };
    let mut generate = bareboat(d, "key", &["generate"]);
    password(&mut generate);
    run(&mut generate);
    let output = "docker-archive:signed.tar:signed/hello:1";
    let mut signed = bareboat(
        d,
        "build",
        &[
            "--from",
            "catalog:static",
            "--add",
            "hello:/app/hello",
            "--entrypoint",
            "/app/hello",
            "--sign",
            "cosign.key",
            "--sbom",
            "spdx",
            "-o",
            output,
        ],
    );
    password(&mut signed);
    {
        let _guard = common::CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
        run(&mut signed);
    }
    // The signatures and the SBOM ride inside the archive, out of docker load's way.
    docker.load(&d.join("signed.tar"), "signed/hello:1");
    assert_eq!(
        run_nonroot(&docker, "signed/hello:1"),
        "C ran as uid 65532\n"
    );
    let verified = run(&mut bareboat(d, "verify", &["--key", "cosign.pub", output]));
    let verified: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(
        verified["signatures"].as_array().unwrap().len(),
        2,
        "{verified}"
    );
}
