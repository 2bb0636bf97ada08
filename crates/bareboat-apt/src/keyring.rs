//! OpenPGP trust: the embedded Debian archive keyring and `InRelease` verification.
//!
//! One valid signature from a trusted key is enough (Debian's InRelease carries several:
//! two RSA, one Ed25519). The signing key, primary or subkey, must be bound to its primary
//! key, not revoked, unexpired, and allowed to sign.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{Fingerprint, KeyDetails, KeyId, Tag, VerifyingKey};

use sha2::{Digest, Sha256};

use crate::Error;

/// The result of a successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signed text, as written.
    pub text: String,
    /// When the signing key (primary or subkey) expires, in seconds since the epoch.
    pub key_expires: Option<u64>,
}

/// The keyring of Debian's `debian-archive-keyring` package (see `keys/README.md`).
const DEBIAN_ARCHIVE_KEYRING: &[u8] = include_bytes!("../keys/debian-archive-keyring.pgp");

/// A keyring file is far smaller than this (Debian's, with every archive key, is 56 kB).
const KEYRING_LIMIT: u64 = 4 << 20;

/// A set of trusted public keys.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    /// A short hash of the keyring's bytes, naming it in cached verification results.
    id: String,
    /// Where the keys came from, for error messages.
    origin: String,
}

impl Keyring {
    /// Debian's archive keys, embedded in the binary.
    pub fn debian() -> Keyring {
        Keyring::from_bytes(
            DEBIAN_ARCHIVE_KEYRING,
            "the embedded Debian archive keyring",
        )
        .expect("embedded keyring parses")
    }

    /// Reads a keyring file, binary or ASCII-armored, with one or more keys.
    pub fn from_file(path: &Path) -> Result<Keyring, Error> {
        let bytes =
            crate::hostfile::read_capped(path, KEYRING_LIMIT).map_err(|e| Error::io(path, e))?;
        Keyring::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses keys from bytes, binary or ASCII-armored.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Keyring, Error> {
        let bad = |reason: String| Error::BadKeyring {
            origin: origin.to_string(),
            reason,
        };
        let keys: Vec<SignedPublicKey> = if bytes.starts_with(b"-----BEGIN") {
            let (iter, _) =
                SignedPublicKey::from_armor_many(bytes).map_err(|e| bad(e.to_string()))?;
            iter.collect::<Result<_, _>>()
        } else {
            SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
        }
        .map_err(|e| bad(e.to_string()))?;
        if keys.is_empty() {
            return Err(bad("no public keys found".into()));
        }
        Ok(Keyring {
            keys,
            id: hex::encode(&Sha256::digest(bytes)[..8]),
            origin: origin.to_string(),
        })
    }

    /// A short hash of the keyring's bytes.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Verifies a clear-signed `InRelease` and returns the text it signs.
    pub fn verify_inrelease(
        &self,
        inrelease: &str,
        url: &str,
        now: SystemTime,
    ) -> Result<Verified, Error> {
        let fail = bad_signature(url);
        let (msg, _) = CleartextSignedMessage::from_string(inrelease)
            .map_err(|e| fail(format!("not a clear-signed message: {e}")))?;
        let signed = msg.signed_text();
        let sigs: Vec<&Signature> = msg.signatures().iter().collect();
        let key_expires = self
            .first_valid(&sigs, signed.as_bytes(), now)
            .map_err(fail)?;
        // The signature covers the CRLF-normalised text; hand back the text as written,
        // which is what the Release parser and hashes expect.
        Ok(Verified {
            text: unescape(msg.text()),
            key_expires,
        })
    }

    /// Verifies a `Release` file against its detached `Release.gpg`.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &[u8],
        url: &str,
        now: SystemTime,
    ) -> Result<Verified, Error> {
        let fail = bad_signature(url);
        let parse = || -> pgp::errors::Result<Vec<DetachedSignature>> {
            if signature.starts_with(b"-----BEGIN") {
                DetachedSignature::from_armor_many(signature)?.0.collect()
            } else {
                DetachedSignature::from_bytes_many(signature)?.collect()
            }
        };
        let parsed = parse().map_err(|e| fail(format!("not a detached signature: {e}")))?;
        let sigs: Vec<&Signature> = parsed.iter().map(|d| &d.signature).collect();
        let key_expires = self.first_valid(&sigs, data, now).map_err(fail)?;
        Ok(Verified {
            text: String::from_utf8_lossy(data).into_owned(),
            key_expires,
        })
    }

