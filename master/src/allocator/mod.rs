//! The allocator: decides which framework is offered which agent's free
//! resources, by hierarchical weighted DRF over roles.
//!
//! One cycle runs in three phases, as in Mesos's hierarchical allocator:
//! 1. reserved resources go to the lowest-share client of the role subtree
//!    they are reserved to;
//! 2. roles below their quota guarantee get unreserved resources up to it;
//! 3. everything unreserved goes to everybody, lowest share first, keeping
//!    enough back (headroom) to satisfy the unmet guarantees.
//!
//! Phases 2 and 3 are client-major: the client with the lowest share takes
//! its next unfiltered free agent, found with a bit-set scan from a cursor
//! that only moves forward within a cycle, so a cycle costs
//! O(grants · log clients + clients · agents / 64) however many filters
//! frameworks have piled up.

pub mod bitset;
pub mod drf;
pub mod filters;
pub mod quantities;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tepui_proto::resources::{ResourceExt, Resources};
use tepui_proto::v1::Resource;
use tepui_proto::v1::value::Type;

use bitset::BitSet;
use drf::{NodeId, Tree};
use filters::Filters;
pub use quantities::Quantities;

#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// Scalar names left out of DRF shares (`gpus`).
    pub fairness_excluded: Vec<String>,
    /// An agent's free resources are offered only if they hold at least one
    /// of these (Mesos's `--min_allocatable_resources`).
    pub min_allocatable: Vec<Quantities>,
    /// At most this many offers per framework role per cycle.
    pub max_offers_per_framework: usize,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            fairness_excluded: vec!["gpus".to_string()],
            min_allocatable: vec![
                Quantities::parse("cpus:0.01").unwrap_or_default(),
                Quantities::parse("mem:32").unwrap_or_default(),
            ],
            max_offers_per_framework: usize::MAX,
        }
    }
}

/// Resources offered to one framework role on one agent.
#[derive(Debug, Clone)]
pub struct Grant {
    pub framework_id: String,
    pub agent_id: String,
    pub role: String,
    /// Each carrying `allocation_info.role`.
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, Default)]
pub struct Quota {
    pub guarantee: Quantities,
    /// Names absent are unlimited.
    pub limit: Option<Quantities>,
}

#[derive(Debug)]
struct Agent {
    id: String,
    total: Resources,
    available: Resources,
    active: bool,
    /// Allocation per client leaf on this agent.
    allocated: HashMap<NodeId, Quantities>,
}

#[derive(Debug)]
struct Framework {
    id: String,
    roles: Vec<String>,
    suppressed: HashSet<String>,
    active: bool,
    leaves: HashMap<String, NodeId>,
}

#[derive(Debug)]
pub struct Allocator {
    config: AllocatorConfig,
    agents: Vec<Option<Agent>>,
    agent_index: HashMap<String, usize>,
    frameworks: Vec<Option<Framework>>,
    framework_index: HashMap<String, usize>,
    tree: Tree,
    filters: Filters,
    /// Active agents with unreserved resources worth offering.
    free: BitSet,
    /// Agents with free reserved resources.
    reserved: HashSet<usize>,
    total: Quantities,
    quotas: HashMap<String, Quota>,
    weights: HashMap<String, f64>,
}

fn strip_allocation(resources: &Resources) -> Resources {
    let mut r = resources.clone();
    r.unallocate();
    r
}

impl Allocator {
    pub fn new(config: AllocatorConfig) -> Self {
        let excluded = config.fairness_excluded.iter().cloned().collect();
        Allocator {
            config,
            agents: Vec::new(),
            agent_index: HashMap::new(),
            frameworks: Vec::new(),
            framework_index: HashMap::new(),
            tree: Tree::new(excluded),
            filters: Filters::default(),
            free: BitSet::default(),
            reserved: HashSet::new(),
            total: Quantities::new(),
            quotas: HashMap::new(),
            weights: HashMap::new(),
        }
    }

    // ---- frameworks -------------------------------------------------------

