/// Each architecture the health probe is built for: its Debian name, Debian's compiler for
/// it, and the packages that install that compiler with its C library (`--no-install-recommends`
/// leaves the C library out unless it is named).
pub const TARGETS: &[(&str, &str, &str)] = &[
    ("amd64", "x86_64-linux-gnu-gcc", "gcc"),
    ("arm64", "aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"),
    ("armhf", "arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"),
    ("armel", "arm-linux-gnueabi-gcc", "gcc-arm-linux-gnueabi libc6-dev-armel-cross"),
    (
        "ppc64el",
        "powerpc64le-linux-gnu-gcc",
        "gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross",
    ),
    ("riscv64", "riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu libc6-dev-riscv64-cross"),
    ("s390x", "s390x-linux-gnu-gcc", "gcc-s390x-linux-gnu libc6-dev-s390x-cross"),
];
