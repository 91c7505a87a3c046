//! The manager's mutable state behind one mutex: agents, API users and issued tokens,
//! failed-login bookkeeping, ossec.log lines and recorded active-response commands.
//! Handlers lock it briefly and never across an `.await`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use super::clock;

pub const WAZUH_VERSION: &str = "v4.14.7";
pub const API_VERSION: &str = "4.14.7";
pub const MANAGER_HOST: &str = "wazuh-master";
pub const MASTER_NODE: &str = "master-node";
pub const WORKER_NODE: &str = "worker1";
pub const WORKER_HOST: &str = "wazuh-worker1";
pub const CLUSTER_NAME: &str = "wazuh";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    Active,
    Disconnected,
    NeverConnected,
    Pending,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disconnected => "disconnected",
            Self::NeverConnected => "never_connected",
            Self::Pending => "pending",
        }
    }
}

/// When the agent last sent a keepalive.
#[derive(Debug, Clone)]
pub enum KeepAlive {
    /// Connected: a keepalive arrived this many seconds before each request.
    Fresh(i64),
    /// Gone quiet at this instant.
    At(OffsetDateTime),
    /// Never connected.
    Never,
    /// Agent 000, the manager itself (the API prints the far future).
    Manager,
}

#[derive(Debug, Clone)]
pub struct AgentOs {
    pub arch: &'static str,
    pub codename: Option<&'static str>,
    pub major: &'static str,
    pub minor: Option<&'static str>,
    pub name: &'static str,
    pub platform: &'static str,
    pub uname: String,
    pub version: &'static str,
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub ip: String,
    pub register_ip: String,
    pub status: AgentStatus,
    pub os: Option<AgentOs>,
    pub version: Option<String>,
    pub node_name: String,
    pub manager: Option<String>,
    pub date_add: OffsetDateTime,
    pub keepalive: KeepAlive,
    pub groups: Vec<String>,
    pub config_sum: Option<String>,
    pub merged_sum: Option<String>,
    pub group_config_status: Option<&'static str>,
}

impl Agent {
    /// The agent as `GET /agents` prints it, with times relative to `now`.
    pub fn to_json(&self, now: OffsetDateTime) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("ip".into(), json!(self.ip));
        m.insert("registerIP".into(), json!(self.register_ip));
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert("status_code".into(), json!(0));
        if let Some(os) = &self.os {
            let mut o = Map::new();
            o.insert("arch".into(), json!(os.arch));
            if let Some(c) = os.codename {
                o.insert("codename".into(), json!(c));
            }
            o.insert("major".into(), json!(os.major));
            if let Some(mi) = os.minor {
                o.insert("minor".into(), json!(mi));
            }
            o.insert("name".into(), json!(os.name));
            o.insert("platform".into(), json!(os.platform));
            o.insert("uname".into(), json!(os.uname));
            o.insert("version".into(), json!(os.version));
            m.insert("os".into(), Value::Object(o));
        }
        if let Some(v) = &self.version {
            m.insert("version".into(), json!(v));
        }
        m.insert("node_name".into(), json!(self.node_name));
        if let Some(mgr) = &self.manager {
            m.insert("manager".into(), json!(mgr));
        }
        m.insert("dateAdd".into(), json!(clock::wazuh_z(self.date_add)));
        match &self.keepalive {
            KeepAlive::Fresh(ago) => {
                m.insert(
                    "lastKeepAlive".into(),
                    json!(clock::wazuh_z(now - Duration::seconds(*ago))),
                );
            }
            KeepAlive::At(t) => {
                m.insert("lastKeepAlive".into(), json!(clock::wazuh_z(*t)));
            }
            KeepAlive::Manager => {
                m.insert("lastKeepAlive".into(), json!("9999-12-31T23:59:59Z"));
            }
            KeepAlive::Never => {}
        }
        if !self.groups.is_empty() {
            m.insert("group".into(), json!(self.groups));
        }
        if let Some(s) = &self.config_sum {
            m.insert("configSum".into(), json!(s));
        }
        if let Some(s) = &self.merged_sum {
            m.insert("mergedSum".into(), json!(s));
        }
        if let Some(s) = self.group_config_status {
            m.insert("group_config_status".into(), json!(s));
        }
        Value::Object(m)
    }

    /// Seconds since the last keepalive (or registration, for never-connected agents).
    pub fn quiet_secs(&self, now: OffsetDateTime) -> i64 {
        match &self.keepalive {
            KeepAlive::Fresh(ago) => *ago,
            KeepAlive::At(t) => (now - *t).whole_seconds(),
            KeepAlive::Never => (now - self.date_add).whole_seconds(),
            KeepAlive::Manager => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: u32,
    pub username: String,
    pub password: String,
    pub allow_run_as: bool,
    pub roles: Vec<u32>,
    /// Tokens of this user issued at or before this instant are revoked.
    pub tokens_valid_after: f64,
}

impl User {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "allow_run_as": self.allow_run_as,
            "roles": self.roles,
        })
    }
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub user_id: u32,
    pub issued_at: f64,
    pub exp: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogLine {
    pub at: OffsetDateTime,
    pub tag: &'static str,
    pub level: LogLevel,
    pub description: String,
}

impl LogLine {
    pub fn to_json(&self) -> Value {
        json!({
            "timestamp": clock::wazuh_z(self.at),
            "tag": self.tag,
            "level": self.level.as_str(),
            "description": self.description,
        })
    }
}

/// One `PUT /active-response` call, as recorded by the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveResponseRecord {
    pub command: String,
    pub arguments: Vec<String>,
    pub alert: Option<Value>,
    /// Agents the command was sent to (failed ones are not listed).
    pub agents: Vec<String>,
    /// The API user who sent it.
    pub user: String,
    pub at: OffsetDateTime,
}

#[derive(Debug, Default)]
pub struct LoginFailures {
    pub attempts: u32,
    pub first_at: f64,
}

pub struct State {
    pub agents: Vec<Agent>,
    pub users: Vec<User>,
    pub tokens: HashMap<String, TokenRecord>,
    pub failures: HashMap<IpAddr, LoginFailures>,
    pub blocked: HashSet<IpAddr>,
    pub logs: Vec<LogLine>,
    pub active_responses: Vec<ActiveResponseRecord>,
}

impl State {
    pub fn user_by_name(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == name)
    }

    /// Drop token records past their expiry (keeps the map small on long runs).
    pub fn prune_tokens(&mut self, now: f64) {
        self.tokens.retain(|_, r| r.exp > now);
    }
}
