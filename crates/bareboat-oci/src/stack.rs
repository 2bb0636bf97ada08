//! The stacked tree: an image's layers put one on another as a runtime unpacks them, in one
//! place for every reader. Inspect's view, a build's base image (and so the ABI guard, which
//! reads its libraries) and the packages a base has installed stack layers here, so that
//! none of them sees an image otherwise than another, or than the runtime that starts it.
//!
//! The rules are umoci's and containerd's:
//! - a later entry replaces what was at its path: a directory merges with a directory, and
//!   anything else takes away all that was there, and under it;
//! - `.wh.NAME` deletes `NAME` and everything under it, as runtimes remove it when they
//!   meet it, and `.wh..wh..opq` empties its directory of what lower layers put there;
//! - an entry's parent is [`resolve`]d through the image's symlinks inside the root, so
//!   that `x/sh` under `x -> usr/bin` lands at `usr/bin/sh`; a whiteout lands the same way;
//! - the directories an entry implies are made, and an entry under something that is not a
//!   directory is refused, as runtimes refuse it.
//!
//! What a reader keeps of each entry is its [`Hooks`]' choice. File contents are kept only
//! where a caller asks, in a [`Store`]: one file on disk, within a byte budget, never in
//! memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::{Bound, Deref};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;

use crate::layer::Whiteout;
use crate::overlay::{self, Change, Entry, Kind, Refusal, Stats};

/// The most symlinks resolving one path may follow, as filepath-securejoin (umoci, runc) and
/// containerd's continuity allow: umoci 0.4.7 unpacks an entry under a chain of 255 links
/// and refuses one under 256 as too many levels of symbolic links.
pub const MAX_LINK_HOPS: usize = 255;

/// The most path components that following symlinks to its entries' parents may walk in one
/// layer, unless a stack is given another budget. A runtime follows up to
/// [`MAX_LINK_HOPS`] links for each entry, and a link's target may be long, so without a
/// budget a small layer could cost billions of steps.
pub const MAX_LINK_STEPS: u64 = 4 << 20;

/// A path of the stacked image, as the layer that last wrote it has it.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// The layer, counted from 0 at the bottom.
    pub layer: usize,
    /// What it is: a file, a directory, a symlink and its target, a device node.
    pub kind: Kind,
    /// The content's size, for a regular file.
    pub size: u64,
    /// Its permission bits, setuid, setgid and sticky included.
    pub mode: u32,
    /// Its owner's user id.
    pub uid: u64,
    /// Its group id.
    pub gid: u64,
    /// Its modification time, in seconds since the epoch.
    #[serde(skip)]
    pub mtime: u64,
    /// The content's SHA256, for a regular file whose reader hashed it.
    #[serde(skip)]
    pub sha256: Option<[u8; 32]>,
    /// Where its content is kept, for a regular file whose reader kept it.
    #[serde(skip)]
    pub content: Option<Stored>,
    /// A directory no entry made, only implied by the entries under it.
    #[serde(skip)]
    pub implied: bool,
}

/// How a layer took away what a lower layer (or an earlier entry of its own) put at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Another entry at the same path replaced it.
    Overwritten,
    /// A whiteout deleted it, or it was under a path that something else replaced.
    Deleted,
}

impl How {
    /// `overwritten` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            How::Overwritten => "overwritten",
            How::Deleted => "deleted",
        }
    }
}

/// What a reader took of a regular file's content as it streamed by.
#[derive(Clone, Debug, Default)]
pub struct Filled {
    /// Its SHA256, if the reader hashed it.
    pub sha256: Option<[u8; 32]>,
    /// Where it is kept, if the reader kept it.
    pub content: Option<Stored>,
}

