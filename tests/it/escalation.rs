//! Escalation end to end with a ManualClock: a configuration with `[[contacts]]` and the
//! default matrix (or its own rules), the real lifecycle, `alerts::escalation::run` at
//! chosen times, and the real outbox delivering to local receivers: the Twilio and
//! PagerDuty fakes (tests/common/providers.rs) and aiosmtpd (tests/common/smtp.rs). The
//! contact's own address, number and routing key are used; each step is sent once; an
//! acknowledged alert never escalates; an overdue incident tells its contact once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secops_mcp::alerts::escalation::{EscalationPlan, EscalationReport, run};
use secops_mcp::alerts::lifecycle::{MonitorPolicy, acknowledge, evaluate};
use secops_mcp::alerts::outbox::{Outbox, OutboxSettings};
use secops_mcp::alerts::{Level, Observation};
use secops_mcp::clock::{Clock, ManualClock};
use secops_mcp::config::Config;
use secops_mcp::store::{IncidentRow, NotificationState, Store};

use crate::common::providers::{PD_KEY, Provider, Providers, TWILIO_SID, TWILIO_TOKEN, form_pairs};
use crate::common::smtp::{SMTP_PASSWORD, SMTP_USER, SmtpMode, SmtpServer, parse_message};

const T0: i64 = 1_800_000_000_000;
const ALICE_PHONE: &str = "+15551230001";
const TEAM_PHONE: &str = "+15551239999";
/// The PagerDuty channel's own service key (the fake accepts only PD_KEY: Alice's).
const SERVICE_KEY: &str = "ServiceKeyN0tTheContacts000000000";

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    outbox: Outbox,
    plan: EscalationPlan,
}

/// `toml` loaded like `serve` would, with the providers' base URL and the secrets in the
/// environment; the store, the outbox (with the contacts) and the escalation plan.
fn env(toml: &str, extra_env: &[(&str, &str)]) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut vars: BTreeMap<String, String> = [
        ("SECOPS_STATE_DIR", dir.path().to_str().unwrap()),
        ("TW_TOKEN", TWILIO_TOKEN),
        ("PD_SERVICE", SERVICE_KEY),
        ("ALICE_PD", PD_KEY),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra_env {
        vars.insert(k.to_string(), v.to_string());
    }
    let cfg = Config::from_toml_str(toml, &vars).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let store = Store::open(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::at(T0));
    let outbox = Outbox::new(
        store.clone(),
        cfg.notify.build().unwrap(),
        clock.clone() as Arc<dyn Clock>,
        OutboxSettings::default(),
    )
    .with_contacts(cfg.contacts.iter().map(|c| c.recipient()));
    Env {
        _dir: dir,
        store,
        clock,
        outbox,
        plan: EscalationPlan::from_config(&cfg),
    }
}

fn providers_toml(p: &Providers) -> String {
    format!(
        "[[channels]]\nname = \"text\"\nkind = \"sms\"\naccount_sid = \"{TWILIO_SID}\"\n\
         auth_token_env = \"TW_TOKEN\"\nfrom = \"+15005550006\"\nto = [\"{TEAM_PHONE}\"]\n\
         base_url = \"{base}\"\n\
         [[channels]]\nname = \"pager\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD_SERVICE\"\n\
         base_url = \"{base}\"\n\
         [routing]\ncritical = [\"log\"]\n\
         [[contacts]]\nname = \"Alice\"\nrole = \"security lead\"\nphone = \"{ALICE_PHONE}\"\n\
         pagerduty_routing_key_env = \"ALICE_PD\"\n",
        base = p.base()
    )
}

fn web() -> MonitorPolicy {
    let mut p = MonitorPolicy::new("web").route(Level::Critical, &["log"]);
    p.group_wait = Duration::ZERO;
    p
}

fn shop(level: Option<Level>) -> Observation {
    Observation {
        code: "endpoint_down".into(),
        subject: BTreeMap::from([("url".to_string(), "https://shop.example/".to_string())]),
        level,
        title: "shop.example is down".into(),
        summary: "HTTP 503 three times".into(),
        value: None,
    }
}

/// A critical alert of monitor `web` firing at the clock's now (told to the log only).
fn fire(e: &Env) -> String {
    evaluate(
        &e.store,
        e.clock.as_ref(),
        &web(),
        &[shop(Some(Level::Critical))],
    )
    .unwrap();
    e.store.alerts_open().unwrap()[0].id()
}

/// Escalate at `minutes` after T0, then deliver what is due.
async fn at(e: &Env, minutes: i64) -> EscalationReport {
    e.clock.set(T0 + minutes * 60_000);
    let r = run(&e.store, e.clock.as_ref(), &e.plan).unwrap();
    e.outbox.deliver_due().await.unwrap();
    r
}

