//! Hierarchical weighted DRF: a tree of role nodes (`eng`, `eng/backend`)
//! whose leaves are (framework, role) clients.
//!
//! Every node keeps its subtree's allocation, so moving resources to or from
//! a leaf touches only the leaf's ancestors. During an allocation cycle each
//! node keeps its *eligible* children in a `BTreeSet` ordered by (weighted
//! dominant share, allocation count, id): picking the next client is a walk
//! down the first entries, and an allocation re-keys only the path from the
//! leaf to the root (O(depth · log n)) instead of re-sorting anything.
//! Shares are recomputed from scratch once per cycle, because the cluster
//! total (their denominator) changes between cycles.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::quantities::Quantities;

pub type NodeId = usize;
const ROOT: NodeId = 0;

type Key = (u64, u64, NodeId);

#[derive(Debug)]
struct Node {
    parent: Option<NodeId>,
    /// Role path for role nodes; for leaves the role they belong to.
    role: String,
    /// The framework slot for leaves.
    framework: Option<usize>,
    weight: f64,
    allocated: Quantities,
    share: f64,
    allocations: u64,
    children: HashMap<String, NodeId>,
    /// Eligible children this cycle, cheapest first.
    eligible: BTreeSet<Key>,
    /// This node's key in its parent's `eligible`, while it is there.
    key: Option<Key>,
}

impl Node {
    fn new(parent: Option<NodeId>, role: String, framework: Option<usize>) -> Self {
        Node {
            parent,
            role,
            framework,
            weight: 1.0,
            allocated: Quantities::new(),
            share: 0.0,
            allocations: 0,
            children: HashMap::new(),
            eligible: BTreeSet::new(),
            key: None,
        }
    }
}

#[derive(Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    total: Quantities,
    /// `total` without the excluded names, as (name, total) pairs.
    shared_total: Vec<(u32, i64)>,
    /// Resource names left out of fair sharing (gpus by default): a role
    /// holding the only GPU machine must not look "rich" to DRF.
    excluded: HashSet<String>,
}

impl Tree {
    pub fn new(excluded: HashSet<String>) -> Self {
        Tree {
            nodes: vec![Node::new(None, String::new(), None)],
            total: Quantities::new(),
            shared_total: Vec::new(),
            excluded,
        }
    }