/// What a reader of the stack does besides stacking: what it takes of each file's content,
/// and what it notes of what is taken away and of entries that land elsewhere than they
/// are named.
pub trait Hooks {
    /// Takes what it wants of the entry `entry` of layer `layer`, which lands at `path`:
    /// of a regular file, what it reads of its content (`store` is the stack's, when it
    /// keeps contents; what is not read is skipped). An error refuses the layer.
    fn entry(
        &mut self,
        layer: usize,
        path: &str,
        entry: &mut Entry<'_>,
        store: Option<&mut Store>,
    ) -> Result<Filled, Refusal> {
        let _ = (layer, path, entry, store);
        Ok(Filled::default())
    }

    /// `node`, which was at `path`, is taken away by layer `by`.
    fn gone(&mut self, path: &str, node: &Node, by: usize, how: How) {
        let _ = (path, node, by, how);
    }

    /// An entry of layer `layer` named `literal` lands at `landed`, through a symlink.
    fn redirected(&mut self, layer: usize, literal: &str, landed: &str) {
        let _ = (layer, literal, landed);
    }
}

/// Hooks that keep, in the stack's [`Store`], the content of each regular file whose landed
/// path and size the function accepts.
pub struct Keep<F>(pub F);

impl<F: FnMut(&str, u64) -> bool> Hooks for Keep<F> {
    fn entry(
        &mut self,
        _layer: usize,
        path: &str,
        entry: &mut Entry<'_>,
        store: Option<&mut Store>,
    ) -> Result<Filled, Refusal> {
        let keep = entry.kind == Kind::File && !entry.sparse && (self.0)(path, entry.size);
        let (Some(store), true) = (store, keep) else {
            return Ok(Filled::default());
        };
        let content = store
            .stage(&mut *entry.content, entry.size)
            .map_err(|reason| Refusal {
                entry: entry.raw.clone(),
                reason,
            })?;
        Ok(Filled {
            sha256: None,
            content: Some(content),
        })
    }
}

/// An image's layers, stacked: every path of the finished image with the node that shows.
/// It reads as a map of paths (without a leading `/`) to nodes.
pub struct Stack {
    nodes: BTreeMap<String, Node>,
    store: Option<Store>,
    /// The budget each layer has for following symlinks to its entries' parents.
    link_steps: u64,
}

impl Default for Stack {
    fn default() -> Self {
        Stack::new()
    }
}

impl Deref for Stack {
    type Target = BTreeMap<String, Node>;

    fn deref(&self) -> &Self::Target {
        &self.nodes
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(&self.nodes).finish()
    }
}

impl Stack {
    /// An empty stack that keeps no contents.
    pub fn new() -> Stack {
        Stack {
            nodes: BTreeMap::new(),
            store: None,
            link_steps: MAX_LINK_STEPS,
        }
    }

    /// An empty stack that keeps the contents its hooks ask for in `store`.
    pub fn keeping(store: Store) -> Stack {
        Stack {
            store: Some(store),
            ..Stack::new()
        }
    }

    /// The same stack, with `steps` for each layer's budget of following symlinks.
    pub fn with_link_steps(self, steps: u64) -> Stack {
        Stack {
            link_steps: steps,
            ..self
        }
    }

    /// Reads the tar stream `layer`, within `limits`, and stacks it as layer `index` on
    /// what the stack holds. The stream is read only as far as its last entry: a caller that
    /// checks its digest reads the rest.
    pub fn apply<R: Read, H: Hooks>(
        &mut self,
        layer: R,
        index: usize,
        limits: &overlay::Limits,
        hooks: &mut H,
    ) -> Result<Stats, Refusal> {
        let steps = self.link_steps;
        let mut stacking = Stacking {
            stack: self,
            hooks,
            layer: index,
            steps,
        };
        overlay::apply(layer, limits, &mut stacking)
    }

    /// The entries directly under `dir` in the finished image.
    pub fn children(&self, dir: &str) -> Vec<(&str, &Node)> {
        let prefix = prefix_of(dir);
        self.under(&prefix)
            .filter(|(p, _)| !p[prefix.len()..].contains('/'))
            .map(|(p, n)| (p.as_str(), n))
            .collect()
    }

