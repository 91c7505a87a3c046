//! The Slack, Twilio (sms) and PagerDuty channels against local fakes of their public APIs
//! (tests/common/providers.rs) that check method, path, content type, fields and auth and
//! answer like the provider, error answers included: through the real outbox and lifecycle
//! (a PagerDuty trigger, acknowledge and resolve with one dedup_key), through `secops-mcp
//! channels test NAME`, and with the secrets (webhook URL, auth token, routing key) never in
//! what we say.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secops_mcp::alerts::lifecycle::{MonitorPolicy, evaluate};
use secops_mcp::alerts::outbox::{Outbox, OutboxSettings};
use secops_mcp::alerts::update::{UpdateArgs, run as update};
use secops_mcp::alerts::{
    AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind, Observation,
};
use secops_mcp::clock::{Clock, ManualClock};
use secops_mcp::config::Secret;
use secops_mcp::notify::{
    Channel, Delivery, PagerDutyChannel, PagerDutySettings, SlackChannel, SlackSettings,
    SmsChannel, SmsSettings, WebhookChannel, WebhookSettings,
};
use secops_mcp::store::{NewNotification, Store};

use crate::common::Scratch;
use crate::common::providers::{
    PD_KEY, Provider, Providers, SLACK_PATH, TWILIO_SID, TWILIO_TOKEN, form_pairs,
};
use crate::common::sinks::{Answer, Sink};

const T0: i64 = 1_800_000_000_000;
const SECRETS: [&str; 4] = ["sl4ckHookS3cret", TWILIO_TOKEN, PD_KEY, "S3cret"];

fn snapshot(i: i64, level: Level, summary: &str) -> AlertSnapshot {
    AlertSnapshot {
        id: format!("ALR-{i}"),
        fingerprint: format!("{i:016x}"),
        episode: format!("{i:016x}-1"),
        monitor: "web".into(),
        code: "endpoint_down".into(),
        level,
        state: AlertState::Firing,
        title: format!("shop{i}.example is down"),
        summary: summary.into(),
        labels: BTreeMap::from([("url".into(), format!("https://shop{i}.example/"))]),
        value: Some("HTTP 503".into()),
        started_at: "2027-01-15T08:00:00Z".into(),
        resolved_at: None,
        runbook: None,
    }
}

fn body(kind: NotificationKind, alerts: Vec<AlertSnapshot>) -> NotificationBody {
    NotificationBody {
        kind,
        group_key: "web".into(),
        group_labels: BTreeMap::from([("monitor".into(), "web".into())]),
        escalation: None,
        dedup_key: alerts[0].episode.clone(),
        alerts,
        digest: vec![],
    }
}

fn no_secrets(what: &str) {
    for s in SECRETS {
        assert!(!what.contains(s), "{s} in: {what}");
    }
}

fn text_of(d: &Delivery) -> String {
    format!("{d:?}")
}

fn slack(url: String) -> SlackChannel {
    SlackChannel::new(
        "chat",
        SlackSettings {
            url: Secret::new(url),
            timeout_ms: 5_000,
            template: None,
        },
    )
    .unwrap()
}

fn sms(p: &Providers, token: &str, to: &[&str]) -> SmsChannel {
    SmsChannel::new(
        "phones",
        SmsSettings {
            account_sid: TWILIO_SID.into(),
            auth_token: Secret::new(token),
            from: Some("+15005550006".into()),
            messaging_service_sid: None,
            to: to.iter().map(|s| s.to_string()).collect(),
            base_url: p.base(),
            timeout_ms: 5_000,
            template: None,
        },
    )
    .unwrap()
}

