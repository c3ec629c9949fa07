//! The `mesos.internal` messages libmesos's drivers exchange over
//! libprocess (src/messages/messages.proto), written by hand as prost
//! messages whose fields embed the v1 types: the v0 package `mesos` and
//! `mesos.v1` use the same field numbers for every type these carry
//! (`SlaveID` is `AgentID`, `TaskInfo.slave_id` is `agent_id`, field 3),
//! so the bytes are the same. `required` fields are always encoded: the
//! drivers' generated code refuses a message that lacks one.

use crate::v1::{
    AgentId, AgentInfo, ExecutorId, ExecutorInfo, Filters, FrameworkId, FrameworkInfo, KillPolicy,
    MasterInfo, Offer, OfferId, TaskId, TaskInfo, TaskStatus,
};

/// The prefix of every message name (libprocess names a message by its
/// protobuf type: `mesos.internal.RegisterFrameworkMessage`).
pub const PREFIX: &str = "mesos.internal.";

/// `mesos.scheduler.Call`, what Mesos 1.x's libmesos sends instead of the
/// old messages (src/sched/sched.cpp sends a `Call` to the master's pid).
pub const SCHEDULER_CALL: &str = "mesos.scheduler.Call";

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusUpdate {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
    #[prost(message, optional, tag = "2")]
    pub executor_id: Option<ExecutorId>,
    #[prost(message, optional, tag = "3")]
    pub slave_id: Option<AgentId>,
    #[prost(message, required, tag = "4")]
    pub status: TaskStatus,
    #[prost(double, required, tag = "5")]
    pub timestamp: f64,
    #[prost(bytes = "bytes", optional, tag = "6")]
    pub uuid: Option<bytes::Bytes>,
    #[prost(int32, optional, tag = "7")]
    pub latest_state: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutorToFrameworkMessage {
    #[prost(message, required, tag = "1")]
    pub slave_id: AgentId,
    #[prost(message, required, tag = "2")]
    pub framework_id: FrameworkId,
    #[prost(message, required, tag = "3")]
    pub executor_id: ExecutorId,
    #[prost(bytes = "bytes", required, tag = "4")]
    pub data: bytes::Bytes,
}

/// Same fields as [`ExecutorToFrameworkMessage`], the other way.
pub type FrameworkToExecutorMessage = ExecutorToFrameworkMessage;

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterFrameworkMessage {
    #[prost(message, required, tag = "1")]
    pub framework: FrameworkInfo,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReregisterFrameworkMessage {
    #[prost(message, required, tag = "2")]
    pub framework: FrameworkInfo,
    #[prost(bool, required, tag = "3")]
    pub failover: bool,
}

/// Also `FrameworkReregisteredMessage` (same fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FrameworkRegisteredMessage {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
    #[prost(message, required, tag = "2")]
    pub master_info: MasterInfo,
}

/// Also `DeactivateFrameworkMessage` (same field).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnregisterFrameworkMessage {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceOffersMessage {
    #[prost(message, repeated, tag = "1")]
    pub offers: Vec<Offer>,
    #[prost(string, repeated, tag = "2")]
    pub pids: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchTasksMessage {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
    #[prost(message, repeated, tag = "3")]
    pub tasks: Vec<TaskInfo>,
    #[prost(message, optional, tag = "5")]
    pub filters: Option<Filters>,
    #[prost(message, repeated, tag = "6")]
    pub offer_ids: Vec<OfferId>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RescindResourceOfferMessage {
    #[prost(message, required, tag = "1")]
    pub offer_id: OfferId,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReviveOffersMessage {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
    #[prost(string, repeated, tag = "2")]
    pub roles: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KillTaskMessage {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
    #[prost(message, required, tag = "2")]
    pub task_id: TaskId,
    #[prost(message, optional, tag = "3")]
    pub kill_policy: Option<KillPolicy>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusUpdateMessage {
    #[prost(message, required, tag = "1")]
    pub update: StatusUpdate,
    #[prost(string, optional, tag = "2")]
    pub pid: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusUpdateAcknowledgementMessage {
    #[prost(message, required, tag = "1")]
    pub slave_id: AgentId,
    #[prost(message, required, tag = "2")]
    pub framework_id: FrameworkId,
    #[prost(message, required, tag = "3")]
    pub task_id: TaskId,
    #[prost(bytes = "bytes", required, tag = "4")]
    pub uuid: bytes::Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LostSlaveMessage {
    #[prost(message, required, tag = "1")]
    pub slave_id: AgentId,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReconcileTasksMessage {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<TaskStatus>,
    #[prost(message, optional, tag = "3")]
    pub framework: Option<FrameworkInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FrameworkErrorMessage {
    #[prost(string, required, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExitedExecutorMessage {
    #[prost(message, required, tag = "1")]
    pub slave_id: AgentId,
    #[prost(message, required, tag = "2")]
    pub framework_id: FrameworkId,
    #[prost(message, required, tag = "3")]
    pub executor_id: ExecutorId,
    #[prost(int32, required, tag = "4")]
    pub status: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterExecutorMessage {
    #[prost(message, required, tag = "1")]
    pub framework_id: FrameworkId,
    #[prost(message, required, tag = "2")]
    pub executor_id: ExecutorId,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutorRegisteredMessage {
    #[prost(message, required, tag = "2")]
    pub executor_info: ExecutorInfo,
    #[prost(message, required, tag = "3")]
    pub framework_id: FrameworkId,
    #[prost(message, required, tag = "4")]
    pub framework_info: FrameworkInfo,
    #[prost(message, required, tag = "5")]
    pub slave_id: AgentId,
    #[prost(message, required, tag = "6")]
    pub slave_info: AgentInfo,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutorReregisteredMessage {
    #[prost(message, required, tag = "1")]
    pub slave_id: AgentId,
    #[prost(message, required, tag = "2")]
    pub slave_info: AgentInfo,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReconnectExecutorMessage {
    #[prost(message, required, tag = "1")]
    pub slave_id: AgentId,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReregisterExecutorMessage {
    #[prost(message, required, tag = "1")]
    pub executor_id: ExecutorId,
    #[prost(message, required, tag = "2")]
    pub framework_id: FrameworkId,
    #[prost(message, repeated, tag = "3")]
    pub tasks: Vec<TaskInfo>,
    #[prost(message, repeated, tag = "4")]
    pub updates: Vec<StatusUpdate>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunTaskMessage {
    #[prost(message, optional, tag = "1")]
    pub framework_id: Option<FrameworkId>,
    #[prost(message, required, tag = "2")]
    pub framework: FrameworkInfo,
    #[prost(message, required, tag = "4")]
    pub task: TaskInfo,
    #[prost(string, optional, tag = "3")]
    pub pid: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ShutdownExecutorMessage {
    #[prost(message, optional, tag = "1")]
    pub executor_id: Option<ExecutorId>,
    #[prost(message, optional, tag = "2")]
    pub framework_id: Option<FrameworkId>,
}

/// A v0 `mesos.scheduler.Call` read for its SUBSCRIBE
/// (include/mesos/scheduler/scheduler.proto): the v0 `Call.Subscribe` has
/// `force` as field 2 and `suppressed_roles` as field 3, where v1 has
/// `suppressed_roles` as field 2, so a SUBSCRIBE is not read as a v1
/// `Call`. Every other field of `Call` is numbered alike.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeCall {
    #[prost(message, optional, tag = "1")]
    pub framework_id: Option<FrameworkId>,
    #[prost(int32, optional, tag = "2")]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "3")]
    pub subscribe: Option<Subscribe>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Subscribe {
    #[prost(message, required, tag = "1")]
    pub framework_info: FrameworkInfo,
    #[prost(bool, optional, tag = "2")]
    pub force: Option<bool>,
    #[prost(string, repeated, tag = "3")]
    pub suppressed_roles: Vec<String>,
}

/// A libprocess process id, `name@ip:port` (3rdparty/libprocess/src/pid.cpp,
/// `UPID::UPID(const std::string&)`: the id is what precedes the last
/// `@`, the rest must be an IPv4 address and a port).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upid {
    pub id: String,
    pub addr: std::net::SocketAddrV4,
}

impl std::str::FromStr for Upid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (id, addr) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("'{s}' is not a pid: no '@'"))?;
        if id.is_empty() || id.contains('/') || id.chars().any(char::is_whitespace) {
            return Err(format!("'{s}' is not a pid: bad process id '{id}'"));
        }
        let addr = addr
            .parse()
            .map_err(|e| format!("'{s}' is not a pid: '{addr}': {e}"))?;
        Ok(Upid {
            id: id.to_string(),
            addr,
        })
    }
}

impl std::fmt::Display for Upid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn pids_parse_as_libprocess_does() {
        let pid: Upid = "scheduler(1)@127.0.0.1:5051".parse().unwrap();
        assert_eq!(pid.id, "scheduler(1)");
        assert_eq!(pid.addr.port(), 5051);
        assert_eq!(pid.to_string(), "scheduler(1)@127.0.0.1:5051");
        for bad in [
            "",
            "scheduler(1)",
            "@1.2.3.4:5",
            "a@host:5",
            "a@1.2.3.4",
            "a/b@1.2.3.4:5",
        ] {
            assert!(bad.parse::<Upid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn required_fields_are_encoded_even_when_default() {
        let m = FrameworkErrorMessage {
            message: String::new(),
        };
        // Field 2, length-delimited, empty.
        assert_eq!(m.encode_to_vec(), vec![0x12, 0x00]);
        let m = ReregisterFrameworkMessage {
            framework: FrameworkInfo::default(),
            failover: false,
        };
        let back = ReregisterFrameworkMessage::decode(&m.encode_to_vec()[..]).unwrap();
        assert!(!back.failover);
    }
}
