//! The seeded world: ~20 agents across all four states (agent 000 is the manager, one id
//! is above 999), the default API users, and a day of ossec.log lines. Everything is our
//! own invented data, deterministic from the seed, with times relative to the start.

use time::{Duration, OffsetDateTime};

use super::rng::SimRng;
use super::state::{
    Agent, AgentOs, AgentStatus, KeepAlive, LogLevel, LogLine, MANAGER_HOST, MASTER_NODE, User,
    WAZUH_VERSION, WORKER_HOST, WORKER_NODE,
};

/// Password of the built-in `wazuh-wui` user (unless it is the configured API user).
pub const WUI_PASSWORD: &str = "Wazuh-Wui-Pass1!";
/// Password of the built-in `wazuh` user when another user is the configured API user.
pub const WAZUH_USER_PASSWORD: &str = "Wazuh-Sim-Pass1!";

#[derive(Clone, Copy)]
enum OsKind {
    Ubuntu22,
    Ubuntu24,
    Debian12,
    Rhel9,
    Centos7,
    Amzn2023,
    Win2022,
    Win2019,
    Macos14,
}

struct Template {
    id: &'static str,
    name: &'static str,
    os: Option<OsKind>,
    status: AgentStatus,
    group: &'static str,
    subnet: u8,
    on_worker: bool,
    version: Option<&'static str>,
}

const fn t(
    id: &'static str,
    name: &'static str,
    os: Option<OsKind>,
    status: AgentStatus,
    group: &'static str,
    subnet: u8,
    on_worker: bool,
) -> Template {
    Template {
        id,
        name,
        os,
        status,
        group,
        subnet,
        on_worker,
        version: None,
    }
}

use AgentStatus::{Active, Disconnected, NeverConnected, Pending};
use OsKind::*;

const TEMPLATES: [Template; 19] = [
    t("001", "web-01", Some(Ubuntu22), Active, "web", 10, false),
    t("002", "web-02", Some(Ubuntu22), Active, "web", 10, true),
    t("003", "db-01", Some(Rhel9), Active, "database", 20, false),
    t(
        "004",
        "db-02",
        Some(Rhel9),
        Disconnected,
        "database",
        20,
        true,
    ),
    t("005", "bastion-01", Some(Debian12), Active, "dmz", 5, false),
    t("006", "mail-01", Some(Debian12), Active, "dmz", 5, true),
    t(
        "007",
        "win-dc-01",
        Some(Win2022),
        Active,
        "windows",
        30,
        false,
    ),
    t(
        "008",
        "win-fs-01",
        Some(Win2019),
        Active,
        "windows",
        30,
        true,
    ),
    t("009", "build-01", Some(Ubuntu24), Active, "ci", 40, false),
    t(
        "010",
        "k8s-node-01",
        Some(Ubuntu22),
        Active,
        "k8s",
        50,
        false,
    ),
    t(
        "011",
        "k8s-node-02",
        Some(Ubuntu22),
        Active,
        "k8s",
        50,
        true,
    ),
    t(
        "012",
        "k8s-node-03",
        Some(Ubuntu22),
        Disconnected,
        "k8s",
        50,
        true,
    ),
    Template {
        version: Some("v4.3.11"),
        ..t(
            "013",
            "legacy-app-01",
            Some(Centos7),
            Disconnected,
            "legacy",
            60,
            false,
        )
    },
    Template {
        version: Some("v4.9.2"),
        ..t(
            "014",
            "mac-dev-01",
            Some(Macos14),
            Active,
            "workstations",
            70,
            true,
        )
    },
    t("015", "vpn-gw-01", Some(Amzn2023), Active, "dmz", 5, false),
    t("016", "web-03", None, NeverConnected, "web", 10, false),
    t("017", "db-03", None, NeverConnected, "database", 20, false),
    t("018", "staging-01", None, Pending, "default", 80, true),
    t(
        "1001",
        "edge-proxy-01",
        Some(Debian12),
        Active,
        "dmz",
        5,
        true,
    ),
];

