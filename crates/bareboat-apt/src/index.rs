//! Binary package indexes (`Packages`): a streaming parse into a compact form that loads
//! from the cache without decompressing or parsing again.
//!
//! Decompression runs on its own thread and hands blocks of whole stanzas to the parser, so
//! the two overlap. Only the fields that solving and locking need are kept; a package's full
//! control paragraph comes from its `.deb`.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;

use deb822_fast::borrowed::iter_paragraphs_borrowed;

use crate::Error;

/// The fields kept from each stanza, in storage order.
const FIELDS: [&str; 13] = [
    "Package",
    "Version",
    "Architecture",
    "Source",
    "Filename",
    "Depends",
    "Pre-Depends",
    "Provides",
    "Conflicts",
    "Breaks",
    "Priority",
    "Essential",
    "Installed-Size",
];
const NFIELDS: usize = FIELDS.len();

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum F {
    Package,
    Version,
    Architecture,
    Source,
    Filename,
    Depends,
    PreDepends,
    Provides,
    Conflicts,
    Breaks,
    Priority,
    Essential,
    InstalledSize,
}

const MAGIC: &[u8; 8] = b"BBIDX\x00\x00\x03";
/// The format before the name tables were stored; they are computed when it is loaded.
const MAGIC_V2: &[u8; 8] = b"BBIDX\x00\x00\x02";
const RECORD_BYTES: usize = NFIELDS * 8 + 8 + 32;

#[derive(Clone, Copy)]
struct Raw {
    spans: [(u32, u32); NFIELDS],
    size: u64,
    sha256: [u8; 32],
}

/// The most memory an xz decoder may use.
const XZ_MEMORY_LIMIT: u64 = 256 << 20;

/// How an index file is compressed, from its name in the Release file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// xz (`.xz`).
    Xz,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
    /// No compression.
    None,
}

impl Compression {
    /// The extension as written in Release files (`xz`, `gz`, `zst`, or nothing).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Xz => ".xz",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::None => "",
        }
    }

    /// Wraps a reader in the matching decoder.
    pub fn decoder<'a>(self, r: impl Read + Send + 'a) -> Box<dyn Read + Send + 'a> {
        match self {
            Compression::Xz => {
                // The .xz format only (not the legacy .lzma one, whose header can ask for a
                // 4 GiB dictionary), concatenated streams as xz writes them, and a memory
                // limit far above what `xz -9` needs (65 MiB).
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    XZ_MEMORY_LIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .expect("an xz decoder allocates");
                Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
            }
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(r).expect("zstd decoder allocates"))
            }
            Compression::None => Box::new(r),
        }
    }
}

/// The packages of one `Packages` file.
pub struct PackageIndex {
    text: String,
    records: Vec<Raw>,
    names: Names,
}

/// Lookups by name, computed when an index is parsed and stored with it, so that a solve
/// finds packages by binary search instead of building maps of the whole archive each run.
#[derive(Default)]
struct Names {
    /// Record positions sorted by package name, in file order among equal names.
    by_name: Vec<u32>,
    /// `(start, len, record)`: each name a package provides (a span of the text), sorted by
    /// that name, in file order among equal names.
    provided: Vec<[u32; 3]>,
}

impl Names {
    fn of(text: &str, records: &[Raw]) -> Names {
        let span = |(start, len): (u32, u32)| &text[start as usize..(start + len) as usize];
        let name = |r: u32| span(records[r as usize].spans[F::Package as usize]);
        let mut by_name: Vec<u32> = (0..records.len() as u32).collect();
        by_name.sort_by(|a, b| name(*a).cmp(name(*b)));
        let mut provided = Vec::new();
        for (r, raw) in records.iter().enumerate() {
            let (start, len) = raw.spans[F::Provides as usize];
            let field = span((start, len));
            let mut at = 0;
            for entry in field.split(',') {
                // `name (= version)` or `name:arch`: the name is the entry's first word.
                let word = entry.split(['(', ':']).next().unwrap_or_default();
                let offset = at + (word.len() - word.trim_start().len());
                let word = word.trim();
                if !word.is_empty() {
                    provided.push([start + offset as u32, word.len() as u32, r as u32]);
                }
                at += entry.len() + 1;
            }
        }
        provided.sort_by(|a, b| span((a[0], a[1])).cmp(span((b[0], b[1]))));
        Names { by_name, provided }
    }
}

