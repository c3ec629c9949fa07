//! Scalar quantities by resource name in fixed point (thousandths, as Mesos
//! rounds), the currency of shares, quotas and headroom.
//!
//! The allocator does arithmetic on these once or more per grant, so the
//! common names (cpus, mem, disk, gpus) live in a fixed inline array and
//! other names are interned: no allocation, no string compare on the hot
//! path. A name is *present* even at zero (a quota cap of `cpus:0` is not
//! "no cap on cpus").

use std::sync::Mutex;

use tepui_proto::resources::{Resources, scalar};
use tepui_proto::v1::value::Type;

const FIXED: [&str; 4] = ["cpus", "mem", "disk", "gpus"];

/// Names beyond `FIXED`, interned for the life of the process (resource
/// names are few).
static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

pub fn intern(name: &str) -> u32 {
    if let Some(i) = FIXED.iter().position(|f| *f == name) {
        return i as u32;
    }
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = names.iter().position(|n| *n == name) {
        return (FIXED.len() + i) as u32;
    }
    names.push(Box::leak(name.to_string().into_boxed_str()));
    (FIXED.len() + names.len() - 1) as u32
}

fn name_of(id: u32) -> &'static str {
    let i = id as usize;
    if i < FIXED.len() {
        return FIXED[i];
    }
    let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names.get(i - FIXED.len()).copied().unwrap_or("")
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quantities {
    fixed: [i64; 4],
    present: u8,
    /// Other names, sorted by id.
    extra: Vec<(u32, i64)>,
}

impl Quantities {
    pub fn new() -> Self {
        Self::default()
    }

    /// The non-revocable scalar quantities of `resources`.
    pub fn of(resources: &Resources) -> Self {
        let mut q = Self::new();
        for r in resources.iter() {
            if r.r#type == Type::Scalar as i32 && r.revocable.is_none() {
                let value = r.scalar.as_ref().map_or(0.0, |s| s.value);
                q.add_id(intern(&r.name), scalar::to_fixed(value));
            }
        }
        q
    }

    /// Parses `cpus:1;mem:32` (scalars only, no roles).
    pub fn parse(text: &str) -> Option<Self> {
        let mut q = Self::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once(':')?;
            let value: f64 = value.trim().parse().ok()?;
            if !value.is_finite() || value < 0.0 {
                return None;
            }
            q.add_one(name.trim(), scalar::to_fixed(value));
        }
        Some(q)
    }

    fn entries(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        (0..FIXED.len())
            .filter(|i| self.present & (1 << i) != 0)
            .map(|i| (i as u32, self.fixed[i]))
            .chain(self.extra.iter().copied())
    }

    /// Present names and their quantities.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        self.entries().map(|(id, v)| (name_of(id), v))
    }

    pub fn get_id(&self, id: u32) -> Option<i64> {
        let i = id as usize;
        if i < FIXED.len() {
            return (self.present & (1 << i) != 0).then_some(self.fixed[i]);
        }
        self.extra
            .binary_search_by_key(&id, |(n, _)| *n)
            .ok()
            .map(|k| self.extra[k].1)
    }

    pub fn contains_name(&self, name: &str) -> bool {
        self.get_id(intern(name)).is_some()
    }

    pub fn get(&self, name: &str) -> i64 {
        self.get_id(intern(name)).unwrap_or(0)
    }

    /// Nothing positive.
    pub fn is_empty(&self) -> bool {
        self.entries().all(|(_, v)| v <= 0)
    }

    fn add_id(&mut self, id: u32, value: i64) {
        let i = id as usize;
        if i < FIXED.len() {
            self.present |= 1 << i;
            self.fixed[i] = self.fixed[i].saturating_add(value);
            return;
        }
        match self.extra.binary_search_by_key(&id, |(n, _)| *n) {
            Ok(k) => self.extra[k].1 = self.extra[k].1.saturating_add(value),
            Err(k) => self.extra.insert(k, (id, value)),
        }
    }

    pub fn add_one(&mut self, name: &str, value: i64) {
        self.add_id(intern(name), value);
    }

    /// Sets `name` to `value`, making it present.
    pub fn set(&mut self, name: &str, value: i64) {
        let id = intern(name);
        let cur = self.get_id(id).unwrap_or(0);
        self.add_id(id, value - cur);
    }

    pub fn add(&mut self, other: &Quantities) {
        for (id, v) in other.entries() {
            self.add_id(id, v);
        }
    }

    /// Subtracts, never going below zero; only names present in `self`.
    pub fn sub(&mut self, other: &Quantities) {
        for (id, v) in other.entries() {
            if let Some(cur) = self.get_id(id) {
                self.add_id(id, (cur - v).max(0) - cur);
            }
        }
    }

    /// Every quantity present in `self` is at most the one in `other`.
    pub fn le(&self, other: &Quantities) -> bool {
        self.entries()
            .all(|(id, v)| v <= other.get_id(id).unwrap_or(0))
    }

    /// `self - other` per name, floored at zero, keeping `self`'s names.
    pub fn saturating_minus(&self, other: &Quantities) -> Quantities {
        let mut out = Quantities::new();
        for (id, v) in self.entries() {
            out.add_id(id, (v - other.get_id(id).unwrap_or(0)).max(0));
        }
        out
    }

    pub fn to_f64(&self, name: &str) -> f64 {
        scalar::from_fixed(self.get(name))
    }

    pub fn to_map(&self) -> Vec<(String, f64)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), scalar::from_fixed(v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::resources::parse_resources;

    #[test]
    fn sums_scalars_across_reservations() {
        let r = parse_resources("cpus:2;cpus(a):3;mem:10;ports:[1-2];foo:1", "*").expect("parse");
        let q = Quantities::of(&r);
        assert_eq!(q.get("cpus"), 5000);
        assert_eq!(q.get("mem"), 10000);
        assert_eq!(q.get("foo"), 1000);
        assert_eq!(q.get("ports"), 0);
        assert!(!q.contains_name("disk"));
        let cap = Quantities::parse("cpus:4").expect("parse");
        assert!(!q.le(&Quantities::parse("cpus:4;mem:100").expect("parse")));
        assert!(cap.le(&q));
        let zero = Quantities::parse("cpus:0").expect("parse");
        assert!(zero.contains_name("cpus") && zero.is_empty());
        let mut m = q.saturating_minus(&Quantities::parse("cpus:9").expect("parse"));
        assert_eq!(m.get("cpus"), 0);
        assert!(m.contains_name("cpus"));
        m.set("mem", 5);
        assert_eq!(m.get("mem"), 5);
    }
}
