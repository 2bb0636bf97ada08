//! Key pairs as cosign makes and reads them: ECDSA P-256, the public key as a PEM
//! `PUBLIC KEY`, the private key's PKCS#8 DER encrypted under a password with scrypt
//! (N=32768, r=8, p=1, a 32-byte salt) and NaCl secretbox (a 24-byte nonce), in a JSON
//! envelope under the PEM label `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 1 wrote
//! `ENCRYPTED COSIGN PRIVATE KEY`, which is read too).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// The PEM label cosign 2 and later write an encrypted private key under.
pub const PRIVATE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label cosign 1 wrote, still read.
pub const COSIGN_1_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt's cost, as cosign sets it: N = 2^15, r = 8, p = 1.
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The costliest scrypt a key file may ask for (N = 2^20, 1 GiB at r = 8): a hostile file
/// must not make reading it take minutes and gigabytes.
const MAX_SCRYPT_LOG_N: u8 = 20;

/// The JSON envelope of an encrypted private key, with cosign's field names.
#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    /// Base64 of the sealed PKCS#8 DER.
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    /// Base64 of the 32-byte salt.
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    /// Base64 of the 24-byte nonce.
    nonce: String,
}

/// An ECDSA P-256 key pair.
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// A new key pair, from the system's random numbers.
    pub fn generate() -> Result<KeyPair, Error> {
        loop {
            let bytes = Zeroizing::new(random::<32>()?);
            // A value past the curve's order (about 2^-32 of them) is drawn again.
            if let Ok(signing) = SigningKey::from_slice(bytes.as_slice()) {
                return Ok(KeyPair { signing });
            }
        }
    }

    /// The private key, encrypted under `password` as cosign encrypts it, as PEM.
    pub fn encrypted_pem(&self, password: &[u8]) -> Result<String, Error> {
        let der = self
            .signing
            .to_pkcs8_der()
            .map_err(|e| Error::Random(format!("encoding the key: {e}")))?;
        let salt = random::<32>()?;
        let nonce = random::<24>()?;
        let key = derive(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
        let sealed = XSalsa20Poly1305::new(Key::from_slice(key.as_slice()))
            .encrypt(Nonce::from_slice(&nonce), der.as_bytes())
            .map_err(|_| Error::Random("sealing the key".into()))?;
        let envelope = Envelope {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    n: 1 << SCRYPT_LOG_N,
                    r: SCRYPT_R,
                    p: SCRYPT_P,
                },
                salt: BASE64.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: BASE64.encode(nonce),
            },
            ciphertext: BASE64.encode(sealed),
        };
        let json = serde_json::to_vec(&envelope).expect("an envelope serialises");
        Ok(
            pem_rfc7468::encode_string(PRIVATE_LABEL, LineEnding::LF, &json)
                .expect("a PEM label of ASCII encodes"),
        )
    }

    /// Opens an encrypted private key (`origin` names it in errors).
    pub fn from_encrypted_pem(pem: &str, password: &[u8], origin: &str) -> Result<KeyPair, Error> {
        let not = |reason: String| Error::NotAKey {
            origin: origin.to_string(),
            expected: "an encrypted cosign private key",
            reason,
        };
        let (label, json) = pem_block(pem).map_err(|e| not(format!("no PEM block ({e})")))?;
        if label != PRIVATE_LABEL && label != COSIGN_1_LABEL {
            return Err(not(format!(
                "its PEM label is {label:?}, not {PRIVATE_LABEL:?} or {COSIGN_1_LABEL:?}"
            )));
        }
        let envelope: Envelope =
            serde_json::from_slice(&json).map_err(|e| not(format!("its envelope: {e}")))?;
        if envelope.kdf.name != "scrypt" || envelope.cipher.name != "nacl/secretbox" {
            return Err(not(format!(
                "it is encrypted with {} and {}, not scrypt and nacl/secretbox",
                envelope.kdf.name, envelope.cipher.name
            )));
        }
        let n = envelope.kdf.params.n;
        let log_n = n.trailing_zeros();
        if !n.is_power_of_two() || log_n == 0 || log_n > u32::from(MAX_SCRYPT_LOG_N) {
            return Err(not(format!(
                "its scrypt N is {n}, not a power of two up to 2^{MAX_SCRYPT_LOG_N}"
            )));
        }
        let decoded = |what: &str, text: &str| {
            BASE64
                .decode(text)
                .map_err(|e| not(format!("its {what} is not base64: {e}")))
        };
        let salt = decoded("salt", &envelope.kdf.salt)?;
        let nonce = decoded("nonce", &envelope.cipher.nonce)?;
        let sealed = decoded("ciphertext", &envelope.ciphertext)?;
        if nonce.len() != 24 {
            return Err(not(format!("its nonce has {} bytes, not 24", nonce.len())));
        }
        let params = &envelope.kdf.params;
        if params.r == 0 || params.r > 32 || params.p == 0 || params.p > 16 {
            return Err(not(format!(
                "its scrypt r={} and p={} are out of range",
                params.r, params.p
            )));
        }
        let key = derive(password, &salt, log_n as u8, params.r, params.p)?;
        let der = Zeroizing::new(
            XSalsa20Poly1305::new(Key::from_slice(key.as_slice()))
                .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
                .map_err(|_| Error::WrongPassword {
                    origin: origin.to_string(),
                })?,
        );
        let signing = SigningKey::from_pkcs8_der(&der)
            .map_err(|e| not(format!("what it holds is not a P-256 key: {e}")))?;
        Ok(KeyPair { signing })
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: *self.signing.verifying_key(),
        }
    }

    /// The public key as PEM.
    pub fn public_pem(&self) -> String {
        self.public().pem()
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl std::fmt::Debug for KeyPair {
    /// The public half only: a secret key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public().hint())
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (`origin` names it in errors).
    pub fn from_pem(pem: &str, origin: &str) -> Result<PublicKey, Error> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| Error::NotAKey {
            origin: origin.to_string(),
            expected: "a P-256 public key in PEM",
            reason: e.to_string(),
        })?;
        Ok(PublicKey { key })
    }

    /// The key as PEM, as cosign writes `cosign.pub`.
    pub fn pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 key encodes")
    }

    /// The key's DER (SubjectPublicKeyInfo).
    pub fn der(&self) -> Vec<u8> {
        self.key
            .to_public_key_der()
            .expect("a P-256 key encodes")
            .into_vec()
    }

    /// Base64 of the SHA-256 of the key's DER: a Sigstore bundle's `publicKey.hint`, and
    /// how bareboat names a key.
    pub fn hint(&self) -> String {
        BASE64.encode(Sha256::digest(self.der()))
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// The label and content of the first PEM block of `text`, read as Go's `encoding/pem`
/// reads it (which cosign uses): base64 lines of any length, surrounding text ignored.
fn pem_block(text: &str) -> Result<(String, Vec<u8>), String> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or("no BEGIN line")?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            let bytes = BASE64
                .decode(body.as_bytes())
                .map_err(|e| format!("its base64: {e}"))?;
            return Ok((label, bytes));
        }
        // A key is a few hundred bytes: a block far larger is not one.
        if body.len() > 64 << 10 {
            return Err("a block of more than 64 KiB".into());
        }
        body.push_str(line);
    }
    Err(format!("no line {end:?}"))
}

