//! bareboat-sign: what signing images needs, in the formats cosign reads.
//!
//! - [`key`]: ECDSA P-256 key pairs; the private key encrypted as cosign encrypts it
//!   (scrypt, then NaCl secretbox, in a JSON envelope under the PEM label
//!   `ENCRYPTED SIGSTORE PRIVATE KEY`), the public key as PEM;
//! - [`formats`]: what cosign signs and stores, as pure functions: its legacy
//!   simple-signing payload and signature, DSSE envelopes over in-toto Statements, and
//!   Sigstore bundles v0.3;
//! - [`sign`]: what signs or attests an image, attached in either or both schemes by any
//!   sink;
//! - [`verify`]: checking an image's signatures or attestations in both schemes with a
//!   public key;
//! - [`policy`]: what a policy file requires of verified attestations.
//!
//! ```
//! use bareboat_sign::key::{KeyPair, PublicKey};
//! let pair = KeyPair::generate().unwrap();
//! let sealed = pair.encrypted_pem(b"secret").unwrap();
//! let opened = KeyPair::from_encrypted_pem(&sealed, b"secret", "cosign.key").unwrap();
//! let public = PublicKey::from_pem(&pair.public_pem(), "cosign.pub").unwrap();
//! assert_eq!(opened.public().hint(), public.hint());
//! ```

#![deny(missing_docs)]

mod error;
pub mod formats;
pub mod key;
pub mod policy;
pub mod sign;
pub mod verify;

pub use error::Error;
