//! Scalar quantities by resource name in fixed point (thousandths, as Mesos
//! rounds), the currency of shares, quotas and headroom. A sorted small vector:
//! clusters have a handful of scalar names, so this beats any map.

use tepui_proto::resources::{Resources, scalar};
use tepui_proto::v1::value::Type;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quantities(Vec<(String, i64)>);

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
                q.add_one(&r.name, scalar::to_fixed(value));
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

    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(n, v)| (n.as_str(), *v))
    }

    pub fn get(&self, name: &str) -> i64 {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.0[i].1,
            Err(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, v)| *v <= 0)
    }

    pub fn add_one(&mut self, name: &str, value: i64) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.0[i].1 = self.0[i].1.saturating_add(value),
            Err(i) => self.0.insert(i, (name.to_string(), value)),
        }
    }

    pub fn add(&mut self, other: &Quantities) {
        for (n, v) in &other.0 {
            self.add_one(n, *v);
        }
    }

    /// Subtracts, never going below zero.
    pub fn sub(&mut self, other: &Quantities) {
        for (n, v) in &other.0 {
            if let Ok(i) = self.0.binary_search_by(|(m, _)| m.as_str().cmp(n)) {
                self.0[i].1 = (self.0[i].1 - v).max(0);
            }
        }
    }

    /// Every quantity named in `self` is at most the one in `other`.
    pub fn le(&self, other: &Quantities) -> bool {
        self.0.iter().all(|(n, v)| *v <= other.get(n))
    }

    /// `self - other` per name, floored at zero, keeping only names of `self`.
    pub fn saturating_minus(&self, other: &Quantities) -> Quantities {
        Quantities(
            self.0
                .iter()
                .map(|(n, v)| (n.clone(), (v - other.get(n)).max(0)))
                .collect(),
        )
    }

    pub fn to_f64(&self, name: &str) -> f64 {
        scalar::from_fixed(self.get(name))
    }

    pub fn to_map(&self) -> Vec<(String, f64)> {
        self.0
            .iter()
            .map(|(n, v)| (n.clone(), scalar::from_fixed(*v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::resources::parse_resources;

    #[test]
    fn sums_scalars_across_reservations() {
        let r = parse_resources("cpus:2;cpus(a):3;mem:10;ports:[1-2]", "*").expect("parse");
        let q = Quantities::of(&r);
        assert_eq!(q.get("cpus"), 5000);
        assert_eq!(q.get("mem"), 10000);
        assert_eq!(q.get("ports"), 0);
        let cap = Quantities::parse("cpus:4").expect("parse");
        assert!(!q.le(&Quantities::parse("cpus:4;mem:100").expect("parse")));
        assert!(cap.le(&q));
    }
}