/// scrypt's 32-byte key from `password`, for secretbox.
fn derive(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| Error::Random(format!("scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut_slice())
        .map_err(|e| Error::Random(format!("scrypt: {e}")))?;
    Ok(key)
}

/// `N` random bytes from the system.
fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_opens_with_its_password_only() {
        let pair = KeyPair::generate().unwrap();
        let pem = pair.encrypted_pem(b"right").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let opened = KeyPair::from_encrypted_pem(&pem, b"right", "k").unwrap();
        assert_eq!(opened.public(), pair.public());
        let e = KeyPair::from_encrypted_pem(&pem, b"wrong", "k").unwrap_err();
        assert!(matches!(e, Error::WrongPassword { .. }), "{e}");
        // cosign 1's label is read too.
        let old = pem.replace(PRIVATE_LABEL, COSIGN_1_LABEL);
        assert_eq!(
            KeyPair::from_encrypted_pem(&old, b"right", "k")
                .unwrap()
                .public(),
            pair.public()
        );
        let public = PublicKey::from_pem(&pair.public_pem(), "p").unwrap();
        assert_eq!(public, pair.public());
        assert_eq!(BASE64.decode(public.hint()).unwrap().len(), 32);
    }

    #[test]
    fn what_is_not_a_key_is_refused_naming_the_problem() {
        let pair = KeyPair::generate().unwrap();
        let cases = [
            ("hello".to_string(), "no PEM block"),
            (pair.public_pem(), "its PEM label is \"PUBLIC KEY\""),
            (
                pem_rfc7468::encode_string(PRIVATE_LABEL, LineEnding::LF, b"{}").unwrap(),
                "its envelope",
            ),
            (
                pem_rfc7468::encode_string(
                    PRIVATE_LABEL,
                    LineEnding::LF,
                    br#"{"kdf":{"name":"scrypt","params":{"N":4294967296,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#,
                )
                .unwrap(),
                "not a power of two up to 2^20",
            ),
        ];
        for (pem, expected) in cases {
            let e = KeyPair::from_encrypted_pem(&pem, b"x", "k")
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{e}");
        }
        let e = PublicKey::from_pem("hello", "p").unwrap_err().to_string();
        assert!(e.contains("not a P-256 public key in PEM"), "{e}");
    }
}
