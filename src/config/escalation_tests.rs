use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;
use crate::config::Config;

const CHANNELS: &str = "\
[[channels]]
name = \"mail\"
kind = \"email\"
host = \"smtp.example\"
from = \"alerts@example.org\"
to = [\"ops@example.org\"]
[[channels]]
name = \"text\"
kind = \"sms\"
account_sid = \"AC0123456789abcdef0123456789abcdef\"
auth_token_env = \"TW_TOKEN\"
from = \"+15005550006\"
to = [\"+15551230009\"]
[[channels]]
name = \"pager\"
kind = \"pagerduty\"
routing_key_env = \"PD_KEY\"
[[channels]]
name = \"chat\"
kind = \"log\"
";

const ALICE: &str = "\
[[contacts]]
name = \"Alice\"
role = \"security lead\"
email = \"alice@example.org\"
phone = \"+15551230001\"
pagerduty_routing_key_env = \"ALICE_PD\"
";

fn load(toml: &str) -> Result<Config, ConfigError> {
    let env: BTreeMap<String, String> = [
        ("SECOPS_STATE_DIR", "/tmp/secops-test-state"),
        ("TW_TOKEN", "tw-t0ken"),
        ("PD_KEY", "ServiceKey0123456789abcdef012345"),
        ("ALICE_PD", "AliceS3cretKey0123456789abcdef01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Config::from_toml_str(&format!("{CHANNELS}{toml}"), &env)
}

fn ms(t: chrono::DateTime<Tz>) -> Millis {
    t.timestamp_millis()
}

#[test]
fn without_rules_the_manuals_matrix_applies_and_steps_without_a_contact_are_skipped() {
    let c = load("").unwrap();
    assert!(c.escalation.enabled && c.escalation.default_rules);
    let shown: Vec<_> = c
        .escalation
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.level, r.after_secs, r.live))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("critical-15m", Level::Critical, Some(900), false),
            ("warning-1h", Level::Warning, Some(3600), false),
            ("info-4h", Level::Info, Some(14_400), false),
            ("info-next-business-day", Level::Info, None, false),
        ]
    );
    assert_eq!(
        c.escalation.rules[3].next_business_day,
        Some(BusinessTime::default())
    );
    assert!(c.escalation.incident_contacts.values().all(Vec::is_empty));

    // The security lead exists: that step (and the incidents' critical step) is live.
    let c = load(ALICE).unwrap();
    let live: Vec<_> = c.escalation.rules.iter().map(|r| r.live).collect();
    assert_eq!(live, [true, false, false, false]);
    assert_eq!(c.escalation.rules[0].reaches, ["Alice"]);
    assert_eq!(c.escalation.incident_contacts["critical"], ["Alice"]);
    assert!(c.escalation.incident_contacts["high"].is_empty());
    // Default channels: every channel kind that can address her (not the log).
    assert_eq!(c.contacts[0].channels, ["mail", "text", "pager"]);
    // The key is masked; the view says which steps are live.
    let view = c.masked();
    let text = view.to_string() + &format!("{c:?}");
    assert!(!text.contains("AliceS3cret"), "{text}");
    assert_eq!(view["contacts"][0]["pagerduty_routing_key"], "***");
    assert_eq!(view["escalation"]["rules"][0]["live"], true);
    assert_eq!(
        view["escalation"]["rules"][3]["next_business_day"],
        "09:00 UTC"
    );

    // `config check` and `serve` warn about the steps that tell nobody.
    let w = c.warnings();
    assert!(
        w.iter().any(|w| w
            == "escalation step warning-1h tells nobody: no contact has the name or role \
                DevOps engineer"),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("incidents.low_contact `team lead` matches no")),
        "{w:?}"
    );
    assert!(!w.iter().any(|w| w.contains("critical")), "{w:?}");
    assert!(
        load("").unwrap().warnings().is_empty(),
        "no contacts: no noise"
    );

    // Turned off.
    let c = load(&format!("{ALICE}[escalation_defaults]\nenabled = false\n")).unwrap();
    assert!(c.escalation.rules.is_empty());
}