fn os_for(kind: OsKind, host: &str, rng: &mut SimRng) -> AgentOs {
    let build = rng.range(40, 120);
    match kind {
        Ubuntu22 => AgentOs {
            arch: "x86_64",
            codename: Some("Jammy Jellyfish"),
            major: "22",
            minor: Some("04"),
            name: "Ubuntu",
            platform: "ubuntu",
            uname: format!(
                "Linux |{host} |5.15.0-{build}-generic |#{}-Ubuntu SMP |x86_64",
                build + 10
            ),
            version: "22.04.4 LTS",
        },
        Ubuntu24 => AgentOs {
            arch: "x86_64",
            codename: Some("Noble Numbat"),
            major: "24",
            minor: Some("04"),
            name: "Ubuntu",
            platform: "ubuntu",
            uname: format!(
                "Linux |{host} |6.8.0-{build}-generic |#{}-Ubuntu SMP |x86_64",
                build + 3
            ),
            version: "24.04.1 LTS",
        },
        Debian12 => AgentOs {
            arch: "x86_64",
            codename: Some("bookworm"),
            major: "12",
            minor: None,
            name: "Debian GNU/Linux",
            platform: "debian",
            uname: format!(
                "Linux |{host} |6.1.0-{}-amd64 |#1 SMP Debian |x86_64",
                build % 30
            ),
            version: "12",
        },
        Rhel9 => AgentOs {
            arch: "x86_64",
            codename: Some("Plow"),
            major: "9",
            minor: Some("4"),
            name: "Red Hat Enterprise Linux",
            platform: "rhel",
            uname: format!("Linux |{host} |5.14.0-427.{build}.1.el9_4.x86_64 |#1 SMP |x86_64"),
            version: "9.4",
        },
        Centos7 => AgentOs {
            arch: "x86_64",
            codename: Some("Core"),
            major: "7",
            minor: Some("9"),
            name: "CentOS Linux",
            platform: "centos",
            uname: format!("Linux |{host} |3.10.0-1160.{build}.1.el7.x86_64 |#1 SMP |x86_64"),
            version: "7.9.2009",
        },
        Amzn2023 => AgentOs {
            arch: "aarch64",
            codename: None,
            major: "2023",
            minor: None,
            name: "Amazon Linux",
            platform: "amzn",
            uname: format!("Linux |{host} |6.1.{build}-1.amzn2023.aarch64 |#1 SMP |aarch64"),
            version: "2023",
        },
        Win2022 => AgentOs {
            arch: "x86_64",
            codename: None,
            major: "10",
            minor: Some("0"),
            name: "Microsoft Windows Server 2022 Datacenter",
            platform: "windows",
            uname: "Microsoft Windows Server 2022 Datacenter".into(),
            version: "10.0.20348.2340",
        },
        Win2019 => AgentOs {
            arch: "x86_64",
            codename: None,
            major: "10",
            minor: Some("0"),
            name: "Microsoft Windows Server 2019 Standard",
            platform: "windows",
            uname: "Microsoft Windows Server 2019 Standard".into(),
            version: "10.0.17763.5576",
        },
        Macos14 => AgentOs {
            arch: "arm64",
            codename: Some("Sonoma"),
            major: "14",
            minor: Some("4"),
            name: "macOS",
            platform: "darwin",
            uname: format!("Darwin |{host} |23.4.0 |Darwin Kernel Version 23.4.0 |arm64"),
            version: "14.4.1",
        },
    }
}

