//! Offers: turning allocator grants into OFFERS events, DECLINE, rescinding
//! (timeout, agent loss, framework failover) and taking offers for ACCEPT.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tepui_proto::resources::Resources;
use tepui_proto::v1::scheduler::{Event, event};
use tepui_proto::v1::{Address, Url};
use tepui_proto::v1::{AgentId, ExecutorId, FrameworkId, Offer, OfferId, resource};

use super::Master;
use crate::error::ApiError;
use tepui_proto::v1::framework_info::capability::Type as Capability;

/// Mesos's default for `Filters.refuse_seconds`.
pub const DEFAULT_REFUSE_SECONDS: f64 = 5.0;

#[derive(Debug, Clone)]
pub struct OfferState {
    pub offer: Offer,
    pub created: Instant,
}

impl OfferState {
    pub fn resources(&self) -> Resources {
        Resources::from(self.offer.resources.clone())
    }
}

pub fn refuse_duration(filters: Option<&tepui_proto::v1::Filters>) -> Option<Duration> {
    let secs = filters
        .and_then(|f| f.refuse_seconds)
        .unwrap_or(DEFAULT_REFUSE_SECONDS);
    if !secs.is_finite() || secs <= 0.0 {
        // NaN, negative and zero mean "no filter"; infinity is capped later.
        return if secs == f64::INFINITY {
            Some(Duration::from_secs(u64::from(u32::MAX)))
        } else {
            None
        };
    }
    Some(Duration::from_secs_f64(secs.min(f64::from(u32::MAX))))
}

/// The offer as sent to a framework. Mesos's `Master::offer`
/// (src/master/master.cpp) strips `allocation_info` from the offer and its
/// resources for a framework without MULTI_ROLE (MESOS-8237: such
/// schedulers compare resources whole). Its ACCEPT is completed with the
/// offer's role again (`validation::task_resources`).
fn as_seen_by(mut offer: Offer, multi_role: bool) -> Offer {
    if !multi_role {
        offer.allocation_info = None;
        for r in &mut offer.resources {
            r.allocation_info = None;
        }
    }
    offer
}

/// Where the offered agent answers, as Mesos's `Master::offer` fills
/// `Offer.url`: `http://<ip>:<port>/slave(1)` with the agent's hostname.
fn agent_url(info: &tepui_proto::v1::AgentInfo, address: Option<&str>) -> Url {
    let (ip, port) = address
        .and_then(|a| a.rsplit_once(':'))
        .map(|(ip, port)| (ip.to_string(), port.parse().unwrap_or(5051)))
        .unwrap_or_else(|| (info.hostname.clone(), info.port.unwrap_or(5051)));
    Url {
        scheme: "http".into(),
        address: Address {
            hostname: Some(info.hostname.clone()),
            ip: Some(ip),
            port,
        },
        path: Some("/slave(1)".into()),
        ..Default::default()
    }
}

impl Master {
    /// One allocation cycle: grants become offers, batched per framework.
    pub fn run_allocation(&mut self, now: Instant) -> usize {
        let start = Instant::now();
        let grants = self.allocator.allocate(now);
        let mut batches: HashMap<String, Vec<Offer>> = HashMap::new();
        for grant in grants {
            let Some(agent) = self.agents.get(&grant.agent_id) else {
                continue;
            };
            let executor_ids = agent
                .executors
                .keys()
                .filter(|(f, _)| *f == grant.framework_id)
                .map(|(_, e)| ExecutorId { value: e.clone() })
                .collect();
            let hostname = agent.info.hostname.clone();
            let url = agent_url(&agent.info, agent.address.as_deref());
            let attributes = agent.info.attributes.clone();
            let domain = agent.info.domain.clone();
            // `Master::offer`: offers from a machine scheduled for
            // maintenance say when it will be unavailable.
            let unavailability = self.agent_unavailability(&grant.agent_id);
            let id = self.new_offer_id();
            let offer = Offer {
                id: OfferId { value: id.clone() },
                framework_id: FrameworkId {
                    value: grant.framework_id.clone(),
                },
                agent_id: AgentId {
                    value: grant.agent_id.clone(),
                },
                hostname,
                url: Some(url),
                domain,
                resources: grant.resources,
                attributes,
                executor_ids,
                unavailability,
                allocation_info: Some(resource::AllocationInfo {
                    role: Some(grant.role.clone()),
                }),
            };
            if let Some(fw) = self.frameworks.get_mut(&grant.framework_id) {
                fw.offers.insert(id.clone());
            }
            self.offers.insert(
                id,
                OfferState {
                    offer: offer.clone(),
                    created: now,
                },
            );
            let multi_role = self
                .frameworks
                .get(&grant.framework_id)
                .is_some_and(|f| super::frameworks::has_capability(&f.info, Capability::MultiRole));
            batches
                .entry(grant.framework_id)
                .or_default()
                .push(as_seen_by(offer, multi_role));
        }
        let mut sent = 0;
        for (framework_id, offers) in batches {
            sent += offers.len();
            let ids: Vec<String> = offers.iter().map(|o| o.id.value.clone()).collect();
            let delivered = self.send_framework(
                &framework_id,
                Event {
                    r#type: Some(event::Type::Offers as i32),
                    offers: Some(event::Offers { offers }),
                    ..Default::default()
                },
            );
            if !delivered {
                for id in ids {
                    self.remove_offer(&id, None);
                }
            }
        }
        self.metrics.offers_sent += sent as u64;
        self.metrics.allocation_runs += 1;
        self.metrics.allocation_last_secs = start.elapsed().as_secs_f64();
        sent
    }