/// One package of an index.
#[derive(Clone, Copy)]
pub struct Package<'a> {
    index: &'a PackageIndex,
    raw: &'a Raw,
}

impl<'a> Package<'a> {
    fn field(&self, f: F) -> Option<&'a str> {
        let (start, len) = self.raw.spans[f as usize];
        (len != 0).then(|| &self.index.text[start as usize..(start + len) as usize])
    }
    /// The `Package` field: the package's name.
    pub fn name(&self) -> &'a str {
        self.field(F::Package).unwrap_or_default()
    }
    /// The `Version` field.
    pub fn version(&self) -> &'a str {
        self.field(F::Version).unwrap_or_default()
    }
    /// The `Architecture` field: an architecture such as `amd64`, or `all`.
    pub fn architecture(&self) -> &'a str {
        self.field(F::Architecture).unwrap_or_default()
    }
    /// The `Source` field, when the source package's name (or version) differs from the
    /// package's: `name` or `name (version)`.
    pub fn source(&self) -> Option<&'a str> {
        self.field(F::Source)
    }
    /// The `Filename` field: the `.deb`'s path under the archive root (empty for an installed
    /// package).
    pub fn filename(&self) -> &'a str {
        self.field(F::Filename).unwrap_or_default()
    }
    /// The `Depends` field, unparsed.
    pub fn depends(&self) -> Option<&'a str> {
        self.field(F::Depends)
    }
    /// The `Pre-Depends` field, unparsed.
    pub fn pre_depends(&self) -> Option<&'a str> {
        self.field(F::PreDepends)
    }
    /// The `Provides` field, unparsed.
    pub fn provides(&self) -> Option<&'a str> {
        self.field(F::Provides)
    }
    /// The `Conflicts` field, unparsed.
    pub fn conflicts(&self) -> Option<&'a str> {
        self.field(F::Conflicts)
    }
    /// The `Breaks` field, unparsed.
    pub fn breaks(&self) -> Option<&'a str> {
        self.field(F::Breaks)
    }
    /// The `Priority` field (`required`, `important`, `optional`...).
    pub fn priority(&self) -> Option<&'a str> {
        self.field(F::Priority)
    }
    /// Whether the package says `Essential: yes`.
    pub fn essential(&self) -> bool {
        self.field(F::Essential) == Some("yes")
    }
    /// The `.deb`'s size in bytes (0 for an installed package).
    pub fn size(&self) -> u64 {
        self.raw.size
    }
    /// What the package takes once unpacked, in bytes (Debian states it in KiB).
    pub fn installed_size(&self) -> u64 {
        self.field(F::InstalledSize)
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }
    /// The `.deb`'s SHA256, in lowercase hex (all zeros for an installed package).
    pub fn sha256(&self) -> String {
        hex::encode(self.raw.sha256)
    }
}