#[test]
fn written_rules_replace_the_matrix_and_resolve_names_and_roles() {
    let c = load(&format!(
        "{ALICE}[[contacts]]\nname = \"Bob\"\nrole = \"Team Lead\"\nemail = \"bob@example.org\"\n\
         channels = [\"mail\", \"chat\"]\n\
         [escalation_defaults]\nbusiness_time = \"08:30\"\ntimezone = \"Europe/Berlin\"\n\
         [[escalation]]\nname = \"crit\"\nlevel = \"critical\"\nafter = \"10m\"\n\
         contacts = [\"security lead\", \"Bob\"]\n\
         [[escalation]]\nname = \"morning\"\nlevel = \"warning\"\nnext_business_day = true\n\
         business_time = \"07:00\"\ncontacts = [\"team lead\"]\n\
         [[escalation]]\nname = \"later\"\nlevel = \"info\"\nnext_business_day = true\n\
         contacts = [\"alice\"]\n"
    ))
    .unwrap();
    let e = &c.escalation;
    assert!(!e.default_rules);
    assert_eq!(e.rules.len(), 3);
    assert_eq!(e.rules[0].after_secs, Some(600));
    assert_eq!(e.rules[0].reaches, ["Alice", "Bob"]);
    assert_eq!(e.rules[0].waited(), "for 10 min");
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let b = e.rules[1].next_business_day.unwrap();
    assert_eq!((b.time.to_string().as_str(), b.zone), ("07:00:00", berlin));
    assert_eq!(
        e.rules[1].reaches,
        ["Bob"],
        "roles match case-insensitively"
    );
    assert_eq!(
        e.rules[2].next_business_day.unwrap().to_string(),
        "08:30 Europe/Berlin"
    );
    assert_eq!(e.rules[2].reaches, ["Alice"], "names too");
    assert_eq!(
        e.rules[2].waited(),
        "until the next business day (08:30 Europe/Berlin)"
    );
    assert_eq!(c.contacts[1].channels, ["mail", "chat"]);
    assert_eq!(e.incident_contacts["low"], ["Bob"]);
}

#[test]
fn the_next_business_day_skips_weekends_in_the_local_zone_across_dst() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let nine = BusinessTime {
        time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        zone: berlin,
    };
    let at = |y, m, d, h, mi| ms(berlin.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap());
    // Friday 17:00 -> Monday 09:00 (2026-11-20 is a Friday).
    assert_eq!(
        nine.next_business_day(at(2026, 11, 20, 17, 0)),
        at(2026, 11, 23, 9, 0)
    );
    // Monday 07:00 -> Tuesday 09:00; Saturday -> Monday.
    assert_eq!(
        nine.next_business_day(at(2026, 11, 23, 7, 0)),
        at(2026, 11, 24, 9, 0)
    );
    assert_eq!(
        nine.next_business_day(at(2026, 11, 21, 12, 0)),
        at(2026, 11, 23, 9, 0)
    );
    // Over the spring change (Sunday 2026-03-29): Friday 17:00 CET (16:00 UTC) -> Monday
    // 09:00 CEST, which is 07:00 UTC.
    let utc = |y, m, d, h| ms(Tz::UTC.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap());
    assert_eq!(
        nine.next_business_day(utc(2026, 3, 27, 16)),
        utc(2026, 3, 30, 7)
    );
    // Over the autumn change (Sunday 2026-10-25): Monday 09:00 CET is 08:00 UTC.
    assert_eq!(
        nine.next_business_day(utc(2026, 10, 23, 15)),
        utc(2026, 10, 26, 8)
    );
    // The local day counts, not the UTC one: Friday 23:30 UTC is Saturday in Berlin.
    assert_eq!(
        nine.next_business_day(utc(2026, 11, 20, 23) + 30 * 60_000),
        at(2026, 11, 23, 9, 0)
    );
    // A local time that does not exist that day (Cairo springs forward at 00:00 on the
    // last Friday of April: 00:30 on 2026-04-24 is skipped) moves forward by the gap.
    let cairo: Tz = "Africa/Cairo".parse().unwrap();
    let gap = BusinessTime {
        time: NaiveTime::from_hms_opt(0, 30, 0).unwrap(),
        zone: cairo,
    };
    let day = chrono::NaiveDate::from_ymd_opt(2026, 4, 24).unwrap();
    if cairo
        .from_local_datetime(&day.and_time(gap.time))
        .earliest()
        .is_none()
    {
        let one = ms(cairo.with_ymd_and_hms(2026, 4, 24, 1, 0, 0).unwrap());
        assert_eq!(gap.next_business_day(utc(2026, 4, 23, 6)), one);
    }
    assert_eq!(human(900), "15 min");
    assert_eq!(human(3600), "1 h");
    assert_eq!(human(5400), "90 min");
    assert_eq!(human(86_400), "1 d");
}

