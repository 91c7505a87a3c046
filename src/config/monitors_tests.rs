//! Tests of the `[[monitors]]` section: defaults, the policy, and bad values naming the key.

use std::time::Duration;

use crate::alerts::Level;
use crate::config::tests::env;
use crate::config::{Config, ConfigError};
use crate::monitor::Schedule;
use crate::monitor::kinds::KindSettings;

fn load(toml: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(toml, &env(&[]))
}

fn err(toml: &str) -> ConfigError {
    load(toml).expect_err(toml)
}

#[test]
fn defaults_per_kind() {
    let c = load(
        "[[monitors]]\nname = \"web\"\nkind = \"uptime\"\nurl = \"http://127.0.0.1:8080/health\"\n\
         [[monitors]]\nname = \"certs\"\nkind = \"certificates\"\ntargets = [\"example.com\", \"file:/etc/ssl/x.pem\"]\n\
         [[monitors]]\nname = \"host\"\nkind = \"host\"\n\
         [[monitors]]\nname = \"nightly\"\nkind = \"scan\"\ntargets = [\"127.0.0.1\"]\n\
         [[monitors]]\nname = \"conn\"\nkind = \"connections\"\nenabled = false\n\
         [[monitors]]\nname = \"events\"\nkind = \"security_events\"\n\
         [[monitors]]\nname = \"wazuh\"\nkind = \"wazuh\"\ninclude = [\"manager\"]\n",
    )
    .unwrap();
    let m = &c.monitors;
    assert_eq!(m.len(), 7);
    let web = &m[0];
    assert_eq!(web.kind(), "uptime");
    assert_eq!(
        web.schedule.0,
        Schedule::Every {
            every: Duration::from_secs(60)
        }
    );
    assert_eq!((web.failure_threshold, web.success_threshold), (3, 2));
    assert_eq!(web.timeout, Duration::from_secs(60), "min(every, 5m)");
    assert!(web.enabled);
    let KindSettings::Uptime(u) = &web.settings else {
        panic!()
    };
    assert_eq!(u.target.expect_status, (200, 399));
    assert_eq!(u.target.max_response_ms, 2000);
    assert_eq!(u.target.timeout_ms, 10_000);

    let certs = &m[1];
    assert_eq!(
        certs.schedule.0,
        Schedule::Every {
            every: Duration::from_secs(6 * 3600)
        }
    );
    assert_eq!(certs.timeout, Duration::from_secs(300));
    assert_eq!((certs.failure_threshold, certs.success_threshold), (1, 1));
    let KindSettings::Certificates(s) = &certs.settings else {
        panic!()
    };
    assert_eq!((s.warning_days, s.critical_days), (30, 7));

    let KindSettings::Host(h) = &m[2].settings else {
        panic!()
    };
    assert_eq!(
        (h.cpu_percent, h.memory_percent, h.disk_percent),
        (80.0, 85.0, 90.0)
    );
    let f = m[2].for_by_code();
    assert_eq!(f["host_cpu_high"], Duration::from_secs(900));
    assert_eq!(f["host_memory_high"], Duration::from_secs(600));
    assert_eq!(f["host_disk_high"], Duration::ZERO);

    assert_eq!(m[3].schedule.0.describe(), "cron \"0 2 * * *\" UTC");
    let KindSettings::Scan(s) = &m[3].settings else {
        panic!()
    };
    assert_eq!(s.ports, "top100");

    assert!(!m[4].enabled);
    let KindSettings::Connections(cs) = &m[4].settings else {
        panic!()
    };
    assert_eq!(
        cs.spec.ports.iter().copied().collect::<Vec<_>>(),
        vec![22, 23, 3389, 5900]
    );

    let KindSettings::SecurityEvents(e) = &m[5].settings else {
        panic!()
    };
    assert_eq!(
        (e.spec.min_level, e.spec.per_minute, e.spec.window_ms),
        (7, 10.0, 60_000)
    );
    assert_eq!(
        e.incidents,
        crate::checks::open_incidents::IncidentSpec::default()
    );
    let KindSettings::Wazuh(w) = &m[6].settings else {
        panic!()
    };
    assert_eq!(w.include, vec!["manager"]);

    // The view shows every monitor with its kind and settings, no empty config.
    let v = c.masked();
    assert_eq!(v["monitors"][0]["settings"]["kind"], "uptime");
    assert_eq!(v["monitors"][0]["schedule"], "every 1m");
    assert_eq!(v["monitors"][2]["settings"]["cpu_for"], "15m");
    assert!(load("").unwrap().monitors.is_empty());
}

