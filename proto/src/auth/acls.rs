//! Mesos's ACL JSON (`--acls`) and its local authorizer's rule: the first
//! rule whose subject and object both match decides; none matching falls
//! back to `permissive` (default true).

use std::collections::HashMap;

use super::AuthError;

macro_rules! actions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// An action an ACL rule can govern, named as in Mesos's `ACLs`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &[Action] = &[$(Action::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }

            pub fn parse(name: &str) -> Option<Action> {
                match name { $($name => Some(Action::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    RegisterFrameworks => "register_frameworks",
    RunTasks => "run_tasks",
    TeardownFrameworks => "teardown_frameworks",
    ReserveResources => "reserve_resources",
    UnreserveResources => "unreserve_resources",
    CreateVolumes => "create_volumes",
    DestroyVolumes => "destroy_volumes",
    ResizeVolume => "resize_volumes",
    ModifyResourceProviderConfigs => "modify_resource_provider_configs",
    MarkResourceProvidersGone => "mark_resource_providers_gone",
    SetQuotas => "set_quotas",
    UpdateQuotas => "update_quotas",
    GetQuotas => "get_quotas",
    UpdateWeights => "update_weights",
    ViewRoles => "view_roles",
    ViewFrameworks => "view_frameworks",
    ViewTasks => "view_tasks",
    ViewExecutors => "view_executors",
    AccessSandboxes => "access_sandboxes",
    AccessMesosLogs => "access_mesos_logs",
    GetEndpoints => "get_endpoints",
    ViewFlags => "view_flags",
    LaunchNestedContainers => "launch_nested_containers",
    LaunchNestedContainerSessions => "launch_nested_container_sessions",
    AttachContainersInput => "attach_containers_input",
    AttachContainersOutput => "attach_containers_output",
    KillNestedContainers => "kill_nested_containers",
    RemoveNestedContainers => "remove_nested_containers",
    WaitNestedContainers => "wait_nested_containers",
    LaunchStandaloneContainers => "launch_standalone_containers",
    KillStandaloneContainers => "kill_standalone_containers",
    WaitStandaloneContainers => "wait_standalone_containers",
    RemoveStandaloneContainers => "remove_standalone_containers",
    MarkAgentsGone => "mark_agents_gone",
    UpdateMaintenanceSchedules => "update_maintenance_schedules",
    GetMaintenanceSchedules => "get_maintenance_schedules",
    StartMaintenances => "start_maintenances",
    StopMaintenances => "stop_maintenances",
    GetMaintenanceStatuses => "get_maintenance_statuses",
    DrainAgents => "drain_agents",
    RegisterAgents => "register_agents",
    SetLogLevel => "set_log_level",
}

/// `{"values":[..]}` or `{"type":"ANY"|"NONE"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Any,
    None,
    Some(Vec<String>),
}

impl Entity {
    fn parse(value: &serde_json::Value) -> Result<Entity, AuthError> {
        let bad = |m: String| AuthError::Acls(m);
        if let Some(values) = value.get("values") {
            let values = values
                .as_array()
                .ok_or_else(|| bad(format!("'values' must be a list: {value}")))?
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("'values' must be strings: {value}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Entity::Some(values));
        }
        match value.get("type").and_then(|t| t.as_str()) {
            Some("ANY") | None => Ok(Entity::Any),
            Some("NONE") => Ok(Entity::None),
            Some(other) => Err(bad(format!("unknown entity type '{other}'"))),
        }
    }

    /// Does a rule with this entity apply to the request (`None`: the
    /// request names nobody, which Mesos treats as ANY)?
    fn matches(&self, request: Option<&str>) -> bool {
        match (request, self) {
            (None, Entity::Some(_)) => false,
            (None, _) => true,
            (Some(v), Entity::Some(values)) => values.iter().any(|x| x == v),
            (Some(_), _) => true,
        }
    }

    /// Does a matching rule with this entity allow the request?
    fn allows(&self, request: Option<&str>) -> bool {
        match (request, self) {
            (_, Entity::None) => false,
            (None, Entity::Some(_)) => false,
            (_, Entity::Any) => true,
            (Some(v), Entity::Some(values)) => values.iter().any(|x| x == v),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub principals: Entity,
    pub objects: Entity,
}

/// Parsed `--acls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acls {
    pub permissive: bool,
    pub rules: HashMap<Action, Vec<Rule>>,
}

impl Default for Acls {
    fn default() -> Self {
        Acls {
            permissive: true,
            rules: HashMap::new(),
        }
    }
}

impl Acls {
    pub fn parse(text: &str) -> Result<Acls, AuthError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| AuthError::Acls(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| AuthError::Acls("expected a JSON object".into()))?;
        let mut acls = Acls::default();
        for (key, value) in object {
            if key == "permissive" {
                acls.permissive = value
                    .as_bool()
                    .ok_or_else(|| AuthError::Acls("'permissive' must be a boolean".into()))?;
                continue;
            }
            if key == "fetch_endpoints" {
                continue;
            }
            let action = Action::parse(key)
                .ok_or_else(|| AuthError::Acls(format!("unknown ACL '{key}'")))?;
            let list = value
                .as_array()
                .ok_or_else(|| AuthError::Acls(format!("'{key}' must be a list")))?;
            let mut rules = Vec::new();
            for rule in list {
                let fields = rule
                    .as_object()
                    .ok_or_else(|| AuthError::Acls(format!("'{key}' entries must be objects")))?;
                let principals = match fields.get("principals") {
                    Some(p) => Entity::parse(p)?,
                    None => Entity::Any,
                };
                let objects = match fields.iter().find(|(k, _)| *k != "principals") {
                    Some((_, o)) => Entity::parse(o)?,
                    None => Entity::Any,
                };
                rules.push(Rule {
                    principals,
                    objects,
                });
            }
            acls.rules.insert(action, rules);
        }
        Ok(acls)
    }

    /// May `principal` do `action` on `object`? `None` for either stands
    /// for "anyone"/"anything" as in Mesos.
    pub fn authorize(&self, action: Action, principal: Option<&str>, object: Option<&str>) -> bool {
        authorize(self, action, principal, object)
    }
}

/// The local authorizer's decision.
pub fn authorize(
    acls: &Acls,
    action: Action,
    principal: Option<&str>,
    object: Option<&str>,
) -> bool {
    for rule in acls.rules.get(&action).map(Vec::as_slice).unwrap_or(&[]) {
        if rule.principals.matches(principal) && rule.objects.matches(object) {
            return rule.principals.allows(principal) && rule.objects.allows(object);
        }
    }
    acls.permissive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_decides() {
        let acls = Acls::parse(
            r#"{"permissive": false,
                "register_frameworks": [
                  {"principals": {"values": ["a"]}, "roles": {"values": ["dev"]}},
                  {"principals": {"values": ["b"]}, "roles": {"type": "NONE"}},
                  {"principals": {"type": "ANY"}, "roles": {"values": ["public"]}}
                ],
                "teardown_frameworks": [
                  {"principals": {"values": ["ops"]}, "framework_principals": {"type": "ANY"}}
                ]}"#,
        )
        .unwrap();
        let reg = Action::RegisterFrameworks;
        assert!(acls.authorize(reg, Some("a"), Some("dev")));
        assert!(!acls.authorize(reg, Some("a"), Some("prod")));
        assert!(!acls.authorize(reg, Some("b"), Some("public")));
        assert!(acls.authorize(reg, Some("c"), Some("public")));
        assert!(!acls.authorize(reg, Some("c"), Some("dev")));
        assert!(acls.authorize(Action::TeardownFrameworks, Some("ops"), Some("x")));
        assert!(!acls.authorize(Action::TeardownFrameworks, Some("c"), Some("x")));
        assert!(!acls.authorize(Action::ViewTasks, Some("c"), None));
        assert!(Acls::default().authorize(Action::ViewTasks, None, None));
        assert!(Acls::parse(r#"{"nope": []}"#).is_err());
    }
}