impl PackageIndex {
    /// Number of packages.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the index has no packages.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The positions of the packages named `name`, in file order.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        let of = |r: &u32| self.get(*r as usize).name();
        let by_name = &self.names.by_name;
        let start = by_name.partition_point(|r| of(r) < name);
        by_name[start..]
            .iter()
            .take_while(move |r| of(r) == name)
            .map(|r| *r as usize)
    }

    /// The positions of the packages that provide `name`, in file order.
    pub fn providing<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        let of = |p: &[u32; 3]| &self.text[p[0] as usize..(p[0] + p[1]) as usize];
        let provided = &self.names.provided;
        let start = provided.partition_point(|p| of(p) < name);
        provided[start..]
            .iter()
            .take_while(move |p| of(p) == name)
            .map(|p| p[2] as usize)
    }

    /// Every package name, in order, once each.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        let mut last = None;
        self.names.by_name.iter().filter_map(move |r| {
            let name = self.get(*r as usize).name();
            (last != Some(name)).then(|| {
                last = Some(name);
                name
            })
        })
    }

    /// The package at position `i`.
    pub fn get(&self, i: usize) -> Package<'_> {
        Package {
            index: self,
            raw: &self.records[i],
        }
    }

    /// All packages, in file order.
    pub fn iter(&self) -> impl Iterator<Item = Package<'_>> {
        self.records
            .iter()
            .map(move |raw| Package { index: self, raw })
    }

    /// Parses a compressed `Packages` stream. `what` names it in errors.
    pub fn parse(
        reader: impl Read + Send,
        compression: Compression,
        what: &str,
    ) -> Result<PackageIndex, Error> {
        let mut builder = Builder::default();
        let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut decoder = compression.decoder(reader);
                loop {
                    let mut block = vec![0u8; 1 << 20];
                    let mut filled = 0;
                    // Fill whole blocks so the parser gets few, large slices.
                    while filled < block.len() {
                        match decoder.read(&mut block[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                    if filled == 0 {
                        return;
                    }
                    block.truncate(filled);
                    if tx.send(Ok(block)).is_err() {
                        return;
                    }
                }
            });
            let mut carry: Vec<u8> = Vec::new();
            for block in rx {
                let block = block.map_err(|e| Error::BadIndex {
                    what: what.to_string(),
                    reason: format!("decompression failed: {e}"),
                })?;
                carry.extend_from_slice(&block);
                // Parse up to the last stanza boundary; keep the partial stanza.
                if let Some(end) = memchr::memmem::rfind(&carry, b"\n\n") {
                    builder.add_text(&carry[..end + 2], what)?;
                    carry.drain(..end + 2);
                }
            }
            builder.add_text(&carry, what)
        })?;
        Ok(builder.finish())
    }

    /// Parses an uncompressed `Packages` text.
    pub fn parse_text(text: &str, what: &str) -> Result<PackageIndex, Error> {
        let mut b = Builder::default();
        b.add_text(text.as_bytes(), what)?;
        Ok(b.finish())
    }

    /// Parses the control paragraphs of installed packages (a dpkg `status` file or
    /// `status.d` entries), which name no file to download.
    pub fn parse_installed(text: &str, what: &str) -> Result<PackageIndex, Error> {
        let mut b = Builder {
            installed: true,
            ..Builder::default()
        };
        b.add_text(text.as_bytes(), what)?;
        Ok(b.finish())
    }

    /// Writes the compact form.
    pub fn write_to(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(MAGIC)?;
        w.write_all(&(self.records.len() as u64).to_le_bytes())?;
        w.write_all(&(self.text.len() as u64).to_le_bytes())?;
        w.write_all(self.text.as_bytes())?;
        let mut buf = Vec::with_capacity(self.records.len() * RECORD_BYTES);
        for r in &self.records {
            for (s, l) in r.spans {
                buf.extend_from_slice(&s.to_le_bytes());
                buf.extend_from_slice(&l.to_le_bytes());
            }
            buf.extend_from_slice(&r.size.to_le_bytes());
            buf.extend_from_slice(&r.sha256);
        }
        for r in &self.names.by_name {
            buf.extend_from_slice(&r.to_le_bytes());
        }
        buf.extend_from_slice(&(self.names.provided.len() as u64).to_le_bytes());
        for p in self.names.provided.iter().flatten() {
            buf.extend_from_slice(&p.to_le_bytes());
        }
        w.write_all(&buf)
    }

    /// Loads the compact form written by [`PackageIndex::write_to`].
    pub fn load(path: &Path) -> Result<PackageIndex, Error> {
        let bad = |reason: &str| Error::BadIndex {
            what: path.display().to_string(),
            reason: reason.to_string(),
        };
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let with_names = match bytes.get(..8) {
            Some(m) if m == MAGIC => true,
            Some(m) if m == MAGIC_V2 => false,
            _ => return Err(bad("not a bareboat index (wrong magic)")),
        };
        let word = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at.checked_add(8)?)?;
            usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()
        };
        let (count, text_len) = word(8).zip(word(16)).ok_or_else(|| bad("truncated"))?;
        let records_at = 24usize
            .checked_add(text_len)
            .ok_or_else(|| bad("truncated"))?;
        let names_at = count
            .checked_mul(RECORD_BYTES)
            .and_then(|n| n.checked_add(records_at))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| bad("truncated"))?;
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let records = bytes[records_at..names_at]
            .chunks_exact(RECORD_BYTES)
            .map(|c| {
                let mut spans = [(0u32, 0u32); NFIELDS];
                for (i, span) in spans.iter_mut().enumerate() {
                    let at = i * 8;
                    *span = (
                        u32::from_le_bytes(c[at..at + 4].try_into().unwrap()),
                        u32::from_le_bytes(c[at + 4..at + 8].try_into().unwrap()),
                    );
                }
                let at = NFIELDS * 8;
                Raw {
                    spans,
                    size: u64::from_le_bytes(c[at..at + 8].try_into().unwrap()),
                    sha256: c[at + 8..at + 40].try_into().unwrap(),
                }
            })
            .collect::<Vec<_>>();
        let stored = if with_names {
            let provided_at = count
                .checked_mul(4)
                .and_then(|n| n.checked_add(names_at))
                .ok_or_else(|| bad("truncated"))?;
            let provided = word(provided_at).ok_or_else(|| bad("truncated"))?;
            let end = provided
                .checked_mul(12)
                .and_then(|n| n.checked_add(provided_at + 8));
            if end != Some(bytes.len()) {
                return Err(bad("truncated or oversized"));
            }
            Some(Names {
                by_name: (0..count).map(|i| u32_at(names_at + 4 * i)).collect(),
                provided: (0..provided)
                    .map(|i| {
                        let at = provided_at + 8 + 12 * i;
                        [u32_at(at), u32_at(at + 4), u32_at(at + 8)]
                    })
                    .collect(),
            })
        } else if names_at != bytes.len() {
            return Err(bad("truncated or oversized"));
        } else {
            None
        };
        let mut bytes = bytes;
        bytes.truncate(records_at);
        bytes.drain(..24);
        let text = String::from_utf8(bytes).map_err(|_| bad("text is not UTF-8"))?;
        if records
            .iter()
            .flat_map(|r| r.spans)
            .any(|(s, l)| s as usize + l as usize > text.len())
        {
            return Err(bad("record points outside the text"));
        }
        let names = match stored {
            Some(names) => {
                let in_text = |s: u32, l: u32| {
                    (s as usize)
                        .checked_add(l as usize)
                        .is_some_and(|e| e <= text.len())
                };
                if names.by_name.iter().any(|r| *r as usize >= count)
                    || names
                        .provided
                        .iter()
                        .any(|p| p[2] as usize >= count || !in_text(p[0], p[1]))
                {
                    return Err(bad("a name table points outside the index"));
                }
                names
            }
            None => Names::of(&text, &records),
        };
        Ok(PackageIndex {
            text,
            records,
            names,
        })
    }
}