    pub fn add_framework(&mut self, id: &str, roles: &[String], suppressed: &[String]) {
        if self.framework_index.contains_key(id) {
            self.update_framework(id, roles, suppressed);
            self.set_framework_active(id, true);
            return;
        }
        let slot = self.frameworks.len();
        self.frameworks.push(Some(Framework {
            id: id.to_string(),
            roles: Vec::new(),
            suppressed: HashSet::new(),
            active: true,
            leaves: HashMap::new(),
        }));
        self.framework_index.insert(id.to_string(), slot);
        self.update_framework(id, roles, suppressed);
    }

    pub fn update_framework(&mut self, id: &str, roles: &[String], suppressed: &[String]) {
        let Some(&slot) = self.framework_index.get(id) else {
            return;
        };
        for role in roles {
            self.leaf(slot, role);
        }
        if let Some(fw) = self.frameworks[slot].as_mut() {
            fw.roles = roles.to_vec();
            fw.suppressed = suppressed.iter().cloned().collect();
        }
    }

    fn leaf(&mut self, slot: usize, role: &str) -> NodeId {
        if let Some(&leaf) = self.frameworks[slot]
            .as_ref()
            .and_then(|f| f.leaves.get(role))
        {
            return leaf;
        }
        let name = self.frameworks[slot]
            .as_ref()
            .map(|f| f.id.clone())
            .unwrap_or_default();
        let leaf = self.tree.add_leaf(role, slot, &name);
        if let Some(w) = self.weights.get(role).copied() {
            self.tree.set_weight(role, w);
        }
        if let Some(fw) = self.frameworks[slot].as_mut() {
            fw.leaves.insert(role.to_string(), leaf);
        }
        leaf
    }

    /// A disconnected framework keeps its allocation but gets no offers.
    pub fn set_framework_active(&mut self, id: &str, active: bool) {
        if let Some(fw) = self.framework_slot_mut(id) {
            fw.active = active;
        }
    }

    /// Removes a framework; its resources must have been recovered first.
    pub fn remove_framework(&mut self, id: &str) {
        let Some(slot) = self.framework_index.remove(id) else {
            return;
        };
        if let Some(fw) = self.frameworks[slot].take() {
            for (_, leaf) in fw.leaves {
                for agent in self.agents.iter_mut().flatten() {
                    agent.allocated.remove(&leaf);
                }
                let q = self.tree.allocated(leaf).clone();
                self.tree.allocate(leaf, &q, true);
                self.tree.remove_leaf(leaf, &fw.id);
            }
        }
        self.filters.clear_framework(slot);
    }

    fn framework_slot_mut(&mut self, id: &str) -> Option<&mut Framework> {
        let slot = *self.framework_index.get(id)?;
        self.frameworks[slot].as_mut()
    }

    pub fn suppress(&mut self, id: &str, roles: Option<&[String]>) {
        if let Some(fw) = self.framework_slot_mut(id) {
            let roles = roles.map_or_else(|| fw.roles.clone(), <[String]>::to_vec);
            fw.suppressed.extend(roles);
        }
    }

    /// Unsuppresses the roles and drops the framework's filters.
    pub fn revive(&mut self, id: &str, roles: Option<&[String]>) {
        let Some(&slot) = self.framework_index.get(id) else {
            return;
        };
        if let Some(fw) = self.frameworks[slot].as_mut() {
            match roles {
                Some(roles) => {
                    for r in roles {
                        fw.suppressed.remove(r);
                    }
                }
                None => fw.suppressed.clear(),
            }
        }
        self.filters.clear_framework(slot);
    }

    pub fn suppressed_roles(&self, id: &str) -> Vec<String> {
        self.framework_index
            .get(id)
            .and_then(|&s| self.frameworks[s].as_ref())
            .map(|f| f.suppressed.iter().cloned().collect())
            .unwrap_or_default()
    }

    // ---- agents -----------------------------------------------------------