/// Agent 000 (the manager) followed by the seeded agents, ordered by id.
pub fn agents(rng: &mut SimRng, start: OffsetDateTime) -> Vec<Agent> {
    let mut out = vec![Agent {
        id: "000".into(),
        name: MANAGER_HOST.into(),
        ip: "127.0.0.1".into(),
        register_ip: "127.0.0.1".into(),
        status: AgentStatus::Active,
        os: Some(AgentOs {
            arch: "x86_64",
            codename: Some("Jammy Jellyfish"),
            major: "22",
            minor: Some("04"),
            name: "Ubuntu",
            platform: "ubuntu",
            uname: format!("Linux |{MANAGER_HOST} |5.15.0-107-generic |#117-Ubuntu SMP |x86_64"),
            version: "22.04.4 LTS",
        }),
        version: Some(format!("Wazuh {WAZUH_VERSION}")),
        node_name: MASTER_NODE.into(),
        manager: Some(MANAGER_HOST.into()),
        date_add: start - Duration::days(120),
        keepalive: KeepAlive::Manager,
        groups: vec![],
        config_sum: None,
        merged_sum: None,
        group_config_status: None,
    }];
    let mut used_octets = std::collections::HashSet::new();
    let shared_sum = rng.hex(32);
    for tpl in TEMPLATES.iter() {
        let mut octet = rng.range(11, 249) as u8;
        while !used_octets.insert((tpl.subnet, octet)) {
            octet = octet.wrapping_add(7).max(11);
        }
        let ip = format!("10.0.{}.{}", tpl.subnet, octet);
        let (node, mgr) = if tpl.on_worker {
            (WORKER_NODE, WORKER_HOST)
        } else {
            (MASTER_NODE, MANAGER_HOST)
        };
        let date_add = start
            - Duration::days(rng.range(3, 90) as i64)
            - Duration::seconds(rng.range(0, 86_399) as i64);
        let mut groups = vec!["default".to_string()];
        if tpl.group != "default" {
            groups.push(tpl.group.to_string());
        }
        let version = tpl.version.unwrap_or(WAZUH_VERSION);
        let agent = match tpl.status {
            AgentStatus::Active => Agent {
                id: tpl.id.into(),
                name: tpl.name.into(),
                ip: ip.clone(),
                register_ip: "any".into(),
                status: tpl.status,
                os: tpl.os.map(|k| os_for(k, tpl.name, rng)),
                version: Some(format!("Wazuh {version}")),
                node_name: node.into(),
                manager: Some(mgr.into()),
                date_add,
                keepalive: KeepAlive::Fresh(rng.range(0, 9) as i64),
                groups,
                config_sum: Some(rng.hex(32)),
                merged_sum: Some(shared_sum.clone()),
                group_config_status: Some("synced"),
            },
            AgentStatus::Disconnected => {
                let quiet = Duration::minutes(rng.range(45, 60 * 30) as i64);
                Agent {
                    id: tpl.id.into(),
                    name: tpl.name.into(),
                    ip: ip.clone(),
                    register_ip: "any".into(),
                    status: tpl.status,
                    os: tpl.os.map(|k| os_for(k, tpl.name, rng)),
                    version: Some(format!("Wazuh {version}")),
                    node_name: node.into(),
                    manager: Some(mgr.into()),
                    date_add,
                    keepalive: KeepAlive::At(start - quiet),
                    groups,
                    config_sum: Some(rng.hex(32)),
                    merged_sum: Some(rng.hex(32)),
                    group_config_status: Some("not synced"),
                }
            }
            AgentStatus::Pending => Agent {
                id: tpl.id.into(),
                name: tpl.name.into(),
                ip: ip.clone(),
                register_ip: "any".into(),
                status: tpl.status,
                os: None,
                version: None,
                node_name: node.into(),
                manager: Some(mgr.into()),
                date_add: start - Duration::minutes(rng.range(5, 50) as i64),
                keepalive: KeepAlive::Fresh(rng.range(20, 50) as i64),
                groups,
                config_sum: None,
                merged_sum: None,
                group_config_status: Some("not synced"),
            },
            AgentStatus::NeverConnected => Agent {
                id: tpl.id.into(),
                name: tpl.name.into(),
                ip: "any".into(),
                register_ip: "any".into(),
                status: tpl.status,
                os: None,
                version: None,
                node_name: "unknown".into(),
                manager: None,
                date_add: start - Duration::hours(rng.range(2, 72) as i64),
                keepalive: KeepAlive::Never,
                groups,
                config_sum: None,
                merged_sum: None,
                group_config_status: Some("not synced"),
            },
        };
        out.push(agent);
    }
    out
}

/// The built-in users plus the configured API user (as id 100 when it is not built in).
pub fn users(api_user: &str, api_password: &str) -> Vec<User> {
    let mut users = vec![
        User {
            id: 1,
            username: "wazuh".into(),
            password: WAZUH_USER_PASSWORD.into(),
            allow_run_as: true,
            roles: vec![1],
            tokens_valid_after: 0.0,
        },
        User {
            id: 2,
            username: "wazuh-wui".into(),
            password: WUI_PASSWORD.into(),
            allow_run_as: true,
            roles: vec![1],
            tokens_valid_after: 0.0,
        },
    ];
    match users.iter_mut().find(|u| u.username == api_user) {
        Some(u) => u.password = api_password.into(),
        None => users.push(User {
            id: 100,
            username: api_user.into(),
            password: api_password.into(),
            allow_run_as: false,
            roles: vec![1],
            tokens_valid_after: 0.0,
        }),
    }
    users
}