#[test]
fn a_cron_schedule_is_read_in_the_monitors_timezone() {
    let c = load(
        "[[monitors]]\nname = \"nightly\"\nkind = \"scan\"\ntargets = [\"127.0.0.1\"]\n\
         timezone = \"Europe/Berlin\"\n\
         [[monitors]]\nname = \"host\"\nkind = \"host\"\nschedule = \"30 9 * * MON\"\n\
         timezone = \"America/New_York\"\n",
    )
    .unwrap();
    // The scan kind's default cron takes the zone too.
    assert_eq!(
        c.monitors[0].schedule.0.describe(),
        "cron \"0 2 * * *\" Europe/Berlin"
    );
    assert_eq!(
        c.masked()["monitors"][1]["schedule"],
        "cron \"30 9 * * MON\" America/New_York"
    );
    // 02:00 in Berlin in winter is 01:00 UTC.
    let t = time::macros::datetime!(2026-01-10 12:00 UTC);
    let now = (t.unix_timestamp() * 1000) as crate::clock::Millis;
    let next = c.monitors[0].schedule.0.next_after("nightly", now, None);
    let want = time::macros::datetime!(2026-01-11 01:00 UTC);
    assert_eq!(next, (want.unix_timestamp() * 1000) as crate::clock::Millis);
}

#[test]
fn common_keys_make_the_policy() {
    let c = load(
        "[[monitors]]\nname = \"web-1\"\nkind = \"uptime\"\nurl = \"https://example.com/\"\n\
         every = \"30s\"\ntimeout = \"10s\"\nfailure_threshold = 5\nsuccess_threshold = 4\n\
         for = \"2m\"\nrepeat_interval = \"1h\"\ngroup_wait = \"0s\"\nlabels = { team = \"ops\" }\n\
         routes = { critical = [\"log\"], info = [] }\nmethod = \"HEAD\"\n\
         expect_status = \"200-299\"\nmax_response_ms = 500\ntimeout_ms = 3000\n",
    )
    .unwrap();
    let m = &c.monitors[0];
    let p = m.policy();
    assert_eq!(p.name, "web-1");
    assert_eq!(p.labels["team"], "ops");
    assert_eq!((p.failure_threshold, p.success_threshold), (5, 4));
    assert_eq!(p.for_duration, Duration::from_secs(120));
    assert_eq!(p.repeat_interval, Duration::from_secs(3600));
    assert_eq!(p.group_wait, Duration::ZERO);
    assert_eq!(p.routes[&Level::Critical], vec!["log"]);
    assert!(p.routes[&Level::Info].is_empty());
    assert_eq!(m.timeout, Duration::from_secs(10));
    let KindSettings::Uptime(u) = &m.settings else {
        panic!()
    };
    assert_eq!(u.target.expect_status, (200, 299));
    // Unset durations keep the lifecycle's defaults.
    let c =
        load("[[monitors]]\nname = \"h\"\nkind = \"host\"\nschedule = \"*/5 * * * *\"\n").unwrap();
    let p = c.monitors[0].policy();
    assert_eq!(p.repeat_interval, Duration::from_secs(4 * 3600));
    assert_eq!(p.group_wait, Duration::from_secs(30));
    assert_eq!(c.monitors[0].timeout, Duration::from_secs(300));
    // Levels a monitor does not route go where [routing] says; the host's per-metric `for`
    // reaches the policy.
    assert_eq!(p.routes[&Level::Emergency], vec!["log"]);
    assert_eq!(p.for_by_code["host_cpu_high"], Duration::from_secs(15 * 60));
}

