//! Inhibition: while a source alert FIRES, the alerts a rule's target matchers select that
//! carry the same values of the rule's `equal` labels are muted ("one page, not twenty").
//! The source never mutes itself; an `emergency` target only when the target matchers name
//! it explicitly (as for silences). A label missing on both sides counts as equal, as in
//! Alertmanager. The default rule (when `[[inhibit]]` is not configured): a Wazuh manager
//! that is unreachable mutes the other alerts labelled with the same `manager`.

use serde::Serialize;

use super::matcher::{Matcher, all_match, fields_of, mutes};
use crate::store::alerts::AlertRow;

/// The label the `wazuh` monitors' alerts carry: the manager's `host:port`.
pub const MANAGER_LABEL: &str = "manager";
/// The code of the finding that the manager API did not answer.
pub const MANAGER_UNREACHABLE: &str = "manager_unreachable";

/// One inhibition rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InhibitRule {
    /// What the muting alert looks like (it must be firing).
    pub source: Vec<Matcher>,
    /// What the muted alerts look like.
    pub target: Vec<Matcher>,
    /// Labels whose values source and target share.
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// The default: `code=manager_unreachable` mutes `manager=~.+` with equal `manager`.
    pub fn wazuh_manager_default() -> InhibitRule {
        let m = |t: &str| Matcher::parse(t).expect("the default rule's matchers parse");
        InhibitRule {
            source: vec![m(&format!("code={MANAGER_UNREACHABLE}"))],
            target: vec![m(&format!("{MANAGER_LABEL}=~.+"))],
            equal: vec![MANAGER_LABEL.to_string()],
        }
    }

    /// The firing alert among `firing` that mutes `row` by this rule, if any.
    pub fn inhibitor<'a>(&self, firing: &'a [AlertRow], row: &AlertRow) -> Option<&'a AlertRow> {
        let sources = self.sources(firing);
        self.inhibitor_among(&sources, row)
            .map(|s| &firing[s.index])
    }

    /// The firing alerts that match this rule's source side, with their `equal` values:
    /// computed once per evaluation, so checking an alert costs the few sources, not every
    /// firing alert.
    pub fn sources(&self, firing: &[AlertRow]) -> Vec<Source> {
        firing
            .iter()
            .enumerate()
            .filter_map(|(index, src)| {
                let fields = fields_of(src);
                all_match(&self.source, &fields).then(|| Source {
                    index,
                    seq: src.seq,
                    fingerprint: src.fingerprint.clone(),
                    equal: self.equal.iter().map(|l| fields.get(l).cloned()).collect(),
                })
            })
            .collect()
    }

    /// The source among `sources` (of this rule) that mutes `row`, if any.
    pub fn inhibitor_among<'s>(&self, sources: &'s [Source], row: &AlertRow) -> Option<&'s Source> {
        if sources.is_empty() || !mutes(&self.target, row) {
            return None;
        }
        let target = fields_of(row);
        sources.iter().find(|src| {
            src.seq != row.seq
                && src.fingerprint != row.fingerprint
                && self
                    .equal
                    .iter()
                    .zip(&src.equal)
                    .all(|(l, v)| target.get(l) == v.as_ref())
        })
    }
}

/// A firing alert that matches a rule's source side.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Its position in the firing list it came from.
    pub index: usize,
    pub seq: i64,
    pub fingerprint: String,
    /// Its values of the rule's `equal` labels (None: it lacks the label).
    pub equal: Vec<Option<String>>,
}

/// The sources of every rule, computed once ([`InhibitRule::sources`]).
pub struct Inhibition<'r> {
    rules: &'r [InhibitRule],
    sources: Vec<Vec<Source>>,
    firing: Vec<AlertRow>,
}

impl<'r> Inhibition<'r> {
    pub fn new(rules: &'r [InhibitRule], firing: Vec<AlertRow>) -> Self {
        let sources = rules.iter().map(|r| r.sources(&firing)).collect();
        Inhibition {
            rules,
            sources,
            firing,
        }
    }

    /// The first rule's firing alert that mutes `row`.
    pub fn inhibitor(&self, row: &AlertRow) -> Option<&AlertRow> {
        self.rules
            .iter()
            .zip(&self.sources)
            .find_map(|(rule, sources)| rule.inhibitor_among(sources, row))
            .map(|s| &self.firing[s.index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Level;
    use crate::alerts::matcher::tests::alert;

    fn with(mut a: AlertRow, k: &str, v: &str) -> AlertRow {
        a.labels.insert(k.into(), v.into());
        a
    }

    #[test]
    fn the_default_rule_mutes_alerts_of_the_same_manager_only() {
        let rule = InhibitRule::wazuh_manager_default();
        let down = with(
            alert(1, "wazuh", MANAGER_UNREACHABLE, Level::Critical),
            "manager",
            "wazuh-a:55000",
        );
        let daemon = with(
            alert(2, "wazuh", "daemon_stopped", Level::Critical),
            "manager",
            "wazuh-a:55000",
        );
        let other = with(
            alert(3, "wazuh", "daemon_stopped", Level::Critical),
            "manager",
            "wazuh-b:55000",
        );
        let unlabelled = alert(4, "web", "endpoint_down", Level::Critical);
        let firing = vec![down.clone()];
        assert_eq!(rule.inhibitor(&firing, &daemon).map(|a| a.seq), Some(1));
        assert!(rule.inhibitor(&firing, &other).is_none(), "another manager");
        assert!(
            rule.inhibitor(&firing, &unlabelled).is_none(),
            "no manager label"
        );
        assert!(rule.inhibitor(&firing, &down).is_none(), "never itself");
        // Only a firing source mutes: with nothing firing, nothing is muted.
        assert!(rule.inhibitor(&[], &daemon).is_none());
        // An emergency alert of that manager is not muted by the broad target.
        let loud = with(
            alert(5, "wazuh", "indexer_down", Level::Emergency),
            "manager",
            "wazuh-a:55000",
        );
        assert!(rule.inhibitor(&firing, &loud).is_none());
    }

    #[test]
    fn equal_labels_must_agree_and_missing_on_both_counts_as_equal() {
        let rule = InhibitRule {
            source: vec![Matcher::parse("code=site_down").unwrap()],
            target: vec![Matcher::parse("monitor=certs").unwrap()],
            equal: vec!["site".into(), "region".into()],
        };
        let src = with(alert(1, "web", "site_down", Level::Critical), "site", "a");
        let same = with(
            alert(2, "certs", "cert_unreachable", Level::Warning),
            "site",
            "a",
        );
        let diff = with(
            alert(3, "certs", "cert_unreachable", Level::Warning),
            "site",
            "b",
        );
        let region = with(same.clone(), "region", "eu");
        let firing = [src];
        assert!(
            rule.inhibitor(&firing, &same).is_some(),
            "region missing on both"
        );
        assert!(rule.inhibitor(&firing, &diff).is_none());
        assert!(
            rule.inhibitor(&firing, &region).is_none(),
            "region only on the target"
        );
        let wrong_target = with(alert(4, "web", "slow", Level::Warning), "site", "a");
        assert!(rule.inhibitor(&firing, &wrong_target).is_none());
    }
}