const INFO: &[(&str, &str)] = &[
    ("wazuh-modulesd:syscollector", "Starting evaluation."),
    ("wazuh-modulesd:syscollector", "Evaluation finished."),
    (
        "wazuh-syscheckd",
        "(6008): File integrity monitoring scan started.",
    ),
    (
        "wazuh-syscheckd",
        "(6009): File integrity monitoring scan ended.",
    ),
    ("rootcheck", "Starting rootcheck scan."),
    ("rootcheck", "Ending rootcheck scan."),
    ("sca", "Evaluation started for policy 'cis_ubuntu22-04'."),
    ("sca", "Evaluation finished for policy 'cis_ubuntu22-04'."),
    (
        "wazuh-modulesd:vulnerability-scanner",
        "Vulnerability scan finished for agent '{id}'.",
    ),
    (
        "wazuh-modulesd:content_manager",
        "Content is up to date; nothing to download.",
    ),
    ("wazuh-remoted", "Agent '{id}' connected from '{ip}'."),
    ("wazuh-authd", "New connection from {ip}."),
    ("wazuh-analysisd", "Total rules enabled: '7214'."),
    (
        "wazuh-db",
        "Database maintenance finished for agent '{id}'.",
    ),
    (
        "indexer-connector",
        "Connected to the indexer at https://wazuh-indexer:9200.",
    ),
    (
        "wazuh-logcollector",
        "(1950): Analyzing file: '/var/ossec/logs/active-responses.log'.",
    ),
    ("wazuh-monitord", "Log rotation finished."),
    (
        "wazuh-modulesd:task-manager",
        "Task manager queue is empty.",
    ),
    (
        "wazuh-modulesd:database",
        "Agent '{id}' information synchronized.",
    ),
];

const WARNINGS: &[(&str, &str)] = &[
    (
        "wazuh-remoted",
        "(1408): Invalid ID {id} for the source ip: '{ip}' (name 'unknown').",
    ),
    (
        "wazuh-analysisd",
        "Input queue is 80% full; events may be delayed.",
    ),
    (
        "indexer-connector",
        "Bulk request to the indexer was slow; retrying failed documents.",
    ),
    (
        "wazuh-authd",
        "Duplicate agent name requested from {ip}; request refused.",
    ),
    ("wazuh-db", "Slow query on agent '{id}' database."),
    (
        "wazuh-modulesd:syscollector",
        "Agent '{id}' inventory is stale; a resync was requested.",
    ),
];

const ERRORS: &[(&str, &str)] = &[
    (
        "wazuh-modulesd:vulnerability-scanner",
        "Could not download the vulnerability feed: connection timed out.",
    ),
    (
        "indexer-connector",
        "Cannot reach the indexer at https://wazuh-indexer:9200: connection refused.",
    ),
    (
        "wazuh-db",
        "Cannot open database 'queue/db/{id}.db': database is locked.",
    ),
    (
        "wazuh-remoted",
        "Lost connection with agent '{id}' ({ip}): connection reset by peer.",
    ),
];

/// A day of ossec.log: mostly info, some warnings and errors, one critical line.
pub fn logs(rng: &mut SimRng, start: OffsetDateTime, agents: &[Agent]) -> Vec<LogLine> {
    let mut lines = Vec::new();
    let n = 360;
    for i in 0..n {
        // Spread over the last 24 h, newest last.
        let ago = 86_400 - (i * 86_400 / n) as i64 - rng.range(0, 200) as i64;
        let at = start - Duration::seconds(ago.max(1));
        let roll = rng.unit();
        let (level, table) = if roll < 0.05 {
            (LogLevel::Error, ERRORS)
        } else if roll < 0.16 {
            (LogLevel::Warning, WARNINGS)
        } else {
            (LogLevel::Info, INFO)
        };
        let (tag, text) = *rng.pick(table);
        let agent = rng.pick(&agents[1..]);
        lines.push(LogLine {
            at,
            tag,
            level,
            description: text.replace("{id}", &agent.id).replace("{ip}", &agent.ip),
        });
    }
    lines.push(LogLine {
        at: start - Duration::hours(19) - Duration::seconds(rng.range(0, 600) as i64),
        tag: "wazuh-analysisd",
        level: LogLevel::Critical,
        description:
            "(1226): Error reading XML file 'etc/rules/local_rules.xml': syntax error (line 41)."
                .into(),
    });
    lines.sort_by_key(|l| l.at);
    lines
}

/// The agents as the alert generator sees them.
pub fn alert_agents(agents: &[Agent]) -> Vec<super::alerts::AlertAgent> {
    agents
        .iter()
        .filter(|a| a.id != "000")
        .map(|a| super::alerts::AlertAgent {
            id: a.id.clone(),
            name: a.name.clone(),
            ip: a.ip.clone(),
            platform: a
                .os
                .as_ref()
                .map(|o| o.platform.to_string())
                .unwrap_or_else(|| "unknown".into()),
        })
        .collect()
}
