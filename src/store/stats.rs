//! Counting queries for `/metrics`: our alerts by level and state. (Per-channel outbox
//! counts are `outbox_health` in `outbox.rs`.)

use super::{Store, StoreError};

/// How many alerts have one level and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCount {
    pub level: String,
    pub state: String,
    pub count: u64,
}

impl Store {
    /// Alerts per (level, state) that has any, resolved ones included until retention
    /// removes them.
    pub fn alert_counts(&self) -> Result<Vec<AlertCount>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT level, state, COUNT(*) FROM alerts GROUP BY level, state ORDER BY level, state",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AlertCount {
                    level: r.get(0)?,
                    state: r.get(1)?,
                    count: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::lifecycle::{MonitorPolicy, evaluate};
    use crate::alerts::{Level, Observation};
    use crate::clock::ManualClock;

    #[test]
    fn alert_counts_group_by_level_and_state() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.alert_counts().unwrap().is_empty());
        let clock = ManualClock::at(1_790_000_000_000);
        let obs = |code: &str, level: Level| Observation {
            code: code.into(),
            subject: Default::default(),
            level: Some(level),
            title: code.into(),
            summary: String::new(),
            value: None,
        };
        let policy = MonitorPolicy::new("m");
        evaluate(
            &store,
            &clock,
            &policy,
            &[
                obs("a", Level::Critical),
                obs("b", Level::Critical),
                obs("c", Level::Warning),
            ],
        )
        .unwrap();
        assert_eq!(
            store.alert_counts().unwrap(),
            vec![
                AlertCount {
                    level: "critical".into(),
                    state: "firing".into(),
                    count: 2
                },
                AlertCount {
                    level: "warning".into(),
                    state: "firing".into(),
                    count: 1
                },
            ]
        );
    }
}