    /// Where `path` leads, every symlink on the way (its last component's too) followed
    /// inside the root as a runtime follows it; `None` for a loop, or a chain too long.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut budget = self.link_steps;
        resolve(path, |p| self.link_at(p), &mut budget).ok()
    }

    /// The target of the symlink at `path`, if it is one.
    fn link_at(&self, path: &str) -> Option<&str> {
        match &self.nodes.get(path)?.kind {
            Kind::Symlink(target) => Some(target),
            _ => None,
        }
    }

    /// The kept content of the regular file (or hard link to one) at `path` (links followed inside the root),
    /// read whole, if it is at most `max` bytes.
    pub fn read(&self, path: &str, max: u64) -> Option<Vec<u8>> {
        let node = self.nodes.get(&self.resolve(path)?)?;
        let (Kind::File | Kind::Hardlink(_), Some(stored)) = (&node.kind, node.content) else {
            return None;
        };
        if stored.size > max {
            return None;
        }
        let mut out = Vec::with_capacity(stored.size as usize);
        self.open(&stored).ok()?.read_to_end(&mut out).ok()?;
        Some(out)
    }

    /// A reader of content the stack keeps.
    pub fn open(&self, stored: &Stored) -> io::Result<impl Read + '_> {
        match &self.store {
            Some(store) => Ok(store.open(stored)),
            None => Err(io::Error::other("this stack keeps no contents")),
        }
    }

    /// The nodes at `prefix` and under it, in order.
    fn under<'s, 'p>(
        &'s self,
        prefix: &'p str,
    ) -> impl Iterator<Item = (&'s String, &'s Node)> + use<'s, 'p> {
        self.nodes
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(p, _)| p.starts_with(prefix))
    }

    /// Where entry `path` of layer `layer` lands: under its parent as [`resolve`]d through
    /// the image's symlinks, with the directories it implies (a whiteout's included, as
    /// containerd makes them). The reason it cannot land, if it cannot.
    fn land(&mut self, path: &str, layer: usize, steps: &mut u64) -> Result<String, String> {
        let landed = landing(path, |p| self.link_at(p), steps, self.link_steps)?;
        self.imply_parents(&landed, layer).map_err(|dir| {
            format!(
                "it lands under /{dir}, which is not a directory: refused, as runtimes refuse it"
            )
        })?;
        Ok(landed)
    }

    /// Gives the directories above `path` that the image lacks a node of layer `layer`, or
    /// names the first one above it that is there but not a directory.
    fn imply_parents(&mut self, path: &str, layer: usize) -> Result<(), String> {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            match self.nodes.get(parent) {
                Some(n) if n.kind == Kind::Dir => break,
                Some(_) => return Err(parent.to_string()),
                None => {}
            }
            let node = Node {
                layer,
                kind: Kind::Dir,
                size: 0,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                sha256: None,
                content: None,
                implied: true,
            };
            self.nodes.insert(parent.to_string(), node);
            p = parent;
        }
        Ok(())
    }

    /// Makes room at `path` for an entry of layer `layer`: a directory merges with one
    /// there, and anything else takes away what was there (overwritten), and everything
    /// under it (deleted), as runtimes remove it whole.
    fn make_room<H: Hooks>(&mut self, path: &str, dir: bool, layer: usize, hooks: &mut H) {
        let Some(old) = self.nodes.get(path) else {
            return;
        };
        if old.kind == Kind::Dir && dir {
            return;
        }
        let old = self.nodes.remove(path).expect("the node is there");
        self.release(&old);
        hooks.gone(path, &old, layer, How::Overwritten);
        self.delete(path, false, layer, None, hooks);
    }

    /// Gives back to the store the content of `node`, which the image no longer shows.
    fn release(&mut self, node: &Node) {
        if let (Some(store), Some(stored)) = (self.store.as_mut(), &node.content) {
            store.release(stored);
        }
    }

    /// Deletes everything under `path` (and `path` itself, `with_self`), as layer `by`
    /// does; only what layers below `only_below` put there, when it is given.
    fn delete<H: Hooks>(
        &mut self,
        path: &str,
        with_self: bool,
        by: usize,
        only_below: Option<usize>,
        hooks: &mut H,
    ) {
        let prefix = prefix_of(path);
        let lower = |n: &Node| only_below.is_none_or(|below| n.layer < below);
        let mut doomed: Vec<String> = self
            .under(&prefix)
            .filter(|(_, n)| lower(n))
            .map(|(p, _)| p.clone())
            .collect();
        if with_self && !path.is_empty() && self.nodes.get(path).is_some_and(lower) {
            doomed.push(path.to_string());
        }
        for p in doomed {
            if let Some(node) = self.nodes.remove(&p) {
                self.release(&node);
                hooks.gone(&p, &node, by, How::Deleted);
            }
        }
    }
}