    /// Adds an agent with what frameworks already use on it (tasks found on
    /// re-registration), as `(framework id, resources with allocation info)`.
    pub fn add_agent(&mut self, id: &str, total: Resources, used: &[(String, Resources)]) {
        self.remove_agent(id);
        let slot = self.agents.len();
        self.total.add(&Quantities::of(&total));
        self.tree.set_total(self.total.clone());
        self.agents.push(Some(Agent {
            id: id.to_string(),
            available: total.clone(),
            total,
            active: true,
            allocated: HashMap::new(),
        }));
        self.agent_index.insert(id.to_string(), slot);
        for (framework, resources) in used {
            self.take(framework, slot, resources);
        }
        self.refresh(slot);
    }

    /// Accounts resources in use by a framework on an agent (tasks adopted
    /// after a master failover, or an operation's new form).
    fn take(&mut self, framework: &str, slot: usize, resources: &Resources) {
        let Some(&fslot) = self.framework_index.get(framework) else {
            // Unknown frameworks' tasks still occupy the agent.
            if let Some(agent) = self.agents[slot].as_mut() {
                agent.available -= strip_allocation(resources);
            }
            return;
        };
        for (role, res) in self.by_role(fslot, resources) {
            let leaf = self.leaf(fslot, &role);
            let q = Quantities::of(&res);
            self.tree.allocate(leaf, &q, false);
            if let Some(agent) = self.agents[slot].as_mut() {
                agent.available -= strip_allocation(&res);
                agent.allocated.entry(leaf).or_default().add(&q);
            }
        }
    }

    /// Splits resources by allocation role; unallocated ones count for the
    /// framework's first role.
    fn by_role(&self, fslot: usize, resources: &Resources) -> Vec<(String, Resources)> {
        let mut out: Vec<(String, Resources)> = resources.allocations().into_iter().collect();
        let unallocated = resources.filter(|r| r.allocation_role().is_none());
        if !unallocated.is_empty() {
            let role = self.frameworks[fslot]
                .as_ref()
                .and_then(|f| f.roles.first().cloned())
                .unwrap_or_else(|| "*".to_string());
            out.push((role, unallocated));
        }
        out
    }

    pub fn remove_agent(&mut self, id: &str) {
        let Some(slot) = self.agent_index.remove(id) else {
            return;
        };
        if let Some(agent) = self.agents[slot].take() {
            self.total.sub(&Quantities::of(&agent.total));
            self.tree.set_total(self.total.clone());
            for (leaf, q) in agent.allocated {
                self.tree.allocate(leaf, &q, true);
            }
        }
        self.free.clear(slot);
        self.reserved.remove(&slot);
        self.filters.clear_agent(slot);
    }

    /// Deactivated, draining or disconnected agents are not offered.
    pub fn set_agent_active(&mut self, id: &str, active: bool) {
        if let Some(&slot) = self.agent_index.get(id) {
            if let Some(agent) = self.agents[slot].as_mut() {
                agent.active = active;
            }
            self.refresh(slot);
        }
    }

    /// Replaces an agent's total (an operation converted resources, or the
    /// agent reported new totals); `used` converted as `from` -> `to`.
    pub fn update_agent_total(&mut self, id: &str, total: Resources) {
        let Some(&slot) = self.agent_index.get(id) else {
            return;
        };
        let Some(agent) = self.agents[slot].as_mut() else {
            return;
        };
        let old_total = std::mem::replace(&mut agent.total, total.clone());
        let old_q = Quantities::of(&old_total);
        let new_q = Quantities::of(&total);
        // available = total - in use, recomputed from the difference.
        let mut in_use = old_total;
        in_use -= &agent.available;
        let mut available = total;
        available -= &in_use;
        agent.available = available;
        self.total.sub(&old_q);
        self.total.add(&new_q);
        self.tree.set_total(self.total.clone());
        self.filters.clear_agent(slot);
        self.refresh(slot);
    }

    /// An operation on allocated resources (RESERVE, CREATE, ...) turned
    /// `from` into `to` on the agent: both the agent's total and the
    /// framework's allocation change form, not amount.
    pub fn convert_allocated(
        &mut self,
        framework: &str,
        agent_id: &str,
        from: &Resources,
        to: &Resources,
    ) {
        let Some(&slot) = self.agent_index.get(agent_id) else {
            return;
        };
        if let Some(agent) = self.agents[slot].as_mut() {
            agent.total -= strip_allocation(from);
            agent.total += strip_allocation(to);
        }
        // Only the form of the allocation changes: `available` is untouched.
        self.book(framework, slot, from, true);
        self.book(framework, slot, to, false);
    }