#[derive(Default)]
struct Builder {
    text: String,
    records: Vec<Raw>,
    /// Installed packages have no Filename or SHA256.
    installed: bool,
}

impl Builder {
    fn add_text(&mut self, chunk: &[u8], what: &str) -> Result<(), Error> {
        let bad = |reason: String| Error::BadIndex {
            what: what.to_string(),
            reason,
        };
        let chunk = std::str::from_utf8(chunk).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        for para in iter_paragraphs_borrowed(chunk) {
            let para = para.map_err(|e| bad(format!("malformed stanza: {e}")))?;
            let mut raw = Raw {
                spans: [(0, 0); NFIELDS],
                size: 0,
                sha256: [0; 32],
            };
            let mut have_hash = false;
            for field in para.iter() {
                let name = field.name();
                if name == "Size" {
                    raw.size = field
                        .as_single_line()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| bad(format!("bad Size {:?}", field.lines())))?;
                } else if name == "SHA256" {
                    let h = field.as_single_line().unwrap_or_default().trim();
                    hex::decode_to_slice(h, &mut raw.sha256)
                        .map_err(|_| bad(format!("bad SHA256 {h:?}")))?;
                    have_hash = true;
                } else if let Some(i) = FIELDS.iter().position(|f| *f == name) {
                    let value = match field.as_single_line() {
                        Some(v) => std::borrow::Cow::Borrowed(v.trim()),
                        None => std::borrow::Cow::Owned(field.lines().join(" ")),
                    };
                    let start = u32::try_from(self.text.len())
                        .map_err(|_| bad("index too large".into()))?;
                    self.text.push_str(&value);
                    raw.spans[i] = (start, value.len() as u32);
                }
            }
            let name_span = raw.spans[F::Package as usize];
            if name_span.1 == 0 {
                return Err(bad("a stanza has no Package field".into()));
            }
            let name = &self.text[name_span.0 as usize..(name_span.0 + name_span.1) as usize];
            for (f, label) in [
                (F::Version, "Version"),
                (F::Architecture, "Architecture"),
                (F::Filename, "Filename"),
            ] {
                if raw.spans[f as usize].1 == 0 && !(self.installed && f == F::Filename) {
                    return Err(bad(format!("package {name} has no {label}")));
                }
            }
            if !have_hash && !self.installed {
                return Err(bad(format!("package {name} has no SHA256")));
            }
            self.records.push(raw);
        }
        Ok(())
    }

    fn finish(self) -> PackageIndex {
        PackageIndex {
            names: Names::of(&self.text, &self.records),
            text: self.text,
            records: self.records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Package: base-files\nVersion: 13.8+deb13u1\nArchitecture: amd64\n\
Maintainer: x\nInstalled-Size: 391\nPre-Depends: awk\nPriority: required\nEssential: yes\n\
Filename: pool/main/b/base-files/base-files_13.8+deb13u1_amd64.deb\nSize: 73156\n\
SHA256: 0000000000000000000000000000000000000000000000000000000000000001\n\
Description: misc\n long text\n\n\
Package: busybox-static\nSource: busybox (1:1.37.0-6)\nVersion: 1:1.37.0-6+b9\n\
Architecture: amd64\nFilename: pool/b.deb\nSize: 1\n\
SHA256: 00000000000000000000000000000000000000000000000000000000000000ff\n";

    #[test]
    fn keeps_the_fields_that_matter() {
        let idx = PackageIndex::parse_text(TEXT, "t").unwrap();
        assert_eq!(idx.len(), 2);
        let p = idx.get(0);
        assert_eq!(p.name(), "base-files");
        assert_eq!(p.pre_depends(), Some("awk"));
        assert_eq!(p.priority(), Some("required"));
        assert!(p.essential());
        assert_eq!(p.size(), 73156);
        assert_eq!(p.installed_size(), 391 * 1024);
        assert!(p.sha256().ends_with("01"));
        assert_eq!(p.source(), None);
        let b = idx.get(1);
        assert_eq!(b.source(), Some("busybox (1:1.37.0-6)"));
        assert_eq!(b.version(), "1:1.37.0-6+b9");
        assert_eq!(b.installed_size(), 0, "absent");
    }

    #[test]
    fn compressed_stream_matches_plain_parse_and_round_trips() {
        // Enough stanzas to span several decompression blocks.
        let mut text = String::new();
        for i in 0..20000 {
            text.push_str(&format!(
                "Package: p{i}\nVersion: 1.{i}\nArchitecture: all\nFilename: pool/p{i}.deb\nSize: {i}\n\
SHA256: {:064x}\nDepends: p{}\nDescription: d\n more\n\n",
                i,
                i + 1
            ));
        }
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(text.as_bytes()).unwrap();
        let xz = xz.finish().unwrap();
        let idx = PackageIndex::parse(&xz[..], Compression::Xz, "t").unwrap();
        assert_eq!(idx.len(), 20000);
        assert_eq!(idx.get(19999).name(), "p19999");
        assert_eq!(idx.get(12345).depends(), Some("p12346"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i");
        idx.write_to(std::fs::File::create(&path).unwrap()).unwrap();
        let back = PackageIndex::load(&path).unwrap();
        assert_eq!(back.len(), idx.len());
        assert_eq!(back.get(777).filename(), "pool/p777.deb");
        assert_eq!(back.get(777).sha256(), idx.get(777).sha256());
    }

    #[test]
    fn rejects_bad_stanzas_and_corrupt_cache_files() {
        let no_hash = "Package: a\nVersion: 1\nArchitecture: all\nFilename: a.deb\nSize: 1\n";
        let e = PackageIndex::parse_text(no_hash, "t")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("package a has no SHA256"), "{e}");
        let bad_size = format!("{no_hash}SHA256: {:064x}\nSize: x\n", 1);
        let e = PackageIndex::parse_text(&bad_size, "t")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("bad Size [\"x\"]"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i");
        let idx = PackageIndex::parse_text(TEXT, "t").unwrap();
        let mut bytes = Vec::new();
        idx.write_to(&mut bytes).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let e = PackageIndex::load(&path).err().unwrap().to_string();
        assert!(e.ends_with("/i: truncated"), "{e}");
        let e = (PackageIndex::parse_text("Package: a\nbroken line\n", "t")
            .err()
            .unwrap())
        .to_string();
        assert!(e.contains("t: malformed stanza"), "{e}");
    }

    #[test]
    fn packages_are_found_by_name_and_by_what_they_provide_after_a_round_trip() {
        let text = "Package: mawk\nVersion: 1\nArchitecture: amd64\nProvides: awk, x-awk (= 1)\n\
Filename: m.deb\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000001\n\n\
Package: gawk\nVersion: 2\nArchitecture: amd64\nProvides: awk\nFilename: g.deb\nSize: 1\n\
SHA256: 0000000000000000000000000000000000000000000000000000000000000002\n\n\
Package: mawk\nVersion: 2\nArchitecture: amd64\nFilename: m2.deb\nSize: 1\n\
SHA256: 0000000000000000000000000000000000000000000000000000000000000003\n";
        let check = |idx: &PackageIndex| {
            assert_eq!(idx.named("mawk").collect::<Vec<_>>(), [0, 2], "file order");
            assert_eq!(idx.named("gawk").collect::<Vec<_>>(), [1]);
            assert!(idx.named("awk").next().is_none());
            assert_eq!(idx.providing("awk").collect::<Vec<_>>(), [0, 1]);
            assert_eq!(idx.providing("x-awk").collect::<Vec<_>>(), [0]);
            assert!(idx.providing("mawk").next().is_none());
            assert_eq!(idx.names().collect::<Vec<_>>(), ["gawk", "mawk"]);
        };
        let idx = PackageIndex::parse_text(text, "t").unwrap();
        check(&idx);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.idx");
        let mut bytes = Vec::new();
        idx.write_to(&mut bytes).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        check(&PackageIndex::load(&path).unwrap());
        // The format before the tables were stored: they are computed on load.
        let records_end = 24 + idx.text.len() + idx.len() * RECORD_BYTES;
        let mut v2 = bytes[..records_end].to_vec();
        v2[..8].copy_from_slice(MAGIC_V2);
        std::fs::write(&path, &v2).unwrap();
        check(&PackageIndex::load(&path).unwrap());
        // A table that points past the records is refused.
        let mut bad = bytes.clone();
        bad[records_end..records_end + 4].copy_from_slice(&99u32.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        let e = PackageIndex::load(&path).err().unwrap().to_string();
        assert!(e.contains("a name table points outside the index"), "{e}");
    }

    /// Found by fuzzing (`deb`): a legacy .lzma header asking for a 4 GiB dictionary made
    /// the decoder allocate it. Only .xz, with a memory limit, is read.
    #[test]
    fn legacy_lzma_streams_are_not_decoded() {
        let options = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
        let stream = liblzma::stream::Stream::new_lzma_encoder(&options).unwrap();
        let mut lzma = Vec::new();
        let mut enc = liblzma::write::XzEncoder::new_stream(&mut lzma, stream);
        enc.write_all(b"Package: x\n").unwrap();
        enc.finish().unwrap();
        let mut out = Vec::new();
        let read = Compression::Xz.decoder(&lzma[..]).read_to_end(&mut out);
        let e = read.expect_err("a legacy .lzma stream is not decoded");
        assert!(e.to_string().contains("format not recognized"), "{e}");
        // The same text as .xz reads.
        let mut xz = Vec::new();
        let mut enc = liblzma::write::XzEncoder::new(&mut xz, 6);
        enc.write_all(b"Package: x\n").unwrap();
        enc.finish().unwrap();
        let mut out = Vec::new();
        Compression::Xz
            .decoder(&xz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"Package: x\n");
    }

    #[test]
    fn truncated_xz_is_an_error() {
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(TEXT.as_bytes()).unwrap();
        let xz = xz.finish().unwrap();
        let e = (PackageIndex::parse(&xz[..xz.len() / 2], Compression::Xz, "t")
            .err()
            .unwrap())
        .to_string();
        assert!(e.contains("t: decompression failed"), "{e}");
    }
}
