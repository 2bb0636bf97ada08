//! Every architecture Debian releases, from the real archive through the host's mirror:
//! locked together, refused by name when Debian does not release one, and each catalogue
//! level booting a real program under qemu with the image's own loader and libraries.
//! Where the mirror lacks an architecture's packages, the test prints which file.

mod common;

use std::path::Path;
use std::process::Command;

use common::{CACHE_FILL, bareboat, fails_with, run, tool, unpack};
use serde_json::Value;

/// For each architecture built here: its name, the qemu that runs its programs, and
/// Debian's C compiler for it.
const ARCHITECTURES: &[(&str, &str, &str)] = &[
    ("armhf", "qemu-arm-static", "arm-linux-gnueabihf-gcc"),
    ("armel", "qemu-arm-static", "arm-linux-gnueabi-gcc"),
    (
        "ppc64el",
        "qemu-ppc64le-static",
        "powerpc64le-linux-gnu-gcc",
    ),
    ("riscv64", "qemu-riscv64-static", "riscv64-linux-gnu-gcc"),
    ("s390x", "qemu-s390x-static", "s390x-linux-gnu-gcc"),
];

/// Says which libraries of the image it loads, with the image's loader: libc by linking,
/// the rest by name at run time, as a program of that level would.
const PROGRAM_C: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello from C");
    for (int i = 1; i < argc; i++) {
        void *lib = dlopen(argv[i], RTLD_NOW);
        printf(", %s %s", argv[i], lib ? "loaded" : dlerror());
    }
    printf("\n");
    return 0;
}
"#;

/// `bareboat --json lock ARGS --no-fetch` into `dir/LOCK`, and the lockfile as TOML.
fn lock(dir: &Path, lock: &str, args: &[&str]) -> (String, toml::Table) {
    let mut all = args.to_vec();
    all.extend(["--lockfile", lock, "--no-fetch"]);
    let out = run(&mut bareboat(dir, "lock", &all));
    let text = std::fs::read_to_string(dir.join(lock)).unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        toml::from_str(&text).unwrap(),
    )
}

/// The architectures a lockfile lists packages for, each once, in order.
fn targets(lock: &toml::Table) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for p in lock["package"].as_array().unwrap() {
        let target = p["target"].as_str().unwrap().to_string();
        if !seen.contains(&target) {
            seen.push(target);
        }
    }
    seen
}

