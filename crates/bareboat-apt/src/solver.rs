//! Dependency solving with resolvo, a CDCL SAT solver.
//!
//! Debian relations map onto resolvo as follows. A clause `a | b (>= 1)` is a union of version
//! sets: the real package `a`, every package providing `a`, then `b` at `>= 1` and every
//! package providing `b` at a matching version. `Conflicts` and `Breaks` become constraints
//! that a conflicting package, if installed, must fall outside the conflicting range. Only
//! `Pre-Depends` and `Depends` are followed, as with `--no-install-recommends`.
//!
//! Choices are deterministic: within a package, the highest version (or the locked one,
//! when re-locking); among alternatives, the written order; among providers of a virtual
//! package, a requested package first, then by `Priority`, then by name.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use debversion::Version;
use resolvo::utils::Pool;
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, NameId, Problem, Requirement, SolvableId, Solver, SolverCache,
    StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::Error;
use crate::archive::{PackageId, Universe};
use crate::relation::{
    Clause, Constraint, Op, Provide, clause_to_string, parse_provides, parse_relations,
    parse_version,
};

/// A requested package, optionally pinned: `name` or `name=version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The package's name (or a virtual name some package provides).
    pub name: String,
    /// The exact version it must have, if pinned.
    pub version: Option<String>,
}

impl Request {
    /// Reads `name` or `name=version`, trimming spaces around each part.
    pub fn parse(s: &str) -> Request {
        match s.split_once('=') {
            Some((n, v)) => Request {
                name: n.trim().to_string(),
                version: Some(v.trim().to_string()),
            },
            None => Request {
                name: s.trim().to_string(),
                version: None,
            },
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}={v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What to solve for.
#[derive(Clone, Debug, Default)]
pub struct SolveRequest {
    /// The packages asked for.
    pub packages: Vec<Request>,
    /// Names whose dependencies are dropped: the user knows they are not needed at run time.
    pub exclude: Vec<String>,
    /// Versions to keep when still available (from an existing lockfile).
    pub prefer: HashMap<String, String>,
}

/// A package in the solution and why it is there.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The package chosen.
    pub id: PackageId,
    /// `requested`, or `dependency of NAME`.
    pub reasons: Vec<String>,
}

/// An excluded name and the dependencies dropped because of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// The excluded name.
    pub name: String,
    /// `PACKAGE Depends: CLAUSE` for each dropped clause.
    pub dropped: Vec<String>,
}

/// The solver's answer, sorted by package name.
#[derive(Clone, Debug)]
pub struct Solution {
    /// The packages chosen, the base image's installed ones among them.
    pub packages: Vec<Selected>,
    /// What each excluded name dropped.
    pub exclusions: Vec<Exclusion>,
}

/// Solves `request` against `universe`.
pub fn solve(universe: &Universe, request: &SolveRequest) -> Result<Solution, Error> {
    let provider = DebProvider::new(universe, request);
    let mut requirements = request
        .packages
        .iter()
        .map(|r| provider.root_requirement(r))
        .collect::<Result<Vec<_>, _>>()?;
    // The base image's packages stay, so what conflicts with them cannot be added.
    let mut installed: Vec<&str> = provider.installed.keys().copied().collect();
    installed.sort_unstable();
    for name in installed {
        requirements.push(provider.requirement(vec![provider.version_set(name, DebSet::Any)]));
    }
    let mut solver = Solver::new(provider);
    let problem = Problem::new().requirements(requirements);
    let solvables = match solver.solve(problem) {
        Ok(s) => s,
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            let explanation = conflict.display_user_friendly(&solver).to_string();
            return Err(Error::Unsolvable(
                solver.provider().explain(request, &explanation),
            ));
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => unreachable!("the provider never cancels"),
    };
    let provider = solver.provider();
    if let Some(e) = provider.relation_errors.borrow().first() {
        return Err(e.clone_error());
    }
    Ok(provider.solution(request, &solvables))
}

/// Which candidates of a name a version set admits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum DebSet {
    Any,
    Version(Constraint),
    /// Packages of the set's name that provide `virt`, at a version matching `constraint`.
    Provides {
        virt: String,
        constraint: Option<Constraint>,
    },
    Not(Box<DebSet>),
}

