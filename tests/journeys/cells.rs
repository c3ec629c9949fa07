//! The journey matrix: which cells run, what each task does, and the Mesos
//! JSON (TaskInfo / ExecutorInfo) a scheduler sends for it.

use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// pymesos from PyPI: JSON codec.
    Pymesos,
    /// mesos-go api/v1: protobuf codec.
    MesosGo,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Pymesos => "pymesos",
            Client::MesosGo => "mesos-go",
        }
    }
    pub fn codec(self) -> &'static str {
        match self {
            Client::Pymesos => "json",
            Client::MesosGo => "protobuf",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// LAUNCH: a command task (command executor).
    Task,
    /// LAUNCH_GROUP: a task group under the default executor.
    Group,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    Host,
    /// busybox:latest (OCI manifest), by tag.
    Tag,
    /// busybox@sha256:... (OCI manifest), by digest.
    Digest,
    /// busybox:v2s2 (Docker schema2 manifest).
    V2s2,
    /// multi:latest, a multi-arch OCI index (the host's platform is picked).
    Index,
    /// A reference that must fail; `why` is shown in the table.
    Bad {
        reference: String,
        why: &'static str,
    },
}

impl Image {
    pub fn label(&self) -> String {
        match self {
            Image::Host => "host".into(),
            Image::Tag => "tag".into(),
            Image::Digest => "digest".into(),
            Image::V2s2 => "v2s2".into(),
            Image::Index => "index".into(),
            Image::Bad { why, .. } => format!("bad:{why}"),
        }
    }
    pub fn is_image(&self) -> bool {
        *self != Image::Host
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exit0,
    Exit3,
    /// Allocates past its memory limit.
    Oom,
    /// The framework sends KILL once the task reported itself.
    Kill,
    /// The agent is SIGKILLed and restarted while the task runs; the task
    /// then finishes.
    AgentRestart,
    /// The image cannot be had: the launch fails.
    BadImage,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Exit0 => "exit 0",
            Outcome::Exit3 => "exit 3",
            Outcome::Oom => "OOM",
            Outcome::Kill => "KILL",
            Outcome::AgentRestart => "agent restart",
            Outcome::BadImage => "bad image",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub id: String,
    pub image: Image,
    pub mem: f64,
    /// `limits.mem` (JSON clients only); `f64::INFINITY` for "Infinity".
    pub limit_mem: Option<f64>,
    /// `limits.cpus: "Infinity"` (JSON clients only).
    pub unlimited_cpus: bool,
    pub uris: bool,
    /// The subject carries the cell's outcome; siblings sleep until the
    /// group ends them (or finish with it when the outcome is a success).
    pub subject: bool,
}

#[derive(Clone, Debug)]
pub struct Cell {
    pub name: String,
    pub client: Client,
    pub launch: Launch,
    /// `container.linux_info.share_cgroups`; None leaves it unset (Mesos's
    /// default, true): mesos-go 0.0.6 predates the field.
    pub share_cgroups: Option<bool>,
    pub outcome: Outcome,
    pub tasks: Vec<TaskSpec>,
    pub executor_mem: f64,
}

/// What the test serves and where the images live.
pub struct Env {
    pub registry: String,
    pub busybox_digest: String,
    pub payload_url: String,
    /// A loopback port nothing listens on.
    pub closed_port: u16,
    /// Tag of an index that has no manifest for this host's platform.
    pub foreign_tag: String,
}

pub const COMMAND_EXECUTOR_MEM: f64 = 32.0;
pub const GROUP_EXECUTOR_MEM: f64 = 32.0;
/// The fetched archive holds `journey-payload/hello.txt` with this text.
pub const PAYLOAD_TEXT: &str = "journey payload v1";

const MIB: f64 = 1024.0 * 1024.0;

impl Cell {
    /// A group's subject that would end the group (exit 3, OOM) waits for
    /// `journey-go` in its sandbox, which the test writes once every task
    /// reported itself: a sibling is never killed mid-report.
    pub fn subject_waits(&self) -> bool {
        self.launch == Launch::Group && matches!(self.outcome, Outcome::Exit3 | Outcome::Oom)
    }