#[test]
fn all_means_every_release_architecture_and_others_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, trixie) = lock(d, "trixie.lock", &["catalog:cc", "--arch", "all"]);
    let seven = [
        "amd64", "arm64", "armel", "armhf", "ppc64el", "riscv64", "s390x",
    ];
    assert_eq!(trixie["arch"].as_array().unwrap().len(), 7);
    assert_eq!(targets(&trixie), seven);
    // Each architecture's libc6 is its own, and tzdata is the one Architecture: all
    // package all of them share.
    for p in trixie["package"].as_array().unwrap() {
        let (name, arch, target) = (&p["name"], &p["architecture"], &p["target"]);
        match name.as_str().unwrap() {
            "libc6" => assert_eq!(arch, target),
            "tzdata" => assert_eq!(arch.as_str(), Some("all")),
            _ => {}
        }
    }
    let tzdata: Vec<&str> = trixie["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str() == Some("tzdata"))
        .map(|p| p["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(tzdata.len(), 7);
    assert!(tzdata.windows(2).all(|w| w[0] == w[1]));

    // bookworm has six, without riscv64; its security suite, now Debian's LTS, no longer
    // carries armel and s390x, which the lock says.
    let (err, bookworm) = lock(
        d,
        "bookworm.lock",
        &["catalog:static", "--release", "bookworm", "--arch", "all"],
    );
    assert_eq!(
        targets(&bookworm),
        ["amd64", "arm64", "armel", "armhf", "ppc64el", "s390x"]
    );
    for arch in ["armel", "s390x"] {
        assert!(
            err.contains(&format!(
                "bookworm-security carries no {arch} packages: Debian's security support (LTS) for {arch} has ended"
            )),
            "{err}"
        );
    }
    assert!(!err.contains("no armhf packages"), "{err}");

    let refused = |args: &[&str], needle: &str| {
        let mut all = vec!["catalog:static", "--no-fetch", "--lockfile", "x.lock"];
        all.extend(args);
        fails_with(&mut bareboat(d, "lock", &all), needle);
    };
    refused(
        &["--arch", "i386"],
        "unsupported architecture \"i386\", which Debian no longer releases: Debian 13 (trixie) releases amd64, arm64, armel, armhf, ppc64el, riscv64, s390x",
    );
    refused(
        &["--arch", "riscv64", "--release", "bookworm"],
        "\"riscv64\", a release architecture from Debian 13 (trixie) on",
    );
    refused(
        &["--arch", "mipsel", "--release", "bookworm"],
        "which Debian no longer releases",
    );
    refused(
        &["--arch", "arm"],
        "unsupported architecture \"arm\": Debian 13",
    );
    assert!(!d.join("x.lock").exists());
    // catalog sizes one architecture's images.
    fails_with(
        &mut bareboat(d, "catalog", &["--arch", "all"]),
        "catalog sizes the images for one architecture: name one of amd64, arm64",
    );
}

#[test]
fn every_level_boots_a_program_on_every_architecture_the_mirror_serves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("program.c"), PROGRAM_C).unwrap();
    // Each level, with the libraries a program of it loads beyond libc.
    let levels: &[(&str, &[&str])] = &[
        ("static", &[]),
        ("base-nossl", &[]),
        ("base", &["libssl.so.3", "libz.so.1"]),
        ("cc", &["libstdc++.so.6", "libgomp.so.1"]),
    ];
    let mut booted = Vec::new();
    for (arch, qemu, compiler) in ARCHITECTURES {
        let (qemu, compiler) = (tool(qemu), tool(compiler));
        for (level, libraries) in levels {
            let layout = format!("oci:{arch}:{arch}-{level}");
            let out = {
                let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
                let spec = format!("catalog:{level}");
                bareboat(d, "build", &[&spec, "--arch", arch, "-o", &layout])
                    .output()
                    .unwrap()
            };
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                // The mirror's gap, which bareboat names: the test says which file.
                assert!(err.contains("the mirror lacks"), "{arch} {level}: {err}");
                let file = err.split(": not found").next().unwrap_or_default();
                let file = file.trim_start_matches("error: ");
                eprintln!("SKIPPED {arch}: the host's mirror lacks {file}");
                break;
            }
            let rootfs = unpack(d, arch, &format!("{arch}-{level}")).join("rootfs");
            // A static program on static; elsewhere one linked against the image's libc,
            // run by the image's loader from its root (qemu's -L).
            let program = rootfs.join("program");
            let mut cc = Command::new(&compiler);
            cc.arg(d.join("program.c")).arg("-o").arg(&program);
            if *level == "static" {
                cc.arg("-static");
            }
            run(&mut cc);
            let out = run(Command::new(&qemu)
                .arg("-L")
                .arg(&rootfs)
                .arg(&program)
                .args(*libraries));
            let mut expected = String::from("hello from C");
            for lib in *libraries {
                expected.push_str(&format!(", {lib} loaded"));
            }
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{expected}\n"),
                "{arch} {level}"
            );
            eprintln!("{arch} {level}: ran with {qemu} -L ROOTFS");
            booted.push(format!("{arch} {level}"));
        }
    }
    // The mirror serves armhf and riscv64 whole.
    for arch in ["armhf", "riscv64"] {
        for (level, _) in levels {
            assert!(
                booted.contains(&format!("{arch} {level}")),
                "{arch} {level} did not boot"
            );
        }
    }
}