impl fmt::Display for DebSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DebSet::Any => f.write_str("*"),
            DebSet::Version(c) => write!(f, "{c}"),
            DebSet::Provides { virt, constraint } => match constraint {
                Some(c) => write!(f, "providing {virt} ({c})"),
                None => write!(f, "providing {virt}"),
            },
            DebSet::Not(inner) => write!(f, "not {inner}"),
        }
    }
}

impl resolvo::utils::VersionSet for DebSet {
    type V = Candidate;
}

/// A solvable: one package version.
#[derive(Clone, Debug)]
struct Candidate {
    id: PackageId,
    version: Version,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.version)
    }
}

/// A relation error found while solving; reported after the solve so the solver can still
/// route around a malformed package.
struct RelationFailure {
    package: String,
    error: crate::relation::RelationError,
}

impl RelationFailure {
    fn clone_error(&self) -> Error {
        Error::Relation {
            package: self.package.clone(),
            source: self.error.clone(),
        }
    }
}

/// A package's dependency clauses, each with the field it came from.
type FieldClauses = Rc<Vec<(&'static str, Clause)>>;

struct DebProvider<'u> {
    universe: &'u Universe,
    pool: Pool<DebSet, String>,
    requested: FxHashSet<String>,
    /// The base image's packages, by name, with their versions.
    installed: FxHashMap<&'u str, &'u str>,
    exclude: FxHashSet<String>,
    prefer: HashMap<String, String>,
    solvables: RefCell<FxHashMap<PackageId, SolvableId>>,
    provides: RefCell<FxHashMap<PackageId, Rc<Vec<Provide>>>>,
    depends: RefCell<FxHashMap<PackageId, FieldClauses>>,
    dropped: RefCell<BTreeMap<String, BTreeSet<String>>>,
    relation_errors: RefCell<Vec<RelationFailure>>,
}

impl<'u> DebProvider<'u> {
    fn new(universe: &'u Universe, request: &SolveRequest) -> Self {
        // Only the base image's packages: lookups by name use the indexes' own tables.
        let installed = universe
            .installed
            .iter()
            .flat_map(|idx| idx.iter())
            .map(|p| (p.name(), p.version()))
            .collect();
        DebProvider {
            universe,
            pool: Pool::new(),
            requested: request.packages.iter().map(|r| r.name.clone()).collect(),
            installed,
            exclude: request.exclude.iter().cloned().collect(),
            prefer: request.prefer.clone(),
            solvables: RefCell::default(),
            provides: RefCell::default(),
            depends: RefCell::default(),
            dropped: RefCell::default(),
            relation_errors: RefCell::default(),
        }
    }

    fn version_set(&self, name: &str, set: DebSet) -> VersionSetId {
        let name_id = self.pool.intern_package_name(name);
        self.pool.intern_version_set(name_id, set)
    }

    fn requirement(&self, sets: Vec<VersionSetId>) -> ConditionalRequirement {
        let requirement = match sets.as_slice() {
            [one] => Requirement::Single(*one),
            _ => {
                let mut it = sets.into_iter();
                let first = it.next().expect("a clause has at least one alternative");
                Requirement::Union(self.pool.intern_version_set_union(first, it))
            }
        };
        requirement.into()
    }

    fn root_requirement(&self, r: &Request) -> Result<ConditionalRequirement, Error> {
        if self.exclude.contains(&r.name) {
            return Err(Error::Unsolvable(format!(
                "package {} is both requested and excluded; remove it from one of the two lists",
                r.name
            )));
        }
        if let Some(v) = &r.version {
            let version =
                parse_version(v).map_err(|e| Error::Unsolvable(format!("request {r}: {e}")))?;
            let ids: Vec<PackageId> = self.universe.named(&r.name).collect();
            if ids.is_empty() {
                return Err(self.unknown(&r.name));
            }
            if !ids
                .iter()
                .any(|id| self.universe.package(*id).version() == v)
            {
                return Err(Error::Unsolvable(format!(
                    "package {} has no version {v}; available: {}",
                    r.name,
                    self.available(&r.name)
                )));
            }
            let set = DebSet::Version(Constraint {
                op: Op::Eq,
                version,
            });
            return Ok(self.requirement(vec![self.version_set(&r.name, set)]));
        }
        let alt = crate::relation::Alternative {
            name: r.name.clone(),
            arch: None,
            constraint: None,
        };
        let sets = self.alternative_sets(&alt);
        if sets.is_empty() {
            return Err(self.unknown(&r.name));
        }
        Ok(self.requirement(sets))
    }

