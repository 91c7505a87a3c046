//! `[[inhibit]]`: inhibition rules (`source` matchers, `target` matchers, `equal` labels;
//! see `alerts::inhibit`). Without the key the default rule applies (a Wazuh manager that
//! is unreachable mutes the other alerts of that manager); `inhibit = []` turns it off.
//! Also the `manager` label the default rule keys on: every `wazuh` monitor's alerts carry
//! `manager = "<host>:<port>"` of `[wazuh].url` (unless the monitor sets it itself).
//!
//! ```toml
//! [[inhibit]]
//! source = ["code=endpoint_down", "monitor=edge"]
//! target = ["monitor=certs"]
//! equal = ["site"]
//! ```

use serde::Deserialize;

use super::{ConfigError, MonitorConfig, WazuhConfig};
use crate::alerts::inhibit::{InhibitRule, MANAGER_LABEL};
use crate::alerts::matcher;

const MAX_RULES: usize = 50;

/// One `[[inhibit]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInhibit {
    pub source: Option<Vec<String>>,
    pub target: Option<Vec<String>>,
    #[serde(default)]
    pub equal: Vec<String>,
}

/// The rules: the default one when the key is absent, none for `inhibit = []`.
pub(super) fn load(entries: Option<Vec<FileInhibit>>) -> Result<Vec<InhibitRule>, ConfigError> {
    let Some(entries) = entries else {
        return Ok(vec![InhibitRule::wazuh_manager_default()]);
    };
    if entries.len() > MAX_RULES {
        return Err(ConfigError::new(
            "inhibit",
            format!("{} entries; at most {MAX_RULES}", entries.len()),
        ));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let side = |name: &str, texts: Option<Vec<String>>| {
                matcher::parse_list(&format!("inhibit[{i}].{name}"), &texts.unwrap_or_default())
                    .map_err(|(k, problem)| ConfigError::new(k, problem))
            };
            let source = side("source", f.source)?;
            let target = side("target", f.target)?;
            for (j, l) in f.equal.iter().enumerate() {
                let ok = !l.is_empty()
                    && l.len() <= 100
                    && !l.starts_with(|c: char| c.is_ascii_digit())
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(ConfigError::new(
                        format!("inhibit[{i}].equal[{j}]"),
                        format!(
                            "\"{}\" is not a label name (letters, digits and `_`, not starting with a digit)",
                            crate::util::quote_untrusted(l, 40)
                        ),
                    ));
                }
            }
            Ok(InhibitRule {
                source,
                target,
                equal: f.equal,
            })
        })
        .collect()
}

/// `host:port` of the manager URL (the port defaulted from the scheme).
pub fn manager_id(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

/// Label every `wazuh` monitor with its manager, so the default rule can find the alerts
/// of the same manager.
pub(super) fn label_wazuh_monitors(monitors: &mut [MonitorConfig], wazuh: Option<&WazuhConfig>) {
    let Some(id) = wazuh.and_then(|w| manager_id(&w.url)) else {
        return;
    };
    for m in monitors.iter_mut().filter(|m| m.kind() == "wazuh") {
        m.labels
            .entry(MANAGER_LABEL.to_string())
            .or_insert_with(|| id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_means_the_default_rule_and_an_empty_list_means_none() {
        assert_eq!(
            load(None).unwrap(),
            vec![InhibitRule::wazuh_manager_default()]
        );
        assert!(load(Some(vec![])).unwrap().is_empty());
        let rules = load(Some(vec![FileInhibit {
            source: Some(vec!["code=endpoint_down".into()]),
            target: Some(vec!["monitor=certs".into()]),
            equal: vec!["site".into()],
        }]))
        .unwrap();
        assert_eq!(rules[0].equal, vec!["site".to_string()]);
    }

    #[test]
    fn bad_rules_name_the_key() {
        let e = load(Some(vec![FileInhibit {
            source: None,
            target: Some(vec!["monitor=certs".into()]),
            equal: vec![],
        }]))
        .unwrap_err();
        assert_eq!(e.key, "inhibit[0].source");
        let e = load(Some(vec![FileInhibit {
            source: Some(vec!["code=x".into()]),
            target: Some(vec!["monitor=~(".into()]),
            equal: vec![],
        }]))
        .unwrap_err();
        assert_eq!(e.key, "inhibit[0].target[0]");
        assert!(e.problem.contains("regex"), "{}", e.problem);
        let e = load(Some(vec![FileInhibit {
            source: Some(vec!["code=x".into()]),
            target: Some(vec!["monitor=y".into()]),
            equal: vec!["ok".into(), "not ok".into()],
        }]))
        .unwrap_err();
        assert_eq!(e.key, "inhibit[0].equal[1]");
    }

    #[test]
    fn wazuh_monitors_carry_the_manager_label_and_the_config_has_the_default_rule() {
        use std::collections::BTreeMap;
        let env = BTreeMap::from([("SECOPS_WAZUH_PASSWORD".to_string(), "pw".to_string())]);
        let c = crate::config::Config::from_toml_str(
            "[wazuh]\nurl = \"https://wazuh.example:55000\"\n\
             [[monitors]]\nname = \"wazuh\"\nkind = \"wazuh\"\n\
             [[monitors]]\nname = \"own\"\nkind = \"wazuh\"\nlabels = { manager = \"mine\" }\n\
             [[monitors]]\nname = \"web\"\nkind = \"uptime\"\nurl = \"https://shop.example/\"\n",
            &env,
        )
        .unwrap();
        let label = |i: usize| c.monitors[i].labels.get(MANAGER_LABEL).cloned();
        assert_eq!(label(0).as_deref(), Some("wazuh.example:55000"));
        assert_eq!(
            label(1).as_deref(),
            Some("mine"),
            "a label set by hand wins"
        );
        assert_eq!(label(2), None, "only the wazuh kind");
        assert_eq!(
            c.mute_rules().inhibit,
            vec![InhibitRule::wazuh_manager_default()]
        );
        let view = c.masked().to_string();
        assert!(view.contains("manager_unreachable"), "{view}");
        let c = crate::config::Config::from_toml_str("inhibit = []\n", &env).unwrap();
        assert!(c.inhibit.is_empty());
    }

    #[test]
    fn the_manager_label_is_host_and_port() {
        assert_eq!(
            manager_id("https://wazuh.example:55000").as_deref(),
            Some("wazuh.example:55000")
        );
        assert_eq!(
            manager_id("https://wazuh.example/").as_deref(),
            Some("wazuh.example:443")
        );
        assert_eq!(manager_id("not a url"), None);
    }
}
