//! Offer filters (`refuse_seconds`): framework F does not want agent A's
//! resources until a deadline.
//!
//! A per-framework bit set answers "is A filtered for F" inside the
//! allocation loop as part of a word-wise scan. Expiry is kept in buckets by
//! deadline (a decline storm shares one deadline per cycle), and entries
//! carry generations so that a REVIVE or an agent whose resources grew drops
//! its filters in O(1) without hunting them down in the buckets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::bitset::BitSet;

/// Mesos accepts `refuse_seconds` up to years; we cap deadlines so that
/// `Instant + Duration` cannot overflow.
const MAX_FILTER: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    framework: u32,
    agent: u32,
    framework_generation: u32,
    agent_generation: u32,
}

#[derive(Debug, Default)]
pub struct Filters {
    by_framework: Vec<BitSet>,
    framework_generation: Vec<u32>,
    agent_generation: Vec<u32>,
    /// Which frameworks filter each agent (possibly stale), to clear an
    /// agent's filters when its resources grow.
    by_agent: Vec<Vec<u32>>,
    deadlines: BTreeMap<Instant, Vec<Entry>>,
    empty: BitSet,
}

impl Filters {
    pub fn add(&mut self, framework: usize, agent: usize, duration: Duration, now: Instant) {
        if duration.is_zero() {
            return;
        }
        let deadline = now + duration.min(MAX_FILTER);
        if self.by_framework.len() <= framework {
            self.by_framework
                .resize_with(framework + 1, BitSet::default);
            self.framework_generation.resize(framework + 1, 0);
        }
        if self.agent_generation.len() <= agent {
            self.agent_generation.resize(agent + 1, 0);
            self.by_agent.resize_with(agent + 1, Vec::new);
        }
        self.by_framework[framework].set(agent);
        self.by_agent[agent].push(framework as u32);
        self.deadlines.entry(deadline).or_default().push(Entry {
            framework: framework as u32,
            agent: agent as u32,
            framework_generation: self.framework_generation[framework],
            agent_generation: self.agent_generation[agent],
        });
    }

    /// The agents `framework` filters.
    pub fn of(&self, framework: usize) -> &BitSet {
        self.by_framework.get(framework).unwrap_or(&self.empty)
    }

    pub fn is_filtered(&self, framework: usize, agent: usize) -> bool {
        self.of(framework).get(agent)
    }

    pub fn expire(&mut self, now: Instant) {
        while let Some(entry) = self.deadlines.first_entry() {
            if *entry.key() > now {
                break;
            }
            for e in entry.remove() {
                let (f, a) = (e.framework as usize, e.agent as usize);
                if self.framework_generation[f] == e.framework_generation
                    && self.agent_generation[a] == e.agent_generation
                {
                    self.by_framework[f].clear(a);
                }
            }
        }
    }

    /// REVIVE: the framework wants everything again.
    pub fn clear_framework(&mut self, framework: usize) {
        if let Some(bits) = self.by_framework.get_mut(framework) {
            bits.clear_all();
            self.framework_generation[framework] =
                self.framework_generation[framework].wrapping_add(1);
        }
    }

    /// The agent's resources changed (a task ended, the agent re-registered
    /// or was removed): what was refused is no longer what is there.
    pub fn clear_agent(&mut self, agent: usize) {
        if let Some(frameworks) = self.by_agent.get_mut(agent) {
            for f in frameworks.drain(..) {
                self.by_framework[f as usize].clear(agent);
            }
            self.agent_generation[agent] = self.agent_generation[agent].wrapping_add(1);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.by_framework.iter().map(BitSet::count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_expire_and_clear() {
        let now = Instant::now();
        let mut f = Filters::default();
        f.add(1, 7, Duration::from_secs(5), now);
        f.add(2, 7, Duration::from_secs(10), now);
        assert!(f.is_filtered(1, 7) && f.is_filtered(2, 7));
        f.expire(now + Duration::from_secs(6));
        assert!(!f.is_filtered(1, 7) && f.is_filtered(2, 7));
        f.clear_agent(7);
        assert!(!f.is_filtered(2, 7));
        // A stale entry does not clear a newer filter.
        f.add(2, 7, Duration::from_secs(100), now);
        f.expire(now + Duration::from_secs(11));
        assert!(f.is_filtered(2, 7));
        f.clear_framework(2);
        assert!(!f.is_filtered(2, 7));
        assert_eq!(f.len(), 0);
    }
}
