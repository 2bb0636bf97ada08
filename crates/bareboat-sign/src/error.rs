//! Errors of signing, each naming the key at fault and what to do next.

/// Errors of signing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that is not the kind of key it was given as.
    #[error(
        "{origin}: not {expected}: {reason}\n  hint: make a key pair with `bareboat key generate` (or `cosign generate-key-pair`)"
    )]
    NotAKey {
        /// The file, or `env://VAR`.
        origin: String,
        /// What kind of key was expected.
        expected: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A private key that does not open with the password given.
    #[error(
        "{origin}: the password does not open this key\n  hint: set BAREBOAT_KEY_PASSWORD (or COSIGN_PASSWORD) to the password the key was made with"
    )]
    WrongPassword {
        /// The file, or `env://VAR`.
        origin: String,
    },

    /// The system's random numbers could not be had.
    #[error("no random numbers from the system: {0}")]
    Random(String),
}