#[test]
fn one_index_names_each_platform_as_docker_and_containerd_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let report = common::build(
        d,
        &[
            "catalog:static",
            "--arch",
            "amd64,arm64,armhf,riscv64",
            "-o",
            "oci:out:multi",
        ],
    );
    let index = common::skopeo_raw(d, "oci:out:multi");
    let platforms = common::platforms(&index);
    assert_eq!(
        platforms,
        [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/riscv64"
        ]
    );
    // Each platform's image, as skopeo picks it out of the index, is its architecture's.
    for (arch, variant, debian) in [("arm", Some("v7"), "armhf"), ("riscv64", None, "riscv64")] {
        let mut skopeo = Command::new(tool("skopeo"));
        skopeo.current_dir(d).args(["--override-arch", arch]);
        if let Some(v) = variant {
            skopeo.args(["--override-variant", v]);
        }
        run(skopeo.args(["copy", "oci:out:multi", &format!("dir:{debian}")]));
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(d.join(debian).join("manifest.json")).unwrap())
                .unwrap();
        let config = &manifest["config"]["digest"].as_str().unwrap()["sha256:".len()..];
        let config: Value =
            serde_json::from_slice(&std::fs::read(d.join(debian).join(config)).unwrap()).unwrap();
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["variant"].as_str(), variant);
    }
    let built: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["arch"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["amd64", "arm64", "armhf", "riscv64"]);
    // oci-image-tool accepts the index and the image it picks from it.
    run(Command::new(tool("oci-image-tool"))
        .args(["validate", "--type", "image", "--ref", "name=multi"])
        .arg(d.join("out")));
}

/// A binfmt_misc handler the test registers for 32-bit ARM programs, removed (and
/// binfmt_misc unmounted, if the test mounted it) when dropped.
struct ArmHandler {
    entry: std::path::PathBuf,
    mounted: bool,
}

impl ArmHandler {
    /// Registers `qemu` for little-endian 32-bit ARM executables with flag F (the kernel
    /// opens the interpreter now, so it runs inside containers), mounting binfmt_misc
    /// first if it is not; `Err` says why that cannot be done here.
    fn register(qemu: &str) -> Result<ArmHandler, String> {
        let root = Path::new("/proc/sys/fs/binfmt_misc");
        let mounted = !root.join("register").exists();
        if mounted {
            let out = Command::new("mount")
                .args(["-t", "binfmt_misc", "binfmt_misc"])
                .arg(root)
                .output()
                .map_err(|e| format!("mount: {e}"))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                return Err(format!("mount -t binfmt_misc: {}", err.trim()));
            }
        }
        let name = format!("bareboat-test-arm-{}", std::process::id());
        let magic = r"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00";
        let mask =
            r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";
        let handler = ArmHandler {
            entry: root.join(&name),
            mounted,
        };
        std::fs::write(
            root.join("register"),
            format!(":{name}:M::{magic}:{mask}:{qemu}:F"),
        )
        .map_err(|e| format!("registering {name}: {e}"))?;
        Ok(handler)
    }
}

impl Drop for ArmHandler {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.entry, "-1");
        if self.mounted {
            let _ = Command::new("umount")
                .arg("/proc/sys/fs/binfmt_misc")
                .status();
        }
    }
}