#[test]
fn bad_contacts_and_rules_name_the_key() {
    let rule = |body: &str| format!("{ALICE}[[escalation]]\n{body}");
    let cases: Vec<(String, &str, &str)> = vec![
        ("[[contacts]]\nrole = \"x\"\nemail = \"a@b.org\"\n".into(), "contacts[0].name", "required"),
        ("[[contacts]]\nname = \" Al\"\nemail = \"a@b.org\"\n".into(), "contacts[0].name", "letters"),
        ("[[contacts]]\nname = \"Al\"\nemail = \"not mail\"\n".into(), "contacts[0].email", "not an email"),
        ("[[contacts]]\nname = \"Al\"\nphone = \"555-1234\"\n".into(), "contacts[0].phone", "E.164"),
        ("[[contacts]]\nname = \"Al\"\n".into(), "contacts[0].channels", "no channel can reach contact `Al`"),
        ("[[contacts]]\nname = \"Al\"\nphone = \"+15551230002\"\nchannels = [\"mail\"]\n".into(), "contacts[0].channels[0]", "no `email`"),
        ("[[contacts]]\nname = \"Al\"\nemail = \"a@b.org\"\nchannels = [\"nope\"]\n".into(), "contacts[0].channels[0]", "no channel is named `nope`"),
        ("[[contacts]]\nname = \"Al\"\nemail = \"a@b.org\"\npagerduty_routing_key_env = \"UNSET\"\n".into(), "contacts[0].pagerduty_routing_key_env", "not set"),
        ("[[contacts]]\nname = \"Al\"\nemail = \"a@b.org\"\npagerduty_routing_key = \"inline\"\n".into(), "contacts[0].pagerduty_routing_key", "unknown field"),
        (format!("{ALICE}[[contacts]]\nname = \"alice\"\nemail = \"a@b.org\"\n"), "contacts[1].name", "earlier contact"),
        (rule("level = \"critical\"\nafter = \"15m\"\ncontacts = [\"Alice\"]\n"), "escalation[0].name", "required"),
        (rule("name = \"r\"\nlevel = \"high\"\nafter = \"15m\"\ncontacts = [\"Alice\"]\n"), "escalation[0].level", "allowed: `info`"),
        (rule("name = \"r\"\nlevel = \"info\"\ncontacts = [\"Alice\"]\n"), "escalation[0].after", "next_business_day"),
        (rule("name = \"r\"\nlevel = \"info\"\nafter = \"soon\"\ncontacts = [\"Alice\"]\n"), "escalation[0].after", "number"),
        (rule("name = \"r\"\nlevel = \"info\"\nafter = \"30s\"\ncontacts = [\"Alice\"]\n"), "escalation[0].after", "at least 1m"),
        (rule("name = \"r\"\nlevel = \"info\"\nafter = \"1h\"\nnext_business_day = true\ncontacts = [\"Alice\"]\n"), "escalation[0].after", "not both"),
        (rule("name = \"r\"\nlevel = \"info\"\nafter = \"1h\"\ntimezone = \"UTC\"\ncontacts = [\"Alice\"]\n"), "escalation[0].timezone", "next_business_day"),
        (rule("name = \"r\"\nlevel = \"info\"\nnext_business_day = true\nbusiness_time = \"9am\"\ncontacts = [\"Alice\"]\n"), "escalation[0].business_time", "HH:MM"),
        (rule("name = \"r\"\nlevel = \"info\"\nnext_business_day = true\ntimezone = \"Europe/Berln\"\ncontacts = [\"Alice\"]\n"), "escalation[0].timezone", "Europe/Berlin"),
        (rule("name = \"r\"\nlevel = \"info\"\nafter = \"1h\"\n"), "escalation[0].contacts", "required"),
        (rule("name = \"r\"\nlevel = \"info\"\nafter = \"1h\"\ncontacts = [\"Alice\", \"night shift\"]\n"), "escalation[0].contacts[1]", "no contact has the name or role `night shift`; configured: `Alice` (security lead)"),
        (format!("{}name = \"r\"\nlevel = \"info\"\nafter = \"1h\"\ncontacts = [\"Alice\"]\n[[escalation]]\nname = \"r\"\nlevel = \"info\"\nafter = \"2h\"\ncontacts = [\"Alice\"]\n", rule("")), "escalation[1].name", "earlier rule"),
        ("[[escalation]]\nname = \"r\"\nlevel = \"info\"\nafter = \"1h\"\ncontacts = [\"x\"]\n".into(), "escalation[0].contacts[0]", "add [[contacts]]"),
        ("[escalation_defaults]\ntimezone = \"Mars/Olympus\"\n".into(), "escalation_defaults.timezone", "not a known time zone"),
    ];
    for (toml, key, want) in cases {
        let e = load(&toml).unwrap_err();
        assert_eq!(e.key, key, "{toml}\n{e}");
        assert!(e.problem.contains(want), "{toml}\n{e}");
        assert!(!e.to_string().contains("S3cret"), "{e}");
    }
}
