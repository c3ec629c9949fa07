//! Maintenance primitives (Mesos's docs/maintenance.md): the operator's
//! schedule of machines going down, each machine's mode (UP, DRAINING,
//! DOWN), and what the modes do to agents and offers.
//!
//! Follows src/master/maintenance.cpp (validation, the registry
//! operations `UpdateSchedule` / `StartMaintenance` / `StopMaintenance`)
//! and src/master/http.cpp (`Master::Http::_updateMaintenanceSchedule`,
//! `_startMaintenance`, `_stopMaintenance`, `_getMaintenanceStatus`).
//! Every request is validated in full before anything changes, and the
//! registry is written before the answer, so a bad request leaves nothing
//! behind and a failover keeps what was answered 200.
//!
//! Inverse offers are not sent: DRAINING machines' offers carry their
//! `unavailability`, and the status lists no inverse offer responses.

use std::collections::{BTreeMap, HashMap};

use tepui_proto::link::{MasterEvent, master_event};
use tepui_proto::v1::machine_info::Mode;
use tepui_proto::v1::maintenance::{ClusterStatus, Schedule, cluster_status};
use tepui_proto::v1::{MachineId, MachineInfo, Unavailability};

use crate::error::ApiError;
use crate::registry::StoredMaintenance;
use crate::state::Master;

/// A machine as Mesos compares them (include/mesos/type_utils.hpp,
/// `operator==(MachineID)` and `hash<MachineID>`): the hostname without
/// case, the IP exactly, and a field that is set differs from one that is
/// not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineKey {
    hostname: Option<String>,
    ip: Option<String>,
}

impl MachineKey {
    pub fn of(id: &MachineId) -> Self {
        MachineKey {
            hostname: id.hostname.as_ref().map(|h| h.to_lowercase()),
            ip: id.ip.clone(),
        }
    }
}

/// The master's maintenance state: the schedule (Mesos keeps a list of
/// them but only ever one) and every machine that is not UP.
#[derive(Debug, Default)]
pub struct Maintenance {
    pub schedule: Option<Schedule>,
    pub machines: BTreeMap<MachineKey, MachineInfo>,
}

impl Maintenance {
    /// What the registry holds, read back (`Master::_recover` in
    /// src/master/master.cpp fills `maintenance.schedules` and `machines`
    /// from the registry). Entries that do not parse are logged and
    /// skipped rather than refusing to start.
    pub fn recover(stored: &StoredMaintenance) -> Self {
        let schedule = stored.schedule.as_ref().and_then(|v| {
            tepui_proto::json::from_value::<Schedule>(v)
                .map_err(
                    |e| tracing::error!(error = %e, "cannot read the stored maintenance schedule"),
                )
                .ok()
        });
        let machines = stored
            .machines
            .iter()
            .filter_map(|v| {
                tepui_proto::json::from_value::<MachineInfo>(v)
                    .map_err(|e| tracing::error!(error = %e, "cannot read a stored machine"))
                    .ok()
            })
            .map(|m| (MachineKey::of(&m.id), m))
            .collect();
        Maintenance { schedule, machines }
    }

    fn stored(&self) -> StoredMaintenance {
        StoredMaintenance {
            schedule: self.schedule.as_ref().map(tepui_proto::json::to_value),
            machines: self
                .machines
                .values()
                .map(tepui_proto::json::to_value)
                .collect(),
        }
    }

    pub fn mode(&self, key: &MachineKey) -> Mode {
        self.machines
            .get(key)
            .and_then(|m| m.mode)
            .and_then(|m| Mode::try_from(m).ok())
            .unwrap_or(Mode::Up)
    }
}

/// How Mesos names a machine in its errors: `stringify(JSON::protobuf(id))`.
fn name(id: &MachineId) -> String {
    tepui_proto::json::to_string(id)
}

/// `maintenance::validation::machine`: a hostname or an IP, and the IP a
/// valid IPv4 address.
pub fn validate_machine(id: &MachineId) -> Result<(), String> {
    let hostname = id.hostname.as_deref().unwrap_or_default();
    let ip = id.ip.as_deref().unwrap_or_default();
    if hostname.is_empty() && ip.is_empty() {
        return Err("Both 'hostname' and 'ip' for a machine are empty".into());
    }
    if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
        // stout's `net::IP::parse(ip, AF_INET)` error.
        return Err(format!("Failed to parse IPv4: {ip}"));
    }
    Ok(())
}