#[tokio::test]
async fn a_critical_alert_unacknowledged_for_15_minutes_reaches_the_security_lead_once() {
    let p = Providers::start().await;
    let e = env(&providers_toml(&p), &[]);
    let id = fire(&e);
    assert_eq!(at(&e, 14).await.alert_steps, 0);
    assert!(p.received(Provider::Twilio).is_empty());
    let r = at(&e, 15).await;
    assert_eq!(
        (r.alert_steps, r.notifications),
        (1, 2),
        "sms and pagerduty"
    );
    assert_eq!(at(&e, 20).await, EscalationReport::default());

    // Exactly one SMS, to Alice's number (not the channel's recipients).
    let sms = p.received(Provider::Twilio);
    assert_eq!(sms.len(), 1);
    let form: BTreeMap<String, String> = form_pairs(&sms[0].body).into_iter().collect();
    assert_eq!(form["To"], ALICE_PHONE);
    assert!(
        form["Body"].starts_with(&format!(
            "{id} CRITICAL ESCALATED to security lead (Alice): shop.example is down \
             unacknowledged for 15 min"
        )),
        "{}",
        form["Body"]
    );
    // Exactly one PagerDuty trigger, on Alice's service, keyed by the episode.
    let pd = p.received(Provider::PagerDuty);
    assert_eq!(pd.len(), 1);
    let ev = pd[0].json();
    assert_eq!(ev["routing_key"], PD_KEY);
    assert_eq!(ev["event_action"], "trigger");
    let alert = e.store.alerts_open().unwrap().remove(0);
    assert_eq!(ev["dedup_key"], alert.episode);
    assert!(
        ev["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("ESCALATED to security lead (Alice): shop.example is down"),
        "{ev}"
    );
    assert_eq!(
        ev["payload"]["custom_details"]["escalation"]["contact"],
        "Alice"
    );
    assert!(p.violations().is_empty(), "{:?}", p.violations());

    // Both rows delivered; the timeline says who was told; nothing stored has an address
    // or a key.
    let rows = e.store.outbox_list(None, 100).unwrap();
    let esc: Vec<_> = rows.iter().filter(|r| r.kind == "escalation").collect();
    assert_eq!(esc.len(), 2);
    for r in &esc {
        assert_eq!(r.state, NotificationState::Delivered, "{r:?}");
        assert_eq!(r.contact.as_deref(), Some("Alice"));
        let stored = serde_json::to_string(&r.body).unwrap();
        assert!(
            !stored.contains(ALICE_PHONE) && !stored.contains(PD_KEY),
            "{stored}"
        );
    }
    let detail = e.store.alert_detail(alert.seq).unwrap().unwrap();
    let escalated: Vec<_> = detail
        .events
        .iter()
        .filter(|ev| ev.kind == "escalated")
        .collect();
    assert_eq!(escalated.len(), 1);
    let said = escalated[0].detail.as_deref().unwrap();
    assert!(
        said.contains("critical-15m") && said.contains("security lead (Alice) on text, pager"),
        "{said}"
    );
    for a in e.store.outbox_attempts_for_alert(alert.seq).unwrap() {
        assert!(!a.detail.unwrap_or_default().contains(PD_KEY));
    }
    // alert_status shows the step and both deliveries in the alert's timeline.
    let view = secops_mcp::alerts::status::detail(&e.store, &id).unwrap();
    let kinds: Vec<(String, String)> = view
        .timeline
        .iter()
        .map(|t| (t.kind.clone(), t.detail.clone().unwrap_or_default()))
        .collect();
    assert!(
        kinds
            .iter()
            .any(|(k, d)| k == "escalated" && d.contains("security lead (Alice)")),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, d)| k == "notification"
                && d.starts_with("escalation to ")
                && d.contains("delivered"))
            .count(),
        2,
        "{kinds:?}"
    );

    // Acknowledged: acknowledged on Alice's service too; resolved: resolved there; once.
    acknowledge(&e.store, e.clock.as_ref(), &id, "alice", &[]).unwrap();
    assert_eq!(at(&e, 21).await.follow_ups, 1);
    e.clock.set(T0 + 25 * 60_000);
    evaluate(&e.store, e.clock.as_ref(), &web(), &[shop(None)]).unwrap();
    assert_eq!(at(&e, 26).await.follow_ups, 1);
    assert_eq!(at(&e, 30).await, EscalationReport::default());
    let pd = p.received(Provider::PagerDuty);
    let actions: Vec<_> = pd
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["event_action"].as_str().unwrap().to_string(),
                v["routing_key"] == PD_KEY,
                v["dedup_key"] == alert.episode,
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("trigger".to_string(), true, true),
            ("acknowledge".to_string(), true, true),
            ("resolve".to_string(), true, true)
        ]
    );
    assert_eq!(
        p.received(Provider::Twilio).len(),
        1,
        "sms takes no follow-up"
    );
    assert!(p.violations().is_empty(), "{:?}", p.violations());
}