    pub fn image_label(&self) -> String {
        let mut labels: Vec<String> = self.tasks.iter().map(|t| t.image.label()).collect();
        labels.dedup();
        labels.join("+")
    }
    pub fn share_label(&self) -> &'static str {
        match self.share_cgroups {
            Some(true) => "true",
            Some(false) => "false",
            None => "true (unset)",
        }
    }
    pub fn uris_label(&self) -> &'static str {
        if self.tasks.iter().any(|t| t.uris) {
            "yes"
        } else {
            "no"
        }
    }

    /// The memory limit (bytes) the task should read as its effective one
    /// (the minimum over its cgroup and ancestors).
    pub fn expected_limit(&self, task: &TaskSpec) -> Option<u64> {
        let bytes = |mib: f64| Some((mib * MIB) as u64);
        match (self.launch, self.share_cgroups) {
            // The command executor's container holds the task and the
            // executor (Mesos: the task's resources plus the executor's).
            (Launch::Task, _) => bytes(task.mem + COMMAND_EXECUTOR_MEM),
            // Shared cgroups: the pod's limit, i.e. the executor's and all
            // tasks' resources together.
            (Launch::Group, None | Some(true)) => {
                bytes(self.executor_mem + self.tasks.iter().map(|t| t.mem).sum::<f64>())
            }
            // Own cgroups: the task's limit, else its request.
            (Launch::Group, Some(false)) => match task.limit_mem {
                Some(l) if l.is_infinite() => None,
                Some(l) => bytes(l),
                None => bytes(task.mem),
            },
        }
    }

    /// What a task of a shared-cgroup group may also read once siblings
    /// have ended: Mesos's `Slave::statusUpdate` gives an ended task's
    /// resources back, so the pod is the executor, the task itself and
    /// whichever siblings are still live when it reads.
    pub fn shrunk_limits(&self, task: &TaskSpec) -> Vec<u64> {
        if self.launch != Launch::Group || self.share_cgroups == Some(false) {
            return Vec::new();
        }
        let others: Vec<f64> = self
            .tasks
            .iter()
            .filter(|t| t.id != task.id)
            .map(|t| t.mem)
            .collect();
        (0..1u32 << others.len())
            .map(|live| {
                let siblings: f64 = others
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| live & (1 << i) != 0)
                    .map(|(_, mem)| mem)
                    .sum();
                ((self.executor_mem + task.mem + siblings) * MIB) as u64
            })
            .collect()
    }

    /// The Mesos JSON of each task (without agent_id, which the scheduler
    /// fills in from its offer).
    pub fn task_infos(&self, env: &Env) -> Vec<Value> {
        self.tasks.iter().map(|t| self.task_info(t, env)).collect()
    }

    pub fn executor_info(&self) -> Value {
        json!({
            "type": "DEFAULT",
            "executor_id": {"value": format!("{}-executor", self.name)},
            "resources": [scalar("cpus", 0.1), scalar("mem", self.executor_mem)],
            "container": {"type": "MESOS"}
        })
    }

    fn task_info(&self, t: &TaskSpec, env: &Env) -> Value {
        let mut command = json!({"value": self.script(t)});
        if t.uris {
            command["uris"] = json!([{"value": env.payload_url, "extract": true}]);
        }
        let mut task = json!({
            "name": t.id,
            "task_id": {"value": t.id},
            "resources": [scalar("cpus", 0.1), scalar("mem", t.mem)],
            "command": command,
        });
        let mut container = json!({"type": "MESOS"});
        let mut has_container = false;
        if let Some(reference) = image_reference(&t.image, env) {
            container["mesos"] =
                json!({"image": {"type": "DOCKER", "docker": {"name": reference}}});
            has_container = true;
        }
        if let Some(share) = self.share_cgroups {
            container["linux_info"] = json!({"share_cgroups": share});
            has_container = true;
        }
        if has_container {
            task["container"] = container;
        }
        let mut limits = serde_json::Map::new();
        if let Some(mem) = t.limit_mem {
            limits.insert(
                "mem".into(),
                if mem.is_infinite() {
                    json!("Infinity")
                } else {
                    json!(mem)
                },
            );
        }
        if t.unlimited_cpus {
            limits.insert("cpus".into(), json!("Infinity"));
        }
        if !limits.is_empty() {
            task["limits"] = Value::Object(limits);
        }
        task
    }

    /// The task's shell command: it reports what it sees (lines starting
    /// with `JOURNEY `), then does what the cell's outcome needs. Written
    /// for both dash (host) and busybox sh (images).
    fn script(&self, t: &TaskSpec) -> String {
        let mut s = String::from(PROBE);
        if t.uris {
            s.push_str(
                "echo \"JOURNEY payload $(cat \"$MESOS_SANDBOX/journey-payload/hello.txt\")\"\n",
            );
        }
        s.push_str("echo JOURNEY ready\n");
        // The restart cells wait for the agent to be back; a group's
        // subject that ends the group waits for its siblings' reports.
        if self.outcome == Outcome::AgentRestart || (t.subject && self.subject_waits()) {
            s.push_str(WAIT_FOR_GO);
        }
        let action = if t.subject {
            self.outcome
        } else {
            match self.outcome {
                Outcome::Exit0 | Outcome::AgentRestart => self.outcome,
                _ => Outcome::Kill,
            }
        };
        s.push_str(match action {
            Outcome::Exit0 => "exit 0\n",
            Outcome::Exit3 => "exit 3\n",
            // One buffer far past any limit of the matrix: dd touches it
            // all when it reads into it. exec: the OOM killer's victim is
            // the task's own process, not a child the shell outlives.
            Outcome::Oom => "exec dd if=/dev/zero of=/dev/null bs=900M count=1\n",
            Outcome::Kill | Outcome::BadImage => "sleep 1000\n",
            Outcome::AgentRestart => "echo JOURNEY after-restart\nexit 0\n",
        });
        s
    }
}