    /// Checks signatures over `text` until one is valid, and returns when the key that made
    /// it expires; or says why none was.
    fn first_valid(
        &self,
        sigs: &[&Signature],
        text: &[u8],
        now: SystemTime,
    ) -> Result<Option<u64>, String> {
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut problems = Vec::new();
        // Ed25519 verifies far faster than RSA; one valid signature is enough, so try it first.
        let mut sigs = sigs.to_vec();
        sigs.sort_by_key(|s| {
            !matches!(
                s.config().map(|c| c.pub_alg),
                Some(PublicKeyAlgorithm::EdDSALegacy | PublicKeyAlgorithm::Ed25519)
            )
        });
        for sig in sigs {
            match self.check_signature(sig, text, now_secs) {
                Ok(key_expires) => return Ok(key_expires),
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty() {
            problems.push("it carries no signatures".into());
        }
        Err(format!(
            "no valid signature from {}: {}",
            self.origin,
            problems.join("; ")
        ))
    }

    /// Checks one signature; on success, returns when the key that made it expires.
    fn check_signature(
        &self,
        sig: &Signature,
        text: &[u8],
        now: u64,
    ) -> Result<Option<u64>, String> {
        let fingerprints = sig.issuer_fingerprint();
        let key_ids = sig.issuer_key_id();
        let issuer = fingerprints
            .first()
            .map(|f| hex::encode_upper(f.as_bytes()))
            .or_else(|| key_ids.first().map(|k| hex::encode_upper(k.as_ref())))
            .unwrap_or_else(|| "an unnamed key".into());
        let matches = |fp: Fingerprint, id: KeyId| {
            fingerprints.iter().any(|f| **f == fp) || key_ids.iter().any(|k| **k == id)
        };
        for key in &self.keys {
            let primary = &key.primary_key;
            if matches(primary.fingerprint(), primary.legacy_key_id()) {
                let expires =
                    check_usable(key, None, now).map_err(|p| format!("key {issuer}: {p}"))?;
                return verify_with(sig, primary, text, &issuer).map(|()| expires);
            }
            for sub in &key.public_subkeys {
                if matches(sub.key.fingerprint(), sub.key.legacy_key_id()) {
                    let expires = check_usable(key, Some(sub), now)
                        .map_err(|p| format!("key {issuer}: {p}"))?;
                    return verify_with(sig, &sub.key, text, &issuer).map(|()| expires);
                }
            }
        }
        Err(format!("key {issuer} is not in the keyring"))
    }
}

/// Makes the error for a signature check of `url` that failed for a reason.
fn bad_signature(url: &str) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::BadSignature {
        url: url.to_string(),
        reason,
    }
}

fn verify_with(
    sig: &Signature,
    key: &impl VerifyingKey,
    text: &[u8],
    issuer: &str,
) -> Result<(), String> {
    sig.verify(key, text)
        .map_err(|e| format!("signature by {issuer} does not verify: {e}"))
}

/// Checks the bindings, revocation, expiry and signing capability of a primary key or one
/// of its subkeys, and returns when it stops being usable.
fn check_usable(
    key: &SignedPublicKey,
    sub: Option<&pgp::composed::SignedPublicSubKey>,
    now: u64,
) -> Result<Option<u64>, String> {
    let primary = &key.primary_key;
    // Only a revocation that the key itself made counts.
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(primary).is_ok())
    {
        return Err("the primary key is revoked".into());
    }
    // User IDs may also carry third-party certifications; only self-signatures bind the key.
    let is_self = |s: &Signature| {
        s.issuer_fingerprint()
            .iter()
            .any(|f| **f == primary.fingerprint())
            || s.issuer_key_id()
                .iter()
                .any(|k| **k == primary.legacy_key_id())
    };
    let user_sigs = key.details.users.iter().flat_map(|u| {
        u.signatures
            .iter()
            .filter(|s| is_self(s) && s.verify_certification(primary, Tag::UserId, &u.id).is_ok())
    });
    let direct_sigs = key
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.verify_key(primary).is_ok());
    let self_sig = newest(user_sigs.chain(direct_sigs)).ok_or("it has no valid self-signature")?;
    let primary_expires = check_expiry(
        key.primary_key.created_at().as_secs(),
        self_sig,
        now,
        "primary key",
    )?;
    match sub {
        None => check_can_sign(self_sig).map(|()| primary_expires),
        Some(sub) => {
            if sub
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
            {
                return Err("the subkey is revoked".into());
            }
            sub.verify_bindings(&key.primary_key)
                .map_err(|e| format!("the subkey is not bound to its primary key: {e}"))?;
            let binding =
                newest(sub.signatures.iter()).ok_or("the subkey has no binding signature")?;
            let sub_expires = check_expiry(sub.key.created_at().as_secs(), binding, now, "subkey")?;
            check_can_sign(binding)?;
            Ok(match (primary_expires, sub_expires) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
        }
    }
}

fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
}

/// Checks that a key has not expired, and returns when it will.
fn check_expiry(
    created: u32,
    sig: &Signature,
    now: u64,
    what: &str,
) -> Result<Option<u64>, String> {
    match sig.key_expiration_time() {
        Some(d) if d.as_secs() != 0 => {
            let expires = u64::from(created) + u64::from(d.as_secs());
            if expires < now {
                Err(format!(
                    "the {what} expired on {}",
                    crate::release::format_unix(expires)
                ))
            } else {
                Ok(Some(expires))
            }
        }
        _ => Ok(None),
    }
}

fn check_can_sign(sig: &Signature) -> Result<(), String> {
    let flags = sig.key_flags();
    let any_flag = flags.certify()
        || flags.sign()
        || flags.encrypt_comms()
        || flags.encrypt_storage()
        || flags.authentication();
    // No key-flags subpacket at all leaves usage unrestricted.
    if any_flag && !flags.sign() {
        return Err("the key is not allowed to sign".into());
    }
    Ok(())
}

/// Undoes dash-escaping of the cleartext framework and drops the final line break, which
/// belongs to the armor.
fn unescape(csf: &str) -> String {
    let mut out = String::with_capacity(csf.len());
    for line in csf.split_inclusive('\n') {
        out.push_str(line.strip_prefix("- ").unwrap_or(line));
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_keyring_holds_bookworm_and_trixie_keys() {
        let k = Keyring::debian();
        let ids: Vec<String> = k
            .keys
            .iter()
            .flat_map(|key| {
                std::iter::once(hex::encode_upper(key.primary_key.fingerprint().as_bytes())).chain(
                    key.public_subkeys
                        .iter()
                        .map(|s| hex::encode_upper(s.key.fingerprint().as_bytes())),
                )
            })
            .collect();
        for expected in [
            "B8E5F13176D2A7A75220028078DBA3BC47EF2265", // trixie automatic signing subkey
            "41587F7DB8C774BCCF131416762F67A0B2C39DE4", // trixie stable release key (Ed25519)
            "4CB50190207B4758A3F73A796ED0E7B82643E131", // bookworm automatic signing subkey
        ] {
            assert!(ids.iter().any(|i| i == expected), "{expected} missing");
        }
    }

    #[test]
    fn garbage_is_not_a_keyring() {
        let e = Keyring::from_bytes(b"hello", "test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("test"), "{e}");
    }

    #[test]
    fn unsigned_text_is_refused() {
        let e = Keyring::debian()
            .verify_inrelease("Origin: Debian\n", "http://x/InRelease", SystemTime::now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("http://x/InRelease"), "{e}");
    }
}