    /// Adds (or removes) an allocation in the sorter and the agent's
    /// per-client books, without touching its available resources.
    fn book(&mut self, framework: &str, slot: usize, resources: &Resources, remove: bool) {
        let Some(&fslot) = self.framework_index.get(framework) else {
            return;
        };
        for (role, res) in self.by_role(fslot, resources) {
            let leaf = self.leaf(fslot, &role);
            let q = Quantities::of(&res);
            self.tree.allocate(leaf, &q, remove);
            if let Some(agent) = self.agents[slot].as_mut() {
                let entry = agent.allocated.entry(leaf).or_default();
                if remove {
                    entry.sub(&q);
                    if entry.is_empty() {
                        agent.allocated.remove(&leaf);
                    }
                } else {
                    entry.add(&q);
                }
            }
        }
    }

    fn untake(&mut self, framework: &str, slot: usize, resources: &Resources) {
        if let Some(&fslot) = self.framework_index.get(framework) {
            for (role, res) in self.by_role(fslot, resources) {
                let leaf = self.leaf(fslot, &role);
                let q = Quantities::of(&res);
                self.tree.allocate(leaf, &q, true);
                if let Some(agent) = self.agents[slot].as_mut()
                    && let Some(a) = agent.allocated.get_mut(&leaf)
                {
                    a.sub(&q);
                    if a.is_empty() {
                        agent.allocated.remove(&leaf);
                    }
                }
            }
        }
        if let Some(agent) = self.agents[slot].as_mut() {
            agent.available += strip_allocation(resources);
        }
    }

    /// Resources come back from a framework: a declined or rescinded offer
    /// (optionally with a filter), or a finished task (`grew`: the agent now
    /// has more than any filter refused).
    pub fn recover(
        &mut self,
        framework: &str,
        agent_id: &str,
        resources: &Resources,
        filter: Option<Duration>,
        now: Instant,
    ) {
        let Some(&slot) = self.agent_index.get(agent_id) else {
            return;
        };
        self.untake(framework, slot, resources);
        match (filter, self.framework_index.get(framework)) {
            (Some(d), Some(&fslot)) => self.filters.add(fslot, slot, d, now),
            _ => self.filters.clear_agent(slot),
        }
        self.refresh(slot);
    }

    fn refresh(&mut self, slot: usize) {
        let Some(agent) = self.agents[slot].as_ref() else {
            return;
        };
        let unreserved = agent.available.unreserved();
        if agent.active && self.allocatable(&Quantities::of(&unreserved)) {
            self.free.set(slot);
        } else {
            self.free.clear(slot);
        }
        if agent.active
            && agent
                .available
                .iter()
                .any(|r| r.reservation_role().is_some())
        {
            self.reserved.insert(slot);
        } else {
            self.reserved.remove(&slot);
        }
    }

    fn allocatable(&self, q: &Quantities) -> bool {
        if q.is_empty() {
            return false;
        }
        self.config.min_allocatable.is_empty()
            || self.config.min_allocatable.iter().any(|m| m.le(q))
    }

    // ---- weights and quota ------------------------------------------------

    pub fn set_weight(&mut self, role: &str, weight: f64) {
        self.weights.insert(role.to_string(), weight);
        self.tree.set_weight(role, weight);
    }

    pub fn weights(&self) -> &HashMap<String, f64> {
        &self.weights
    }

    pub fn set_quota(&mut self, role: &str, quota: Option<Quota>) {
        match quota {
            Some(q) => {
                self.tree.role_node(role);
                self.quotas.insert(role.to_string(), q);
            }
            None => {
                self.quotas.remove(role);
            }
        }
    }

    pub fn quotas(&self) -> &HashMap<String, Quota> {
        &self.quotas
    }