/// Where an entry named `path` lands in an image whose symlinks `link_at` gives: under its
/// parent [`resolve`]d, with `steps` left of the layer's budget of `budget`. The reason it
/// cannot, as a refusal says it, if it cannot.
fn landing<'a>(
    path: &'a str,
    link_at: impl Fn(&str) -> Option<&'a str>,
    steps: &mut u64,
    budget: u64,
) -> Result<String, String> {
    let Some((parent, name)) = path.rsplit_once('/') else {
        return Ok(path.to_string());
    };
    match resolve(parent, link_at, steps) {
        Ok(dir) if dir.is_empty() => Ok(name.to_string()),
        Ok(dir) => Ok(format!("{dir}/{name}")),
        Err(Unresolved::TooManyLinks) => Err(format!(
            "its parent /{parent} takes more than {MAX_LINK_HOPS} symlinks to resolve, as a \
             loop does: refused, as runtimes refuse it"
        )),
        Err(Unresolved::OverBudget) => Err(format!(
            "following symlinks to its parent /{parent} takes this layer past {budget} path \
             components: refused as a symlink bomb"
        )),
    }
}

/// `dir` with a trailing `/`, or nothing for the root.
fn prefix_of(dir: &str) -> String {
    if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    }
}

/// The overlay engine's visitor for one layer of a stack.
struct Stacking<'s, H> {
    stack: &'s mut Stack,
    hooks: &'s mut H,
    layer: usize,
    /// What is left of the layer's budget for following symlinks.
    steps: u64,
}

impl<H: Hooks> Stacking<'_, H> {
    /// Where the entry named `literal` (`raw` in the layer) lands, noting a redirect.
    fn land(&mut self, raw: &str, literal: String) -> Result<String, Refusal> {
        let landed = self
            .stack
            .land(&literal, self.layer, &mut self.steps)
            .map_err(|reason| Refusal {
                entry: raw.to_string(),
                reason,
            })?;
        if landed != literal {
            self.hooks.redirected(self.layer, &literal, &landed);
        }
        Ok(landed)
    }
}

