//! The Java trust store (`/etc/ssl/certs/java/cacerts`) as a JKS keystore of trusted
//! certificates, which every JDK since 9 reads whatever its default keystore type.
//!
//! Debian makes it with `keytool` in ca-certificates-java's maintainer script; bareboat
//! writes the same entries from the CA bundle, so no JVM runs at build time. The format:
//! magic, version 2, entry count, then per entry tag 2 (trusted certificate), alias, creation
//! time in ms, certificate type and DER; last a SHA-1 over the password (UTF-16BE), the
//! phrase "Mighty Aphrodite" and everything before it.

use sha1::{Digest, Sha1};

/// The password Java's `cacerts` is protected with, as in every JDK.
pub const PASSWORD: &str = "changeit";

const MAGIC: u32 = 0xFEED_FEED;
const VERSION: u32 = 2;
const TRUSTED_CERT: u32 = 2;

/// A certificate for the trust store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedCert {
    /// Lower case, as keytool stores it.
    pub alias: String,
    /// The certificate, DER-encoded.
    pub der: Vec<u8>,
}

/// The DER certificates of a PEM text, in order.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end = rest[begin..]
            .find(END)
            .map(|e| begin + e + END.len())
            .ok_or("a PEM certificate is not closed")?;
        let (label, der) = pem_rfc7468::decode_vec(&rest.as_bytes()[begin..end])
            .map_err(|e| format!("a PEM certificate does not decode: {e}"))?;
        debug_assert_eq!(label, "CERTIFICATE");
        out.push(der);
        rest = &rest[end..];
    }
    Ok(out)
}

/// Names each certificate of a PEM file after the file (`name`, then `name-2`, ...), and
/// keeps aliases unique across `into`.
pub fn add_named(into: &mut Vec<TrustedCert>, name: &str, ders: Vec<Vec<u8>>) {
    let base = name.to_lowercase();
    for (k, der) in ders.into_iter().enumerate() {
        let mut alias = if k == 0 {
            base.clone()
        } else {
            format!("{base}-{}", k + 1)
        };
        let mut n = 1;
        while into.iter().any(|c| c.alias == alias) {
            n += 1;
            alias = format!("{base}~{n}");
        }
        into.push(TrustedCert { alias, der });
    }
}

/// A JKS keystore holding `certs` as trusted-certificate entries created at `created_ms`.
pub fn keystore(certs: &[TrustedCert], created_ms: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(certs.len() as u32).to_be_bytes());
    for c in certs {
        out.extend_from_slice(&TRUSTED_CERT.to_be_bytes());
        java_utf(&mut out, &c.alias);
        out.extend_from_slice(&created_ms.to_be_bytes());
        java_utf(&mut out, "X.509");
        out.extend_from_slice(&(c.der.len() as u32).to_be_bytes());
        out.extend_from_slice(&c.der);
    }
    let mut h = Sha1::new();
    for unit in PASSWORD.encode_utf16() {
        h.update(unit.to_be_bytes());
    }
    h.update(b"Mighty Aphrodite");
    h.update(&out);
    out.extend_from_slice(&h.finalize());
    out
}

/// `DataOutput.writeUTF`: a u16 length, then modified UTF-8 (NUL as two bytes,
/// supplementary characters as surrogate pairs).
fn java_utf(out: &mut Vec<u8>, s: &str) {
    let mut bytes = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            1..=0x7f => bytes.push(unit as u8),
            0 | 0x80..=0x7ff => {
                bytes.push(0xc0 | (unit >> 6) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
            _ => {
                bytes.push(0xe0 | (unit >> 12) as u8);
                bytes.push(0x80 | ((unit >> 6) & 0x3f) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
        }
    }
    // Aliases and the type name are short; writeUTF refuses more than 65535 bytes too.
    let len = u16::try_from(bytes.len()).expect("a keystore string over 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_integrity_digest() {
        let certs = vec![TrustedCert {
            alias: "debian:a.pem".into(),
            der: vec![0x30, 0x03, 0x02, 0x01, 0x05],
        }];
        let ks = keystore(&certs, 1_700_000_000_000);
        assert_eq!(&ks[..12], &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1]);
        assert_eq!(&ks[12..16], &[0, 0, 0, 2]);
        assert_eq!(&ks[16..18], &[0, 12]);
        assert_eq!(&ks[18..30], b"debian:a.pem");
        let body = &ks[..ks.len() - 20];
        let mut h = Sha1::new();
        h.update(b"\0c\0h\0a\0n\0g\0e\0i\0t");
        h.update(b"Mighty Aphrodite");
        h.update(body);
        assert_eq!(&ks[ks.len() - 20..], h.finalize().as_slice());
        // Deterministic: the same certificates and time give the same bytes.
        assert_eq!(ks, keystore(&certs, 1_700_000_000_000));
    }

    #[test]
    fn modified_utf8() {
        let mut out = Vec::new();
        java_utf(&mut out, "a\0é€😀");
        assert_eq!(
            out,
            [
                0, 14, b'a', 0xc0, 0x80, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0xbd, 0xed,
                0xb8, 0x80
            ]
        );
    }

    #[test]
    fn pem_blocks_and_unique_aliases() {
        let der = [0x30u8, 0x03, 0x02, 0x01, 0x05];
        let one =
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, &der).unwrap();
        let text = format!("# comment\n{one}{one}");
        let ders = pem_certificates(&text).unwrap();
        assert_eq!(ders, vec![der.to_vec(), der.to_vec()]);
        let mut certs = Vec::new();
        add_named(&mut certs, "Corp", ders.clone());
        add_named(&mut certs, "corp", ders);
        let aliases: Vec<&str> = certs.iter().map(|c| c.alias.as_str()).collect();
        assert_eq!(aliases, ["corp", "corp-2", "corp~2", "corp~3"]);
        let e = pem_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap_err();
        assert!(e.contains("not closed"), "{e}");
    }
}