    /// What a role subtree holds (offered or in use).
    pub fn role_allocated(&self, role: &str) -> Quantities {
        self.tree
            .existing_role_node(role)
            .map(|n| self.tree.allocated(n).clone())
            .unwrap_or_default()
    }

    pub fn role_share(&self, role: &str) -> f64 {
        self.tree
            .existing_role_node(role)
            .map_or(0.0, |n| self.tree.share(n))
    }

    pub fn total(&self) -> &Quantities {
        &self.total
    }

    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Unmet guarantees: what quota roles are owed, summed.
    fn required_headroom(&self) -> Quantities {
        let mut need = Quantities::new();
        for (role, quota) in &self.quotas {
            need.add(&quota.guarantee.saturating_minus(&self.role_allocated(role)));
        }
        need
    }

    // ---- the cycle --------------------------------------------------------

    /// Runs one allocation cycle.
    pub fn allocate(&mut self, now: Instant) -> Vec<Grant> {
        self.filters.expire(now);
        let mut cycle = Cycle {
            grants: Vec::new(),
            counts: HashMap::new(),
            phases_with_grants: 0,
        };
        let before = cycle.grants.len();
        self.allocate_reserved(&mut cycle);
        cycle.end_phase(before);
        if !self.quotas.is_empty() {
            let before = cycle.grants.len();
            self.allocate_unreserved(&mut cycle, true);
            cycle.end_phase(before);
        }
        let before = cycle.grants.len();
        self.allocate_unreserved(&mut cycle, false);
        cycle.end_phase(before);
        self.collect(cycle)
    }

    fn eligible_leaves(&self, quota_only: bool) -> Vec<NodeId> {
        let mut out = Vec::new();
        for fw in self.frameworks.iter().flatten() {
            if !fw.active {
                continue;
            }
            for role in &fw.roles {
                if fw.suppressed.contains(role) {
                    continue;
                }
                if quota_only && self.guarantee_left(role).is_empty() {
                    continue;
                }
                if let Some(&leaf) = fw.leaves.get(role) {
                    out.push(leaf);
                }
            }
        }
        out
    }

    /// What the nearest guaranteed ancestor-or-self of `role` is still owed.
    fn guarantee_left(&self, role: &str) -> Quantities {
        let mut r = role;
        loop {
            if let Some(q) = self.quotas.get(r)
                && !q.guarantee.is_empty()
            {
                return q.guarantee.saturating_minus(&self.role_allocated(r));
            }
            match r.rfind('/') {
                Some(i) => r = &r[..i],
                None => return Quantities::new(),
            }
        }
    }

    /// How much more `role` may take under the limits of it and its
    /// ancestors; `None` when unlimited.
    fn limit_left(&self, role: &str) -> Option<Quantities> {
        let mut left: Option<Quantities> = None;
        let mut r = role;
        loop {
            if let Some(limit) = self.quotas.get(r).and_then(|q| q.limit.as_ref()) {
                let l = limit.saturating_minus(&self.role_allocated(r));
                left = Some(match left {
                    None => l,
                    Some(mut prev) => {
                        for (n, v) in l.iter() {
                            if !prev.contains_name(n) || v < prev.get(n) {
                                prev.set(n, v);
                            }
                        }
                        prev
                    }
                });
            }
            match r.rfind('/') {
                Some(i) => r = &r[..i],
                None => return left,
            }
        }
    }

    fn allocate_reserved(&mut self, cycle: &mut Cycle) {
        if self.reserved.is_empty() {
            return;
        }
        let leaves = self.eligible_leaves(false);
        self.tree.begin_cycle(leaves);
        let mut agents: Vec<usize> = self.reserved.iter().copied().collect();
        agents.sort_unstable();
        for slot in agents {
            let Some(agent) = self.agents[slot].as_ref() else {
                continue;
            };
            for (role, _) in agent.available.reservations() {
                let Some(node) = self.tree.existing_role_node(&role) else {
                    continue;
                };
                let mut candidates = Vec::new();
                self.tree.eligible_leaves_under(node, &mut candidates);
                for leaf in candidates {
                    let Some(fslot) = self.tree.framework_of(leaf) else {
                        continue;
                    };
                    if self.filters.is_filtered(fslot, slot) {
                        continue;
                    }
                    let leaf_role = self.tree.role_of(leaf).to_string();
                    let Some(agent) = self.agents[slot].as_ref() else {
                        break;
                    };
                    let offer = agent.available.filter(|r| {
                        r.reservation_role() == Some(role.as_str())
                            && r.is_allocatable_to(&leaf_role)
                    });
                    if offer.is_empty() {
                        break;
                    }
                    self.grant(cycle, leaf, slot, offer);
                    break;
                }
            }
        }
    }

