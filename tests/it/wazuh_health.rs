//! wazuh_health end to end: the real server (in-process over HTTP, or the binary over stdio)
//! against the built-in Wazuh simulator over HTTPS with its own CA, through rmcp's client.
//! Each fault knob gives its finding and verdict; token expiry and 429s are survived; a dead
//! manager is `unreachable` promptly; secrets never reach output or logs.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use wazuh_sim::SimConfig;

const WAZUH_COMPONENTS: [&str; 6] = [
    "manager",
    "cluster",
    "agents",
    "indexer",
    "logs",
    "certificates",
];

async fn setup(cfg: SimConfig) -> SimEnv {
    SimEnv::start(cfg).await
}

/// Manager and indexer with a 3 s health timeout, minus `drop_keys`.
fn vars(s: &SimEnv, drop_keys: &[&str]) -> Vec<(String, String)> {
    let mut v = s.vars();
    v.push(("SECOPS_HEALTH_TIMEOUT_MS".into(), "3000".into()));
    v.retain(|(k, _)| !drop_keys.contains(&k.as_str()));
    v
}

async fn start_server(s: &SimEnv, toml: &str, drop_keys: &[&str]) -> HttpHarness {
    s.http(toml, &vars(s, drop_keys), &[]).await
}

async fn health<S: rmcp::service::Service<rmcp::RoleClient>>(
    client: &rmcp::service::RunningService<rmcp::RoleClient, S>,
    include: &[&str],
) -> Value {
    let r = call(client, "wazuh_health", json!({ "include": include })).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    r.structured_content.expect("structured content")
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Tolerant thresholds so the seeded state (a few disconnected agents) reads as healthy.
const CALM: &str = "[health]\ndisconnected_warn_percent = 50\n";
const NO_LOGS: [&str; 5] = ["manager", "cluster", "agents", "indexer", "certificates"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_platform_reads_healthy_with_every_section_filled() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(&s, CALM, &[]).await;
    for era in ERAS {
        let client = server.client(era).await;
        let r = health(&client, &NO_LOGS).await;
        assert_eq!(r["status"], json!("healthy"), "{era:?}: {r:#}");
        let m = &r["manager"];
        assert_eq!(m["reachable"], json!(true));
        assert_eq!(m["configuration_valid"], json!(true));
        assert_eq!(m["daemons"]["wazuh-analysisd"], json!("running"));
        assert_eq!(m["daemons"]["wazuh-maild"], json!("stopped"));
        assert!(m["api_version"].as_str().unwrap().starts_with('4'));
        assert!(m["latency_ms"].as_u64().is_some());
        assert_eq!(r["indexer"]["status"], json!("green"));
        assert_eq!(r["indexer"]["unassigned_shards"], json!(0));
        let a = &r["agents"];
        let sum = ["active", "disconnected", "never_connected", "pending"]
            .iter()
            .map(|k| a[k].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(sum, a["total"].as_u64().unwrap());
        assert!(a["total"].as_u64().unwrap() >= 15);
        assert_eq!(
            a["disconnected_agents"].as_array().unwrap().len() as u64,
            a["disconnected"].as_u64().unwrap()
        );
        assert_eq!(r["cluster"]["enabled"], json!(true));
        assert!(!r["cluster"]["nodes"].as_array().unwrap().is_empty());
        let certs = r["certificates"]["certificates"].as_array().unwrap();
        assert_eq!(certs.len(), 2);
        for c in certs {
            assert_eq!(c["status"], json!("ok"), "{c}");
            assert_eq!(c["chain_valid"], json!(true));
            assert!(c["days_left"].as_i64().unwrap() > 300);
        }
        assert!(!r.to_string().contains("not_configured"));
        client.cancel().await.unwrap();
    }
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_gives_its_finding_and_verdict() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(
        &s,
        "[health]\ndisconnected_warn_percent = 50\napi_slow_ms = 250\napi_critical_ms = 5000\n",
        &[],
    )
    .await;
    let client = server.client(Era::Legacy).await;
    let f = s.sim.faults();

    f.stop_daemon("wazuh-analysisd");
    let r = health(&client, &["manager"]).await;
    assert_eq!(r["status"], json!("critical"));
    assert!(codes(&r).contains(&"daemon_stopped".to_string()));
    assert_eq!(r["manager"]["daemons"]["wazuh-analysisd"], json!("stopped"));
    f.start_daemon("wazuh-analysisd");

    f.set_indexer_status("yellow").unwrap();
    let r = health(&client, &["indexer"]).await;
    assert_eq!(r["status"], json!("degraded"), "{r:#}");
    assert_eq!(codes(&r), vec!["indexer_yellow"]);
    assert!(r["indexer"]["unassigned_shards"].as_u64().unwrap() > 0);
    f.set_indexer_status("red").unwrap();
    let r = health(&client, &["indexer"]).await;
    assert_eq!(r["status"], json!("critical"));
    assert_eq!(codes(&r), vec!["indexer_red"]);
    f.set_indexer_status("green").unwrap();

    f.config_invalid(true);
    let r = health(&client, &["manager"]).await;
    assert_eq!(r["status"], json!("critical"));
    assert!(codes(&r).contains(&"config_invalid".to_string()), "{r:#}");
    assert_eq!(r["manager"]["configuration_valid"], json!(false));
    f.config_invalid(false);

    f.set_latency(Duration::from_millis(350));
    let r = health(&client, &["manager"]).await;
    assert!(codes(&r).contains(&"api_slow".to_string()), "{r:#}");
    assert_eq!(r["status"], json!("degraded"));
    f.set_latency(Duration::ZERO);

    f.fail_next(1000);
    let r = health(&client, &["manager", "agents"]).await;
    assert_eq!(
        r["status"],
        json!("critical"),
        "a 500 is not `unreachable`: {r:#}"
    );
    assert!(codes(&r).contains(&"manager_api_error".to_string()));
    assert!(r["agents"]["error"].as_str().unwrap().contains("500"));
    f.fail_next(0);

    f.invalid_json_next(1000);
    let r = health(&client, &["agents"]).await;
    assert!(
        r["agents"]["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"),
        "{r:#}"
    );
    f.invalid_json_next(0);

    // Everything recovers.
    let r = health(&client, &NO_LOGS).await;
    assert_eq!(r["status"], json!("healthy"), "{r:#}");
    client.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

fn sum_of(v: &Value) -> u64 {
    v.as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

fn finding<'a>(report: &'a Value, code: &str) -> Option<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == json!(code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_verdict_is_a_function_of_the_window_not_of_who_asked_last() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(&s, CALM, &[]).await;
    let client = server.client(Era::Legacy).await;
    // The seeded day: errors, and one critical line 19 h ago.
    let first = health(&client, &["logs"]).await;
    let logs = &first["logs"];
    assert!(sum_of(&logs["errors_by_tag"]) > 0, "{first:#}");
    assert_eq!(sum_of(&logs["critical_by_tag"]), 1, "{first:#}");
    assert_eq!(logs["recent_critical"], json!(0));
    assert_eq!(logs["by_level"]["critical"], json!(1));
    assert!(logs["recent"].as_array().unwrap().len() <= 10);
    assert_eq!(
        first["status"],
        json!("degraded"),
        "an old critical is not critical now"
    );
    assert!(finding(&first, "logs_errors").is_some());
    assert!(finding(&first, "logs_critical_earlier").is_some());
    assert!(finding(&first, "logs_critical").is_none());
    // Asked again a second later (by anyone): the same answer.
    let second = health(&client, &["logs"]).await;
    assert_eq!(second["status"], first["status"]);
    assert_eq!(
        second["logs"]["errors_by_tag"],
        first["logs"]["errors_by_tag"]
    );
    assert_eq!(second["logs"]["by_level"], first["logs"]["by_level"]);

    // Two critical lines in the last hour: critical, for every caller, every time.
    for ago in [120, 600] {
        assert!(s.sim.add_log(
            "wazuh-db",
            "critical",
            "(5208): Cannot open database 'global.db'",
            Duration::from_secs(ago),
        ));
    }
    let other = server.client(Era::Stateless).await;
    for c in [&client, &other, &client] {
        let r = health(c, &["logs"]).await;
        assert_eq!(r["status"], json!("critical"), "{r:#}");
        assert_eq!(r["logs"]["recent_critical"], json!(2));
        let f = finding(&r, "logs_critical").expect("logs_critical");
        assert_eq!(f["severity"], json!("critical"));
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .starts_with("2 critical log entries since"),
            "{f}"
        );
    }
    // A narrower window counts less and leaves the 19 h old line out.
    let r = call(
        &client,
        "wazuh_health",
        json!({ "include": ["logs"], "since": "2h" }),
    )
    .await;
    let r = r.structured_content.unwrap();
    assert_eq!(r["logs"]["by_level"]["critical"], json!(2), "{r:#}");
    assert!(sum_of(&r["logs"]["errors_by_tag"]) < sum_of(&first["logs"]["errors_by_tag"]));
    // A bad window names the argument.
    let r = call(
        &client,
        "wazuh_health",
        json!({ "include": ["logs"], "since": "yesterday" }),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("`since`"), "{}", text_of(&r));
    client.cancel().await.unwrap();
    other.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_entries_count_by_their_own_level_when_the_filter_is_ignored() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(&s, CALM, &[]).await;
    let client = server.client(Era::Legacy).await;
    let honest = health(&client, &["logs"]).await;
    // A proxy or an older manager that ignores `level`: every line comes back for both
    // queries, info lines included.
    s.sim.faults().ignore_log_level_filter(true);
    let r = health(&client, &["logs"]).await;
    assert_eq!(r["logs"]["by_level"], honest["logs"]["by_level"], "{r:#}");
    assert_eq!(r["logs"]["errors_by_tag"], honest["logs"]["errors_by_tag"]);
    assert_eq!(
        r["logs"]["critical_by_tag"],
        honest["logs"]["critical_by_tag"]
    );
    assert_ne!(r["status"], json!("critical"), "{r:#}");
    assert!(r["logs"]["ignored_other_level"].as_u64().unwrap() > 0);
    assert!(finding(&r, "logs_level_mismatch").is_some());
    for e in r["logs"]["recent"].as_array().unwrap() {
        let level = e["level"].as_str().unwrap();
        assert!(level == "error" || level == "critical", "{e}");
    }
    client.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_manager_is_slow_not_unreachable() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(
        &s,
        "[health]\ndisconnected_warn_percent = 50\ntimeout_ms = 5000\n",
        &["SECOPS_HEALTH_TIMEOUT_MS"],
    )
    .await;
    let client = server.client(Era::Legacy).await;
    // A loaded production manager: every answer right, after 2.5 s (login included).
    s.sim.faults().set_latency(Duration::from_millis(2500));
    let r = health(&client, &["manager", "cluster", "agents"]).await;
    let m = &r["manager"];
    assert_eq!(m["reachable"], json!(true), "{r:#}");
    let latency = m["latency_ms"].as_u64().expect("latency measured");
    assert!((2400..4500).contains(&latency), "{latency}");
    assert_eq!(m["timed_out"], json!([]), "{r:#}");
    assert_eq!(m["daemons"]["wazuh-analysisd"], json!("running"), "{r:#}");
    assert_eq!(m["configuration_valid"], json!(true));
    let slow = finding(&r, "api_slow").expect("api_slow");
    assert_eq!(slow["severity"], json!("warning"), "{slow}");
    assert!(finding(&r, "manager_unreachable").is_none(), "{r:#}");
    assert!(r["agents"]["error"].is_null(), "{r:#}");
    assert!(r["agents"]["total"].as_u64().unwrap() > 0);
    assert!(r["cluster"]["error"].is_null(), "{r:#}");
    assert_eq!(r["status"], json!("degraded"), "{r:#}");

    // Slower than one request's timeout: what answered is reported, and which part did not.
    drop(client);
    let server2 = start_server(&s,
            "[health]\ndisconnected_warn_percent = 50\ntimeout_ms = 1500\napi_slow_ms = 500\napi_critical_ms = 1400\n",
            &["SECOPS_HEALTH_TIMEOUT_MS"],
        )
        .await;
    let client = server2.client(Era::Legacy).await;
    s.sim.faults().set_latency(Duration::from_millis(1000));
    let r = health(&client, &["manager"]).await;
    assert_eq!(r["manager"]["reachable"], json!(true), "{r:#}");
    let latency = r["manager"]["latency_ms"].as_u64().expect("latency");
    assert!((900..1500).contains(&latency), "{latency}");
    assert_eq!(
        finding(&r, "api_slow").unwrap()["severity"],
        json!("warning")
    );
    assert_ne!(r["status"], json!("unreachable"), "{r:#}");
    client.cancel().await.unwrap();
    server.stop().await;
    server2.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_mid_session_is_survived() {
    let s = setup(SimConfig {
        token_ttl_secs: 2,
        ..SimConfig::default()
    })
    .await;
    let server = start_server(&s, CALM, &[]).await;
    let client = server.client(Era::Legacy).await;
    let r = health(&client, &["manager", "agents"]).await;
    assert_eq!(r["manager"]["reachable"], json!(true));
    // Revoked tokens: the client logs in again once and carries on.
    s.sim.faults().expire_tokens();
    let r = health(&client, &["manager", "agents"]).await;
    assert_eq!(r["status"], json!("healthy"), "{r:#}");
    // Natural expiry (2 s lifetime).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = health(&client, &["manager", "agents"]).await;
    assert_eq!(r["status"], json!("healthy"), "{r:#}");
    assert!(r["agents"]["error"].is_null());
    client.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_survived_with_backoff() {
    let s = setup(SimConfig::default()).await;
    // Wazuh counts per 60 s; a 2 s window lets the test see it reset.
    s.sim.faults().set_rate_window(Duration::from_secs(2));
    s.sim.faults().set_rate_limit(6);
    let server = start_server(&s, CALM, &[("SECOPS_HEALTH_TIMEOUT_MS")]).await;
    // A client that shows the server's log messages (the MCP Inspector's log pane).
    let notes = Recorder::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            server.url(),
        )
        .auth_header(TEST_TOKEN),
    );
    use rmcp::ServiceExt;
    let client = notes.clone().serve(transport).await.expect("initialize");
    let before = s.sim.request_count();
    let started = Instant::now();
    let r = health(&client, &["manager", "cluster", "agents"]).await;
    let sent = s.sim.request_count() - before;
    assert!(r["manager"]["error"].is_null(), "{r:#}");
    assert!(r["agents"]["error"].is_null(), "{r:#}");
    assert!(r["cluster"]["error"].is_null(), "{r:#}");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "must have backed off"
    );
    // About 10 requests are needed; a client that retried blindly would send many more.
    assert!(sent <= 25, "sent {sent} requests");
    // The backoff was told to the client as it happened (a warning: sent by default),
    // without any secret.
    let logged = notes.logs();
    assert!(
        logged
            .iter()
            .any(|(l, m)| l == "wazuh" && m.contains("Wazuh rate limit reached (429)")),
        "{logged:?}"
    );
    let c = s.sim.config();
    for (_, m) in &logged {
        assert!(!m.contains(&c.api_password) && !m.contains("eyJ"), "{m}");
    }
    client.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_manager_is_unreachable_within_the_timeout() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(
        &s,
        "[health]\ntimeout_ms = 800\n",
        &["SECOPS_HEALTH_TIMEOUT_MS"],
    )
    .await;
    let client = server.client(Era::Legacy).await;
    s.sim.faults().manager_hang(true);
    let started = Instant::now();
    let r = health(&client, &WAZUH_COMPONENTS).await;
    assert_eq!(r["status"], json!("unreachable"), "{r:#}");
    assert_eq!(r["manager"]["reachable"], json!(false));
    assert!(codes(&r).contains(&"manager_unreachable".to_string()));
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    s.sim.faults().manager_hang(false);

    s.sim.faults().manager_down(true);
    let started = Instant::now();
    let r = health(&client, &["manager"]).await;
    assert_eq!(r["status"], json!("unreachable"), "{r:#}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    s.sim.faults().manager_down(false);
    client.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_indexer_is_not_configured_and_missing_wazuh_too() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(&s, CALM, &["SECOPS_INDEXER_URL", "SECOPS_INDEXER_PASSWORD"]).await;
    let client = server.client(Era::Stateless).await;
    let r = health(&client, &NO_LOGS).await;
    assert_eq!(r["indexer"]["check"], json!("not_configured"));
    assert!(
        r["indexer"]["error"]
            .as_str()
            .unwrap()
            .contains("SECOPS_INDEXER_URL")
    );
    assert_eq!(r["status"], json!("healthy"), "{r:#}");
    assert_eq!(
        r["certificates"]["certificates"].as_array().unwrap().len(),
        1
    );
    client.cancel().await.unwrap();
    server.stop().await;

    let bare = Scratch::new();
    let server = HttpHarness::start(&bare, "", &[]).await;
    let client = server.client(Era::Legacy).await;
    let r = health(&client, &WAZUH_COMPONENTS).await;
    assert_eq!(r["status"], json!("not_configured"));
    assert!(
        r["manager"]["error"]
            .as_str()
            .unwrap()
            .contains("SECOPS_WAZUH_URL")
    );
    client.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_run_concurrently() {
    let s = setup(SimConfig::default()).await;
    let server = start_server(&s, CALM, &[]).await;
    let client = server.client(Era::Legacy).await;
    health(&client, &["manager"]).await; // log in first
    s.sim.faults().set_latency(Duration::from_millis(400));
    s.sim
        .faults()
        .set_indexer_latency(Duration::from_millis(400));
    let before = s.sim.request_count();
    let r = health(&client, &NO_LOGS).await;
    let requests = s.sim.request_count() - before;
    let took = r["duration_ms"].as_u64().unwrap();
    // One after another this would take at least requests x 400 ms.
    assert!(requests >= 7, "{requests}");
    assert!(
        took < requests * 400 / 2,
        "{took} ms for {requests} requests of 400 ms each: not concurrent"
    );
    client.cancel().await.unwrap();
    server.stop().await;
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wazuh_secrets_never_reach_output_or_logs() {
    let s = setup(SimConfig::default()).await;
    let env = s.child_env(&vars(&s, &[]), &[("SECOPS_LOG", "trace")]);
    let log_file = s.scratch.path().join("server.log");
    let client = stdio_client_logging(&env, &log_file).await;
    let r = call(&client, "wazuh_health", json!({})).await;
    let out = serde_json::to_string(&r).unwrap();
    s.sim.faults().expire_tokens();
    let r2 = call(
        &client,
        "wazuh_health",
        json!({ "include": ["manager", "agents"] }),
    )
    .await;
    let out = out + &serde_json::to_string(&r2).unwrap();
    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(log.contains("tool call"), "the log was captured");
    let c = s.sim.config();
    for secret in [c.api_password.as_str(), c.indexer_password.as_str()] {
        assert!(!out.contains(secret), "password in tool output");
        assert!(!log.contains(secret), "password in the log");
    }
    // JWTs start with the base64 of `{"`.
    assert!(!out.contains("eyJ"), "token in tool output");
    assert!(!log.contains("eyJ"), "token in the log");
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_runs_against_the_built_in_simulator() {
    let scratch = Scratch::new();
    let client = stdio_client_args(&scratch.env(), &["serve", "--demo"], Era::Legacy).await;
    let r = call(
        &client,
        "wazuh_health",
        json!({ "include": ["manager", "agents", "indexer"] }),
    )
    .await;
    let sc = r.structured_content.expect("report");
    assert_ne!(sc["status"], json!("not_configured"), "{sc:#}");
    assert_ne!(sc["status"], json!("unreachable"), "{sc:#}");
    assert_eq!(sc["manager"]["reachable"], json!(true));
    assert_eq!(sc["indexer"]["status"], json!("green"));
    assert!(sc["agents"]["total"].as_u64().unwrap() > 0);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_health_cli_reports_and_exits_by_verdict() {
    let scratch = Scratch::new();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
            .args([
                "check",
                "health",
                "--demo",
                "--json",
                "--include",
                "manager",
                "--include",
                "indexer",
            ])
            .env("SECOPS_STATE_DIR", scratch.state_dir())
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("check health must finish")
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report on stdout");
    assert_eq!(report["manager"]["reachable"], json!(true));
    assert_eq!(report["status"], json!("healthy"), "{report:#}");
    assert_eq!(out.status.code(), Some(0));
    // Not configured, no demo: exit code 3 and a readable reason.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
        .args(["check", "health", "--include", "manager"])
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .env_remove("SECOPS_WAZUH_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not configured"));
    // A bad component name is a usage error naming the argument.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
        .args(["check", "health", "--include", "kernel"])
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`include`"));
}