impl<H: Hooks> overlay::Visitor for Stacking<'_, H> {
    type Error = Refusal;

    fn visit(&mut self, change: Change<'_>) -> Result<(), Refusal> {
        // A whiteout lands as its marker entry would: through the symlinks above it, with
        // the directories it implies, as containerd makes them.
        let layer = self.layer;
        match change {
            // `.wh.NAME` removes NAME whole, whichever layer put what is there (containerd
            // and umoci remove it as they meet it); an opaque whiteout keeps what its own
            // layer put in the directory.
            Change::Delete { raw, path } => {
                let marker = self.land(&raw, Whiteout::marker(&path))?;
                if let Some(Whiteout::Path(hidden)) = Whiteout::of(&marker) {
                    (self.stack).delete(&hidden, true, layer, None, self.hooks);
                }
            }
            Change::Empty { raw, dir } => {
                let marker = self.land(&raw, Whiteout::opaque_marker(&dir))?;
                if let Some(Whiteout::Opaque(dir)) = Whiteout::of(&marker) {
                    (self.stack).delete(&dir, false, layer, Some(layer), self.hooks);
                }
            }
            Change::Put(mut entry) => {
                let path = self.land(&entry.raw, entry.path.clone())?;
                // A hard link names its target as the layer does: it lands as the target's
                // own entry did, and shares what was kept of its content.
                let mut shared = None;
                if let Kind::Hardlink(link) = &entry.kind
                    && let Ok(target) = overlay::normalize(link)
                {
                    let target = self.land(&entry.raw, target)?;
                    shared = (self.stack.nodes.get(&target))
                        .filter(|n| n.kind == Kind::File)
                        .map(|n| (n.size, n.sha256, n.content.map(Stored::shared)));
                    entry.kind = Kind::Hardlink(target);
                }
                let dir = entry.kind == Kind::Dir;
                self.stack.make_room(&path, dir, layer, self.hooks);
                let store = self.stack.store.as_mut();
                let filled = self.hooks.entry(layer, &path, &mut entry, store)?;
                let (size, sha256, content) =
                    shared.unwrap_or((entry.size, filled.sha256, filled.content));
                let node = Node {
                    layer,
                    kind: entry.kind,
                    size,
                    mode: entry.mode,
                    uid: entry.uid,
                    gid: entry.gid,
                    mtime: entry.mtime,
                    sha256,
                    content,
                    implied: false,
                };
                self.stack.nodes.insert(path, node);
            }
        }
        Ok(())
    }
}

/// Why a path does not [`resolve`].
#[derive(Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// More than [`MAX_LINK_HOPS`] symlinks, as a loop has.
    TooManyLinks,
    /// The budget of components walked through links ran out.
    OverBudget,
}

/// Where the path `dir` (an [`overlay::normalize`]d path) leads in an image whose symlinks
/// `link_at` gives (the target of the one at a path), resolved as a runtime resolves an
/// entry's parent when it unpacks a layer: each symlink on the way is followed inside the
/// root, an absolute target starts again at the root, and `..` steps back over the last
/// resolved component, never above the root. A missing component is taken as it is (the
/// runtime creates it). Whether the result is a directory is left to the caller: a runtime
/// finds out only when it creates the entry.
///
/// Each component a link's target adds costs one step of `budget`: a call's work is
/// linear in the components it walks, and those are bounded by the budget and `dir`.
pub fn resolve<'a>(
    dir: &'a str,
    link_at: impl Fn(&str) -> Option<&'a str>,
    budget: &mut u64,
) -> Result<String, Unresolved> {
    let mut resolved = String::new();
    // The components still to walk, the next one last.
    let mut pending: Vec<&str> = dir.rsplit('/').collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part {
            "" | "." => continue,
            ".." => {
                resolved.truncate(resolved.rfind('/').unwrap_or(0));
                continue;
            }
            _ => {}
        }
        let above = resolved.len();
        if above > 0 {
            resolved.push('/');
        }
        resolved.push_str(part);
        let Some(target) = link_at(&resolved) else {
            continue;
        };
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return Err(Unresolved::TooManyLinks);
        }
        let steps = target.split('/').count() as u64;
        *budget = budget.checked_sub(steps).ok_or(Unresolved::OverBudget)?;
        resolved.truncate(if target.starts_with('/') { 0 } else { above });
        pending.extend(target.rsplit('/'));
    }
    Ok(resolved)
}

/// File contents kept for a stack: one unnamed file on disk, appended to, within a budget
/// of the bytes the image still shows. What a later layer replaces or deletes is given
/// back to the budget, but stays in the file, which grows to at most [`WRITTEN_PER_BUDGET`]
/// times the budget.
pub struct Store {
    file: File,
    /// The bytes written to the file.
    len: u64,
    /// The bytes of the contents the stack still shows.
    live: u64,
    budget: u64,
}

/// How many times its budget a [`Store`]'s file may grow to, with what was given back.
pub const WRITTEN_PER_BUDGET: u64 = 4;

/// Where a kept content is in its [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    offset: u64,
    /// The content's size.
    pub size: u64,
    /// Whether this is the entry that kept it, not a hard link that shares it: only that
    /// one gives it back.
    owned: bool,
}

