//! Correlation: which incident an alert joins (source IP for authentication failures,
//! else rule + agent, within the window), and how an alert is folded into an incident.

use std::collections::HashMap;

use super::ingest::ParsedAlert;
use super::model::{Phase, Status, name};
use crate::store::incidents::IncidentTx;
use crate::store::{AgentRef, AlertSample, IncidentRow, StoreError};

const FIRST_SAMPLES: usize = 20;
const LAST_SAMPLES: usize = 5;
const MAX_AGENTS: usize = 50;
const MAX_IPS: usize = 50;
const MAX_MITRE: usize = 30;
const AUTH_GROUPS: [&str; 2] = ["authentication_failed", "authentication_failures"];

impl ParsedAlert {
    /// Authentication-failure families by source IP; everything else by rule and agent.
    pub fn correlation_key(&self) -> String {
        match &self.srcip {
            Some(ip)
                if self
                    .groups
                    .iter()
                    .any(|g| AUTH_GROUPS.contains(&g.as_str())) =>
            {
                format!("srcip:{ip}")
            }
            _ => format!("rule:{}:agent:{}", self.rule_id, self.agent_id),
        }
    }

    fn sample(&self) -> AlertSample {
        AlertSample {
            time_ms: self.ts_ms,
            rule_id: self.rule_id.clone(),
            level: self.level,
            description: self.description.clone(),
            agent_id: self.agent_id.clone(),
            agent_name: self.agent_name.clone(),
            srcip: self.srcip.clone(),
        }
    }

    fn title(&self) -> String {
        let what = if self.description.is_empty() {
            format!("Rule {}", self.rule_id)
        } else {
            self.description.trim_end_matches('.').to_string()
        };
        match (&self.srcip, self.correlation_key().starts_with("srcip:")) {
            (Some(ip), true) => format!("{what} from {ip}"),
            _ if !self.agent_name.is_empty() => format!("{what} on {}", self.agent_name),
            _ => format!("{what} on agent {}", self.agent_id),
        }
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T, cap: usize) {
    if list.len() < cap && !list.contains(&item) {
        list.push(item);
    }
}

/// Fold one alert into an incident (counts, severity that only rises, sets, samples).
pub fn absorb(row: &mut IncidentRow, a: &ParsedAlert) {
    if row.alert_count == 0 || a.level > row.max_level {
        row.title = a.title();
    }
    row.max_level = row.max_level.max(a.level);
    row.alert_count += 1;
    if row.alert_count == 1 {
        row.first_alert_ms = a.ts_ms;
        row.last_alert_ms = a.ts_ms;
    }
    row.first_alert_ms = row.first_alert_ms.min(a.ts_ms);
    row.last_alert_ms = row.last_alert_ms.max(a.ts_ms);
    let b = &mut row.body;
    if !a.agent_id.is_empty() {
        let agent = AgentRef {
            id: a.agent_id.clone(),
            name: a.agent_name.clone(),
        };
        push_unique(&mut b.agents, agent, MAX_AGENTS);
    }
    if let Some(ip) = &a.srcip {
        push_unique(&mut b.source_ips, ip.clone(), MAX_IPS);
    }
    for m in &a.mitre {
        push_unique(&mut b.mitre, m.clone(), MAX_MITRE);
    }
    if b.first_alerts.len() < FIRST_SAMPLES {
        b.first_alerts.push(a.sample());
    } else {
        if b.last_alerts.len() == LAST_SAMPLES {
            b.last_alerts.remove(0);
        }
        b.last_alerts.push(a.sample());
    }
}

/// Correlates alerts into incidents inside one page transaction, caching touched rows.
pub(super) struct Correlator<'a, 'b> {
    pub(super) tx: &'a IncidentTx<'b>,
    pub(super) window_ms: i64,
    pub(super) now: String,
    pub(super) rows: HashMap<String, IncidentRow>,
    pub(super) new_incidents: u64,
}

impl Correlator<'_, '_> {
    pub(super) fn add(&mut self, a: &ParsedAlert) -> Result<(), StoreError> {
        let key = a.correlation_key();
        if !self.rows.contains_key(&key)
            && let Some(row) = self.tx.open_by_key(&key)?
        {
            self.rows.insert(key.clone(), row);
        }
        let joins = self.rows.get(&key).is_some_and(|r| {
            a.ts_ms <= r.last_alert_ms + self.window_ms
                && a.ts_ms + self.window_ms >= r.first_alert_ms
        });
        if !joins {
            if let Some(mut old) = self.rows.remove(&key) {
                self.tx.save(&mut old)?;
            }
            self.new_incidents += 1;
            self.rows.insert(
                key.clone(),
                IncidentRow {
                    key: key.clone(),
                    status: name(&Status::Open),
                    phase: name(&Phase::DetectionAnalysis),
                    created_at: self.now.clone(),
                    ..Default::default()
                },
            );
        }
        if let Some(row) = self.rows.get_mut(&key) {
            absorb(row, a);
            row.updated_at = self.now.clone();
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<u64, StoreError> {
        for row in self.rows.values_mut() {
            self.tx.save(row)?;
        }
        Ok(self.new_incidents)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::IncidentsConfig;
    use crate::incidents::ingest::tests::{T0, alert};
    use crate::incidents::model::ms_to_time;
    use crate::incidents::{IncidentSeverity, ParsedAlert, ingest_page, view};
    use crate::store::Store;

    #[test]
    fn correlation_groups_by_key_and_window_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let cfg = IncidentsConfig::default();
        let now = ms_to_time(T0);
        let auth = &["authentication_failures"];
        let mut alerts: Vec<ParsedAlert> = (0..30)
            .map(|i| {
                alert(
                    &format!("b{i}"),
                    T0 + i * 1000,
                    10,
                    "5712",
                    auth,
                    if i % 2 == 0 { "001" } else { "002" },
                )
            })
            .collect();
        alerts.push(alert("low", T0, 5, "5710", auth, "001"));
        alerts.push(alert("crit", T0, 15, "31168", &["attack"], "001"));
        // Same key, but two hours later: a new incident.
        alerts.push(alert("late", T0 + 2 * 3_600_000, 10, "5712", auth, "001"));
        assert_eq!(ingest_page(&store, &cfg, &alerts, now).unwrap(), (32, 3));
        assert_eq!(ingest_page(&store, &cfg, &alerts, now).unwrap(), (0, 0));
        let rows = store.incidents_active(0, "", 100).unwrap();
        assert_eq!(rows.len(), 3);
        let burst = rows.iter().find(|r| r.alert_count == 30).unwrap();
        assert_eq!(burst.body.agents.len(), 2);
        assert_eq!(burst.body.source_ips, vec!["203.0.113.9"]);
        assert_eq!(
            burst.body.first_alerts.len() + burst.body.last_alerts.len(),
            25
        );
        let crit = rows.iter().find(|r| r.max_level == 15).unwrap();
        assert_eq!(view(crit, &cfg, now).severity, IncidentSeverity::Critical);
    }
}