    fn unknown(&self, name: &str) -> Error {
        let suites: Vec<String> = self
            .universe
            .sources
            .iter()
            .map(|s| format!("{} {}", s.source.url, s.source.suite))
            .collect();
        let mut near: Vec<&str> = self
            .universe
            .names()
            .filter(|n| n.starts_with(name) || name.starts_with(*n) && n.len() > 2)
            .collect();
        near.sort();
        near.dedup();
        near.truncate(5);
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!("; similar names: {}", near.join(", "))
        };
        Error::Unsolvable(format!(
            "package {name} is not available for {} in {}{hint}",
            self.universe.arch,
            suites.join(", ")
        ))
    }

    fn available(&self, name: &str) -> String {
        let mut versions: Vec<Version> = self
            .universe
            .named(name)
            .filter_map(|id| self.universe.package(id).version().parse().ok())
            .collect();
        versions.sort();
        versions.dedup();
        versions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The version sets that can satisfy one alternative, in preference order.
    fn alternative_sets(&self, alt: &crate::relation::Alternative) -> Vec<VersionSetId> {
        let mut sets = Vec::new();
        if self.universe.has(&alt.name) {
            let set = match &alt.constraint {
                Some(c) => DebSet::Version(c.clone()),
                None => DebSet::Any,
            };
            sets.push(self.version_set(&alt.name, set));
        }
        for provider in self.provider_names(&alt.name) {
            let set = DebSet::Provides {
                virt: alt.name.clone(),
                constraint: alt.constraint.clone(),
            };
            sets.push(self.version_set(provider, set));
        }
        sets
    }

    /// Names of packages providing `virt`, best first.
    fn provider_names(&self, virt: &str) -> Vec<&'u str> {
        let mut names: Vec<(bool, u8, &str)> = self
            .universe
            .providing(virt)
            .map(|id| {
                let p = self.universe.package(id);
                (
                    !self.requested.contains(p.name()),
                    priority_rank(p.priority()),
                    p.name(),
                )
            })
            .filter(|(_, _, n)| *n != virt)
            .collect();
        names.sort();
        names.dedup_by_key(|(_, _, n)| *n);
        names.into_iter().map(|(_, _, n)| n).collect()
    }

    /// Whether a clause is dropped by an exclusion, and by which name.
    fn excluded_by(&self, clause: &Clause) -> Option<String> {
        clause.iter().find_map(|alt| {
            if self.exclude.contains(&alt.name) {
                return Some(alt.name.clone());
            }
            if self.universe.has(&alt.name) {
                return None;
            }
            self.provider_names(&alt.name)
                .into_iter()
                .find(|p| self.exclude.contains(*p))
                .map(|_| alt.name.clone())
        })
    }

    /// The `Pre-Depends` and `Depends` clauses of a package, each with its field name.
    fn clauses(&self, id: PackageId) -> FieldClauses {
        if let Some(c) = self.depends.borrow().get(&id) {
            return c.clone();
        }
        let p = self.universe.package(id);
        let mut clauses = Vec::new();
        // What an installed package needs is the base image's business: distroless bases
        // leave out dependencies that are not needed at run time.
        let fields = if self.universe.is_installed(id) {
            Vec::new()
        } else {
            vec![("Pre-Depends", p.pre_depends()), ("Depends", p.depends())]
        };
        for (label, field) in fields {
            let Some(field) = field else { continue };
            match parse_relations(field) {
                Ok(c) => clauses.extend(c.into_iter().map(|c| (label, c))),
                Err(error) => self.relation_errors.borrow_mut().push(RelationFailure {
                    package: p.name().to_string(),
                    error,
                }),
            }
        }
        let clauses = Rc::new(clauses);
        self.depends.borrow_mut().insert(id, clauses.clone());
        clauses
    }

    fn provides_of(&self, id: PackageId) -> Rc<Vec<Provide>> {
        if let Some(p) = self.provides.borrow().get(&id) {
            return p.clone();
        }
        let p = self.universe.package(id);
        let provides = match p.provides().map(parse_provides).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(error) => {
                self.relation_errors.borrow_mut().push(RelationFailure {
                    package: p.name().to_string(),
                    error,
                });
                Vec::new()
            }
        };
        let provides = Rc::new(provides);
        self.provides.borrow_mut().insert(id, provides.clone());
        provides
    }

    fn admits(&self, set: &DebSet, c: &Candidate) -> bool {
        match set {
            DebSet::Any => true,
            DebSet::Version(constraint) => constraint.matches(&c.version),
            DebSet::Provides { virt, constraint } => self.provides_of(c.id).iter().any(|p| {
                p.name == *virt
                    && match constraint {
                        None => true,
                        Some(con) => p.version.as_ref().is_some_and(|v| con.matches(v)),
                    }
            }),
            DebSet::Not(inner) => !self.admits(inner, c),
        }
    }

    /// Whether the selected package `c` satisfies an alternative.
    fn satisfies(&self, alt: &crate::relation::Alternative, c: &Candidate) -> bool {
        let name = self.universe.package(c.id).name();
        (name == alt.name
            && alt
                .constraint
                .as_ref()
                .is_none_or(|con| con.matches(&c.version)))
            || self.admits(
                &DebSet::Provides {
                    virt: alt.name.clone(),
                    constraint: alt.constraint.clone(),
                },
                c,
            )
    }

    fn solution(&self, request: &SolveRequest, solvables: &[SolvableId]) -> Solution {
        let chosen: Vec<&Candidate> = solvables
            .iter()
            .map(|s| &self.pool.resolve_solvable(*s).record)
            .collect();
        let mut reasons: HashMap<PackageId, BTreeSet<String>> = HashMap::new();
        for c in &chosen {
            let name = self.universe.package(c.id).name();
            if request.packages.iter().any(|r| r.name == name) {
                reasons.entry(c.id).or_default().insert("requested".into());
            }
            if self.universe.is_installed(c.id) {
                let reason = "installed in the base image".into();
                reasons.entry(c.id).or_default().insert(reason);
            }
            for (_, clause) in self.clauses(c.id).iter() {
                if self.excluded_by(clause).is_some() {
                    continue;
                }
                let by = chosen
                    .iter()
                    .find(|other| clause.iter().any(|alt| self.satisfies(alt, other)));
                if let Some(by) = by {
                    reasons
                        .entry(by.id)
                        .or_default()
                        .insert(format!("dependency of {name}"));
                }
            }
        }
        // A requested virtual package is satisfied by a provider.
        for r in &request.packages {
            if !self.universe.has(&r.name) {
                let alt = crate::relation::Alternative {
                    name: r.name.clone(),
                    arch: None,
                    constraint: None,
                };
                if let Some(by) = chosen.iter().find(|c| self.satisfies(&alt, c)) {
                    reasons
                        .entry(by.id)
                        .or_default()
                        .insert(format!("provides requested {}", r.name));
                }
            }
        }
        let mut packages: Vec<Selected> = chosen
            .iter()
            .map(|c| Selected {
                id: c.id,
                reasons: reasons
                    .remove(&c.id)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })
            .collect();
        packages.sort_by(|a, b| {
            self.universe
                .package(a.id)
                .name()
                .cmp(self.universe.package(b.id).name())
        });
        // Only drops made by packages in the solution matter; the solver may have looked at
        // others along the way.
        let chosen_names: HashSet<&str> = chosen
            .iter()
            .map(|c| self.universe.package(c.id).name())
            .collect();
        let exclusions = self
            .dropped
            .borrow()
            .iter()
            .filter_map(|(name, drops)| {
                let dropped: Vec<String> = drops
                    .iter()
                    .filter(|d| {
                        d.split(' ')
                            .next()
                            .is_some_and(|p| chosen_names.contains(p))
                    })
                    .cloned()
                    .collect();
                (!dropped.is_empty()).then(|| Exclusion {
                    name: name.clone(),
                    dropped,
                })
            })
            .collect();
        Solution {
            packages,
            exclusions,
        }
    }

    fn explain(&self, request: &SolveRequest, explanation: &str) -> String {
        let mut out = format!(
            "cannot install the requested packages:\n{}",
            explanation.trim_end()
        );
        for r in &request.packages {
            if self.universe.has(&r.name) {
                out.push_str(&format!(
                    "\n  available {}: {}",
                    r.name,
                    self.available(&r.name)
                ));
            }
        }
        let mut installed: Vec<(&str, &str)> = self
            .installed
            .iter()
            .filter(|(name, _)| {
                explanation
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .any(|word| word == **name)
            })
            .map(|(n, v)| (*n, *v))
            .collect();
        installed.sort_unstable();
        for (name, version) in &installed {
            out.push_str(&format!(
                "\n  the base image has {name} {version} installed, and no other version of it can be added"
            ));
        }
        out.push_str(if installed.is_empty() {
            "\nhint: pin a version with NAME=VERSION, or add a package the chain does not need at run time to `exclude`"
        } else {
            "\nhint: use a base image with other versions of those packages, or request packages that work with them"
        });
        out
    }
}