impl Stored {
    /// The same content, shared by a hard link.
    fn shared(self) -> Stored {
        Stored {
            owned: false,
            ..self
        }
    }
}

impl Store {
    /// A store in the directory `dir` that keeps at most `budget` bytes the image shows;
    /// its file is gone when it is dropped, or the process ends.
    pub fn new(dir: &Path, budget: u64) -> io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        Ok(Store {
            file: tempfile::tempfile_in(dir)?,
            len: 0,
            live: 0,
            budget,
        })
    }

    /// Keeps the `size` bytes of `content`, refusing them past the budget or when the
    /// content is not as long as it says.
    pub fn stage(&mut self, content: &mut dyn Read, size: u64) -> Result<Stored, String> {
        if self.live.saturating_add(size) > self.budget {
            return Err(format!(
                "keeping its {size} bytes would take the contents kept past {} bytes: refused",
                self.budget
            ));
        }
        let most = self.budget.saturating_mul(WRITTEN_PER_BUDGET);
        if self.len.saturating_add(size) > most {
            return Err(format!(
                "keeping its {size} bytes would write more than {most} bytes of contents, \
                 with those later layers replaced: refused"
            ));
        }
        let offset = self.len;
        let mut writer = io::BufWriter::new(&self.file);
        let copied = io::copy(&mut content.take(size), &mut writer)
            .and_then(|n| writer.flush().map(|()| n))
            .map_err(|e| format!("keeping its content: {e}"))?;
        // Whatever was written counts, so that a short content cannot be used to write
        // past the cap.
        self.len += copied;
        if copied != size {
            return Err(format!(
                "its content ends after {copied} of its {size} bytes"
            ));
        }
        self.live += size;
        Ok(Stored {
            offset,
            size,
            owned: true,
        })
    }

    /// Gives `stored` back to the budget: the image no longer shows it.
    fn release(&mut self, stored: &Stored) {
        if stored.owned {
            self.live = self.live.saturating_sub(stored.size);
        }
    }

    /// A reader of `stored`.
    pub fn open(&self, stored: &Stored) -> impl Read + '_ {
        StoredReader {
            file: &self.file,
            at: stored.offset,
            end: stored.offset + stored.size,
        }
    }
}