#[tokio::test]
async fn acknowledged_at_14_minutes_it_never_escalates() {
    let p = Providers::start().await;
    let e = env(&providers_toml(&p), &[]);
    let id = fire(&e);
    e.clock.set(T0 + 14 * 60_000);
    acknowledge(&e.store, e.clock.as_ref(), &id, "carol", &[]).unwrap();
    for m in [15, 60, 240, 3 * 24 * 60] {
        assert_eq!(at(&e, m).await, EscalationReport::default(), "at {m} min");
    }
    assert!(p.received(Provider::Twilio).is_empty());
    assert!(p.received(Provider::PagerDuty).is_empty());
    let rows = e.store.outbox_list(None, 100).unwrap();
    assert!(rows.iter().all(|r| r.kind != "escalation"), "{rows:?}");
}

fn incident(store: &Store, level: u32) -> i64 {
    let mut row = IncidentRow {
        key: "srcip:203.0.113.7".into(),
        title: "sshd: brute force from 203.0.113.7\r\nBcc: evil@example.org".into(),
        max_level: level,
        status: "open".into(),
        phase: "detection_analysis".into(),
        first_alert_ms: T0,
        last_alert_ms: T0,
        alert_count: 12,
        ..Default::default()
    };
    store.incident_tx(|tx| tx.save(&mut row)).unwrap();
    row.seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_incident_emails_its_escalation_contact_once() {
    let Some(smtp) = SmtpServer::start(SmtpMode::Starttls).await else {
        return;
    };
    // `[incidents] high_contact` names the contact by name; the email channel's own
    // recipients are the team, the escalation goes To the contact alone.
    let toml = format!(
        "[incidents]\nhigh_contact = \"Dana\"\nhigh_sla_minutes = 30\n\
         [[channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         tls = \"starttls\"\nusername = \"{SMTP_USER}\"\npassword_env = \"SMTP_PW\"\n\
         from = \"Secops <alerts@secops.test>\"\nto = [\"team@secops.test\"]\nca_file = \"{ca}\"\n\
         [[contacts]]\nname = \"Dana\"\nrole = \"DevOps engineer\"\nemail = \"dana@secops.test\"\n",
        port = smtp.port,
        ca = smtp.ca_file.display()
    );
    let e = env(&toml, &[("SMTP_PW", SMTP_PASSWORD)]);
    let seq = incident(&e.store, 13);
    assert_eq!(
        at(&e, 30).await.incident_steps,
        0,
        "due at 30 min, not past"
    );
    let r = at(&e, 31).await;
    assert_eq!((r.incident_steps, r.notifications), (1, 1));
    assert_eq!(at(&e, 45).await, EscalationReport::default());
    assert_eq!(at(&e, 600).await, EscalationReport::default());
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{}", smtp.log());
    assert_eq!(smtp.recipients(1), ["dana@secops.test"]);
    let m = parse_message(&msgs[0]);
    assert_eq!(m.header("To"), Some("dana@secops.test"));
    let subject = m.header("Subject").unwrap();
    let inc = format!("INC-{seq:06}");
    assert!(
        subject.starts_with(&format!(
            "[WARNING] ESCALATED to DevOps engineer (Dana): Incident {inc}: sshd: brute force"
        )),
        "{subject}"
    );
    // Wazuh's text stayed one line of data: no header was injected.
    assert!(m.header("Bcc").is_none(), "{:?}", m.headers);
    let plain = m.part("text/plain").unwrap();
    assert!(plain.contains("was to be responded to by"), "{plain}");
    assert_eq!(
        e.store.incident_escalations(seq).unwrap().len(),
        1,
        "one step recorded"
    );
}

#[tokio::test]
async fn a_row_for_a_contact_no_longer_configured_is_dead_letter_naming_them() {
    let p = Providers::start().await;
    let e = env(&providers_toml(&p), &[]);
    fire(&e);
    let alert = e.store.alerts_open().unwrap().remove(0);
    let body = secops_mcp::alerts::NotificationBody {
        digest: vec![],
        kind: secops_mcp::alerts::NotificationKind::Escalation,
        group_key: "web".into(),
        group_labels: BTreeMap::new(),
        dedup_key: alert.episode.clone(),
        alerts: vec![alert.snapshot()],
        escalation: None,
    };
    let id = e
        .store
        .escalation_tx(|tx| {
            tx.enqueue_for(
                &secops_mcp::store::NewNotification {
                    channel: "text",
                    body: &body,
                    alerts: &[alert.seq],
                    deadline_ms: T0 + 3_600_000,
                },
                "Zed",
                T0,
            )
        })
        .unwrap();
    e.outbox.deliver_due().await.unwrap();
    let row = e.store.outbox_get(id).unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Dead);
    assert_eq!(
        row.last_error.as_deref(),
        Some("contact Zed is not configured (any more)")
    );
    assert!(p.received(Provider::Twilio).is_empty());
}

