//! The health probe images can carry (`[health]` in the spec): a static C program, built
//! with this crate for amd64 and arm64, that checks an HTTP URL, a TCP port or a file and
//! exits 0 (healthy) or 1, so a distroless image needs no shell or curl for a Docker
//! HEALTHCHECK or a Kubernetes exec probe. See `probe/health.c` for its arguments.

/// Where the probe goes in the image.
pub const PATH: &str = "usr/local/bin/health";

/// The probe for an architecture, or `None` if this bareboat was built without a compiler
/// for it.
pub fn binary(arch: &str) -> Option<&'static [u8]> {
    let bytes: &'static [u8] = match arch {
        "amd64" => include_bytes!(concat!(env!("OUT_DIR"), "/health-amd64")),
        "arm64" => include_bytes!(concat!(env!("OUT_DIR"), "/health-arm64")),
        _ => return None,
    };
    (!bytes.is_empty()).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_architectures_are_static_elf_programs() {
        for (arch, machine) in [
            ("amd64", goblin::elf::header::EM_X86_64),
            ("arm64", goblin::elf::header::EM_AARCH64),
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
        assert!(binary("riscv64").is_none());
    }
}
