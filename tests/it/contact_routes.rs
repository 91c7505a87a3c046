//! A route that names a contact (`[routing] critical = ["contact:security lead"]`), end to
//! end: the configuration resolves the role to Alice, the real lifecycle enqueues her rows
//! on each of her channels, and the real outbox delivers them to the Twilio and PagerDuty
//! fakes (tests/common/providers.rs) at HER number and on HER PagerDuty service: the
//! firing, the acknowledgement and the resolve, with one dedup key; the channel's own
//! recipients are not told.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secops_mcp::alerts::escalation::{EscalationPlan, run};
use secops_mcp::alerts::lifecycle::{MonitorPolicy, acknowledge, evaluate};
use secops_mcp::alerts::outbox::{Outbox, OutboxSettings};
use secops_mcp::alerts::{Level, Observation};
use secops_mcp::clock::{Clock, ManualClock};
use secops_mcp::config::Config;
use secops_mcp::store::{NotificationState, Store};

use crate::common::providers::{PD_KEY, Provider, Providers, TWILIO_SID, TWILIO_TOKEN, form_pairs};

const T0: i64 = 1_800_000_000_000;
const ALICE_PHONE: &str = "+15551230001";
const TEAM_PHONE: &str = "+15551239999";
/// The PagerDuty channel's own service key (the fake accepts only PD_KEY: Alice's).
const SERVICE_KEY: &str = "ServiceKeyN0tTheContacts000000000";