#[test]
fn bad_values_name_the_key() {
    let base = |extra: &str| format!("[[monitors]]\nname = \"m\"\n{extra}");
    let cases: &[(&str, &str, &str)] = &[
        (
            "kind = \"nope\"\n",
            "monitors[0].kind",
            "not a monitor kind",
        ),
        ("", "monitors[0].kind", "required"),
        (
            "kind = \"host\"\nschedule = \"0 2 * *\"\n",
            "monitors[0].schedule",
            "fields",
        ),
        (
            "kind = \"host\"\nschedule = \"61 * * * *\"\n",
            "monitors[0].schedule",
            "not valid",
        ),
        (
            "kind = \"host\"\nevery = \"60s\"\nschedule = \"0 2 * * *\"\n",
            "monitors[0].schedule",
            "not both",
        ),
        (
            "kind = \"host\"\nevery = \"60\"\n",
            "monitors[0].every",
            "no unit",
        ),
        (
            "kind = \"host\"\nfor = \"15\"\n",
            "monitors[0].for",
            "no unit",
        ),
        (
            "kind = \"host\"\ncpu_for = \"15x\"\n",
            "monitors[0].cpu_for",
            "unknown unit",
        ),
        (
            "kind = \"uptime\"\nurl = \"not a url\"\n",
            "monitors[0].url",
            "not a URL",
        ),
        (
            "kind = \"uptime\"\nurl = \"ftp://x/\"\n",
            "monitors[0].url",
            "scheme",
        ),
        ("kind = \"uptime\"\n", "monitors[0].url", "required"),
        (
            "kind = \"uptime\"\nurl = \"http://x/\"\nmethod = \"POST\"\n",
            "monitors[0].method",
            "allowed",
        ),
        (
            "kind = \"host\"\nbogus = 1\n",
            "monitors[0].bogus",
            "unknown key",
        ),
        (
            "kind = \"host\"\nurl = \"http://x/\"\n",
            "monitors[0].url",
            "unknown key",
        ),
        (
            "kind = \"host\"\ncpu_percent = 120\n",
            "monitors[0].cpu_percent",
            "percentage",
        ),
        (
            "kind = \"host\"\nenabled = \"yes\"\n",
            "monitors[0].enabled",
            "true or false",
        ),
        (
            "kind = \"host\"\nfailure_threshold = 0\n",
            "monitors[0].failure_threshold",
            "between 1",
        ),
        (
            "kind = \"host\"\ntimeout = \"0s\"\n",
            "monitors[0].timeout",
            "longer than 0s",
        ),
        (
            "kind = \"host\"\nroutes = { loud = [\"x\"] }\n",
            "monitors[0].routes.loud",
            "not a level",
        ),
        (
            "kind = \"host\"\nroutes = { critical = \"x\" }\n",
            "monitors[0].routes.critical",
            "list",
        ),
        (
            "kind = \"host\"\nlabels = { team = 5 }\n",
            "monitors[0].labels.team",
            "string",
        ),
        (
            "kind = \"certificates\"\ntargets = []\n",
            "monitors[0].targets",
            "1 to",
        ),
        (
            "kind = \"certificates\"\ntargets = [\"\"]\n",
            "monitors[0].targets[0]",
            "",
        ),
        (
            "kind = \"certificates\"\ntargets = [\"a.example\"]\ncritical_days = 40\n",
            "monitors[0].critical_days",
            "between",
        ),
        (
            "kind = \"scan\"\ntargets = [\"192.0.2.1\"]\n",
            "monitors[0].targets[0]",
            "outside the scan scope",
        ),
        (
            "kind = \"scan\"\ntargets = [\"far.example\"]\n",
            "monitors[0].targets[0]",
            "outside the scan scope",
        ),
        (
            "kind = \"scan\"\ntargets = [\"127.0.0.1\"]\nports = \"99999\"\n",
            "monitors[0].ports",
            "",
        ),
        (
            "kind = \"connections\"\nports = [70000]\n",
            "monitors[0].ports",
            "not a port",
        ),
        (
            "kind = \"connections\"\nallow = [\"10.0.0.0/33\"]\n",
            "monitors[0].allow",
            "CIDR",
        ),
        (
            "kind = \"security_events\"\nmin_level = 17\n",
            "monitors[0].min_level",
            "between",
        ),
        (
            "kind = \"security_events\"\nwindow = \"1s\"\n",
            "monitors[0].window",
            "between",
        ),
        (
            "kind = \"security_events\"\nincident_severity = \"urgent\"\n",
            "monitors[0].incident_severity",
            "allowed: low, medium, high, critical",
        ),
        (
            "kind = \"security_events\"\nincidents = false\nincident_severity = \"low\"\n",
            "monitors[0].incident_severity",
            "incidents = false",
        ),
        (
            "kind = \"security_events\"\nsla = \"yes\"\n",
            "monitors[0].sla",
            "true or false",
        ),
        (
            "kind = \"wazuh\"\ninclude = [\"kitchen\"]\n",
            "monitors[0].include",
            "allowed",
        ),
        (
            "kind = \"host\"\nschedule = \"0 2 * * *\"\ntimezone = \"Europe/Berln\"\n",
            "monitors[0].timezone",
            "did you mean \"Europe/Berlin\"?",
        ),
        (
            "kind = \"host\"\nschedule = \"0 2 * * *\"\ntimezone = \"CEST+2\"\n",
            "monitors[0].timezone",
            "e.g. \"Europe/Berlin\"",
        ),
        (
            "kind = \"host\"\nevery = \"60s\"\ntimezone = \"Europe/Berlin\"\n",
            "monitors[0].timezone",
            "applies only to a cron `schedule`",
        ),
        (
            "kind = \"host\"\ntimezone = \"Europe/Berlin\"\n",
            "monitors[0].timezone",
            "its kind's default",
        ),
        (
            "kind = \"host\"\nschedule = \"0 2 * * *\"\ntimezone = 1\n",
            "monitors[0].timezone",
            "a string",
        ),
    ];
    for (extra, key, says) in cases {
        let e = err(&base(extra));
        assert_eq!(&e.key, key, "{extra}: {e}");
        assert!(e.problem.contains(says), "{extra}: {e}");
    }
    let e = err(&base(
        "kind = \"host\"\nroutes = { critical = [\"pager\"] }\n",
    ));
    assert_eq!(e.key, "monitors[0].routes.critical", "{e}");
    assert!(e.problem.contains("no channel named `pager`"), "{e}");
    for (toml, key) in [
        (
            "[[monitors]]\nname = \"Web\"\nkind = \"host\"\n",
            "monitors[0].name",
        ),
        ("[[monitors]]\nkind = \"host\"\n", "monitors[0].name"),
        (
            "[[monitors]]\nname = \"a\"\nkind = \"host\"\n[[monitors]]\nname = \"a\"\nkind = \"host\"\n",
            "monitors[1].name",
        ),
    ] {
        assert_eq!(err(toml).key, key, "{toml}");
    }
}