#[test]
fn podman_and_runc_run_the_armhf_image_through_a_qemu_handler() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::build(
        d,
        &[
            "catalog:static:debug",
            "--arch",
            "amd64,armhf",
            "-o",
            "oci:out:multi",
        ],
    );
    let handler = match ArmHandler::register(&tool("qemu-arm-static")) {
        Ok(handler) => handler,
        Err(why) => {
            eprintln!(
                "SKIPPED podman and runc on armhf: binfmt_misc cannot be used here ({why}); \
                 every_level_boots_a_program_on_every_architecture_the_mirror_serves runs armhf \
                 programs with qemu -L instead"
            );
            return;
        }
    };
    // podman picks the arm/v7 image out of the index, and the kernel runs its busybox
    // through qemu.
    let out = run(common::podman(d).args([
        "run",
        "--rm",
        "--network=none",
        "--platform",
        "linux/arm/v7",
        "oci:out:multi",
        "-c",
        "echo ok; uname -m; id -u",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\narmv7l\n65532\n");
    eprintln!("podman ran linux/arm/v7 through the qemu-arm-static handler");

    // runc runs the same image, unpacked.
    run(Command::new(tool("skopeo")).current_dir(d).args([
        "--override-arch",
        "arm",
        "--override-variant",
        "v7",
        "copy",
        "oci:out:multi",
        "oci:armhf:armhf",
    ]));
    let bundle = unpack(d, "armhf", "armhf");
    let out = common::runc(&bundle, &["/busybox/sh", "-c", "echo ok; uname -m"]);
    assert_eq!(out, "ok\narmv7l\n");
    drop(handler);
}

/// trixie's armhf libraries moved to a 64-bit `time_t`, which symbol versions do not show:
/// a program built with a 32-bit one (this machine's bookworm cross compiler builds so)
/// is refused where it needs a library of a `t64` package, and built with a warning where
/// it needs glibc alone. Built with `_TIME_BITS=64`, or for bookworm, it passes.
#[test]
fn an_armhf_program_with_a_32_bit_time_t_is_refused_beside_trixies_t64_libraries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gcc = tool("arm-linux-gnueabihf-gcc");
    // A library of libssl's soname, for the program to need; the image's is libssl3t64's.
    std::fs::write(d.join("stub.c"), "int stub(void) { return 0; }\n").unwrap();
    run(Command::new(&gcc).current_dir(d).args([
        "-shared",
        "-fPIC",
        "-Wl,-soname,libssl.so.3",
        "stub.c",
        "-o",
        "libssl.so.3",
    ]));
    std::fs::write(
        d.join("clock.c"),
        "#include <stdio.h>\n#include <time.h>\nint stub(void);\n\
         int main(void) { printf(\"%lld\\n\", (long long)time(NULL)); return stub(); }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("glibc.c"),
        "#include <stdio.h>\n#include <time.h>\n\
         int main(void) { printf(\"%lld\\n\", (long long)time(NULL)); return 0; }\n",
    )
    .unwrap();
    let compile = |source: &str, out: &str, flags: &[&str]| {
        run(Command::new(&gcc)
            .current_dir(d)
            .arg(source)
            .args(["-o", out])
            .args(flags));
    };
    let with_ssl = ["-L.", "-l:libssl.so.3"];
    compile("clock.c", "time32", &with_ssl);
    let t64: Vec<&str> = ["-D_TIME_BITS=64", "-D_FILE_OFFSET_BITS=64"]
        .into_iter()
        .chain(with_ssl)
        .collect();
    compile("clock.c", "time64", &t64);
    compile("glibc.c", "glibc32", &[]);
    let build = |program: &str, release: &str| {
        let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
        bareboat(
            d,
            "build",
            &[
                "--from",
                "catalog:base",
                "--arch",
                "armhf",
                "--release",
                release,
                "--add",
                &format!("{program}:/app/{program}"),
                "--entrypoint",
                &format!("/app/{program}"),
                "-o",
                &format!("oci:t-{release}:{program}"),
            ],
        )
        .output()
        .unwrap()
    };
    let out = build("time32", "trixie");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "/app/time32 was built with a 32-bit time_t, and /usr/lib/arm-linux-gnueabihf/libssl.so.3 (package libssl3t64) with a 64-bit one: it would misread every time it passes there"
        ),
        "{err}"
    );
    assert!(err.contains("-D_TIME_BITS=64"), "{err}");
    for (program, release) in [("time64", "trixie"), ("time32", "bookworm")] {
        let out = build(program, release);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{program} on {release}: {err}");
        assert!(!err.contains("time_t"), "{program} on {release}: {err}");
    }
    let out = build("glibc32", "trixie");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("/app/glibc32 was built with a 32-bit time_t: it runs on trixie's glibc, but its clock ends in January 2038"),
        "{err}"
    );
}