fn config_toml(p: &Providers, escalation: bool) -> String {
    format!(
        "[[channels]]\nname = \"text\"\nkind = \"sms\"\naccount_sid = \"{TWILIO_SID}\"\n\
         auth_token_env = \"TW_TOKEN\"\nfrom = \"+15005550006\"\nto = [\"{TEAM_PHONE}\"]\n\
         base_url = \"{base}\"\n\
         [[channels]]\nname = \"pager\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD_SERVICE\"\n\
         base_url = \"{base}\"\n\
         [routing]\ncritical = [\"log\", \"contact:security lead\"]\n\
         [escalation_defaults]\nenabled = {escalation}\n\
         [[contacts]]\nname = \"Alice\"\nrole = \"security lead\"\nphone = \"{ALICE_PHONE}\"\n\
         pagerduty_routing_key_env = \"ALICE_PD\"\n\
         [[monitors]]\nname = \"web\"\nkind = \"uptime\"\nurl = \"https://shop.example/\"\n\
         group_wait = \"0s\"\n",
        base = p.base()
    )
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

struct Env {
    _dir: tempfile::TempDir,
    cfg: Config,
    store: Store,
    clock: Arc<ManualClock>,
    outbox: Outbox,
    policy: MonitorPolicy,
}

/// The configuration loaded like `serve` would, the store, the outbox with the contacts,
/// and the monitor's policy (firing and resolving on the first observation).
fn env(p: &Providers, escalation: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let vars: BTreeMap<String, String> = [
        ("SECOPS_STATE_DIR", dir.path().to_str().unwrap()),
        ("TW_TOKEN", TWILIO_TOKEN),
        ("PD_SERVICE", SERVICE_KEY),
        ("ALICE_PD", PD_KEY),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let toml = config_toml(p, escalation);
    let cfg = Config::from_toml_str(&toml, &vars).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let store = Store::open(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::at(T0));
    let outbox = Outbox::new(
        store.clone(),
        cfg.notify.build().unwrap(),
        clock.clone() as Arc<dyn Clock>,
        OutboxSettings::default(),
    )
    .with_contacts(cfg.contacts.iter().map(|c| c.recipient()));
    let mut policy = cfg.monitors[0].policy();
    (policy.failure_threshold, policy.success_threshold) = (1, 1);
    policy.for_duration = Duration::ZERO;
    Env {
        _dir: dir,
        cfg,
        store,
        clock,
        outbox,
        policy,
    }
}

/// (event_action, on Alice's service, with the episode's key) of each PagerDuty event.
fn pd_actions(p: &Providers, episode: &str) -> Vec<(String, bool, bool)> {
    p.received(Provider::PagerDuty)
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["event_action"].as_str().unwrap().to_string(),
                v["routing_key"] == PD_KEY,
                v["dedup_key"] == episode,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_route_to_the_security_lead_texts_and_pages_her_and_resolves_with_her() {
    let p = Providers::start().await;
    let Env {
        cfg,
        store,
        clock,
        outbox,
        policy,
        _dir,
    } = env(&p, false);

    // Firing: the log, and Alice by SMS and PagerDuty (her default channels).
    evaluate(
        &store,
        clock.as_ref(),
        &policy,
        &[shop(Some(Level::Critical))],
    )
    .unwrap();
    let alert = store.alerts_open().unwrap().remove(0);
    let id = alert.id();
    outbox.deliver_due().await.unwrap();
    let sms = p.received(Provider::Twilio);
    assert_eq!(sms.len(), 1, "one SMS, to her only");
    let form: BTreeMap<String, String> = form_pairs(&sms[0].body).into_iter().collect();
    assert_eq!(form["To"], ALICE_PHONE);
    assert!(
        form["Body"].starts_with(&format!("{id} CRITICAL FIRING: shop.example is down")),
        "{}",
        form["Body"]
    );
    let pd = p.received(Provider::PagerDuty);
    assert_eq!(pd.len(), 1);
    let trigger = pd[0].json();
    assert_eq!(
        trigger["routing_key"], PD_KEY,
        "her service, not the channel's"
    );
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], alert.episode);

    // Acknowledged: the acknowledgement goes to her service, where the trigger went.
    clock.advance(Duration::from_secs(120));
    acknowledge(
        &store,
        clock.as_ref(),
        &id,
        "bob",
        &cfg.notify.acknowledging_channels(),
    )
    .unwrap();
    outbox.deliver_due().await.unwrap();

    // Resolved: she gets the resolved SMS, and her PagerDuty incident is resolved.
    clock.advance(Duration::from_secs(300));
    evaluate(&store, clock.as_ref(), &policy, &[shop(None)]).unwrap();
    outbox.deliver_due().await.unwrap();
    let sms = p.received(Provider::Twilio);
    assert_eq!(sms.len(), 2);
    let form: BTreeMap<String, String> = form_pairs(&sms[1].body).into_iter().collect();
    assert_eq!(form["To"], ALICE_PHONE);
    assert!(
        form["Body"].starts_with(&format!("{id} CRITICAL RESOLVED: shop.example is down")),
        "{}",
        form["Body"]
    );
    let actions = pd_actions(&p, &alert.episode);
    assert_eq!(
        actions,
        [
            ("trigger".to_string(), true, true),
            ("acknowledge".to_string(), true, true),
            ("resolve".to_string(), true, true),
        ]
    );
    assert!(p.violations().is_empty(), "{:?}", p.violations());

    // Every row delivered and addressed to her by name; no stored body holds her number
    // or key.
    let rows = store.outbox_list(None, 100).unwrap();
    let hers: Vec<_> = rows.iter().filter(|r| r.channel != "log").collect();
    assert_eq!(hers.len(), 5, "{rows:?}");
    for r in &hers {
        assert_eq!(r.state, NotificationState::Delivered, "{r:?}");
        assert_eq!(r.contact.as_deref(), Some("Alice"), "{r:?}");
        let stored = serde_json::to_string(&r.body).unwrap();
        assert!(
            !stored.contains(ALICE_PHONE) && !stored.contains(PD_KEY),
            "{stored}"
        );
    }
    let log: Vec<_> = rows.iter().filter(|r| r.channel == "log").collect();
    assert!(log.iter().all(|r| r.contact.is_none()));
    assert_eq!(log.len(), 2, "firing and resolved to the log; no ack there");
    // alert_status's timeline says who each delivery was for.
    let view = secops_mcp::alerts::status::detail(&store, &id).unwrap();
    let said: Vec<String> = view
        .timeline
        .iter()
        .filter(|t| t.kind == "notification")
        .filter_map(|t| t.detail.clone())
        .collect();
    for want in [
        "firing to text (Alice): delivered",
        "firing to pager (Alice): delivered",
        "acknowledged to pager (Alice): delivered",
        "resolved to text (Alice): delivered",
        "resolved to pager (Alice): delivered",
    ] {
        assert!(said.iter().any(|d| d.starts_with(want)), "{want}: {said:?}");
    }
}

#[tokio::test]
async fn an_escalation_to_a_contact_the_route_already_told_is_not_followed_up_twice() {
    let p = Providers::start().await;
    let e = env(&p, true);
    let plan = EscalationPlan::from_config(&e.cfg);
    evaluate(
        &e.store,
        e.clock.as_ref(),
        &e.policy,
        &[shop(Some(Level::Critical))],
    )
    .unwrap();
    let alert = e.store.alerts_open().unwrap().remove(0);
    e.outbox.deliver_due().await.unwrap();
    // 15 minutes unacknowledged: the matrix escalates to the security lead as well.
    e.clock.set(T0 + 15 * 60_000);
    let r = run(&e.store, e.clock.as_ref(), &plan).unwrap();
    assert_eq!(r.alert_steps, 1);
    e.outbox.deliver_due().await.unwrap();
    // Acknowledged, then resolved: one acknowledge and one resolve on her service (the
    // lifecycle's), not a second pair from the escalation's follow-ups.
    e.clock.set(T0 + 16 * 60_000);
    let ack = e.cfg.notify.acknowledging_channels();
    acknowledge(&e.store, e.clock.as_ref(), &alert.id(), "bob", &ack).unwrap();
    e.clock.set(T0 + 17 * 60_000);
    evaluate(&e.store, e.clock.as_ref(), &e.policy, &[shop(None)]).unwrap();
    let r = run(&e.store, e.clock.as_ref(), &plan).unwrap();
    assert_eq!(r.follow_ups, 0);
    e.outbox.deliver_due().await.unwrap();
    assert_eq!(
        pd_actions(&p, &alert.episode),
        [
            ("trigger".to_string(), true, true),
            ("trigger".to_string(), true, true),
            ("acknowledge".to_string(), true, true),
            ("resolve".to_string(), true, true),
        ]
    );
    assert!(p.violations().is_empty(), "{:?}", p.violations());
}