/// Up to MAX_MONITORS entries load (1,000 uptime monitors: the uptime bench); one more is
/// refused naming `monitors` and the cap.
#[test]
fn monitors_up_to_the_cap() {
    use crate::config::monitors::MAX_MONITORS;
    let entries = |n: usize| {
        (0..n)
            .map(|i| {
                format!(
                    "[[monitors]]\nname = \"ep-{i}\"\nkind = \"uptime\"\n\
                     url = \"http://127.0.0.1:{}/health\"\n",
                    1000 + i % 60000
                )
            })
            .collect::<String>()
    };
    assert_eq!(load(&entries(1_000)).unwrap().monitors.len(), 1_000);
    let e = err(&entries(MAX_MONITORS + 1));
    assert_eq!(e.key, "monitors", "{e}");
    assert!(
        e.problem.contains(&format!(
            "{} entries; at most {MAX_MONITORS}",
            MAX_MONITORS + 1
        )),
        "{e}"
    );
}

/// A certificates monitor may watch more targets than one check_cert call takes (its run
/// slices them); past its own cap the error names the key and the cap.
#[test]
fn certificates_targets_up_to_the_monitor_cap() {
    use crate::monitor::kinds::certificates::MAX_MONITOR_TARGETS;
    let targets = |n: usize| {
        let list: Vec<String> = (0..n)
            .map(|i| format!("\"127.0.0.1:{}\"", 1000 + i))
            .collect();
        format!(
            "[[monitors]]\nname = \"certs\"\nkind = \"certificates\"\ntargets = [{}]\n",
            list.join(", ")
        )
    };
    let c = load(&targets(1_000)).unwrap();
    let KindSettings::Certificates(s) = &c.monitors[0].settings else {
        panic!()
    };
    assert_eq!(s.targets.len(), 1_000);
    assert_eq!(s.targets[999], "127.0.0.1:1999");
    let e = err(&targets(MAX_MONITOR_TARGETS + 1));
    assert_eq!(e.key, "monitors[0].targets", "{e}");
    assert!(
        e.problem.contains(&format!(
            "1 to {MAX_MONITOR_TARGETS} targets (not {})",
            MAX_MONITOR_TARGETS + 1
        )),
        "{e}"
    );
}