fn pagerduty(p: &Providers, key: &str) -> PagerDutyChannel {
    PagerDutyChannel::new(
        "pd",
        PagerDutySettings {
            routing_key: Secret::new(key),
            source: "secops-host".into(),
            base_url: p.base(),
            timeout_ms: 5_000,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn slack_gets_text_and_blocks_and_its_error_answers_are_classified() {
    let p = Providers::start().await;
    let ch = slack(p.slack_url());
    let b = body(
        NotificationKind::Firing,
        vec![
            snapshot(1, Level::Critical, "It answered 503 <three> times & more."),
            snapshot(2, Level::Warning, "Slow."),
        ],
    );
    let d = ch.send(&b).await;
    assert_eq!(
        d,
        Delivery::Delivered {
            status: Some(200),
            answer: "ok".into()
        }
    );
    let got = p.received(Provider::Slack);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, SLACK_PATH);
    let v = got[0].json();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("[CRITICAL] ALR-1 FIRING: shop1.example is down"),
        "{text}"
    );
    assert!(text.contains("and 1 more"), "{text}");
    assert_eq!(v["blocks"][0]["type"], "header");
    assert_eq!(
        v["blocks"][0]["text"]["text"],
        "CRITICAL FIRING: 2 alerts of web"
    );
    let section = v["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("&lt;three&gt; times &amp; more"),
        "{section}"
    );
    let fields: Vec<&str> = v["blocks"][1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for want in [
        "*Level*\ncritical",
        "*Where*\nurl=https://shop1.example/",
        "*Since*\n2027-01-15T08:00:00Z",
        "*Value*\nHTTP 503",
    ] {
        assert!(
            fields.iter().any(|f| f.starts_with(want)),
            "{want}: {fields:?}"
        );
    }
    let next = v["blocks"][2]["elements"][0]["text"].as_str().unwrap();
    assert!(next.contains("secops-mcp alerts ack ALR-1"), "{next}");
    assert_eq!(p.violations(), Vec::<String>::new());

    // Slack's error answers.
    p.push(
        Provider::Slack,
        [
            Answer::Status(400, "invalid_payload".into()),
            Answer::Status(404, "no_service".into()),
            Answer::TooMany("7".into()),
            Answer::Status(200, "not ok".into()),
        ],
    );
    let d = ch.send(&b).await;
    assert!(
        matches!(&d, Delivery::Failed { status: Some(400), reason } if reason.contains("invalid_payload")),
        "{d:?}"
    );
    let d = ch.send(&b).await;
    assert!(
        matches!(&d, Delivery::Failed { status: Some(404), reason } if reason.contains("no_service")),
        "{d:?}"
    );
    let d = ch.send(&b).await;
    assert!(
        matches!(&d, Delivery::Retry { status: Some(429), after: Some(a), .. } if *a == Duration::from_secs(7)),
        "{d:?}"
    );
    let d = ch.send(&b).await;
    assert!(
        matches!(
            &d,
            Delivery::Failed {
                status: Some(200),
                ..
            }
        ),
        "{d:?}"
    );
    // A hook path Slack does not know: 404 no_service; the URL is not in the reason.
    let wrong = slack(format!("{}/services/T0/B0/wr0ngS3cretPath", p.base()));
    let d = wrong.send(&b).await;
    assert!(text_of(&d).contains("no_service"), "{d:?}");
    assert!(!text_of(&d).contains("wr0ngS3cretPath"), "{d:?}");
    // A receiver that is not there: the reason names neither the URL nor its path.
    let gone = slack("http://127.0.0.1:9/services/T0/B0/g0neS3cretPath".into());
    let d = gone.send(&b).await;
    assert!(matches!(d, Delivery::Retry { status: None, .. }), "{d:?}");
    assert!(!text_of(&d).contains("g0neS3cretPath"), "{d:?}");
}

#[tokio::test]
async fn twilio_gets_one_form_per_recipient_with_basic_auth_and_a_trimmed_body() {
    let p = Providers::start().await;
    let ch = sms(&p, TWILIO_TOKEN, &["+15551230001", "+15551230002"]);
    let long = "x".repeat(3_000);
    let b = body(
        NotificationKind::Firing,
        vec![
            snapshot(41, Level::Critical, &long),
            snapshot(42, Level::Warning, "y"),
        ],
    );
    let d = ch.send(&b).await;
    assert!(
        matches!(&d, Delivery::Delivered { status: Some(201), answer } if answer.starts_with("all 2 delivered")),
        "{d:?}"
    );
    let got = p.received(Provider::Twilio);
    assert_eq!(got.len(), 2);
    for (r, to) in got.iter().zip(["+15551230001", "+15551230002"]) {
        assert_eq!(
            r.path,
            format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
        );
        let f: BTreeMap<String, String> = form_pairs(&r.body).into_iter().collect();
        assert_eq!(f.keys().collect::<Vec<_>>(), ["Body", "From", "To"]);
        assert_eq!(f["To"], to);
        assert_eq!(f["From"], "+15005550006");
        assert_eq!(f["Body"].chars().count(), 1600);
        assert!(
            f["Body"].starts_with("ALR-41 CRITICAL FIRING: shop41.example is down. xxx"),
            "{}",
            &f["Body"][..60]
        );
        assert!(
            f["Body"].ends_with("(+1 more: ALR-42)"),
            "{}",
            &f["Body"][1500..]
        );
    }
    assert_eq!(p.violations(), Vec::<String>::new());

    // One recipient refused (21211): failed for good, naming it; the other got it.
    p.invalid_to("+15551230002");
    let d = ch.send(&b).await;
    match &d {
        Delivery::Failed {
            status: Some(400),
            reason,
        } => {
            assert!(
                reason.contains("1 of 2 not delivered: to[1] (…0002)"),
                "{reason}"
            );
            assert!(
                reason.contains("Twilio error 21211")
                    && reason.contains("not a valid phone number"),
                "{reason}"
            );
            assert!(reason.contains("(delivered: to[0] (…0001))"), "{reason}");
        }
        d => panic!("{d:?}"),
    }
    // A wrong auth token: 401 with Twilio's code, and no token in the reason.
    let wrong = sms(&p, "wr0ngT0kenS3cret", &["+15551230001"]);
    let d = wrong.send(&b).await;
    assert!(
        matches!(&d, Delivery::Failed { status: Some(401), reason } if reason.contains("Twilio error 20003: Authenticate")),
        "{d:?}"
    );
    assert!(!text_of(&d).contains("wr0ngT0kenS3cret"));
    // 429 and 5xx are retried.
    let one = sms(&p, TWILIO_TOKEN, &["+15551230001"]);
    p.push(
        Provider::Twilio,
        [Answer::TooMany("3".into()), Answer::status(503)],
    );
    assert!(matches!(
        one.send(&b).await,
        Delivery::Retry {
            status: Some(429),
            ..
        }
    ));
    assert!(matches!(
        one.send(&b).await,
        Delivery::Retry {
            status: Some(503),
            ..
        }
    ));
    no_secrets(&format!("{:?}", p.violations()));
}

struct Rig {
    _scratch: Scratch,
    store: Store,
    clock: ManualClock,
}

impl Rig {
    fn new() -> Rig {
        let scratch = Scratch::new();
        let store = Store::open(&scratch.state_dir()).unwrap();
        Rig {
            _scratch: scratch,
            store,
            clock: ManualClock::at(T0),
        }
    }

    fn outbox(&self, channels: Vec<Arc<dyn Channel>>) -> Outbox {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        Outbox::new(
            self.store.clone(),
            channels
                .into_iter()
                .map(|c| (c.name().to_string(), c))
                .collect(),
            clock,
            OutboxSettings {
                worker: "w".into(),
                min_delay: Duration::from_secs(1),
                ..Default::default()
            },
        )
    }
}

fn down(level: Option<Level>) -> Observation {
    Observation {
        code: "endpoint_down".into(),
        subject: BTreeMap::from([("url".to_string(), "https://shop.example/".to_string())]),
        level,
        title: "shop.example is down".into(),
        summary: "It answered 503 three times.".into(),
        value: Some("HTTP 503".into()),
    }
}

#[tokio::test]
async fn pagerduty_triggers_acknowledges_and_resolves_one_incident_through_the_outbox() {
    let p = Providers::start().await;
    let hook_sink = Sink::start(vec![]).await;
    let rig = Rig::new();
    let hook: Arc<dyn Channel> = Arc::new(
        WebhookChannel::new(
            "hook",
            WebhookSettings {
                url: Secret::new(hook_sink.url("/am")),
                headers: BTreeMap::new(),
                hmac_secret: None,
                timeout_ms: 5_000,
            },
        )
        .unwrap(),
    );
    let outbox = rig.outbox(vec![Arc::new(pagerduty(&p, PD_KEY)), hook]);
    let mut policy = MonitorPolicy::new("web").route(Level::Critical, &["pd", "hook"]);
    policy.group_wait = Duration::ZERO;

    let r = evaluate(
        &rig.store,
        &rig.clock,
        &policy,
        &[down(Some(Level::Critical))],
    )
    .unwrap();
    let seq = r.fired[0];
    let episode = rig.store.alert_get(seq).unwrap().unwrap().episode;
    let round = outbox.deliver_due().await.unwrap();
    assert_eq!(round.delivered, 2, "{round:?}");

    // Acknowledged through alert_update's logic: only PagerDuty is told.
    rig.clock.advance(Duration::from_secs(60));
    let args = UpdateArgs {
        alert_id: Some(format!("ALR-{seq}")),
        action: "acknowledge".into(),
        text: None,
        ..Default::default()
    };
    update(&rig.store, &rig.clock, "alice", &args, &["pd".to_string()]).unwrap();
    let round = outbox.deliver_due().await.unwrap();
    assert_eq!(round.delivered, 1, "{round:?}");

    // An acknowledged row that reaches a channel that does not take them is not sent.
    rig.store
        .outbox_enqueue(
            &NewNotification {
                channel: "hook",
                body: &body(
                    NotificationKind::Acknowledged,
                    vec![snapshot(9, Level::Critical, "s")],
                ),
                alerts: &[],
                deadline_ms: T0 + 3_600_000,
            },
            rig.clock.now_ms(),
        )
        .unwrap();
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 1);

    rig.clock.advance(Duration::from_secs(60));
    let r = evaluate(&rig.store, &rig.clock, &policy, &[down(None)]).unwrap();
    assert_eq!(r.resolved, vec![seq]);
    let round = outbox.deliver_due().await.unwrap();
    assert_eq!(round.delivered, 2, "{round:?}");

    let events: Vec<serde_json::Value> = p
        .received(Provider::PagerDuty)
        .iter()
        .map(|r| r.json())
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    for e in &events {
        assert_eq!(e["dedup_key"], episode.as_str());
        assert_eq!(e["routing_key"], PD_KEY);
    }
    let t = &events[0]["payload"];
    assert_eq!(t["severity"], "error");
    assert_eq!(t["source"], "secops-host");
    assert_eq!(
        t["summary"],
        format!("[CRITICAL] ALR-{seq}: shop.example is down")
    );
    assert_eq!(t["custom_details"]["alert_id"], format!("ALR-{seq}"));
    assert_eq!(t["custom_details"]["value"], "HTTP 503");
    assert!(events[1].get("payload").is_none());
    assert_eq!(p.violations(), Vec::<String>::new());

    // The webhook saw firing then resolved, never an acknowledgement dressed as firing.
    let am: Vec<String> = hook_sink
        .received()
        .iter()
        .map(|r| r.json()["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(am, ["firing", "resolved"]);
    let detail = rig.store.alert_detail(seq).unwrap().unwrap();
    let kinds: Vec<(&str, &str, &str)> = detail
        .notifications
        .iter()
        .map(|n| (n.kind.as_str(), n.channel.as_str(), n.state.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("firing", "pd", "delivered"),
            ("firing", "hook", "delivered"),
            ("acknowledged", "pd", "delivered"),
            ("resolved", "hook", "delivered"),
            ("resolved", "pd", "delivered"),
        ]
    );
    for a in rig.store.outbox_attempts_for_alert(seq).unwrap() {
        no_secrets(&format!("{a:?}"));
    }
}

#[tokio::test]
async fn pagerduty_error_answers_400_is_final_429_and_5xx_are_retried() {
    let p = Providers::start().await;
    let b = body(
        NotificationKind::Firing,
        vec![snapshot(5, Level::Emergency, &"z".repeat(2_000))],
    );
    let ch = pagerduty(&p, PD_KEY);
    let d = ch.send(&b).await;
    assert!(
        matches!(&d, Delivery::Delivered { status: Some(202), answer } if answer.contains("success: Event processed")),
        "{d:?}"
    );
    let e = p.received(Provider::PagerDuty)[0].json();
    assert_eq!(e["payload"]["severity"], "critical");
    assert_eq!(
        e["payload"]["summary"],
        "[EMERGENCY] ALR-5: shop5.example is down"
    );
    assert_eq!(
        e["payload"]["custom_details"]["what"]
            .as_str()
            .unwrap()
            .len(),
        2_000
    );
    // An unknown routing key: PagerDuty's 400 invalid event, not retried, key not shown.
    let wrong = pagerduty(&p, "wr0ngKeyS3cret");
    let d = wrong.send(&b).await;
    match &d {
        Delivery::Failed {
            status: Some(400),
            reason,
        } => {
            assert!(
                reason
                    .contains("invalid event: Event object is invalid ('routing_key' is invalid)"),
                "{reason}"
            );
        }
        d => panic!("{d:?}"),
    }
    assert!(!text_of(&d).contains("wr0ngKeyS3cret"));
    p.push(
        Provider::PagerDuty,
        [Answer::TooMany("2".into()), Answer::status(502)],
    );
    assert!(matches!(
        ch.send(&b).await,
        Delivery::Retry {
            status: Some(429),
            after: Some(_),
            ..
        }
    ));
    assert!(matches!(
        ch.send(&b).await,
        Delivery::Retry {
            status: Some(502),
            ..
        }
    ));
    assert_eq!(p.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn channels_test_reaches_each_provider_and_prints_its_answer_without_secrets() {
    let p = Providers::start().await;
    let scratch = Scratch::new();
    let config = scratch.write(
        "secops.toml",
        &format!(
            "[[channels]]\nname = \"chat\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\n\
             [[channels]]\nname = \"phones\"\nkind = \"sms\"\naccount_sid = \"{TWILIO_SID}\"\n\
             auth_token_env = \"TWILIO_TOKEN\"\nfrom = \"+15005550006\"\nto = [\"+15551230001\"]\n\
             base_url = \"{base}\"\n\
             [[channels]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD_KEY\"\n\
             base_url = \"{base}\"\n\
             [routing]\nemergency = [\"chat\", \"phones\", \"pd\"]\n",
            base = p.base()
        ),
    );
    let run = |args: &[&str]| {
        let mut env = scratch.env();
        env.insert("SECOPS_CONFIG".into(), config.to_string_lossy().to_string());
        env.insert("SLACK_URL".into(), p.slack_url());
        env.insert("TWILIO_TOKEN".into(), TWILIO_TOKEN.into());
        env.insert("PD_KEY".into(), PD_KEY.into());
        let mut cmd = crate::common::server_command(&env, args);
        async move {
            let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
                .await
                .expect("channels must finish")
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let (code, out) = run(&["channels", "test", "chat"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("chat (slack): delivered") && out.contains("HTTP 200, answer: ok"),
        "{out}"
    );
    let (code, out) = run(&["channels", "test", "phones"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("phones (sms): delivered") && out.contains("to[0] (…0001): SM"),
        "{out}"
    );
    let (code, out) = run(&["channels", "test", "pd"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("pd (pagerduty): delivered") && out.contains("trigger success"),
        "{out}"
    );
    let pd: Vec<String> = p
        .received(Provider::PagerDuty)
        .iter()
        .map(|r| r.json()["event_action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        pd,
        ["trigger", "resolve"],
        "a test incident does not stay open"
    );
    let sms = form_pairs(&p.received(Provider::Twilio)[0].body);
    assert!(
        sms.iter()
            .any(|(k, v)| k == "Body" && v.starts_with("channel_test/phones INFO TEST: ")),
        "{sms:?}"
    );
    assert_eq!(p.violations(), Vec::<String>::new());

    // A failing provider: what it answered, still without secrets.
    p.push(Provider::PagerDuty, [Answer::status(500)]);
    let (code, out) = run(&["channels", "test", "pd"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("would be retried") && out.contains("HTTP 500"),
        "{out}"
    );
    let (code, list) = run(&["channels", "list"]).await;
    assert_eq!(code, Some(0), "{list}");
    for (name, kind) in [("chat", "slack"), ("phones", "sms"), ("pd", "pagerduty")] {
        assert!(
            list.lines()
                .any(|l| l.starts_with(name) && l.contains(kind) && l.contains("emergency")),
            "{list}"
        );
    }
    let (code, check) = run(&["config", "check"]).await;
    assert_eq!(code, Some(0), "{check}");
    for out in [out, list, check] {
        no_secrets(&out);
        assert!(!out.contains(SLACK_PATH), "{out}");
    }
}

#[tokio::test]
async fn an_sms_template_is_the_body_twilio_gets_cut_to_its_limit() {
    use secops_mcp::notify::template::MessageTemplate;
    let p = Providers::start().await;
    let ch = |template: &str| {
        SmsChannel::new(
            "phones",
            SmsSettings {
                account_sid: TWILIO_SID.into(),
                auth_token: Secret::new(TWILIO_TOKEN),
                from: Some("+15005550006".into()),
                messaging_service_sid: None,
                to: vec!["+15551230001".into()],
                base_url: p.base(),
                timeout_ms: 5_000,
                template: Some(MessageTemplate::compile(template).unwrap()),
            },
        )
        .unwrap()
    };
    let mut a = snapshot(7, Level::Critical, "Down {{ 1 + 1 }}.");
    a.labels.insert("team".into(), "web<&>".into());
    let b = body(NotificationKind::Firing, vec![a]);
    let sms = ch(
        "{{ alert.id }} {{ alert.level | upper }}/{{ kind }}: {{ alert.title }} \
                  [{{ alert.labels.team | default(\"-\") }}] {{ alert.summary }} value={{ alert.value }}",
    );
    let d = sms.send(&b).await;
    assert!(matches!(d, Delivery::Delivered { .. }), "{d:?}");
    // A template that does not start with the id gets it, and a long one is cut.
    let long = ch("{{ alert.title }}{% for i in range(400) %} {{ alert.code }}{% endfor %}");
    let d = long.send(&b).await;
    assert!(matches!(d, Delivery::Delivered { .. }), "{d:?}");
    let bodies: Vec<String> = p
        .received(Provider::Twilio)
        .iter()
        .map(|r| {
            let f: BTreeMap<String, String> = form_pairs(&r.body).into_iter().collect();
            f["Body"].clone()
        })
        .collect();
    assert_eq!(
        bodies[0],
        "ALR-7 CRITICAL/firing: shop7.example is down [web<&>] Down {{ 1 + 1 }}. value=HTTP 503"
    );
    assert_eq!(bodies[1].chars().count(), 1600);
    assert!(
        bodies[1].starts_with("ALR-7 shop7.example is down endpoint_down"),
        "{}",
        &bodies[1][..60]
    );
    assert!(bodies[1].ends_with('…'));
    assert_eq!(p.violations(), Vec::<String>::new());
}
