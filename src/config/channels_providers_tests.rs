//! Tests of the provider channel kinds (`slack`, `sms`, `pagerduty`) in `[[channels]]`.

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

const SID: &str = "AC0123456789abcdef0123456789abcdef";

#[test]
fn slack_sms_and_pagerduty_load_their_secrets_and_never_show_them() {
    let toml = format!(
        "[[channels]]\nname = \"chat\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\n\
         [[channels]]\nname = \"phones\"\nkind = \"sms\"\naccount_sid = \"{SID}\"\n\
         auth_token_env = \"TW\"\nmessaging_service_sid = \"MG0123456789abcdef0123456789abcdef\"\n\
         to = [\"+15551230001\", \"+447700900123\"]\n\
         [[channels]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD\"\n\
         [routing]\nemergency = [\"chat\", \"phones\", \"pd\"]\n"
    );
    let c = load(
        &toml,
        &[
            (
                "SLACK_URL",
                "https://hooks.slack.com/services/T1/B1/sl4ckS3cretPath",
            ),
            ("TW", "tw1l10S3cret"),
            ("PD", "pdR0ut1ngS3cretKey000000000000aa"),
        ],
    )
    .unwrap();
    let built = c.notify.build().unwrap();
    assert_eq!(built.len(), 4);
    assert_eq!(c.notify.acknowledging_channels(), ["pd"]);
    // The configuration's answer and the channel's own agree for every kind.
    for cfg in &c.notify.channels {
        let ch = &built[&cfg.name];
        assert_eq!(ch.kind(), cfg.kind.name());
        assert_eq!(
            ch.wants(crate::alerts::NotificationKind::Acknowledged),
            cfg.kind.takes_acknowledgements(),
            "{}",
            cfg.name
        );
    }
    match &c.notify.channels[2].kind {
        super::ChannelKind::Pagerduty {
            source, base_url, ..
        } => {
            assert!(!source.is_empty());
            assert_eq!(base_url, "https://events.pagerduty.com");
        }
        k => panic!("{k:?}"),
    }
    let shown = c.masked().to_string() + &format!("{c:?}");
    for s in [
        "sl4ckS3cretPath",
        "tw1l10S3cret",
        "pdR0ut1ngS3cretKey",
        "hooks.slack.com",
    ] {
        assert!(!shown.contains(s), "{s} shown: {shown}");
    }
    assert!(
        shown.contains("+447700900123") && shown.contains("SLACK_URL"),
        "{shown}"
    );
}