fn priority_rank(priority: Option<&str>) -> u8 {
    match priority {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

impl Interner for DebProvider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        let s = self.pool.resolve_solvable(solvable);
        format!("{} {}", self.pool.resolve_package_name(s.name), s.record)
    }

    fn display_name(&self, name: NameId) -> impl fmt::Display + '_ {
        self.pool.resolve_package_name(name).clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl fmt::Display + '_ {
        self.pool.resolve_version_set(version_set).to_string()
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.pool.resolve_string(string_id).to_string()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.pool.resolve_version_set_package_name(version_set)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.pool.resolve_solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.pool.resolve_version_set_union(version_set_union)
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.pool.resolve_condition(condition).clone()
    }
}

impl DependencyProvider for DebProvider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let set = self.pool.resolve_version_set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|s| self.admits(set, &self.pool.resolve_solvable(*s).record) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let pkg_name = self.pool.resolve_package_name(name);
        if !self.universe.has(pkg_name) {
            return None;
        }
        let ids = self.universe.named(pkg_name);
        let mut candidates = Vec::new();
        let mut seen_versions = HashSet::new();
        let mut favored = None;
        let mut excluded = Vec::new();
        for id in ids {
            let p = self.universe.package(id);
            // The same version in several suites is one candidate: the first source's.
            if !seen_versions.insert(p.version()) {
                continue;
            }
            let Ok(version) = p.version().parse::<Version>() else {
                tracing::warn!(
                    package = p.name(),
                    version = p.version(),
                    "skipping unparsable version"
                );
                continue;
            };
            let solvable = *self
                .solvables
                .borrow_mut()
                .entry(id)
                .or_insert_with(|| self.pool.intern_solvable(name, Candidate { id, version }));
            if self
                .prefer
                .get(pkg_name.as_str())
                .is_some_and(|v| v == p.version())
            {
                favored = Some(solvable);
            }
            let in_base = self.installed.get(pkg_name.as_str());
            if let Some(v) = in_base.filter(|_| !self.universe.is_installed(id)) {
                let reason = format!("the base image has {pkg_name} {v} installed");
                excluded.push((solvable, self.pool.intern_string(reason)));
            } else if self.exclude.contains(pkg_name) {
                excluded.push((solvable, self.pool.intern_string("excluded by the spec")));
            } else {
                candidates.push(solvable);
            }
        }
        Some(Candidates {
            candidates,
            favored,
            excluded,
            ..Candidates::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|a, b| {
            let (a, b) = (
                &self.pool.resolve_solvable(*a).record,
                &self.pool.resolve_solvable(*b).record,
            );
            b.version.cmp(&a.version)
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let c = &self.pool.resolve_solvable(solvable).record;
        let p = self.universe.package(c.id);
        let me = p.name();
        let mut deps = KnownDependencies::default();
        for (field, clause) in self.clauses(c.id).iter() {
            if let Some(name) = self.excluded_by(clause) {
                self.dropped
                    .borrow_mut()
                    .entry(name)
                    .or_default()
                    .insert(format!("{me} {field}: {}", clause_to_string(clause)));
                continue;
            }
            let mut sets: Vec<VersionSetId> = Vec::new();
            for alt in clause {
                let alt_sets = self.alternative_sets(alt);
                if alt_sets.is_empty() {
                    // Nothing can satisfy it; keep it so the solver reports it by name.
                    let set = alt.constraint.clone().map_or(DebSet::Any, DebSet::Version);
                    sets.push(self.version_set(&alt.name, set));
                }
                for s in alt_sets {
                    if !sets.contains(&s) {
                        sets.push(s);
                    }
                }
            }
            deps.requirements.push(self.requirement(sets));
        }
        for field in [p.conflicts(), p.breaks()].into_iter().flatten() {
            let clauses = match parse_relations(field) {
                Ok(c) => c,
                Err(error) => {
                    self.relation_errors.borrow_mut().push(RelationFailure {
                        package: me.to_string(),
                        error,
                    });
                    continue;
                }
            };
            for alt in clauses.iter().flatten() {
                if alt.name != me && self.universe.has(&alt.name) {
                    let inner = alt.constraint.clone().map_or(DebSet::Any, DebSet::Version);
                    deps.constrains
                        .push(self.version_set(&alt.name, DebSet::Not(Box::new(inner))));
                }
                for provider in self.provider_names(&alt.name) {
                    if provider != me {
                        let inner = DebSet::Provides {
                            virt: alt.name.clone(),
                            constraint: alt.constraint.clone(),
                        };
                        deps.constrains
                            .push(self.version_set(provider, DebSet::Not(Box::new(inner))));
                    }
                }
            }
        }
        Dependencies::Known(deps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::LoadedSource;
    use crate::index::PackageIndex;
    use crate::release::Release;
    use crate::sources::Source;

    /// A universe from stanzas `name version [field: value]...`, separated by `;`.
    fn universe(packages: &[&str]) -> Universe {
        let mut text = String::new();
        for (i, p) in packages.iter().enumerate() {
            let mut parts = p.split(';');
            let mut head = parts.next().unwrap().split_whitespace();
            let (name, version) = (head.next().unwrap(), head.next().unwrap());
            text.push_str(&format!(
                "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {i:064x}\n"
            ));
            for field in parts {
                text.push_str(field.trim());
                text.push('\n');
            }
            text.push('\n');
        }
        let release = Release::parse(
            "Date: Sat, 12 Sep 2026 07:55:41 UTC\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 1 x\n",
            "t",
        )
        .unwrap();
        Universe {
            arch: "amd64".into(),
            sources: vec![LoadedSource {
                source: Source::new("http://t", "t"),
                release,
                indexes: vec![PackageIndex::parse_text(&text, "t").unwrap()],
                keyring: crate::keyring::Keyring::debian().into(),
                inrelease_sha256: "0".repeat(64),
            }],
            installed: None,
        }
    }

    fn names_versions(u: &Universe, s: &Solution) -> Vec<String> {
        s.packages
            .iter()
            .map(|p| format!("{}={}", u.package(p.id).name(), u.package(p.id).version()))
            .collect()
    }

    fn request(packages: &[&str]) -> SolveRequest {
        SolveRequest {
            packages: packages.iter().map(|p| Request::parse(p)).collect(),
            ..SolveRequest::default()
        }
    }

    #[test]
    fn cycles_resolve() {
        let u = universe(&["a0 1; Depends: b0", "b0 1; Depends: a0 (>= 1)"]);
        let s = solve(&u, &request(&["a0"])).unwrap();
        assert_eq!(names_versions(&u, &s), ["a0=1", "b0=1"]);
    }

    #[test]
    fn highest_version_unless_pinned_or_locked() {
        let u = universe(&["a0 1.0", "a0 1.10", "a0 1.9"]);
        assert_eq!(
            names_versions(&u, &solve(&u, &request(&["a0"])).unwrap()),
            ["a0=1.10"]
        );
        assert_eq!(
            names_versions(&u, &solve(&u, &request(&["a0=1.9"])).unwrap()),
            ["a0=1.9"]
        );
        let mut locked = request(&["a0"]);
        locked.prefer.insert("a0".into(), "1.0".into());
        assert_eq!(names_versions(&u, &solve(&u, &locked).unwrap()), ["a0=1.0"]);
    }

    #[test]
    fn versioned_provides_and_provider_priority() {
        let u = universe(&[
            "app 1; Depends: libx (>= 2)",
            "old-impl 1; Provides: libx (= 1)",
            "new-impl 1; Provides: libx (= 2); Priority: optional",
            "best-impl 1; Provides: libx (= 3); Priority: required",
        ]);
        let s = solve(&u, &request(&["app"])).unwrap();
        assert_eq!(names_versions(&u, &s), ["app=1", "best-impl=1"]);
        // A requested provider is preferred over a higher-priority one.
        let s = solve(&u, &request(&["new-impl", "app"])).unwrap();
        assert_eq!(names_versions(&u, &s), ["app=1", "new-impl=1"]);
    }

    #[test]
    fn conflicts_steer_to_the_other_alternative() {
        let u = universe(&[
            "app 1; Depends: first | second",
            "first 1",
            "second 1",
            "blocker 1; Conflicts: first",
        ]);
        let s = solve(&u, &request(&["app"])).unwrap();
        assert_eq!(names_versions(&u, &s), ["app=1", "first=1"]);
        let s = solve(&u, &request(&["app", "blocker"])).unwrap();
        assert_eq!(names_versions(&u, &s), ["app=1", "blocker=1", "second=1"]);
    }

    #[test]
    fn excludes_drop_clauses_and_are_reported() {
        let u = universe(&[
            "app 1; Pre-Depends: awk; Depends: debconf (>= 0.5) | debconf-2.0",
            "mawk 1; Provides: awk",
            "debconf 1",
        ]);
        let mut r = request(&["app"]);
        r.exclude = vec!["mawk".into(), "debconf".into()];
        let s = solve(&u, &r).unwrap();
        assert_eq!(names_versions(&u, &s), ["app=1"]);
        assert_eq!(
            s.exclusions,
            [
                Exclusion {
                    name: "awk".into(),
                    dropped: vec!["app Pre-Depends: awk".into()]
                },
                Exclusion {
                    name: "debconf".into(),
                    dropped: vec!["app Depends: debconf (>= 0.5) | debconf-2.0".into()]
                },
            ]
        );
        let e = solve(&u, &{
            let mut r = request(&["debconf"]);
            r.exclude = vec!["debconf".into()];
            r
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("both requested and excluded"), "{e}");
    }

    #[test]
    fn unsatisfiable_requests_explain_the_chain() {
        let u = universe(&["app 1; Depends: lib (>= 2)", "lib 1.5"]);
        let e = solve(&u, &request(&["app"])).unwrap_err().to_string();
        assert!(e.contains("cannot install the requested packages"), "{e}");
        assert!(e.contains("lib >= 2"), "{e}");
        assert!(e.contains("available app: 1"), "{e}");
    }

    #[test]
    fn a_base_images_packages_count_as_installed() {
        let mut u = universe(&[
            "app 1; Depends: libc (>= 2), tool",
            "libc 3",
            "tool 1; Depends: libc",
            "newer 1; Depends: libc (>= 3)",
            "breaker 1; Breaks: libc (<< 3)",
        ]);
        // Installed packages keep their own dependencies out of the solve: the base left
        // out what it did not need.
        let installed = "Package: libc\nVersion: 2.5\nArchitecture: amd64\nDepends: gone\n\n\
Package: tool\nVersion: 0.9\nArchitecture: all\nStatus: install ok installed\n";
        u.installed = Some(PackageIndex::parse_installed(installed, "base").unwrap());
        let s = solve(&u, &request(&["app"])).unwrap();
        assert_eq!(names_versions(&u, &s), ["app=1", "libc=2.5", "tool=0.9"]);
        let fresh: Vec<&str> = s
            .packages
            .iter()
            .filter(|p| !u.is_installed(p.id))
            .map(|p| u.package(p.id).name())
            .collect();
        assert_eq!(fresh, ["app"]);
        let libc = s.packages.iter().find(|p| u.is_installed(p.id)).unwrap();
        assert!(
            libc.reasons
                .contains(&"installed in the base image".to_string())
        );
        // No other version of an installed package is chosen, and what conflicts with one
        // is refused, naming the base.
        for wants in ["newer", "breaker"] {
            let e = solve(&u, &request(&[wants])).unwrap_err().to_string();
            assert!(e.contains("the base image has libc 2.5 installed"), "{e}");
        }
    }
}