/// Every field `Debug` names (derived or written to match) is in the config view, so
/// `config check` shows all of a monitor's settings (the masked view's completeness rule).
#[test]
fn the_view_shows_every_monitor_field() {
    let c = load(
        "[[monitors]]\nname = \"web\"\nkind = \"uptime\"\nurl = \"http://u:pw@127.0.0.1:8080/h?k=v\"\n\
         body_contains = \"ok\"\nrepeat_interval = \"1h\"\ngroup_wait = \"5s\"\n\
         labels = { team = \"ops\" }\nroutes = { critical = [\"log\"] }\n\
         [[monitors]]\nname = \"certs\"\nkind = \"certificates\"\ntargets = [\"a.example\"]\n\
         timeout_ms = 100\nstarttls = \"smtp\"\n\
         [[monitors]]\nname = \"host\"\nkind = \"host\"\n\
         [[monitors]]\nname = \"nightly\"\nkind = \"scan\"\ntargets = [\"127.0.0.1\"]\n\
         [[monitors]]\nname = \"conn\"\nkind = \"connections\"\nallow = [\"10.0.0.0/8\"]\n\
         [[monitors]]\nname = \"events\"\nkind = \"security_events\"\n\
         [[monitors]]\nname = \"wazuh\"\nkind = \"wazuh\"\n",
    )
    .unwrap();
    let view = serde_json::to_value(&c.monitors).unwrap();
    let mut shown = std::collections::BTreeSet::new();
    fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if !v.is_null() {
                        out.insert(k.clone());
                    }
                    keys(v, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }
    keys(&view, &mut shown);
    let debug = format!("{:#?}", c.monitors);
    for line in debug.lines() {
        let Some((name, _)) = line.trim_start().split_once(": ") else {
            continue;
        };
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            continue;
        }
        let name = if name == "for_duration" { "for" } else { name };
        assert!(shown.contains(name), "`{name}` missing: {view:#}");
    }
    let text = view.to_string();
    assert!(!text.contains("pw@") && !text.contains("k=v"), "{text}");
    assert!(!debug.contains("pw@"), "{debug}");
}