/// `maintenance::validation::machines`: a non-empty list of valid,
/// distinct machines.
pub fn validate_machines(ids: &[MachineId]) -> Result<(), String> {
    if ids.is_empty() {
        return Err("List of machines is empty".into());
    }
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        validate_machine(id)?;
        if !seen.insert(MachineKey::of(id)) {
            return Err(format!(
                "Machine '{}' appears more than once in the schedule",
                name(id)
            ));
        }
    }
    Ok(())
}

/// `maintenance::validation::unavailability`: the duration is not negative.
fn validate_unavailability(u: &Unavailability) -> Result<(), String> {
    if u.duration.as_ref().is_some_and(|d| d.nanoseconds < 0) {
        return Err("Unavailability 'duration' is negative".into());
    }
    Ok(())
}

/// `maintenance::validation::schedule`: every window names machines, each
/// valid and in one window only, with a valid unavailability; and no DOWN
/// machine leaves the schedule (that transition is STOP_MAINTENANCE's).
pub fn validate_schedule(
    schedule: &Schedule,
    machines: &BTreeMap<MachineKey, MachineInfo>,
) -> Result<(), String> {
    let mut updated = std::collections::HashSet::new();
    for window in &schedule.windows {
        if window.machine_ids.is_empty() {
            return Err("List of machines in the maintenance window is empty".into());
        }
        validate_unavailability(&window.unavailability)?;
        for id in &window.machine_ids {
            validate_machine(id)?;
            if !updated.insert(MachineKey::of(id)) {
                return Err(format!(
                    "Machine '{}' appears more than once in the schedule",
                    name(id)
                ));
            }
        }
    }
    for (key, machine) in machines {
        if machine.mode == Some(Mode::Down as i32) && !updated.contains(key) {
            return Err(format!(
                "Machine '{}' is deactivated and cannot be removed from the schedule",
                name(&machine.id)
            ));
        }
    }
    Ok(())
}

impl Master {
    /// The machine an agent runs on: its hostname and the IP it serves on,
    /// as Mesos builds it from `SlaveInfo.hostname` and the agent's pid
    /// (`Master::registerSlave`).
    pub fn agent_machine(&self, agent_id: &str) -> Option<MachineKey> {
        let agent = self.agents.get(agent_id)?;
        Some(MachineKey::of(&agent_machine_id(
            &agent.info.hostname,
            agent.address.as_deref(),
        )))
    }

    /// The unavailability offers of an agent carry (`Master::offer`: set
    /// when its machine has one, i.e. is scheduled for maintenance).
    pub fn agent_unavailability(&self, agent_id: &str) -> Option<Unavailability> {
        if self.maintenance.machines.is_empty() {
            return None;
        }
        let key = self.agent_machine(agent_id)?;
        self.maintenance
            .machines
            .get(&key)
            .and_then(|m| m.unavailability)
    }

