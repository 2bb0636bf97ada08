//! A package's files, as its verified `.deb` holds them: read to find its certificates,
//! and its file list when no Contents index names it.

use bareboat_oci::tar_bounds::BoundedTar;

/// A package's data archive, as a tar reader that holds no long name or PAX record of more
/// than [`bareboat_oci::tar_bounds::MAX_RECORD`] bytes.
pub(crate) fn package_tar<'a, R: std::io::Read + Send + 'a>(
    deb: bareboat_apt::deb::Deb<R>,
) -> tar::Archive<BoundedTar<Box<dyn std::io::Read + Send + 'a>>> {
    tar::Archive::new(BoundedTar::new(deb.data_stream()))
}
