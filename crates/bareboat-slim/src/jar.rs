//! A jar's manifest, and the class path it names: what `java -jar` puts on the class path
//! besides the jar itself.

use std::io::{self, Read};

/// Where a jar keeps its manifest.
const MANIFEST: &str = "META-INF/MANIFEST.MF";

/// The manifest of the jar `file` (read within `cap` bytes); an error for a file that is
/// no zip archive, or one without a manifest.
pub fn manifest(file: std::fs::File, cap: u64) -> io::Result<String> {
    let mut archive = zip::ZipArchive::new(file).map_err(io::Error::other)?;
    let entry = archive.by_name(MANIFEST).map_err(io::Error::other)?;
    let mut text = String::new();
    entry.take(cap).read_to_string(&mut text)?;
    Ok(text)
}

/// The entries of a manifest's `Class-Path` attribute: space-separated relative URLs,
/// on lines of at most 72 bytes that continue on lines starting with a space. An
/// absolute URL is passed over; `..` stays, since the image's resolver keeps every path
/// inside the root.
pub fn class_path(manifest: &str) -> Vec<String> {
    let mut value: Option<String> = None;
    for line in manifest.lines() {
        match (&mut value, line.strip_prefix(' ')) {
            (Some(v), Some(more)) => v.push_str(more),
            (Some(_), None) => break,
            (None, _) => value = line.strip_prefix("Class-Path:").map(str::to_string),
        }
    }
    value
        .unwrap_or_default()
        .split_whitespace()
        .filter(|e| !e.contains("://"))
        .map(|e| e.trim_start_matches("./").to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_path_continues_on_lines_that_start_with_a_space() {
        let m = "Manifest-Version: 1.0\r\nMain-Class: app.Main\r\nClass-Path: lib/a.jar li\r\n b/b.jar ./c.jar http://x/y.jar ../up.jar\r\nCreated-By: 21\r\n\r\n";
        assert_eq!(
            class_path(m),
            ["lib/a.jar", "lib/b.jar", "c.jar", "../up.jar"]
        );
        assert_eq!(class_path("Manifest-Version: 1.0\n"), Vec::<String>::new());
    }
}
