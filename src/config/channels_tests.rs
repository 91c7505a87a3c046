//! `[[channels]]` and `[routing]` tests (config/channels.rs).
use super::super::Config;
use std::collections::BTreeMap;

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, super::ConfigError> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([(
            "SECOPS_STATE_DIR".to_string(),
            "/tmp/secops-test-state".to_string(),
        )])
        .collect();
    Config::from_toml_str(toml, &env)
}

#[test]
fn without_settings_everything_goes_to_the_log() {
    let c = load("", &[]).unwrap();
    assert_eq!(c.notify.channels.len(), 1);
    assert_eq!(c.notify.route(crate::alerts::Level::Emergency), ["log"]);
    assert_eq!(c.notify.build().unwrap().len(), 1);
}

#[test]
fn a_webhook_reads_its_secrets_from_env_and_never_shows_them() {
    let toml = "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS_URL\"\n\
                hmac_secret_env = \"OPS_KEY\"\nheaders_env = { Authorization = \"OPS_AUTH\" }\n\
                [routing]\ncritical = [\"ops\", \"log\"]\n";
    let c = load(
        toml,
        &[
            ("OPS_URL", "https://hooks.example/T0k3n-in-path"),
            ("OPS_KEY", "hm4c-s3cret"),
            ("OPS_AUTH", "Bearer b34rer"),
        ],
    )
    .unwrap();
    assert_eq!(
        c.notify.route(crate::alerts::Level::Critical),
        ["ops", "log"]
    );
    assert_eq!(c.notify.route(crate::alerts::Level::Info), ["log"]);
    assert_eq!(c.notify.build().unwrap().len(), 2);
    let shown = c.masked().to_string() + &format!("{c:?}");
    for s in ["T0k3n-in-path", "hm4c-s3cret", "b34rer", "hooks.example"] {
        assert!(!shown.contains(s), "{s} shown: {shown}");
    }
    assert!(shown.contains("OPS_URL"), "{shown}");
}

#[test]
fn bad_channels_and_routes_name_the_key() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "[[channels]]\nname = \"ops\"\nkind = \"pager\"\n",
            &[],
            "channels[0].kind",
        ),
        (
            "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\n",
            &[],
            "channels[0].url_env",
        ),
        (
            "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"NOPE\"\n",
            &[],
            "channels[0].url_env",
        ),
        (
            "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"U\"\n",
            &[("U", "ftp://x/")],
            "channels[0] (ops)",
        ),
        (
            "[[channels]]\nname = \"Ops!\"\nkind = \"log\"\n",
            &[],
            "channels[0].name",
        ),
        (
            "[[channels]]\nname = \"f\"\nkind = \"log\"\npath = \"/tmp/x\"\n",
            &[],
            "channels[0].path",
        ),
        (
            "[[channels]]\nname = \"f\"\nkind = \"file\"\npath = \"relative.jsonl\"\n",
            &[],
            "channels[0] (f)",
        ),
        ("[routing]\nwarning = [\"slack\"]\n", &[], "routing.warning"),
        (
            "[[channels]]\nname = \"a\"\nkind = \"log\"\n[[channels]]\nname = \"a\"\nkind = \"log\"\n",
            &[],
            "channels[1].name",
        ),
    ];
    for (toml, env, key) in cases {
        let e = load(toml, env).unwrap_err();
        assert_eq!(e.key, *key, "{toml}: {e}");
    }
    // The URL's text is never in the error either.
    let e = load(
        "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"U\"\n",
        &[("U", "ftp://s3cret.example/")],
    )
    .unwrap_err();
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

#[test]
fn rate_limits_default_by_kind_show_in_config_show_and_bad_ones_name_the_key() {
    let toml = "[[channels]]\nname = \"chat\"\nkind = \"slack\"\nurl_env = \"CHAT\"\n\
                [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS\"\n\
                rate_limit = \"5/m\"\n\
                [[channels]]\nname = \"chat2\"\nkind = \"slack\"\nurl_env = \"CHAT\"\n\
                rate_limit = \"none\"\n";
    let env = [
        (
            "CHAT",
            "https://hooks.slack.com/services/T0/B0/s3cretS3CRET",
        ),
        ("OPS", "https://hooks.example/x"),
    ];
    let c = load(toml, &env).unwrap();
    let limits = c.notify.rate_limits();
    let shown: Vec<(String, String)> = limits
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    assert_eq!(
        shown,
        [
            ("chat".to_string(), "1/s".to_string()),
            ("chat2".to_string(), "none".to_string()),
            ("log".to_string(), "none".to_string()),
            ("ops".to_string(), "5/m".to_string()),
        ]
    );
    let view = c.masked();
    let chans = view["channels"].as_array().unwrap();
    assert_eq!(chans[0]["rate_limit"], "1/s");
    assert_eq!(chans[1]["rate_limit"], "5/m");
    let e = load(
        "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS\"\nrate_limit = \"1/week\"\n",
        &env,
    )
    .unwrap_err();
    assert_eq!(e.key, "channels[0].rate_limit", "{e}");
    assert!(e.to_string().contains("unknown period"), "{e}");
}
