//! What a platform's image will hold, before anything is unpacked: its packages grouped
//! into layers along the catalogue, and the key of each layer's saved tree.

use std::collections::{BTreeSet, HashMap, HashSet};

use bareboat_apt::lockfile::LockedPackage;
use bareboat_oci::overlay::Limits;
use bareboat_rootfs::treecache::TreeCache;
use bareboat_spec::spec::Spec;

use crate::base::BaseImage;

/// A group of packages that becomes one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub packages: Vec<String>,
}

/// Assigns each locked package to the lowest level whose requested packages pull it in,
/// following the lock's "dependency of" reasons, so that a level's layer holds the same
/// packages in every image stacked on it.
pub fn group_packages(spec: &Spec, locked: &[&LockedPackage]) -> Vec<Group> {
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in locked {
        for r in &p.reasons {
            if let Some(by) = r.strip_prefix("dependency of ") {
                dependents.entry(by).or_default().push(&p.name);
            }
        }
    }
    let present: HashSet<&str> = locked.iter().map(|p| p.name.as_str()).collect();
    let mut assigned: HashSet<&str> = HashSet::new();
    let mut groups = Vec::new();
    for level in &spec.levels {
        let mut members = BTreeSet::new();
        let mut queue: Vec<&str> = level
            .roots
            .iter()
            .map(String::as_str)
            .filter(|r| present.contains(r))
            .collect();
        // A requested virtual package is carried by its provider.
        for p in locked {
            if p.reasons.iter().any(|r| {
                r.strip_prefix("provides requested ")
                    .is_some_and(|v| level.roots.iter().any(|x| x == v))
            }) {
                queue.push(&p.name);
            }
        }
        while let Some(name) = queue.pop() {
            if level.exclude.iter().any(|x| x == name) || !assigned.insert(name) {
                continue;
            }
            members.insert(name.to_string());
            queue.extend(dependents.get(name).into_iter().flatten().copied());
        }
        groups.push(Group {
            name: level.name.clone(),
            packages: members.into_iter().collect(),
        });
    }
    let rest: BTreeSet<String> = locked
        .iter()
        .filter(|p| !assigned.contains(p.name.as_str()))
        .map(|p| p.name.clone())
        .collect();
    if let Some(last) = groups.last_mut() {
        last.packages.extend(rest);
        last.packages.sort();
    }
    groups.retain(|g| !g.packages.is_empty());
    groups
}

/// Within the budget of `max_layers`, gives the spec's own biggest packages layers of their
/// own, biggest first, so that an update to one of them leaves the others' layers alone.
pub(crate) fn split_largest(
    mut groups: Vec<Group>,
    by_name: &HashMap<&str, &LockedPackage>,
    max_layers: usize,
) -> Vec<Group> {
    let Some(top) = groups.last() else {
        return groups;
    };
    if top.name != "packages" || top.packages.len() < 2 {
        return groups;
    }
    // Room for the spec's config and files layers is kept.
    let spare = max_layers.saturating_sub(groups.len() + 2);
    let top = groups.pop().expect("checked above");
    let mut by_size: Vec<&String> = top.packages.iter().collect();
    by_size.sort_by_key(|n| (std::cmp::Reverse(by_name[n.as_str()].size), n.as_str()));
    let own: Vec<String> = by_size
        .iter()
        .take(spare.min(top.packages.len() - 1))
        .filter(|n| by_name[n.as_str()].size >= 1 << 20)
        .map(|n| n.to_string())
        .collect();
    let rest: Vec<String> = top
        .packages
        .iter()
        .filter(|n| !own.contains(n))
        .cloned()
        .collect();
    if !rest.is_empty() {
        groups.push(Group {
            name: "packages".into(),
            packages: rest,
        });
    }
    for n in own {
        groups.push(Group {
            name: n.clone(),
            packages: vec![n],
        });
    }
    groups
}

/// The saved-tree key of each package layer: everything that shapes unpacking, and the
/// packages of the layer and those below.
pub(crate) fn tree_keys(
    spec: &Spec,
    arch: &str,
    limits: &Limits,
    groups: &[Group],
    by_name: &HashMap<&str, &LockedPackage>,
    base: Option<&BaseImage>,
) -> Vec<String> {
    let mut settings = format!(
        "arch {arch}\nslice {:?} {:?} {:?}\nkeep only {:?}\nkeep setuid {:?}\nlimits {:?}\nrelease {} {}\n",
        spec.slice.defaults,
        spec.slice.keep,
        spec.slice.drop,
        spec.keep_only,
        spec.keep_setuid,
        limits,
        spec.release.version_id(),
        spec.release.codename(),
    );
    if let Some(base) = base {
        let digest = base.manifest.digest();
        settings.push_str(&format!("base {digest}\nremove {:?}\n", spec.remove));
    }
    let layers = groups.iter().map(|g| {
        g.packages
            .iter()
            .map(|name| (name.as_str(), by_name[name.as_str()].sha256.as_str()))
            .collect()
    });
    TreeCache::keys(&settings, layers)
}