/// A kept content, read from its place in the store's file.
struct StoredReader<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for StoredReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.at).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_testkit::tar_of;

    /// A view's symlinks, `(path, target)`.
    type Links<'a> = &'a [(&'a str, &'a str)];

    /// [`resolve`]s `dir` in a view of `links`, unbounded; other paths are directories or
    /// missing, which resolve alike.
    fn resolve_in(links: Links, dir: &str) -> Result<String, Unresolved> {
        let view: BTreeMap<String, Kind> = links
            .iter()
            .map(|(path, target)| (path.to_string(), Kind::Symlink(target.to_string())))
            .collect();
        let mut unbounded = u64::MAX;
        resolve(dir, |p| link(view.get(p)), &mut unbounded)
    }

    /// Each case is one umoci 0.4.7 unpacked: the directory an entry under `dir` went to.
    #[test]
    fn parents_resolve_through_links_as_umoci_resolves_them() {
        let cases: &[(Links, &str, &str)] = &[
            (&[], "usr/bin", "usr/bin"),
            (&[("x", "usr/bin")], "x", "usr/bin"),
            (&[("y", "/usr/bin")], "y", "usr/bin"),
            (&[("a", "b"), ("b", "usr/bin")], "a", "usr/bin"),
            // `..` stops at the root, in a relative or an absolute target.
            (&[("z", "../../../usr/bin")], "z", "usr/bin"),
            (
                &[("usr/lib/up", "/../../usr/./bin/")],
                "usr/lib/up",
                "usr/bin",
            ),
            (&[("usr/lib/up", "../bin")], "usr/lib/up", "usr/bin"),
            // `..` steps back over what a link resolved to, not over the link's name.
            (
                &[("usr/lib/b", "../bin"), ("x", "usr/lib/b/../../etc")],
                "x",
                "etc",
            ),
            (&[("x", "nope/../usr/bin")], "x", "usr/bin"),
            (&[("q", "usr//bin/")], "q", "usr/bin"),
            (
                &[("p", "usr/lib"), ("usr/lib/b", "../bin")],
                "p/b",
                "usr/bin",
            ),
            (&[("s", ".")], "s/s/s", ""),
            (&[("r", "/")], "r/etc", "etc"),
            // A link to nowhere: the runtime makes the directories it names.
            (&[("d", "no/such/dir")], "d", "no/such/dir"),
            (&[("x", "usr/bin")], "x/sub", "usr/bin/sub"),
        ];
        for (links, dir, landed) in cases {
            assert_eq!(
                resolve_in(links, dir).as_deref(),
                Ok(*landed),
                "{dir} with {links:?}"
            );
        }
        assert_eq!(
            resolve_in(&[("l1", "l2"), ("l2", "l1")], "l1"),
            Err(Unresolved::TooManyLinks)
        );
        // umoci unpacks under a chain of 255 links and refuses one under 256.
        let chain = |n: usize| {
            let names: Vec<String> = (1..=n).map(|i| format!("l{i}")).collect();
            let mut links: Vec<(String, String)> = names
                .windows(2)
                .map(|w| (w[0].clone(), w[1].clone()))
                .collect();
            links.push((names[n - 1].clone(), "usr/bin".into()));
            links
        };
        for (n, expected) in [
            (MAX_LINK_HOPS, Ok("usr/bin".to_string())),
            (MAX_LINK_HOPS + 1, Err(Unresolved::TooManyLinks)),
        ] {
            let links = chain(n);
            let links: Vec<(&str, &str)> = links
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            assert_eq!(resolve_in(&links, "l1"), expected, "a chain of {n}");
        }
    }

    #[test]
    fn following_links_is_linear_and_bounded_by_the_budget() {
        // Each link of a chain of 255 adds one component, the last two: 256 steps, once
        // each, not a walk of the whole chain again at every link.
        let view: BTreeMap<String, Kind> = (1..=MAX_LINK_HOPS)
            .map(|i| {
                let target = match i {
                    MAX_LINK_HOPS => "usr/bin".to_string(),
                    _ => format!("l{}", i + 1),
                };
                (format!("l{i}"), Kind::Symlink(target))
            })
            .collect();
        let mut budget = 1000;
        assert_eq!(
            resolve("l1/x", |p| link(view.get(p)), &mut budget).as_deref(),
            Ok("usr/bin/x")
        );
        assert_eq!(budget, 1000 - 256);
        let mut budget = 255;
        assert_eq!(
            resolve("l1", |p| link(view.get(p)), &mut budget),
            Err(Unresolved::OverBudget)
        );
    }

    /// A symlink's target.
    fn link(kind: Option<&Kind>) -> Option<&str> {
        match kind? {
            Kind::Symlink(target) => Some(target),
            _ => None,
        }
    }

    /// Records what the hooks are told.
    #[derive(Default)]
    struct Told(Vec<String>);

    impl Hooks for Told {
        fn gone(&mut self, path: &str, node: &Node, by: usize, how: How) {
            let layer = node.layer;
            self.0
                .push(format!("{} {path} of {layer} by {by}", how.as_str()));
        }
        fn redirected(&mut self, layer: usize, literal: &str, landed: &str) {
            self.0.push(format!("{literal} of {layer} to {landed}"));
        }
    }

    #[test]
    fn layers_stack_as_runtimes_unpack_them() {
        let mut stack = Stack::new();
        let mut told = Told::default();
        let limits = overlay::Limits::IMAGE;
        let lower = tar_of(&[("etc/motd", b"hi"), ("opt/a/x", b"1"), ("opt/b", b"2")]);
        stack.apply(&lower[..], 0, &limits, &mut told).unwrap();
        let upper = tar_of(&[
            ("etc/.wh.motd", b""),
            ("opt/.wh..wh..opq", b""),
            ("opt/c", b"3"),
        ]);
        stack.apply(&upper[..], 1, &limits, &mut told).unwrap();
        let paths: Vec<&str> = stack.keys().map(String::as_str).collect();
        assert_eq!(paths, ["etc", "opt", "opt/c"]);
        assert_eq!(
            told.0,
            [
                "deleted etc/motd of 0 by 1",
                "deleted opt/a of 0 by 1",
                "deleted opt/a/x of 0 by 1",
                "deleted opt/b of 0 by 1",
            ]
        );
    }

    #[test]
    fn contents_are_kept_on_disk_where_asked_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), 8).unwrap();
        let mut stack = Stack::keeping(store);
        let limits = overlay::Limits::IMAGE;
        let layer = tar_of(&[("etc/keep", b"kept"), ("etc/skip", b"skipped")]);
        let mut keep = Keep(|p: &str, _| p == "etc/keep");
        stack.apply(&layer[..], 0, &limits, &mut keep).unwrap();
        assert_eq!(stack.read("etc/keep", 64).as_deref(), Some(&b"kept"[..]));
        assert_eq!(stack.read("etc/skip", 64), None);
        assert_eq!(stack.read("etc/keep", 3), None, "larger than asked for");
        // What a later layer replaces is given back: the budget of 8 bytes holds the image's
        // contents, not every copy.
        let again = tar_of(&[("etc/keep", b"again")]);
        stack.apply(&again[..], 1, &limits, &mut keep).unwrap();
        assert_eq!(stack.read("etc/keep", 64).as_deref(), Some(&b"again"[..]));
        let big = tar_of(&[("etc/keep", b"123456789")]);
        let e = stack.apply(&big[..], 2, &limits, &mut keep).unwrap_err();
        assert_eq!(e.entry, "etc/keep");
        assert!(e.reason.contains("past 8 bytes"), "{e:?}");
        // The file grows to four times the budget at most, however often a path is replaced.
        let eight = tar_of(&[("etc/keep", b"12345678")]);
        let replaced = (3..10)
            .map(|i| stack.apply(&eight[..], i, &limits, &mut keep))
            .position(|r| r.is_err());
        let e = stack.apply(&eight[..], 10, &limits, &mut keep).unwrap_err();
        assert!(e.reason.contains("more than 32 bytes"), "{e:?}");
        assert_eq!(replaced, Some(2), "4 + 5 + 8 + 8, then 8 more pass 32");
    }

    #[test]
    fn a_whiteout_removes_its_path_whole_and_hard_links_share_their_targets_content() {
        let dir = tempfile::tempdir().unwrap();
        let mut stack = Stack::keeping(Store::new(dir.path(), 1 << 20).unwrap());
        let limits = overlay::Limits::IMAGE;
        let mut keep = Keep(|_: &str, _| true);
        let lower = tar_of(&[("d/old", b"old")]);
        stack.apply(&lower[..], 0, &limits, &mut keep).unwrap();
        // This layer's own `d/x` goes with `d`, as containerd removes it as it meets
        // `.wh.d`: no entry is left without its directory.
        let upper = tar_of(&[("d/x", b"x"), (".wh.d", b""), ("e/f", b"f")]);
        stack.apply(&upper[..], 1, &limits, &mut keep).unwrap();
        let paths: Vec<&str> = stack.keys().map(String::as_str).collect();
        assert_eq!(paths, ["e", "e/f"]);
        // A hard link through a symlinked directory finds its target where it landed.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "l", "e").unwrap();
        h.set_entry_type(tar::EntryType::Link);
        tar.append_link(&mut h, "g", "l/f").unwrap();
        stack
            .apply(&tar.into_inner().unwrap()[..], 2, &limits, &mut keep)
            .unwrap();
        assert_eq!(stack["g"].kind, Kind::Hardlink("e/f".into()));
        assert_eq!(stack.read("g", 64).as_deref(), Some(&b"f"[..]));
    }
}
