//! The `self` monitor kind and the monitoring metrics over the real HTTP server: wrong
//! bearer tokens (401, then the throttle's 429) and a foreign Host (403) are counted per
//! remote address and tool calls are recorded; a `self` monitor turns a burst into an
//! `auth_failure_burst` alert for that address. Then the engine runs that monitor with a
//! webhook channel to a local receiver, and `/metrics` shows the runs, the alerts by level
//! and state, the notifications per channel and the send attempts, never the webhook's URL
//! or HMAC secret. Last, `serve --http` as an operator runs it: the `self` monitor on its
//! schedule turns 25 guessed tokens into one webhook notification and the scrape shows it.

use std::sync::Arc;
use std::time::Duration;

use crate::common::sinks::{Answer, Sink};
use crate::common::*;
use reqwest::StatusCode;
use secops_mcp::alerts::Level;
use secops_mcp::alerts::outbox::{Outbox, OutboxSettings};
use secops_mcp::clock::{Clock, ManualClock, SystemClock};
use secops_mcp::monitor::engine::Engine;
use secops_mcp::monitor::kinds::{self, KindSettings};
use serde_json::json;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}"#;

fn client_from(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(std::net::IpAddr::from([127, 0, 0, last_octet])))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn wrong_token(c: &reqwest::Client, url: &str) -> u16 {
    c.post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth("guess-0123456789-abcdef")
        .body(INIT)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_and_foreign_hosts_are_counted_per_address_and_make_a_burst_alert() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(
        &scratch,
        "[[monitors]]\nname = \"guard\"\nkind = \"self\"\n",
        &[],
    )
    .await;
    // Tool calls first (the burst below throttles 127.0.0.1): one fine, one invalid.
    let client = server.client(Era::Legacy).await;
    let r = call(&client, "alert_status", json!({})).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let r = call(&client, "check_cert", json!({ "targets": [] })).await;
    assert_eq!(r.is_error, Some(true));
    client.cancel().await.unwrap();
    let calls = server.ctx.selfwatch.calls(Duration::from_secs(300));
    assert_eq!((calls.calls, calls.errors), (2, 0), "{calls:?}");
    assert!(calls.p95_ms.is_some());

    // 25 wrong tokens from 127.0.0.1: 20 answered 401, then 429 (throttled); all counted.
    let c = client_from(1);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(wrong_token(&c, &server.url()).await);
    }
    // (The throttle's budget refills one guess every 3 s, so a slow machine may see a
    // 401 among the 429s.)
    assert_eq!(&statuses[..20], &[401; 20], "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)) && statuses.contains(&429),
        "{statuses:?}"
    );
    // A DNS-rebinding Host from 127.0.0.2: 403, counted for that address.
    let r = client_from(2)
        .get(format!("http://{}/healthz", server.addr))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let seen = server
        .ctx
        .selfwatch
        .refused_by_remote(Duration::from_secs(300));
    let counts: Vec<(String, u64)> = seen
        .iter()
        .map(|c| (c.remote.to_string(), c.refused))
        .collect();
    assert_eq!(
        counts,
        [("127.0.0.1".to_string(), 25), ("127.0.0.2".to_string(), 1)]
    );

    // The configured `self` monitor (defaults: 20 in 5m) sees one burst, from 127.0.0.1.
    let m = &server.ctx.config.monitors[0];
    assert!(matches!(m.settings, KindSettings::SelfCheck(_)));
    assert_eq!(m.schedule.0.describe(), "every 1m");
    let run = kinds::observe(&server.ctx, &m.name, &m.settings)
        .await
        .unwrap();
    assert!(run.complete);
    let bursts: Vec<_> = run
        .observations
        .iter()
        .filter(|o| o.code == "auth_failure_burst")
        .collect();
    assert_eq!(bursts.len(), 1, "{:?}", run.observations);
    assert_eq!(bursts[0].subject["remote"], "127.0.0.1");
    assert_eq!(bursts[0].level, Some(Level::Warning));
    assert_eq!(bursts[0].value.as_deref(), Some("25 in 5m"));
    // Two calls are too few to judge the error rate or the latency.
    for code in ["tool_error_rate", "tool_latency_p95"] {
        let o = run.observations.iter().find(|o| o.code == code).unwrap();
        assert_eq!(o.level, None, "{o:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_runs_alerts_notifications_and_sends_without_the_webhook_secrets() {
    let sink = Sink::start(vec![Answer::ok(), Answer::status(503)]).await;
    let hook_url = sink.url("/hook/T0k3n-S3cret");
    let hmac = "hmac-S3cret-value-0123456789";
    let scratch = Scratch::new();
    let server = HttpHarness::start(
        &scratch,
        "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS_HOOK_URL\"\n\
         hmac_secret_env = \"OPS_HOOK_HMAC\"\n\
         [routing]\nwarning = [\"ops\"]\ncritical = [\"ops\"]\n\
         [[monitors]]\nname = \"guard\"\nkind = \"self\"\nauth_failures = 3\ngroup_wait = \"0s\"\n",
        &[("OPS_HOOK_URL", &hook_url), ("OPS_HOOK_HMAC", hmac)],
    )
    .await;
    let ctx = server.ctx.clone();
    // The engine on a controllable clock (its schedule), over the server's own context.
    let clock = ManualClock::at(SystemClock.now_ms());
    let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());
    let outbox = Arc::new(Outbox::new(
        ctx.store.clone(),
        ctx.config.notify.build().unwrap(),
        clock_dyn.clone(),
        OutboxSettings::default(),
    ));
    let monitors = ctx
        .config
        .monitors
        .iter()
        .map(|m| kinds::engine_monitor(ctx.clone(), m))
        .collect();
    let mut engine = Engine::new(ctx.store.clone(), clock_dyn, "test", monitors, outbox, 30)
        .unwrap()
        .with_metrics(ctx.metrics.clone());

    // A burst from 127.0.0.2: one run fires, its notification is delivered.
    for _ in 0..4 {
        assert_eq!(wrong_token(&client_from(2), &server.url()).await, 401);
    }
    let report = engine.scheduler().tick();
    assert_eq!(report.started, ["guard"], "{report:?}");
    engine.scheduler().wait_idle().await;
    let round = engine.outbox().deliver_due().await.unwrap();
    assert_eq!(round.delivered, 1, "{round:?}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    assert_eq!(
        body["alerts"][0]["labels"]["alertname"], "auth_failure_burst",
        "{body:#}"
    );
    assert_eq!(body["alerts"][0]["labels"]["remote"], "127.0.0.2");
    // Signed with the configured secret (the secret itself never travels).
    let sig = got[0].header("x-secops-signature").expect("signed");
    assert!(!sig.contains(hmac));

    // A second burst from 127.0.0.3 a minute later: the receiver answers 503, so its
    // notification is pending for a retry.
    for _ in 0..4 {
        assert_eq!(wrong_token(&client_from(3), &server.url()).await, 401);
    }
    clock.advance(Duration::from_secs(61));
    let report = engine.scheduler().tick();
    assert_eq!(report.started, ["guard"], "{report:?}");
    engine.scheduler().wait_idle().await;
    let round = engine.outbox().deliver_due().await.unwrap();
    assert_eq!(round.retried, 1, "{round:?}");

    let r = client_from(1)
        .get(format!("http://{}/metrics", server.addr))
        .bearer_auth(TEST_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    for line in [
        r#"secops_mcp_monitor_runs_total{monitor="guard",outcome="problems"} 2"#,
        r#"secops_mcp_monitor_run_duration_seconds_count{monitor="guard"} 2"#,
        r#"secops_mcp_alerts{level="warning",state="firing"} 2"#,
        r#"secops_mcp_alerts{level="critical",state="firing"} 0"#,
        r#"secops_mcp_notifications{channel="ops",state="delivered"} 1"#,
        r#"secops_mcp_notifications{channel="ops",state="pending"} 1"#,
        r#"secops_mcp_notifications{channel="ops",state="dead"} 0"#,
        r#"secops_mcp_notifications{channel="log",state="pending"} 0"#,
        r#"secops_mcp_notifications_sent_total{channel="ops",outcome="delivered"} 1"#,
        r#"secops_mcp_notifications_sent_total{channel="ops",outcome="retry"} 1"#,
        r#"secops_mcp_notification_oldest_pending_age_seconds{channel="ops"} "#,
        r#"secops_mcp_notification_oldest_pending_age_seconds{channel="log"} 0"#,
        r#"secops_mcp_http_refused_total{reason="unauthorized"} 8"#,
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
    // Neither the webhook's URL (its address, its path) nor the HMAC secret.
    let authority = hook_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for secret in ["T0k3n-S3cret", "/hook/", hmac, &authority, TEST_TOKEN] {
        assert!(!text.contains(secret), "{secret} in the scrape:\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_http_runs_the_self_monitor_a_guessing_burst_reaches_the_webhook_and_metrics() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sink = Sink::start(vec![]).await;
    let hook_url = sink.url("/hook/T0k3n-S3cret");
    let hmac = "hmac-S3cret-value-0123456789";
    let scratch = Scratch::new();
    let tokens = scratch.write("tokens", &format!("{TEST_TOKEN} alice\n"));
    // Exactly the 25 guesses below make the burst, so the alert says 25 whenever it runs.
    let config = scratch.write(
        "secops.toml",
        "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS_HOOK_URL\"\n\
         hmac_secret_env = \"OPS_HOOK_HMAC\"\n\
         [routing]\nwarning = [\"ops\"]\ncritical = [\"ops\"]\n\
         [[monitors]]\nname = \"guard\"\nkind = \"self\"\nevery = \"1s\"\nauth_failures = 25\n\
         group_wait = \"0s\"\n",
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--http",
            "127.0.0.1:0",
        ])
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .env("SECOPS_HTTP_TOKENS_FILE", &tokens)
        .env("OPS_HOOK_URL", &hook_url)
        .env("OPS_HOOK_HMAC", hmac)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("server starts")
            .unwrap()
            .expect("stderr open");
        if let Some(u) = line.strip_prefix("secops-mcp listening on ") {
            break u.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let guesser = client_from(1);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(wrong_token(&guesser, &url).await);
    }
    // (The throttle's budget refills one guess every 3 s, so a slow machine may see a
    // 401 among the 429s.)
    assert_eq!(&statuses[..20], &[401; 20], "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)) && statuses.contains(&429),
        "{statuses:?}"
    );

    let got = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1, "one burst, one notification");
    let body = got[0].json();
    let alert = &body["alerts"][0];
    assert_eq!(
        alert["labels"]["alertname"], "auth_failure_burst",
        "{body:#}"
    );
    assert_eq!(alert["labels"]["remote"], "127.0.0.1", "{body:#}");
    assert_eq!(alert["labels"]["severity"], "warning", "{body:#}");
    assert_eq!(alert["annotations"]["value"], "25 in 5m", "{body:#}");

    // The guessing address is throttled: scrape from another one, until the delivery is
    // recorded.
    let scraper = client_from(2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let r = scraper
            .get(url.replace("/mcp", "/metrics"))
            .bearer_auth(TEST_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        if text.contains(r#"secops_mcp_notifications{channel="ops",state="delivered"} 1"#) {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery is not in the scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for line in [
        r#"secops_mcp_monitor_runs_total{monitor="guard",outcome="problems"} "#,
        r#"secops_mcp_monitor_run_duration_seconds_count{monitor="guard"} "#,
        r#"secops_mcp_alerts{level="warning",state="firing"} 1"#,
        r#"secops_mcp_notifications_sent_total{channel="ops",outcome="delivered"} 1"#,
        r#"secops_mcp_notifications{channel="ops",state="pending"} 0"#,
        r#"secops_mcp_notification_oldest_pending_age_seconds{channel="ops"} 0"#,
        r#"secops_mcp_http_refused_total{reason="auth_throttled"} "#,
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
    let authority = hook_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for secret in ["T0k3n-S3cret", "/hook/", hmac, &authority, TEST_TOKEN] {
        assert!(!text.contains(secret), "{secret} in the scrape:\n{text}");
    }
    child.kill().await.unwrap();
}