    fn allocate_unreserved(&mut self, cycle: &mut Cycle, quota_phase: bool) {
        let leaves = self.eligible_leaves(quota_phase);
        if leaves.is_empty() {
            return;
        }
        self.tree.begin_cycle(leaves);
        let mut cursor: Vec<usize> = vec![0; self.tree.len()];
        let has_quota = !self.quotas.is_empty();
        // Headroom: unallocated unreserved resources must keep covering unmet
        // guarantees when non-quota roles are served.
        let mut headroom = if !has_quota || quota_phase {
            None
        } else {
            let need = self.required_headroom();
            if need.is_empty() {
                None
            } else {
                let mut free = Quantities::new();
                for a in self.agents.iter().flatten().filter(|a| a.active) {
                    free.add(&Quantities::of(&a.available.unreserved()));
                }
                Some((free, need))
            }
        };
        while let Some(leaf) = self.tree.pick() {
            let Some(fslot) = self.tree.framework_of(leaf) else {
                self.tree.make_ineligible(leaf);
                continue;
            };
            let Some(slot) = self.free.next_and_not(self.filters.of(fslot), cursor[leaf]) else {
                self.tree.make_ineligible(leaf);
                continue;
            };
            cursor[leaf] = slot + 1;
            let Some(agent) = self.agents[slot].as_ref() else {
                self.free.clear(slot);
                continue;
            };
            if !has_quota && !self.reserved.contains(&slot) {
                // The common case: everything free on the agent is
                // unreserved and nobody caps it, so the offer is all of it.
                let q = Quantities::of(&agent.available);
                if !self.allocatable(&q) {
                    continue;
                }
                let offer = match self.agents[slot].as_mut() {
                    Some(agent) => std::mem::take(&mut agent.available),
                    None => continue,
                };
                self.grant_quantities(cycle, leaf, slot, offer, q);
                continue;
            }
            let role = self.tree.role_of(leaf).to_string();
            let mut offer = agent.available.unreserved();
            let mut cap: Option<Quantities> = self.limit_left(&role);
            if quota_phase {
                cap = Some(min_caps(cap, self.guarantee_left(&role)));
            } else if let Some((free, need)) = &headroom
                && self.guarantee_left(&role).is_empty()
            {
                let mut spare = Quantities::new();
                for (n, v) in need.iter() {
                    spare.add_one(n, (free.get(n) - v).max(0));
                }
                cap = Some(min_caps(cap, spare));
            }
            if let Some(cap) = &cap {
                let exhausted = Quantities::of(&offer)
                    .iter()
                    .all(|(n, _)| cap.contains_name(n) && cap.get(n) <= 0);
                if exhausted {
                    // Nothing this role may still take: done for the cycle.
                    self.tree.make_ineligible(leaf);
                    continue;
                }
                offer = chop(&offer, cap);
            }
            let q = Quantities::of(&offer);
            if !self.allocatable(&q) {
                continue;
            }
            if let Some((free, need)) = headroom.as_mut() {
                free.sub(&q);
                if !self.guarantee_left(&role).is_empty() {
                    need.sub(&q);
                }
            }
            self.grant(cycle, leaf, slot, offer);
        }
    }

    fn grant(&mut self, cycle: &mut Cycle, leaf: NodeId, slot: usize, offer: Resources) {
        let q = Quantities::of(&offer);
        if let Some(agent) = self.agents[slot].as_mut() {
            agent.available -= &offer;
        }
        self.grant_quantities(cycle, leaf, slot, offer, q);
    }