    /// The node for `role`, creating it and its ancestors.
    pub fn role_node(&mut self, role: &str) -> NodeId {
        let mut node = ROOT;
        let mut path = String::new();
        for segment in role.split('/') {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(segment);
            node = match self.nodes[node].children.get(&path) {
                Some(&child) => child,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(Node::new(Some(node), path.clone(), None));
                    self.nodes[node].children.insert(path.clone(), child);
                    child
                }
            };
        }
        node
    }

    pub fn existing_role_node(&self, role: &str) -> Option<NodeId> {
        let mut node = ROOT;
        let mut end = 0;
        loop {
            let next = role[end..].find('/').map_or(role.len(), |i| end + i);
            node = *self.nodes[node].children.get(&role[..next])?;
            if next == role.len() {
                return Some(node);
            }
            end = next + 1;
        }
    }

    /// A new leaf for `framework` in `role`.
    pub fn add_leaf(&mut self, role: &str, framework: usize, name: &str) -> NodeId {
        let parent = self.role_node(role);
        let leaf = self.nodes.len();
        self.nodes
            .push(Node::new(Some(parent), role.to_string(), Some(framework)));
        self.nodes[parent]
            .children
            .insert(format!("\u{0}{name}"), leaf);
        leaf
    }

    /// Detaches a leaf (its allocation must already be removed).
    pub fn remove_leaf(&mut self, leaf: NodeId, name: &str) {
        self.make_ineligible(leaf);
        if let Some(parent) = self.nodes[leaf].parent {
            self.nodes[parent].children.remove(&format!("\u{0}{name}"));
        }
        self.nodes[leaf].parent = None;
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    pub fn framework_of(&self, leaf: NodeId) -> Option<usize> {
        self.nodes[leaf].framework
    }

    pub fn role_of(&self, node: NodeId) -> &str {
        &self.nodes[node].role
    }

    pub fn allocated(&self, node: NodeId) -> &Quantities {
        &self.nodes[node].allocated
    }

    pub fn set_weight(&mut self, role: &str, weight: f64) {
        let node = self.role_node(role);
        self.nodes[node].weight = if weight > 0.0 { weight } else { 1.0 };
    }

    pub fn set_total(&mut self, total: Quantities) {
        self.shared_total = total
            .iter()
            .filter(|(n, v)| *v > 0 && !self.excluded.contains(*n))
            .map(|(n, v)| (super::quantities::intern(n), v))
            .collect();
        self.total = total;
    }

    pub fn ancestors(&self, leaf: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut node = self.nodes[leaf].parent;
        while let Some(n) = node {
            if n == ROOT {
                break;
            }
            out.push(n);
            node = self.nodes[n].parent;
        }
        out
    }

    fn compute_share(&self, node: NodeId) -> f64 {
        let n = &self.nodes[node];
        let mut share: f64 = 0.0;
        for (name, total) in &self.shared_total {
            share = share.max(n.allocated.get_id(*name).unwrap_or(0) as f64 / *total as f64);
        }
        share / n.weight
    }

    fn key(&self, node: NodeId) -> Key {
        let n = &self.nodes[node];
        (n.share.to_bits(), n.allocations, node)
    }

    /// Adds (or with `sign < 0` removes) an allocation on a leaf and its
    /// ancestors, re-keying eligible nodes on the way up.
    pub fn allocate(&mut self, leaf: NodeId, q: &Quantities, remove: bool) {
        let mut node = Some(leaf);
        while let Some(n) = node {
            let parent = self.nodes[n].parent;
            if remove {
                self.nodes[n].allocated.sub(q);
            } else {
                self.nodes[n].allocated.add(q);
                self.nodes[n].allocations += 1;
            }
            let share = self.compute_share(n);
            self.nodes[n].share = share;
            if let (Some(p), Some(old)) = (parent, self.nodes[n].key) {
                let new = self.key(n);
                let set = &mut self.nodes[p].eligible;
                set.remove(&old);
                set.insert(new);
                self.nodes[n].key = Some(new);
            }
            node = parent;
        }
    }

    /// Starts a cycle: recomputes every share and makes exactly `leaves`
    /// (and their ancestors) eligible.
    pub fn begin_cycle(&mut self, leaves: impl IntoIterator<Item = NodeId>) {
        for n in 0..self.nodes.len() {
            self.nodes[n].share = self.compute_share(n);
            self.nodes[n].eligible.clear();
            self.nodes[n].key = None;
        }
        for leaf in leaves {
            let mut node = leaf;
            while let Some(parent) = self.nodes[node].parent {
                if self.nodes[node].key.is_some() {
                    break;
                }
                let key = self.key(node);
                self.nodes[node].key = Some(key);
                self.nodes[parent].eligible.insert(key);
                node = parent;
            }
        }
    }

    /// The eligible leaf with the lowest share at every level.
    pub fn pick(&self) -> Option<NodeId> {
        self.pick_under(ROOT)
    }

    pub fn pick_under(&self, mut node: NodeId) -> Option<NodeId> {
        loop {
            let &(_, _, child) = self.nodes[node].eligible.first()?;
            if self.nodes[child].framework.is_some() {
                return Some(child);
            }
            node = child;
        }
    }

    /// Eligible leaves under `node` in DRF order (for the reservation phase,
    /// which needs the first one passing a per-agent test).
    pub fn eligible_leaves_under(&self, node: NodeId, out: &mut Vec<NodeId>) {
        if self.nodes[node].framework.is_some() {
            if self.nodes[node].key.is_some() {
                out.push(node);
            }
            return;
        }
        for &(_, _, child) in &self.nodes[node].eligible {
            self.eligible_leaves_under(child, out);
        }
    }

    /// Removes a leaf from this cycle, and ancestors left with no eligible
    /// children.
    pub fn make_ineligible(&mut self, leaf: NodeId) {
        let mut node = leaf;
        while let (Some(parent), Some(key)) = (self.nodes[node].parent, self.nodes[node].key) {
            self.nodes[parent].eligible.remove(&key);
            self.nodes[node].key = None;
            if !self.nodes[parent].eligible.is_empty() {
                break;
            }
            node = parent;
        }
    }

    pub fn share(&self, node: NodeId) -> f64 {
        self.compute_share(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantities {
        Quantities::parse(text).expect("quantities")
    }

    #[test]
    fn weighted_roles_pick_lowest_weighted_share() {
        let mut t = Tree::new(HashSet::new());
        t.set_total(q("cpus:100;mem:1000"));
        t.set_weight("b", 2.0);
        let a = t.add_leaf("a", 0, "fa");
        let b = t.add_leaf("b", 1, "fb");
        t.begin_cycle([a, b]);
        let mut given = [0, 0];
        for _ in 0..30 {
            let leaf = t.pick().expect("leaf");
            t.allocate(leaf, &q("cpus:1"), false);
            given[usize::from(leaf == b)] += 1;
        }
        assert_eq!(given, [10, 20]);
        t.make_ineligible(b);
        assert_eq!(t.pick(), Some(a));
        t.make_ineligible(a);
        assert_eq!(t.pick(), None);
    }

    #[test]
    fn nested_roles_share_their_parent() {
        let mut t = Tree::new(HashSet::new());
        t.set_total(q("cpus:100"));
        let x = t.add_leaf("eng/backend", 0, "f1");
        let y = t.add_leaf("eng/frontend", 1, "f2");
        let z = t.add_leaf("ops", 2, "f3");
        t.begin_cycle([x, y, z]);
        let mut ops = 0;
        for _ in 0..20 {
            let leaf = t.pick().expect("leaf");
            if leaf == z {
                ops += 1;
            }
            t.allocate(leaf, &q("cpus:1"), false);
        }
        // eng as a whole gets as much as ops.
        assert_eq!(ops, 10);
        assert_eq!(
            t.existing_role_node("eng/backend"),
            Some(t.role_node("eng/backend"))
        );
        assert_eq!(t.existing_role_node("nope"), None);
    }
}