/// Waits until the test writes `journey-go` into the sandbox.
const WAIT_FOR_GO: &str = "while [ ! -e \"$MESOS_SANDBOX/journey-go\" ]; do sleep 0.2; done\n";

/// What every task prints about itself: its memory cgroup, the limit of the
/// cgroup mounted at /sys/fs/cgroup/memory (its own), the kernel's
/// hierarchical limit (the minimum over it and its ancestors, which a
/// container cannot list), which filesystem it sees, and its sandbox.
const PROBE: &str = r#"echo "JOURNEY cgroup $(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)"
echo "JOURNEY mem_limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "JOURNEY mem_effective $(sed -n 's/^hierarchical_memory_limit //p' /sys/fs/cgroup/memory/memory.stat)"
[ -x /bin/busybox ] && echo "JOURNEY has_busybox"
[ -e /etc/debian_version ] && echo "JOURNEY debian $(cat /etc/debian_version)"
echo "JOURNEY sandbox $MESOS_SANDBOX"
"#;

pub fn image_reference(image: &Image, env: &Env) -> Option<String> {
    let r = &env.registry;
    match image {
        Image::Host => None,
        Image::Tag => Some(format!("{r}/busybox:latest")),
        Image::Digest => Some(format!("{r}/busybox@{}", env.busybox_digest)),
        Image::V2s2 => Some(format!("{r}/busybox:v2s2")),
        Image::Index => Some(format!("{r}/multi:latest")),
        Image::Bad { reference, .. } => Some(reference.clone()),
    }
}

fn scalar(name: &str, value: f64) -> Value {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": value}})
}

struct Builder {
    cells: Vec<Cell>,
}

fn task(id: &str, image: Image) -> TaskSpec {
    TaskSpec {
        id: id.to_string(),
        image,
        mem: 32.0,
        limit_mem: None,
        unlimited_cpus: false,
        uris: false,
        subject: true,
    }
}

impl TaskSpec {
    fn uris(mut self) -> Self {
        self.uris = true;
        self
    }
    fn sibling(mut self) -> Self {
        self.subject = false;
        self
    }
    fn mem(mut self, mem: f64, limit: Option<f64>) -> Self {
        self.mem = mem;
        self.limit_mem = limit;
        self
    }
    fn unlimited_cpus(mut self) -> Self {
        self.unlimited_cpus = true;
        self
    }
}

impl Builder {
    fn cell(
        &mut self,
        name: &str,
        client: Client,
        launch: Launch,
        share_cgroups: Option<bool>,
        outcome: Outcome,
        tasks: Vec<TaskSpec>,
    ) {
        let tasks = tasks
            .into_iter()
            .map(|mut t| {
                t.id = format!("{name}-{}", t.id);
                t
            })
            .collect();
        self.cells.push(Cell {
            name: name.to_string(),
            client,
            launch,
            share_cgroups,
            outcome,
            tasks,
            executor_mem: GROUP_EXECUTOR_MEM,
        });
    }
}