    /// Books an offer already taken out of the agent's available resources.
    fn grant_quantities(
        &mut self,
        cycle: &mut Cycle,
        leaf: NodeId,
        slot: usize,
        offer: Resources,
        q: Quantities,
    ) {
        if let Some(agent) = self.agents[slot].as_mut() {
            agent.allocated.entry(leaf).or_default().add(&q);
        }
        self.refresh(slot);
        self.tree.allocate(leaf, &q, false);
        let count = cycle.counts.entry(leaf).or_insert(0);
        *count += 1;
        if *count >= self.config.max_offers_per_framework {
            self.tree.make_ineligible(leaf);
        }
        cycle.grants.push((leaf, slot, offer));
    }

    fn collect(&self, cycle: Cycle) -> Vec<Grant> {
        // The same client and agent can meet in several phases, never twice
        // in one (the agent cursor only moves forward).
        let merged = if cycle.phases_with_grants > 1 {
            let mut seen: HashMap<(NodeId, usize), usize> = HashMap::new();
            let mut merged: Vec<(NodeId, usize, Resources)> =
                Vec::with_capacity(cycle.grants.len());
            for (leaf, slot, offer) in cycle.grants {
                match seen.get(&(leaf, slot)) {
                    Some(&i) => merged[i].2 += offer,
                    None => {
                        seen.insert((leaf, slot), merged.len());
                        merged.push((leaf, slot, offer));
                    }
                }
            }
            merged
        } else {
            cycle.grants
        };
        let mut out = Vec::with_capacity(merged.len());
        for (leaf, slot, resources) in merged {
            let Some(fslot) = self.tree.framework_of(leaf) else {
                continue;
            };
            let (Some(fw), Some(agent)) =
                (self.frameworks[fslot].as_ref(), self.agents[slot].as_ref())
            else {
                continue;
            };
            let role = self.tree.role_of(leaf).to_string();
            // Setting one role on every element keeps identities distinct,
            // so no re-normalization is needed.
            let info = tepui_proto::v1::resource::AllocationInfo {
                role: Some(role.clone()),
            };
            // In place: a `Resource` is large, and copying it dominated.
            let mut resources = resources.into_vec();
            for r in &mut resources {
                r.allocation_info = Some(info.clone());
            }
            out.push(Grant {
                framework_id: fw.id.clone(),
                agent_id: agent.id.clone(),
                role,
                resources,
            });
        }
        out
    }
}

struct Cycle {
    grants: Vec<(NodeId, usize, Resources)>,
    counts: HashMap<NodeId, usize>,
    phases_with_grants: usize,
}

impl Cycle {
    /// Call after each phase.
    fn end_phase(&mut self, before: usize) {
        if self.grants.len() > before {
            self.phases_with_grants += 1;
        }
    }
}

/// The per-name minimum of an optional cap and another.
fn min_caps(cap: Option<Quantities>, other: Quantities) -> Quantities {
    let Some(mut cap) = cap else {
        return other;
    };
    for (n, v) in other.iter() {
        if !cap.contains_name(n) || v < cap.get(n) {
            cap.set(n, v);
        }
    }
    cap
}

/// Cuts scalar resources down to `cap` (names not in `cap` are kept).
fn chop(resources: &Resources, cap: &Quantities) -> Resources {
    let mut left: HashMap<&'static str, i64> = cap.iter().collect();
    let mut out = Resources::new();
    for r in resources.iter() {
        if r.r#type != Type::Scalar as i32 {
            out += r.clone();
            continue;
        }
        let Some(room) = left.get_mut(r.name.as_str()) else {
            out += r.clone();
            continue;
        };
        let have =
            tepui_proto::resources::scalar::to_fixed(r.scalar.as_ref().map_or(0.0, |s| s.value));
        let take = have.min(*room);
        *room -= take;
        if take > 0 {
            let mut cut: Resource = r.clone();
            if let Some(s) = cut.scalar.as_mut() {
                s.value = tepui_proto::resources::scalar::from_fixed(take);
            }
            out += cut;
        }
    }
    out
}

#[cfg(test)]
mod tests;
