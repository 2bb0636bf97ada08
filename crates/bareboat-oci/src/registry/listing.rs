//! Listings that live under tags and are read, changed and written back: the referrers
//! index under `sha256-<hex>` (on a registry without the referrers API) and cosign's legacy
//! image under `sha256-<hex>.sig`. A registry cannot do that atomically (docker-registry
//! ignores `If-Match`), so two writers at once may each read the old listing, and the later
//! write drops what the earlier added. So each writer, once it has written, waits twice as
//! long as its own read and write took (a writer that read before it wrote has usually
//! written by then), reads the tag again, and does so once more after as long again, for a
//! writer slowed more than that (several signers on a busy machine are); it writes again
//! while what it added is missing, a few times. What a lost race drops is only ever dropped from the listing: the manifest stays
//! in the registry by its digest, and attaching again lists it again.

use std::time::{Duration, Instant};

use super::Registry;
use crate::Error;
use crate::reference::DockerName;

/// How many times a writer writes a listing that a race keeps dropping its entry from.
const ROUNDS: usize = 5;

/// The least a writer waits before reading back what it wrote.
const LEAST_SETTLE: Duration = Duration::from_millis(50);

/// How many times, each a settling time apart, a writer reads back what it wrote before it
/// takes it as kept.
const READ_BACKS: usize = 2;

impl Registry {
    /// Writes the listing under `tag` with `update` (which says whether it wrote), then,
    /// after a while, reads it back with `holds` ([`READ_BACKS`] times), and writes again
    /// while what it added is missing. Whether anything was written.
    pub(super) async fn settled(
        &self,
        name: &DockerName,
        tag: &str,
        mut update: impl AsyncFnMut() -> Result<bool, Error>,
        mut holds: impl AsyncFnMut() -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let at_tag = DockerName {
            tag: tag.to_string(),
            ..name.clone()
        };
        let mut wrote = false;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            if !update().await? {
                return Ok(wrote);
            }
            wrote = true;
            let settle = (started.elapsed() * 2).max(LEAST_SETTLE);
            let mut kept = true;
            for _ in 0..READ_BACKS {
                tokio::time::sleep(settle).await;
                kept = holds().await?;
                if !kept {
                    break;
                }
            }
            if kept {
                return Ok(true);
            }
            tracing::warn!(
                "{}: another writer replaced it meanwhile; writing it again",
                at_tag.full()
            );
        }
        Err(raced(&at_tag))
    }
}

/// The error of a listing that other writers kept replacing.
fn raced(at_tag: &DockerName) -> Error {
    Error::Registry {
        registry: at_tag.registry.clone(),
        reason: format!(
            "{}: other writers replaced it {ROUNDS} times while bareboat added to it\n  hint: run the command again once the other writers are done",
            at_tag.full()
        ),
    }
}
