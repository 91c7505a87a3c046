//! The view `config check` and the `secops://config` resource show: the config structs'
//! own `Serialize` (secrets as `***`, parsed settings as written), with each `a/b` name
//! nested into section `a`, so the view has the TOML file's shape. Being derived, a new
//! field cannot be left out of it.

use serde_json::{Map, Value};

use super::Config;

impl Config {
    /// The effective settings as a JSON value with every secret masked (for `config check`
    /// and the config resource).
    pub fn masked(&self) -> Value {
        let raw = serde_json::to_value(self).expect("the config serialises to JSON");
        nest(raw)
    }
}

/// Nest every `section/key` name into its section (recursively). Only field names carry a
/// `/`: the one map of names in the config (confirmation principals) cannot contain one.
fn nest(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                put(&mut out, &k, nest(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(nest).collect()),
        other => other,
    }
}

/// Insert `v` at `path` (`a/b/c`), merging objects that meet at the same name.
fn put(map: &mut Map<String, Value>, path: &str, v: Value) {
    if let Some((section, rest)) = path.split_once('/') {
        let entry = map
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        match entry {
            Value::Object(inner) => put(inner, rest, v),
            other => panic!("config view: `{section}` is both a value ({other}) and a section"),
        }
        return;
    }
    match (map.get_mut(path), v) {
        (Some(Value::Object(existing)), Value::Object(more)) => {
            for (k, v) in more {
                put(existing, &k, v);
            }
        }
        (Some(other), v) => panic!("config view: `{path}` appears twice ({other} and {v})"),
        (None, v) => {
            map.insert(path.to_string(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;

    use super::*;

    /// Fields whose view name is not their Rust name: where the view shows them.
    const RENAMED: &[(&str, &str)] = &[
        ("extra_ca_file", "/tls/extra_ca_file"),
        ("tls_insecure", "/tls/insecure"),
        ("scan_allow", "/scan/allow"),
        ("scan_rate_per_minute", "/scan/rate_per_minute"),
        ("remediation_enabled", "/remediation/enabled"),
        ("cert", "/check_cert"),
        // Flattened into `[http]`.
        ("limits", "/http/max_connections"),
        // Flattened to the top: `[[channels]]` and `[routing]`.
        ("notify", "/channels"),
        (
            "rotate_credentials_enabled",
            "/remediation/rotate_credentials/enabled",
        ),
        ("rotate_allow", "/remediation/rotate_credentials/allow"),
        ("block_ip_enabled", "/remediation/block_ip/enabled"),
        ("protected_cidrs", "/remediation/block_ip/protected_cidrs"),
        ("allow_all_agents", "/remediation/block_ip/allow_all_agents"),
        ("block_ip_max_agents", "/remediation/block_ip/max_agents"),
        ("confirm_stdio", "/remediation/confirmation/stdio"),
        ("confirm_http", "/remediation/confirmation/http"),
        ("confirm_principals", "/remediation/confirmation/principals"),
    ];

    /// A config in which every optional setting is set and every list has an entry.
    fn fully_populated(dir: &std::path::Path) -> Config {
        let pw = dir.join("pw");
        std::fs::write(&pw, "S3cret-file-pass!\n").unwrap();
        for (f, v) in [
            (
                "slack",
                "https://hooks.slack.com/services/T0/B0/S3cret-slack-hook",
            ),
            ("twilio", "S3cret-twilio-token"),
            ("pd", "S3cretPagerDutyKey0123456789abcd"),
        ] {
            std::fs::write(dir.join(f), v).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600))
                    .unwrap();
            }
        }
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not checked at load").unwrap();
        // The email channel's CA is read when the channel is built at load: a real one.
        let smtp_ca = dir.join("smtp-ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["smtp.example".into()]).unwrap();
        std::fs::write(&smtp_ca, cert.cert.pem()).unwrap();
        let toml = format!(
            "state_dir = \"{d}\"\nlog_level = \"debug\"\n\
             [wazuh]\nurl = \"https://w:55000\"\nuser = \"u\"\npassword_file = \"{pw}\"\n\
             ca_file = \"{ca}\"\nrequests_per_minute = 100\n\
             [indexer]\nurl = \"https://i:9200\"\npassword = \"inline-pass\"\nca_file = \"{ca}\"\n\
             [tls]\nextra_ca_file = \"{ca}\"\ninsecure = true\n\
             [scan]\nallow = [\"10.0.0.0/8\"]\nrate_per_minute = 5\n\
             [http]\ntokens_file = \"{d}/tokens\"\nallowed_hosts = [\"mcp.example\"]\n\
             max_connections = 9\n\
             [check_cert]\nallow = [\"mail.example\"]\n\
             [health]\ndocker_host = \"unix:///d.sock\"\n\
             [incidents]\nlow_sla_minutes = 1440\n\
             [remediation]\nenabled = true\napprovers = [\"bob\"]\n\
             [remediation.confirmation]\nprincipals = {{ alice = \"second_principal\" }}\n\
             [remediation.rotate_credentials]\nallow = [\"c1\"]\n\
             [remediation.block_ip]\nprotected_cidrs = [\"192.0.2.0/24\"]\n\
             [[credentials]]\nid = \"c1\"\nkind = \"wazuh_api_user\"\nuser = \"u\"\n\
             secret_file = \"{d}/c1\"\n\
             [[channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"smtp.example\"\n\
             port = 2587\ntls = \"starttls\"\nusername = \"alerts\"\npassword_file = \"{pw}\"\n\
             from = \"alerts@example.org\"\nto = [\"ops@example.org\"]\ntimeout_ms = 5000\n\
             ca_file = \"{smtp_ca}\"\nsubject_template = \"[{{{{ alert.level }}}}] {{{{ alert.title }}}}\"\n\
             template = \"{{{{ alert.summary }}}}\"\n\
             [[channels]]\nname = \"chat\"\nkind = \"slack\"\nurl_file = \"{d}/slack\"\ntemplate = \"{{{{ alert.title }}}}\"\n\
             timeout_ms = 5000\n\
             [[channels]]\nname = \"sms\"\nkind = \"sms\"\naccount_sid = \"AC{sid}\"\n\
             auth_token_file = \"{d}/twilio\"\nfrom = \"+15005550006\"\nto = [\"+15551230001\"]\n\
             base_url = \"https://api.twilio.com\"\ntemplate = \"{{{{ alert.id }}}} {{{{ alert.title }}}}\"\n\
             [[channels]]\nname = \"sms2\"\nkind = \"sms\"\naccount_sid = \"AC{sid}\"\n\
             auth_token_file = \"{d}/twilio\"\nmessaging_service_sid = \"MG{sid}\"\n\
             to = [\"+15551230001\"]\n\
             [[channels]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key_file = \"{d}/pd\"\n\
             source = \"host-a\"\nbase_url = \"https://events.pagerduty.com\"\n\
             [[contacts]]\nname = \"Alice\"\nrole = \"security lead\"\nemail = \"alice@example.org\"\n\
             phone = \"+15551230001\"\npagerduty_routing_key_file = \"{d}/pd\"\n\
             channels = [\"mail\", \"sms\", \"pd\"]\n\
             [escalation_defaults]\nbusiness_time = \"08:00\"\ntimezone = \"Europe/Berlin\"\n\
             [[escalation]]\nname = \"crit\"\nlevel = \"critical\"\nafter = \"15m\"\n\
             contacts = [\"security lead\"]\n\
             [[escalation]]\nname = \"morning\"\nlevel = \"info\"\nnext_business_day = true\n\
             contacts = [\"Alice\"]\n",
            sid = "0123456789abcdef".repeat(2),
            d = dir.display(),
            pw = pw.display(),
            ca = ca.display(),
            smtp_ca = smtp_ca.display(),
        );
        let file = dir.join("secops-mcp.toml");
        std::fs::write(&file, toml).unwrap();
        Config::load_with(Some(&file), &BTreeMap::new()).unwrap()
    }

    /// Every key name in the view whose value is set.
    fn keys(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if !v.is_null() {
                        out.insert(k.clone());
                    }
                    keys(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }

    #[test]
    fn masked_view_shows_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let c = fully_populated(dir.path());
        let view = c.masked();
        let mut shown = BTreeSet::new();
        keys(&view, &mut shown);
        // `Debug`, derived on every config struct, names every field independently of serde.
        let debug = format!("{c:#?}");
        let fields: BTreeSet<&str> = debug
            .lines()
            .filter_map(|l| l.trim_start().split_once(": ").map(|(name, _)| name))
            .filter(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .collect();
        assert!(fields.len() > 60, "{fields:?}");
        for field in fields {
            match RENAMED.iter().find(|(f, _)| *f == field) {
                Some((_, at)) => assert!(
                    view.pointer(at).is_some_and(|v| !v.is_null()),
                    "`{field}` is not at {at}: {view:#}"
                ),
                None => assert!(shown.contains(field), "`{field}` missing: {view:#}"),
            }
        }
        let text = view.to_string();
        assert!(
            !text.contains("S3cret") && !text.contains("inline-pass"),
            "{text}"
        );
    }

    #[test]
    fn masked_view_has_the_toml_shape() {
        let dir = tempfile::tempdir().unwrap();
        let v = fully_populated(dir.path()).masked();
        assert_eq!(
            v["tls"],
            json!({"extra_ca_file": dir.path().join("ca.pem"), "insecure": true})
        );
        assert_eq!(
            v["scan"],
            json!({"allow": ["10.0.0.0/8"], "rate_per_minute": 5})
        );
        assert_eq!(v["http"]["max_connections"], 9);
        assert_eq!(v["remediation"]["enabled"], true);
        assert_eq!(
            v["remediation"]["block_ip"]["protected_cidrs"],
            json!(["192.0.2.0/24"])
        );
        assert_eq!(v["check_cert"]["allow"], json!(["mail.example"]));
        assert_eq!(v["incidents"]["sla_minutes"]["low"], 1440);
        assert_eq!(v["incidents"]["contacts"]["critical"], "security lead");
        assert_eq!(v["wazuh"]["login"]["password"], "***");
        assert_eq!(v["indexer"]["login"]["password_source"], "inline");
        let mail = v["channels"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == "mail"))
            .unwrap_or_else(|| panic!("no mail channel: {v:#}"));
        assert_eq!(mail["kind"], "email");
        assert_eq!(mail["password"], "***");
        assert_eq!(mail["tls"], "starttls");
        assert_eq!(mail["to"], json!(["ops@example.org"]));
        assert!(mail["password_source"]["file"].is_string(), "{mail:#}");
        let c = Config::from_toml_str(
            "",
            &BTreeMap::from([("SECOPS_STATE_DIR".to_string(), "/tmp/s".to_string())]),
        )
        .unwrap();
        assert_eq!(
            c.masked()["incidents"]["sla_minutes"]["low"],
            "next_business_day"
        );
    }

    #[test]
    fn nesting_merges_sections_and_refuses_collisions() {
        let v = nest(json!({"a/b": 1, "a": {"c": 2}, "d": [{"e/f": 3}]}));
        assert_eq!(v, json!({"a": {"b": 1, "c": 2}, "d": [{"e": {"f": 3}}]}));
        let clash = std::panic::catch_unwind(|| nest(json!({"a/b": 1, "a": {"b": 2}})));
        assert!(clash.is_err());
    }
}