    fn agents_on(&self, key: &MachineKey) -> Vec<String> {
        let mut ids: Vec<String> = self
            .agents
            .keys()
            .filter(|id| self.agent_machine(id).as_ref() == Some(key))
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// `Master::updateUnavailability`: the machine's agents' outstanding
    /// offers are rescinded so that frameworks learn the new unavailability
    /// with the next offers.
    fn unavailability_changed(&mut self, key: &MachineKey) {
        for agent in self.agents_on(key) {
            self.rescind_agent_offers(&agent);
        }
    }

    fn save_maintenance(&mut self) {
        self.registry.state.maintenance = self.maintenance.stored();
        self.registry.save();
        self.registry.flush();
    }

    /// UPDATE_MAINTENANCE_SCHEDULE and `POST /master/maintenance/schedule`
    /// (`Master::Http::___updateMaintenanceSchedule`): machines new to the
    /// schedule go DRAINING, machines that left it go back UP, the others
    /// keep their mode and take their window's unavailability.
    pub fn update_maintenance_schedule(
        &mut self,
        schedule: Schedule,
        authorize: impl Fn(&MachineId) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        validate_schedule(&schedule, &self.maintenance.machines).map_err(ApiError::bad_request)?;
        for id in schedule.windows.iter().flat_map(|w| &w.machine_ids) {
            authorize(id)?;
        }
        let mut windows: HashMap<MachineKey, (MachineId, Unavailability)> = HashMap::new();
        for window in &schedule.windows {
            for id in &window.machine_ids {
                windows.insert(MachineKey::of(id), (id.clone(), window.unavailability));
            }
        }
        let mut changed = Vec::new();
        let existing: Vec<MachineKey> = self.maintenance.machines.keys().cloned().collect();
        for key in existing {
            match windows.remove(&key) {
                Some((_, unavailability)) => {
                    if let Some(m) = self.maintenance.machines.get_mut(&key) {
                        m.unavailability = Some(unavailability);
                    }
                }
                None => {
                    self.maintenance.machines.remove(&key);
                }
            }
            changed.push(key);
        }
        for (key, (id, unavailability)) in windows {
            self.maintenance.machines.insert(
                key.clone(),
                MachineInfo {
                    id,
                    mode: Some(Mode::Draining as i32),
                    unavailability: Some(unavailability),
                },
            );
            changed.push(key);
        }
        self.maintenance.schedule = (!schedule.windows.is_empty()).then_some(schedule);
        self.save_maintenance();
        for key in changed {
            self.unavailability_changed(&key);
        }
        tracing::info!(
            machines = self.maintenance.machines.len(),
            "maintenance schedule updated"
        );
        Ok(())
    }

    /// The checks START and STOP_MAINTENANCE share, in Mesos's order
    /// (`Master::Http::_startMaintenance` / `_stopMaintenance`): valid ids,
    /// each scheduled and in `from` mode, each authorized; nothing changes
    /// until all pass.
    fn check_transition(
        &self,
        ids: &[MachineId],
        from: Mode,
        from_name: &str,
        direction: &str,
        authorize: &impl Fn(&MachineId) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        validate_machines(ids).map_err(ApiError::bad_request)?;
        for id in ids {
            let key = MachineKey::of(id);
            if !self.maintenance.machines.contains_key(&key) {
                return Err(ApiError::bad_request(format!(
                    "Machine '{}' is not part of a maintenance schedule",
                    name(id)
                )));
            }
            if self.maintenance.mode(&key) != from {
                return Err(ApiError::bad_request(format!(
                    "Machine '{}' is not in {from_name} mode and cannot be brought {direction}",
                    name(id)
                )));
            }
            authorize(id)?;
        }
        Ok(())
    }

    /// START_MAINTENANCE and `POST /master/machine/down`
    /// (`Master::Http::_startMaintenance`): scheduled DRAINING machines go
    /// DOWN; their agents are told to shut down and removed, their tasks
    /// LOST (`Master::removeSlave`), and may not register again while the
    /// machine is DOWN.
    pub fn start_maintenance(
        &mut self,
        ids: &[MachineId],
        authorize: impl Fn(&MachineId) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        self.check_transition(ids, Mode::Draining, "DRAINING", "down", &authorize)?;
        let keys: Vec<MachineKey> = ids.iter().map(MachineKey::of).collect();
        for key in &keys {
            if let Some(m) = self.maintenance.machines.get_mut(key) {
                m.mode = Some(Mode::Down as i32);
            }
        }
        self.save_maintenance();
        for key in &keys {
            for agent in self.agents_on(key) {
                self.machine_down(&agent);
            }
        }
        Ok(())
    }

    /// One agent of a machine going DOWN. Mesos sends the agent a
    /// `ShutdownMessage` (it shuts down every framework's executors) and
    /// removes it at once (`Master::Http::_startMaintenance`). The link
    /// has no such message: each framework on the agent is shut down, the
    /// agent is told it is refused (ERROR), then removed.
    fn machine_down(&mut self, agent_id: &str) {
        const MESSAGE: &str = "Operator initiated 'Machine DOWN'";
        tracing::info!(agent = %agent_id, "{MESSAGE}");
        let mut frameworks: Vec<String> = self
            .agents
            .get(agent_id)
            .map(|a| {
                a.tasks
                    .keys()
                    .map(|(f, _)| f.clone())
                    .chain(a.executors.keys().map(|(f, _)| f.clone()))
                    .collect()
            })
            .unwrap_or_default();
        frameworks.sort();
        frameworks.dedup();
        for fid in frameworks {
            self.send_agent(
                agent_id,
                MasterEvent {
                    r#type: Some(master_event::Type::ShutdownFramework as i32),
                    shutdown_framework: Some(master_event::ShutdownFramework {
                        framework_id: tepui_proto::v1::FrameworkId { value: fid },
                    }),
                    ..Default::default()
                },
            );
        }
        self.send_agent(
            agent_id,
            MasterEvent {
                r#type: Some(master_event::Type::Error as i32),
                error: Some(master_event::Error {
                    message: MESSAGE.into(),
                }),
                ..Default::default()
            },
        );
        self.remove_agent_by_master(agent_id, MESSAGE);
    }

    /// STOP_MAINTENANCE and `POST /master/machine/up`
    /// (`Master::Http::_stopMaintenance`): DOWN machines go back UP and
    /// leave the schedule (a window left empty goes, as does an empty
    /// schedule).
    pub fn stop_maintenance(
        &mut self,
        ids: &[MachineId],
        authorize: impl Fn(&MachineId) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        self.check_transition(ids, Mode::Down, "DOWN", "up", &authorize)?;
        let keys: std::collections::HashSet<MachineKey> = ids.iter().map(MachineKey::of).collect();
        for key in &keys {
            self.maintenance.machines.remove(key);
        }
        if let Some(schedule) = &mut self.maintenance.schedule {
            for window in &mut schedule.windows {
                window
                    .machine_ids
                    .retain(|id| !keys.contains(&MachineKey::of(id)));
            }
            schedule.windows.retain(|w| !w.machine_ids.is_empty());
            if schedule.windows.is_empty() {
                self.maintenance.schedule = None;
            }
        }
        self.save_maintenance();
        Ok(())
    }

    /// GET_MAINTENANCE_SCHEDULE (`Master::Http::_getMaintenanceSchedule`):
    /// the schedule with the machines `principal` may see, windows left
    /// empty dropped.
    pub fn maintenance_schedule(&self, visible: impl Fn(&MachineId) -> bool) -> Schedule {
        let mut schedule = self.maintenance.schedule.clone().unwrap_or_default();
        for window in &mut schedule.windows {
            window.machine_ids.retain(&visible);
        }
        schedule.windows.retain(|w| !w.machine_ids.is_empty());
        schedule
    }

    /// GET_MAINTENANCE_STATUS (`Master::Http::_getMaintenanceStatus`):
    /// DRAINING and DOWN machines. Without inverse offers a draining
    /// machine has no framework responses to list.
    pub fn maintenance_status(&self, visible: impl Fn(&MachineId) -> bool) -> ClusterStatus {
        let mut status = ClusterStatus::default();
        for machine in self.maintenance.machines.values() {
            if !visible(&machine.id) {
                continue;
            }
            match machine.mode.and_then(|m| Mode::try_from(m).ok()) {
                Some(Mode::Draining) => {
                    status
                        .draining_machines
                        .push(cluster_status::DrainingMachine {
                            id: machine.id.clone(),
                            statuses: Vec::new(),
                        });
                }
                Some(Mode::Down) => status.down_machines.push(machine.id.clone()),
                _ => {}
            }
        }
        status
    }
}

/// The machine of an agent with this hostname serving on `address`
/// (`ip:port`); an agent that gave no address has an empty IP.
pub fn agent_machine_id(hostname: &str, address: Option<&str>) -> MachineId {
    let ip = address
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    MachineId {
        hostname: Some(hostname.to_string()),
        ip: Some(ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::v1::maintenance::Window;
    use tepui_proto::v1::{DurationInfo, TimeInfo};

    fn machine(hostname: &str, ip: &str) -> MachineId {
        MachineId {
            hostname: (!hostname.is_empty()).then(|| hostname.to_string()),
            ip: (!ip.is_empty()).then(|| ip.to_string()),
        }
    }

    fn window(ids: Vec<MachineId>, duration: i64) -> Window {
        Window {
            machine_ids: ids,
            unavailability: Unavailability {
                start: TimeInfo { nanoseconds: 1 },
                duration: Some(DurationInfo {
                    nanoseconds: duration,
                }),
            },
        }
    }

    #[test]
    fn machines_compare_as_mesos_does() {
        assert_eq!(
            MachineKey::of(&machine("Host", "10.0.0.1")),
            MachineKey::of(&machine("host", "10.0.0.1"))
        );
        assert_ne!(
            MachineKey::of(&machine("host", "")),
            MachineKey::of(&machine("host", "10.0.0.1"))
        );
    }

    #[test]
    fn schedules_are_validated_as_mesos_does() {
        let none = BTreeMap::new();
        let ok = Schedule {
            windows: vec![window(vec![machine("a", "10.0.0.1")], 10)],
        };
        assert_eq!(validate_schedule(&ok, &none), Ok(()));
        let cases = [
            (
                window(vec![], 1),
                "List of machines in the maintenance window is empty",
            ),
            (
                window(vec![machine("a", "")], -1),
                "Unavailability 'duration' is negative",
            ),
            (
                window(vec![machine("", "")], 1),
                "Both 'hostname' and 'ip' for a machine are empty",
            ),
            (
                window(vec![machine("a", "10.0.0.300")], 1),
                "Failed to parse IPv4: 10.0.0.300",
            ),
            (
                window(vec![machine("a", ""), machine("A", "")], 1),
                "Machine '{\"hostname\":\"A\"}' appears more than once in the schedule",
            ),
        ];
        for (w, error) in cases {
            let s = Schedule { windows: vec![w] };
            assert_eq!(validate_schedule(&s, &none), Err(error.to_string()));
        }
        let mut down = BTreeMap::new();
        let id = machine("b", "");
        down.insert(
            MachineKey::of(&id),
            MachineInfo {
                id,
                mode: Some(Mode::Down as i32),
                unavailability: None,
            },
        );
        assert_eq!(
            validate_schedule(&ok, &down),
            Err(
                "Machine '{\"hostname\":\"b\"}' is deactivated and cannot be removed from the schedule"
                    .into()
            )
        );
        assert_eq!(
            validate_machines(&[]),
            Err("List of machines is empty".into())
        );
    }

    /// The three calls on a master with a registry in a work dir, as the
    /// operator API drives them: a refused authorization or bad input
    /// changes nothing, in memory or on disk; what was answered is in the
    /// registry a restarted master reads back.
    #[test]
    fn calls_change_state_and_registry_only_when_accepted() {
        use crate::config::{AuthConfig, MasterConfig};
        use crate::registry::Registry;
        use tepui_proto::auth::{Acls, Action};

        let dir = tempfile::tempdir().expect("tempdir");
        let auth = AuthConfig {
            acls: Acls::parse(
                r#"{"permissive": false,
                    "update_maintenance_schedules": [{"principals": {"values": ["ops"]}, "machines": {"type": "ANY"}}],
                    "start_maintenances": [{"principals": {"values": ["ops"]}, "machines": {"type": "ANY"}}],
                    "stop_maintenances": [{"principals": {"values": ["ops"]}, "machines": {"type": "ANY"}}]}"#,
            )
            .expect("acls"),
            ..Default::default()
        };
        let mut master = Master::new(
            MasterConfig::default(),
            Registry::open(dir.path()).expect("registry"),
        );
        let stored = |dir: &std::path::Path| Registry::open(dir).expect("reopen").state.maintenance;
        let as_ = |who: &'static str, action: Action| {
            let auth = auth.clone();
            move |_: &MachineId| auth.authorize(action, Some(who), None)
        };
        let id = machine("host-1", "10.0.0.1");
        let schedule = Schedule {
            windows: vec![window(vec![id.clone()], 10)],
        };

        let refused = master
            .update_maintenance_schedule(
                schedule.clone(),
                as_("dev", Action::UpdateMaintenanceSchedules),
            )
            .expect_err("dev may not");
        assert_eq!(refused.status, 403);
        assert!(master.maintenance.machines.is_empty());
        assert_eq!(stored(dir.path()), StoredMaintenance::default());

        master
            .update_maintenance_schedule(
                schedule.clone(),
                as_("ops", Action::UpdateMaintenanceSchedules),
            )
            .expect("ops may");
        assert_eq!(
            master.maintenance.mode(&MachineKey::of(&id)),
            Mode::Draining
        );
        let status = master.maintenance_status(|_| true);
        assert_eq!(status.draining_machines.len(), 1);
        assert!(
            master
                .maintenance_status(|_| false)
                .draining_machines
                .is_empty()
        );

        let bad = master
            .stop_maintenance(
                std::slice::from_ref(&id),
                as_("ops", Action::StopMaintenances),
            )
            .expect_err("not DOWN");
        assert_eq!(bad.status, 400);
        let refused = master
            .start_maintenance(
                std::slice::from_ref(&id),
                as_("dev", Action::StartMaintenances),
            )
            .expect_err("dev may not");
        assert_eq!(refused.status, 403);
        assert_eq!(
            master.maintenance.mode(&MachineKey::of(&id)),
            Mode::Draining
        );
        master
            .start_maintenance(
                std::slice::from_ref(&id),
                as_("ops", Action::StartMaintenances),
            )
            .expect("down");

        // A restarted master reads the same schedule and modes back.
        let again = Maintenance::recover(&stored(dir.path()));
        assert_eq!(again.schedule, Some(schedule));
        assert_eq!(again.mode(&MachineKey::of(&id)), Mode::Down);

        master
            .stop_maintenance(
                std::slice::from_ref(&id),
                as_("ops", Action::StopMaintenances),
            )
            .expect("up");
        let again = Maintenance::recover(&stored(dir.path()));
        assert_eq!(again.schedule, None);
        assert!(again.machines.is_empty());
    }
}
