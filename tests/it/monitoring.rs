//! The monitoring engine end to end, with a controllable clock: a real uptime probe of a
//! local endpoint that flaps, the scheduler, the alert lifecycle and the outbox delivering
//! to a real webhook receiver. A flap shorter than the failure threshold says nothing;
//! three failures give exactly one firing notification, two recoveries exactly one
//! resolved, both with the same dedup key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::sinks::Sink;
use secops_mcp::alerts::Level;
use secops_mcp::alerts::lifecycle::MonitorPolicy;
use secops_mcp::alerts::outbox::{Outbox, OutboxSettings};
use secops_mcp::checks::uptime::{UptimeProber, UptimeTarget};
use secops_mcp::clock::{Clock, ManualClock};
use secops_mcp::config::Secret;
use secops_mcp::monitor::Schedule;
use secops_mcp::monitor::engine::{Engine, KindRun, Monitor, Observe};
use secops_mcp::notify::Channel;
use secops_mcp::notify::webhook::{WebhookChannel, WebhookSettings};
use secops_mcp::store::Store;
use tokio::net::TcpListener;

/// An endpoint that answers 200 while `up` holds and 503 otherwise.
async fn flapping_endpoint(up: Arc<AtomicBool>) -> String {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/health",
        get(move || {
            let up = up.clone();
            async move {
                if up.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, "ok")
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/health")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_endpoint_fires_once_and_resolves_once_through_the_webhook() {
    let up = Arc::new(AtomicBool::new(true));
    let url = flapping_endpoint(up.clone()).await;
    let sink = Sink::start(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let clock = ManualClock::at(1_790_000_000_000);
    let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());

    let hook = WebhookChannel::new(
        "hook",
        WebhookSettings {
            url: Secret::new(sink.url("/alerts")),
            headers: BTreeMap::new(),
            hmac_secret: None,
            timeout_ms: 2_000,
        },
    )
    .unwrap();
    let channels: BTreeMap<String, Arc<dyn Channel>> =
        BTreeMap::from([("hook".to_string(), Arc::new(hook) as Arc<dyn Channel>)]);
    let outbox = Arc::new(Outbox::new(
        store.clone(),
        channels,
        clock_dyn.clone(),
        OutboxSettings::default(),
    ));

    let target =
        UptimeTarget::parse("monitors[0]", &url, None, None, None, None, Some(2_000)).unwrap();
    let prober = UptimeProber::new(None).unwrap();
    let observe: Observe = Arc::new(move || {
        let (prober, target) = (prober.clone(), target.clone());
        Box::pin(async move {
            let probe = prober.probe(&target).await;
            Ok(KindRun {
                observations: probe.observations(),
                complete: true,
            })
        })
    });
    let mut policy = MonitorPolicy::new("web").route(Level::Critical, &["hook"]);
    policy.failure_threshold = 3;
    policy.success_threshold = 2;
    policy.group_wait = Duration::ZERO;
    let monitor = Monitor {
        schedule: Schedule::every("monitors[0].every", "60s").unwrap(),
        timeout: Duration::from_secs(10),
        policy,
        observe,
    };
    let mut engine = Engine::new(
        store.clone(),
        clock_dyn,
        "test",
        vec![monitor],
        outbox.clone(),
        30,
    )
    .unwrap();

    // One scheduled run per minute of the controllable clock, then a delivery round.
    let step = |engine_up: bool| {
        up.store(engine_up, Ordering::SeqCst);
        clock.advance(Duration::from_secs(61));
    };
    let run = async |engine: &mut Engine| {
        let report = engine.scheduler().tick();
        assert_eq!(report.started, ["web"], "{report:?}");
        engine.scheduler().wait_idle().await;
        engine.outbox().deliver_due().await.unwrap()
    };
    // Down twice, up: below the failure threshold, nothing is said.
    for state in [false, false, true, true] {
        step(state);
        run(&mut engine).await;
    }
    assert!(sink.received().is_empty(), "{:?}", sink.received().len());
    // Down three times: one firing notification.
    for _ in 0..3 {
        step(false);
        run(&mut engine).await;
    }
    // And still down: no second one.
    step(false);
    run(&mut engine).await;
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "exactly one firing");
    let firing = got[0].json();
    assert_eq!(firing["status"], "firing", "{firing:#}");
    assert_eq!(
        firing["alerts"][0]["labels"]["alertname"], "endpoint_unexpected_status",
        "{firing:#}"
    );
    // Up twice: one resolved notification with the same dedup key.
    for _ in 0..2 {
        step(true);
        run(&mut engine).await;
    }
    let got = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2, "one firing, one resolved");
    let resolved = got[1].json();
    assert_eq!(resolved["status"], "resolved", "{resolved:#}");
    assert_eq!(
        got[0].header("x-secops-dedup-key"),
        got[1].header("x-secops-dedup-key")
    );
    // Every run was recorded.
    assert_eq!(store.monitor_runs("web", 100).unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_status_and_alert_update_over_mcp_show_and_acknowledge_our_alerts() {
    use crate::common::{Era, HttpHarness, Scratch, call, text_of};
    use secops_mcp::alerts::Observation;
    use secops_mcp::alerts::lifecycle::evaluate;
    use secops_mcp::clock::SystemClock;
    use serde_json::json;

    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let mut policy = MonitorPolicy::new("web").route(Level::Critical, &["log"]);
    policy.group_wait = Duration::ZERO;
    let down = Observation {
        code: "endpoint_down".into(),
        subject: BTreeMap::from([("url".into(), "https://shop.example/".into())]),
        level: Some(Level::Critical),
        title: "https://shop.example/ is down".into(),
        summary: "No answer.".into(),
        value: None,
    };
    evaluate(&server.ctx.store, &SystemClock, &policy, &[down]).unwrap();
    for era in [Era::Legacy, Era::Stateless] {
        let client = server.client(era).await;
        let r = call(&client, "alert_status", json!({})).await;
        assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
        let sc = r.structured_content.clone().unwrap();
        assert_eq!(
            sc["firing"]["critical"][0]["code"], "endpoint_down",
            "{sc:#}"
        );
        assert!(
            text_of(&r).starts_with("1 alert(s) firing"),
            "{}",
            text_of(&r)
        );
        client.cancel().await.unwrap();
    }
    let client = server.client(Era::Legacy).await;
    let sc = call(&client, "alert_status", json!({}))
        .await
        .structured_content
        .unwrap();
    let id = sc["firing"]["critical"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        &client,
        "alert_update",
        json!({"alert_id": id, "action": "acknowledge", "text": "looking"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(
        r.structured_content.unwrap()["alert"]["acknowledged_by"],
        "alice"
    );
    let d = call(&client, "alert_status", json!({"alert_id": id})).await;
    let d = d.structured_content.unwrap();
    let kinds: Vec<&str> = d["alert"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"acknowledged") && kinds.contains(&"note"),
        "{kinds:?}"
    );
    let r = call(
        &client,
        "alert_update",
        json!({"alert_id": "ALR-x", "action": "note", "text": "t"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("`alert_id`"), "{}", text_of(&r));
    let audit = server.ctx.store.audit_recent(5).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.tool == "alert_update" && a.caller == "alice"),
        "{audit:?}"
    );
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_test_sends_one_notification_and_prints_the_answer_without_secrets() {
    use crate::common::Scratch;
    use crate::common::sinks::Answer;

    let sink = Sink::start(vec![Answer::ok(), Answer::status(503)]).await;
    let scratch = Scratch::new();
    let url = sink.url("/hook/T0k3n-S3cret");
    let config = scratch.write(
        "secops.toml",
        "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS_HOOK_URL\"\n\
         [routing]\ncritical = [\"ops\", \"log\"]\n",
    );
    let run = |args: &[&str]| {
        let mut env = scratch.env();
        env.insert("SECOPS_CONFIG".into(), config.to_string_lossy().to_string());
        env.insert("OPS_HOOK_URL".into(), url.clone());
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
    let (code, out) = run(&["channels", "test", "ops"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ops (webhook): delivered") && out.contains("HTTP 200"),
        "{out}"
    );
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].json()["alerts"][0]["labels"]["alertname"],
        "channel_test"
    );

    let (code, out) = run(&["channels", "test", "ops"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("NOT delivered") && out.contains("HTTP 503"),
        "{out}"
    );

    let (code, out) = run(&["channels", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ops") && out.contains("webhook") && out.contains("critical"),
        "{out}"
    );

    let (code, out) = run(&["channels", "test", "slack"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no channel is named `slack`") && out.contains("`ops`"),
        "{out}"
    );
    for (_, out) in [
        run(&["channels", "test", "ops"]).await,
        run(&["channels", "list"]).await,
        run(&["config", "check"]).await,
    ] {
        assert!(
            !out.contains("T0k3n-S3cret") && !out.contains("/hook/"),
            "{out}"
        );
    }
}