    /// Takes an offer out of the books and gives its resources back to the
    /// allocator, with an optional filter.
    pub fn remove_offer(&mut self, offer_id: &str, filter: Option<Duration>) -> Option<OfferState> {
        let state = self.offers.remove(offer_id)?;
        let framework_id = state.offer.framework_id.value.clone();
        if let Some(fw) = self.frameworks.get_mut(&framework_id) {
            fw.offers.remove(offer_id);
        }
        self.allocator.recover(
            &framework_id,
            &state.offer.agent_id.value,
            &state.resources(),
            filter,
            Instant::now(),
        );
        Some(state)
    }

    /// Rescinds an offer: RESCIND to the framework, resources back.
    pub fn rescind_offer(&mut self, offer_id: &str) {
        if let Some(state) = self.remove_offer(offer_id, None) {
            self.metrics.offers_rescinded += 1;
            self.send_framework(
                &state.offer.framework_id.value,
                Event {
                    r#type: Some(event::Type::Rescind as i32),
                    rescind: Some(event::Rescind {
                        offer_id: state.offer.id.clone(),
                    }),
                    ..Default::default()
                },
            );
        }
    }

    pub fn rescind_framework_offers(&mut self, framework_id: &str) {
        let ids: Vec<String> = self
            .frameworks
            .get(framework_id)
            .map(|f| f.offers.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.rescind_offer(&id);
        }
    }

    pub fn rescind_agent_offers(&mut self, agent_id: &str) {
        let ids: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.offer.agent_id.value == agent_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.rescind_offer(&id);
        }
    }

    /// Rescinds offers older than `--offer_timeout`.
    pub fn expire_offers(&mut self, now: Instant) {
        let Some(timeout) = self.config.offer_timeout else {
            return;
        };
        let old: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| now.duration_since(o.created) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in old {
            self.rescind_offer(&id);
        }
    }

    /// DECLINE: resources back with a filter.
    pub fn decline(
        &mut self,
        framework_id: &str,
        offer_ids: &[OfferId],
        filters: Option<&tepui_proto::v1::Filters>,
    ) {
        let filter = refuse_duration(filters);
        for id in offer_ids {
            let owned = self
                .offers
                .get(&id.value)
                .is_some_and(|o| o.offer.framework_id.value == framework_id);
            if owned && self.remove_offer(&id.value, filter).is_some() {
                self.metrics.offers_declined += 1;
            }
        }
    }

    /// Takes the offers an ACCEPT names. All must exist, belong to the
    /// framework and be on one agent; otherwise none is used and the valid
    /// ones go back to the allocator.
    pub fn take_offers(
        &mut self,
        framework_id: &str,
        offer_ids: &[OfferId],
    ) -> Result<(String, Resources), ApiError> {
        let mut error = None;
        let mut agent: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        if offer_ids.is_empty() {
            error = Some("no offer ids".to_string());
        }
        for id in offer_ids {
            if !seen.insert(id.value.clone()) {
                error = Some(format!("offer {} appears more than once", id.value));
                continue;
            }
            match self.offers.get(&id.value) {
                None => error = Some(format!("offer {} is no longer valid", id.value)),
                Some(o) if o.offer.framework_id.value != framework_id => {
                    error = Some(format!("offer {} belongs to another framework", id.value));
                }
                Some(o) => match &agent {
                    Some(a) if *a != o.offer.agent_id.value => {
                        error = Some("offers must all be on one agent".to_string());
                    }
                    _ => agent = Some(o.offer.agent_id.value.clone()),
                },
            }
        }
        if let Some(message) = error {
            for id in offer_ids {
                let owned = self
                    .offers
                    .get(&id.value)
                    .is_some_and(|o| o.offer.framework_id.value == framework_id);
                if owned {
                    self.remove_offer(&id.value, None);
                }
            }
            return Err(ApiError::bad_request(message));
        }
        let mut total = Resources::new();
        for id in offer_ids {
            if let Some(state) = self.offers.remove(&id.value) {
                if let Some(fw) = self.frameworks.get_mut(framework_id) {
                    fw.offers.remove(&id.value);
                }
                total += state.resources();
            }
        }
        Ok((agent.unwrap_or_default(), total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuse_seconds_defaults_and_bounds() {
        assert_eq!(refuse_duration(None), Some(Duration::from_secs(5)));
        let f = |s| tepui_proto::v1::Filters {
            refuse_seconds: Some(s),
        };
        assert_eq!(refuse_duration(Some(&f(0.0))), None);
        assert_eq!(refuse_duration(Some(&f(-1.0))), None);
        assert!(refuse_duration(Some(&f(f64::INFINITY))).is_some());
        assert_eq!(
            refuse_duration(Some(&f(1.5))),
            Some(Duration::from_millis(1500))
        );
    }
}