#[tokio::test]
async fn an_incident_escalated_to_pagerduty_is_acknowledged_and_resolved_there() {
    let p = Providers::start().await;
    let e = env(&providers_toml(&p), &[]);
    let seq = incident(&e.store, 15);
    let r = at(&e, 16).await;
    assert_eq!(
        (r.incident_steps, r.notifications),
        (1, 2),
        "sms and pagerduty"
    );
    let sms = p.received(Provider::Twilio);
    assert_eq!(sms.len(), 1);
    let form: BTreeMap<String, String> = form_pairs(&sms[0].body).into_iter().collect();
    assert_eq!(form["To"], ALICE_PHONE);
    assert!(
        form["Body"].contains(&format!(
            "ESCALATED to security lead (Alice): Incident INC-{seq:06}"
        )),
        "{}",
        form["Body"]
    );
    let mut row = e.store.incident_get(seq).unwrap().unwrap();
    row.status = "acknowledged".into();
    e.store.incident_save(&mut row).unwrap();
    assert_eq!(at(&e, 20).await.follow_ups, 1);
    row.status = "resolved".into();
    e.store.incident_save(&mut row).unwrap();
    assert_eq!(at(&e, 30).await.follow_ups, 1);
    assert_eq!(at(&e, 40).await, EscalationReport::default());
    let pd: Vec<_> = p
        .received(Provider::PagerDuty)
        .iter()
        .map(|r| {
            let v = r.json();
            assert_eq!(v["routing_key"], PD_KEY);
            (
                v["event_action"].as_str().unwrap().to_string(),
                v["dedup_key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(pd.len(), 3, "{pd:?}");
    assert_eq!(
        pd.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["trigger", "acknowledge", "resolve"]
    );
    assert!(
        pd.iter().all(|(_, k)| *k == pd[0].1),
        "one dedup_key: {pd:?}"
    );
    assert_eq!(
        p.received(Provider::Twilio).len(),
        1,
        "sms takes no follow-up"
    );
    assert!(p.violations().is_empty(), "{:?}", p.violations());
}

/// `secops-mcp config check` (the start-up path of `serve`) with `toml`.
fn config_check(toml: &str, vars: &[(&str, &str)]) -> std::process::Output {
    let scratch = crate::common::Scratch::new();
    let file = scratch.write("secops-mcp.toml", toml);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
    cmd.args(["config", "check", "--config"])
        .arg(&file)
        .env_clear()
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null());
    cmd.output().expect("run secops-mcp")
}

#[test]
fn config_check_refuses_bad_contacts_and_rules_and_shows_live_steps_masked() {
    let contact = "[[contacts]]\nname = \"Alice\"\nrole = \"security lead\"\nemail = \"a@example.org\"\n\
                   pagerduty_routing_key_env = \"ALICE_PD\"\n\
                   [[channels]]\nname = \"pager\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD_SERVICE\"\n";
    let vars = [("ALICE_PD", PD_KEY), ("PD_SERVICE", SERVICE_KEY)];
    let out = config_check(contact, &vars);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains(PD_KEY) && !stderr.contains(PD_KEY),
        "{stdout}"
    );
    assert!(stdout.contains("\"live\": true"), "{stdout}");
    assert!(
        stderr.contains("escalation step warning-1h tells nobody"),
        "{stderr}"
    );
    for (toml, key) in [
        (
            format!(
                "{contact}[[escalation]]\nname = \"r\"\nlevel = \"critical\"\nafter = \"15m\"\ncontacts = [\"Bob\"]\n"
            ),
            "`escalation[0].contacts[0]`: no contact has the name or role `Bob`",
        ),
        (
            "[[contacts]]\nname = \"Bob\"\n".to_string(),
            "`contacts[0].channels`: no channel can reach contact `Bob`",
        ),
        (
            "[[contacts]]\nname = \"Bob\"\nphone = \"0171 555\"\n".to_string(),
            "`contacts[0].phone`",
        ),
    ] {
        let out = config_check(&toml, &vars);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{toml}\n{stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}
