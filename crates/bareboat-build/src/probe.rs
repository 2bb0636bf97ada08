//! The health probe images can carry (`[health]` in the spec): a static C program, built
//! with this crate for every architecture Debian releases, that checks an HTTP URL, a TCP
//! port or a file and exits 0 (healthy) or 1, so a distroless image needs no shell or curl
//! for a Docker HEALTHCHECK or a Kubernetes exec probe. See `probe/health.c` for its
//! arguments.

include!("../probe/targets.rs");

/// Where the probe goes in the image.
pub const PATH: &str = "usr/local/bin/health";

/// The probe for an architecture, or `None` if this bareboat was built without a compiler
/// for it.
pub fn binary(arch: &str) -> Option<&'static [u8]> {
    let bytes: &'static [u8] = match arch {
        "amd64" => include_bytes!(concat!(env!("OUT_DIR"), "/health-amd64")),
        "arm64" => include_bytes!(concat!(env!("OUT_DIR"), "/health-arm64")),
        "armhf" => include_bytes!(concat!(env!("OUT_DIR"), "/health-armhf")),
        "armel" => include_bytes!(concat!(env!("OUT_DIR"), "/health-armel")),
        "ppc64el" => include_bytes!(concat!(env!("OUT_DIR"), "/health-ppc64el")),
        "riscv64" => include_bytes!(concat!(env!("OUT_DIR"), "/health-riscv64")),
        "s390x" => include_bytes!(concat!(env!("OUT_DIR"), "/health-s390x")),
        _ => return None,
    };
    (!bytes.is_empty()).then_some(bytes)
}

/// The Debian packages that install the compiler the probe for `arch` is built with.
pub fn compiler_packages(arch: &str) -> &'static str {
    TARGETS
        .iter()
        .find(|(a, _, _)| *a == arch)
        .map_or("a C compiler for it", |(_, _, packages)| packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_has_a_static_elf_program() {
        use goblin::elf::header::{EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64};
        for (arch, machine) in [
            ("amd64", EM_X86_64),
            ("arm64", EM_AARCH64),
            ("armhf", EM_ARM),
            ("armel", EM_ARM),
            ("ppc64el", EM_PPC64),
            ("riscv64", EM_RISCV),
            ("s390x", EM_S390),
        ] {
            let bytes =
                binary(arch).unwrap_or_else(|| panic!("no {arch} probe: see the build warning"));
            let elf = goblin::elf::Elf::parse(bytes).unwrap();
            assert_eq!(elf.header.e_machine, machine, "{arch}");
            assert!(
                elf.interpreter.is_none() && elf.libraries.is_empty(),
                "{arch} probe is static"
            );
        }
        // armhf's passes floats in VFP registers, armel's does not.
        let hard = |arch| {
            goblin::elf::Elf::parse(binary(arch).unwrap())
                .unwrap()
                .header
                .e_flags
                & 0x400
        };
        assert_ne!(hard("armhf"), 0);
        assert_eq!(hard("armel"), 0);
        assert!(binary("i386").is_none());
        assert_eq!(
            compiler_packages("s390x"),
            "gcc-s390x-linux-gnu libc6-dev-s390x-cross"
        );
    }
}