/// The cells that run together before the agent restart: every outcome
/// with LAUNCH and LAUNCH_GROUP, with and without an image, through both
/// codecs; every image kind in both launch paths; share_cgroups true and
/// false; fetched URIs in both; groups mixing image and host tasks and
/// different images; and the bad-input cells.
pub fn main_phase(env: &Env) -> Vec<Cell> {
    use Client::*;
    use Image::*;
    use Launch::*;
    use Outcome::*;
    let mut b = Builder { cells: Vec::new() };
    // pymesos (JSON): limits, "Infinity", share_cgroups.
    b.cell(
        "p-exit0-task",
        Pymesos,
        Task,
        Some(true),
        Exit0,
        vec![task("t", Host).uris()],
    );
    b.cell(
        "p-exit3-task",
        Pymesos,
        Task,
        Some(true),
        Exit3,
        vec![task("t", Tag)],
    );
    b.cell(
        "p-oom-task",
        Pymesos,
        Task,
        None,
        Oom,
        vec![task("t", Digest).mem(64.0, None)],
    );
    b.cell(
        "p-kill-task",
        Pymesos,
        Task,
        Some(true),
        Kill,
        vec![task("t", V2s2).uris()],
    );
    b.cell(
        "p-exit0-group",
        Pymesos,
        Group,
        Some(false),
        Exit0,
        vec![
            task("img", V2s2)
                .uris()
                .mem(32.0, Some(96.0))
                .unlimited_cpus(),
            task("host", Host).mem(32.0, Some(f64::INFINITY)),
        ],
    );
    b.cell(
        "p-exit3-group",
        Pymesos,
        Group,
        Some(false),
        Exit3,
        vec![task("host", Host), task("img", Index).sibling()],
    );
    b.cell(
        "p-oom-group",
        Pymesos,
        Group,
        Some(false),
        Oom,
        vec![
            task("img", Tag).mem(32.0, Some(64.0)),
            task("host", Host).sibling(),
        ],
    );
    b.cell(
        "p-kill-group",
        Pymesos,
        Group,
        Some(true),
        Kill,
        vec![task("img", Digest).uris(), task("host", Host).sibling()],
    );
    b.cell(
        "p-oom-shared-group",
        Pymesos,
        Group,
        Some(true),
        Oom,
        vec![task("img", V2s2), task("host", Host).sibling()],
    );
    // mesos-go (protobuf).
    b.cell(
        "g-exit0-task",
        MesosGo,
        Task,
        None,
        Exit0,
        vec![task("t", V2s2)],
    );
    b.cell(
        "g-exit3-task",
        MesosGo,
        Task,
        None,
        Exit3,
        vec![task("t", Host).uris()],
    );
    b.cell(
        "g-oom-task",
        MesosGo,
        Task,
        None,
        Oom,
        vec![task("t", Host)],
    );
    b.cell(
        "g-kill-task",
        MesosGo,
        Task,
        None,
        Kill,
        vec![task("t", Host).uris()],
    );
    b.cell(
        "g-exit0-group",
        MesosGo,
        Group,
        None,
        Exit0,
        vec![
            task("digest", Digest).uris(),
            task("host", Host),
            task("v2s2", V2s2),
        ],
    );
    b.cell(
        "g-exit3-group",
        MesosGo,
        Group,
        None,
        Exit3,
        vec![task("img", Tag), task("host", Host).sibling()],
    );
    b.cell(
        "g-oom-group",
        MesosGo,
        Group,
        None,
        Oom,
        vec![task("host", Host), task("img", Digest).sibling()],
    );
    b.cell(
        "g-kill-group",
        MesosGo,
        Group,
        None,
        Kill,
        vec![task("host", Host), task("img", Tag).sibling()],
    );
    // Bad input.
    let bad = |reference: String, why: &'static str| Bad { reference, why };
    b.cell(
        "g-bad-reference",
        MesosGo,
        Task,
        None,
        BadImage,
        vec![task(
            "t",
            bad(format!("{}/Busy Box::latest", env.registry), "unparsable"),
        )],
    );
    b.cell(
        "p-registry-down",
        Pymesos,
        Group,
        Some(true),
        BadImage,
        vec![
            task(
                "img",
                bad(
                    format!("127.0.0.1:{}/busybox:latest", env.closed_port),
                    "registry down",
                ),
            ),
            task("host", Host).sibling(),
        ],
    );
    b.cell(
        "p-no-platform",
        Pymesos,
        Task,
        None,
        BadImage,
        vec![task(
            "t",
            bad(
                format!("{}/multi:{}", env.registry, env.foreign_tag),
                "no platform",
            ),
        )],
    );
    b.cell(
        "g-missing-tag",
        MesosGo,
        Group,
        None,
        BadImage,
        vec![
            task(
                "img",
                bad(
                    format!("{}/busybox:journey-no-such-tag", env.registry),
                    "no such tag",
                ),
            ),
            task("host", Host).sibling(),
        ],
    );
    b.cells
}

/// The cells running while the agent is SIGKILLed and restarted.
pub fn restart_phase() -> Vec<Cell> {
    use Client::*;
    use Image::*;
    use Launch::*;
    use Outcome::*;
    let mut b = Builder { cells: Vec::new() };
    b.cell(
        "p-restart-task",
        Pymesos,
        Task,
        Some(true),
        AgentRestart,
        vec![task("t", Host).uris()],
    );
    b.cell(
        "g-restart-task",
        MesosGo,
        Task,
        None,
        AgentRestart,
        vec![task("t", Digest)],
    );
    b.cell(
        "p-restart-group",
        Pymesos,
        Group,
        Some(false),
        AgentRestart,
        vec![task("img", V2s2).mem(32.0, Some(48.0)), task("host", Host)],
    );
    b.cell(
        "g-restart-group",
        MesosGo,
        Group,
        None,
        AgentRestart,
        vec![task("host", Host), task("img", Tag).uris()],
    );
    b.cells
}
