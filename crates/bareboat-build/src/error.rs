//! The one error of building and locking: each variant names what is at fault and, where
//! the user can act, what to do next.

use std::path::PathBuf;

/// A failure to lock or build an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A requested package the archive has for other architectures but not this one.
    #[error(
        "{package} is not built for {arch}: the archive has it for {}\n  hint: build for those architectures (--arch), or leave {arch} out",
        built.join(", ")
    )]
    NotBuiltFor {
        /// The package requested.
        package: String,
        /// The architecture that lacks it.
        arch: String,
        /// The architectures that have it.
        built: Vec<String>,
    },
    /// The catalogue asked to size its images for several architectures at once.
    #[error("catalog sizes the images for one architecture: name one of {named}")]
    OneArchitecture {
        /// The architectures the release has.
        named: String,
    },
    /// A cache map `--cache-from` names, or the one `--cache-to` would merge with, is
    /// refused.
    #[error(
        "cache map {name}: {reason}\n  hint: publish it again with --cache-to and --cache-sign-key, or leave it out of --cache-from"
    )]
    CacheMap {
        /// The map's reference.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// `--cache-from` without the key its maps must be signed with.
    #[error(
        "--cache-from needs --cache-verify-key: a cache map is trusted only when its signature verifies\n  hint: give the public key of the key that publishes the maps (--cache-sign-key)"
    )]
    CacheVerifyKey,
    /// The spec, a catalogue name or an architecture is refused.
    #[error(transparent)]
    Spec(#[from] bareboat_spec::Error),
    /// A package, a base layer or the spec puts something in the tree that it may not.
    #[error(transparent)]
    Tree(#[from] bareboat_rootfs::Error),
    /// The archive, the cache or a lockfile failed.
    #[error(transparent)]
    Apt(#[from] bareboat_apt::Error),
    /// An image could not be read or written.
    #[error(transparent)]
    Oci(#[from] bareboat_oci::Error),
    /// The spec's `keep_setuid` globs do not compile.
    #[error("keep_setuid: {0}")]
    KeepSetuid(bareboat_rootfs::Error),
    /// A catalogue image could not be resolved.
    #[error("resolving catalog:{name}: {error}")]
    Catalogue {
        /// The image's name.
        name: &'static str,
        /// Why.
        error: Box<Error>,
    },
    /// A file the spec's `[[files]]` (or `--add`) names cannot be read from the host.
    #[error("files: {path}: {reason}")]
    HostFile {
        /// The host path, or the glob.
        path: String,
        /// Why it cannot be added.
        reason: String,
    },
    /// A glob of the spec's `[[files]]` matches nothing.
    #[error("files: {pattern:?} matches nothing")]
    NoMatch {
        /// The glob.
        pattern: String,
    },
    /// An added file cannot be read for its analysis.
    #[error("{path}: {reason}")]
    Unreadable {
        /// The host file.
        path: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// An added program needs a file that nothing provides.
    #[error(
        "{file} needs {need}, which no file added to the image and no {arch} package in the archive provides (by the Contents index, or by its package name)\n  hint: add the library with [[files]] (or --add) into a directory the loader searches, or name the package that ships it in packages = [...]"
    )]
    Unprovided {
        /// The added program, as the image holds it.
        file: String,
        /// The library or interpreter it needs.
        need: String,
        /// The image's architecture.
        arch: String,
    },
    /// An added program is built for another architecture than the image.
    #[error("{file} is built for {found}, but the image is {arch}")]
    WrongArch {
        /// The added program.
        file: String,
        /// The architecture it is built for.
        found: String,
        /// The image's architecture.
        arch: String,
    },
    /// The entrypoint is a script run through `/usr/bin/env`, which the image lacks.
    #[error(
        "{file} starts with #!/usr/bin/env {program}, and bareboat does not add /usr/bin/env (it would bring coreutils)\n  hint: set entrypoint = [\"{interpreter}\", \"{file}\"], or change the first line to #!{interpreter}"
    )]
    EnvEntrypoint {
        /// The script.
        file: String,
        /// The program `env` would look for.
        program: String,
        /// The interpreter's path in the image.
        interpreter: String,
    },
    /// The entrypoint is neither a program nor a script.
    #[error(
        "the entrypoint {file} is neither an ELF program nor a script with a #! line, so it cannot start\n  hint: point entrypoint at a program, or run the file through its interpreter (entrypoint = [\"/usr/bin/python3\", \"{file}\"])"
    )]
    NotAProgram {
        /// The entrypoint's path in the image.
        file: String,
    },
    /// An added program needs a file the finished image lacks: the lock predates the need.
    #[error(
        "{file} needs {need}, which the image lacks\n  hint: the lock predates this need: run `bareboat lock` to add its package"
    )]
    Unmet {
        /// The added program.
        file: String,
        /// The library or interpreter it needs.
        need: String,
    },
    /// The base image cannot be built on.
    #[error("base image {name}: {reason}")]
    Base {
        /// The reference the base was named by.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CA certificate the spec adds is not usable.
    #[error("ca_certs {}: {reason}", path.display())]
    CaCert {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate cannot go into a Java keystore.
    #[error("Java keystore: certificate {name}: {reason}")]
    Keystore {
        /// The certificate's alias.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An added program needs a symbol version its library in the image lacks.
    #[error("{}\n  (--allow-abi-mismatch builds it anyway)", crate::abi::describe(.0))]
    Abi(Vec<crate::abi::AbiMismatch>),
    /// A rebase that is refused.
    #[error("rebase: {0}")]
    Rebase(String),
    /// A rebuild that cannot go on.
    #[error("rebuild: {0}")]
    Rebuild(String),
    /// An attestation a build cannot make itself.
    #[error(
        "a build attests slsaprovenance1, spdx and cyclonedx, not {0}\n  hint: attest other predicates after the build with `bareboat attest --type TYPE --predicate FILE` (an OpenVEX document is what `bareboat vex` writes)"
    )]
    Attestation(String),
    /// A predicate the caller makes about a built image could not be made.
    #[error("making the {kind} attestation of the {arch} image: {error}")]
    Stating {
        /// What it attests.
        kind: String,
        /// The image's architecture.
        arch: String,
        /// Why it could not be made.
        error: String,
    },
    /// The added files could not be hashed for the SBOM.
    #[error("hashing the added files: {0}")]
    Hashing(std::io::Error),
    /// The lock has nothing for an architecture the spec builds.
    #[error(
        "the lock has no packages for {arch}\n  hint: run `bareboat lock` with this architecture"
    )]
    NoPackages {
        /// The architecture.
        arch: String,
    },
    /// This bareboat was built without the health probe for an architecture.
    #[error(
        "this bareboat was built without the {arch} health probe\n  hint: install {} and rebuild bareboat",
        crate::probe::compiler_packages(arch)
    )]
    NoProbe {
        /// The architecture.
        arch: String,
    },
    /// The lockfile was made for other inputs than the spec has now.
    #[error(
        "{} was made for other packages, excludes, architectures or base image than the spec asks for\nhint: run `bareboat lock {spec}` to bring it up to date",
        path.display()
    )]
    StaleLock {
        /// The lockfile.
        path: PathBuf,
        /// The spec, as the command line named it.
        spec: String,
    },
    /// An output that holds one platform's image, for a multi-arch build.
    #[error(
        "{output} holds one platform's image, and this build makes {arches}\n  hint: write oci: or oci-archive: for a multi-arch image, or build one --arch"
    )]
    OnePlatform {
        /// The output reference.
        output: String,
        /// The architectures built, joined with "and".
        arches: String,
    },
    /// A base image could not be opened.
    #[error("opening the base image {name}: {error}")]
    OpenBase {
        /// The reference the base was named by.
        name: String,
        /// Why it could not be opened.
        error: bareboat_oci::Error,
    },
    /// An output could not be written.
    #[error("writing {output}: {error}")]
    Output {
        /// The output reference.
        output: String,
        /// Why it could not be written.
        error: bareboat_oci::Error,
    },
}