#[test]
fn bad_provider_channels_name_the_key() {
    let env: &[(&str, &str)] = &[
        ("U", "https://hooks.slack.com/x"),
        ("T", "tok3n"),
        ("K", "k3y"),
    ];
    let sms = |extra: &str| {
        format!(
            "[[channels]]\nname = \"p\"\nkind = \"sms\"\naccount_sid = \"{SID}\"\n\
             auth_token_env = \"T\"\nfrom = \"+15005550006\"\n{extra}"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        ("[[channels]]\nname = \"c\"\nkind = \"slack\"\n".into(), "channels[0].url_env"),
        (
            "[[channels]]\nname = \"c\"\nkind = \"slack\"\nurl_env = \"U\"\nsource = \"x\"\n".into(),
            "channels[0].source",
        ),
        (sms(""), "channels[0].to"),
        (sms("to = [\"+15551230001\", \"0800\"]\n"), "channels[0].to[1]"),
        (sms("to = [\"+15551230001\"]\nbase_url = \"http://api.twilio.example\"\n"), "channels[0] (p)"),
        (
            "[[channels]]\nname = \"p\"\nkind = \"sms\"\nauth_token_env = \"T\"\n".into(),
            "channels[0].account_sid",
        ),
        (
            format!("[[channels]]\nname = \"p\"\nkind = \"sms\"\naccount_sid = \"{SID}\"\n"),
            "channels[0].auth_token_env",
        ),
        ("[[channels]]\nname = \"d\"\nkind = \"pagerduty\"\n".into(), "channels[0].routing_key_env"),
        (
            "[[channels]]\nname = \"d\"\nkind = \"pagerduty\"\nrouting_key_env = \"K\"\nto = [\"+1555\"]\n".into(),
            "channels[0].to",
        ),
        (
            "[[channels]]\nname = \"d\"\nkind = \"pagerduty\"\nrouting_key_env = \"K\"\n\
             base_url = \"http://events.example\"\n".into(),
            "channels[0] (d)",
        ),
    ];
    for (toml, key) in &cases {
        let e = load(toml, env).unwrap_err();
        assert_eq!(e.key, *key, "{toml}: {e}");
        for s in ["tok3n", "k3y"] {
            assert!(!e.to_string().contains(s), "{e}");
        }
    }
}

#[test]
fn templates_are_checked_at_load_and_errors_name_the_key() {
    let sms = format!(
        "[[channels]]\nname = \"log2\"\nkind = \"log\"\n\
         [[channels]]\nname = \"phones\"\nkind = \"sms\"\naccount_sid = \"{SID}\"\n\
         auth_token_env = \"TW\"\nfrom = \"+15005550006\"\nto = [\"+15551230001\"]\n"
    );
    let env = [("TW", "tw1l10S3cret")];
    let ok = load(
        &format!("{sms}template = \"{{{{ alert.id }}}} {{{{ alert.title }}}}\"\n"),
        &env,
    )
    .unwrap();
    assert!(
        ok.masked().to_string().contains("{{ alert.id }}"),
        "{}",
        ok.masked()
    );
    for (keys, key, want) in [
        (
            "template = \"{{ alert.tittle }}\"\n",
            "channels[1].template",
            "line 1: undefined value",
        ),
        (
            "template = \"{{ alert.id | shout }}\"\n",
            "channels[1].template",
            "unknown filter",
        ),
        (
            "template = \"x\"\ntemplate_file = \"/tmp/x\"\n",
            "channels[1].template",
            "not both",
        ),
        (
            "template_file = \"/nonexistent/sms.j2\"\n",
            "channels[1].template_file",
            "cannot read",
        ),
        (
            "subject_template = \"x\"\n",
            "channels[1].subject_template",
            "does not apply",
        ),
    ] {
        let e = load(&format!("{sms}{keys}"), &env).unwrap_err();
        assert_eq!(e.key, key, "{keys}: {e}");
        assert!(e.to_string().contains(want), "{keys}: {e}");
    }
    let slack = "[[channels]]\nname = \"chat\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\n\
                 template = \"{{ alert.nope }}\"\n";
    let e = load(
        slack,
        &[(
            "SLACK_URL",
            "https://hooks.slack.com/services/T1/B1/sl4ckS3cretPath",
        )],
    )
    .unwrap_err();
    assert_eq!(e.key, "channels[0].template", "{e}");
    let pd = "[[channels]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD\"\n\
              template = \"x\"\n";
    let e = load(pd, &[("PD", "pdR0ut1ngS3cretKey000000000000aa")]).unwrap_err();
    assert_eq!(e.key, "channels[0].template", "{e}");
}

#[test]
fn unrouted_levels_follow_the_guide_among_the_configured_channels() {
    let toml = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"HOOK\"\n\
         [[channels]]\nname = \"chat\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\n\
         [[channels]]\nname = \"phones\"\nkind = \"sms\"\naccount_sid = \"{SID}\"\n\
         auth_token_env = \"TW\"\nfrom = \"+15005550006\"\nto = [\"+15551230001\"]\n\
         [[channels]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD\"\n\
         [routing]\nwarning = [\"hook\"]\n"
    );
    let env = [
        ("HOOK", "https://hooks.example.test/x"),
        ("SLACK_URL", "https://hooks.slack.com/services/T1/B1/x"),
        ("TW", "tw1l10S3cret"),
        ("PD", "pdR0ut1ngS3cretKey000000000000aa"),
    ];
    let c = load(&toml, &env).unwrap();
    let r = &c.notify.routing;
    // No email channel: that part of the guide does not count; the webhook only by name.
    assert_eq!(r["info"], ["log", "chat"]);
    assert_eq!(r["warning"], ["hook"], "a written level is kept as written");
    assert_eq!(r["critical"], ["log", "chat", "phones"]);
    assert_eq!(r["emergency"], ["log", "chat", "phones", "pd"]);
    // Nothing configured: everything to the log, as before.
    let c = load("", &[]).unwrap();
    for level in ["info", "warning", "critical", "emergency"] {
        assert_eq!(c.notify.routing[level], ["log"], "{level}");
    }
}
