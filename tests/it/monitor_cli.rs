//! `secops-mcp monitor` as an operator runs it (a child process on a scratch state
//! directory): `--once` as a monitoring plugin (table, exit 0/2/3); kill -9 with
//! notifications pending, restarted on the same state: nothing lost, no second "firing"
//! for an alert already notified, a resolve pending at the kill delivered after restart;
//! the simulator's daemon stopped and started again through the command (file channel);
//! and the webhook URL and HMAC secret absent from trace logs, CLI output and the database.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::sinks::{Answer, Received, Sink};
use crate::common::{Scratch, SimEnv, server_command};
use tokio::io::AsyncBufReadExt;
use wazuh_sim::SimConfig;

/// An endpoint that answers 200 while `up` holds and 503 otherwise.
async fn endpoint(up: Arc<AtomicBool>) -> String {
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
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/health")
}

/// Run a short command to its end: exit code and stdout + stderr.
async fn run(env: &BTreeMap<String, String>, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), server_command(env, args).output())
        .await
        .expect("the command must finish")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A running `secops-mcp monitor`, its stderr copied into `log` line by line.
struct Running {
    child: tokio::process::Child,
    log: Arc<std::sync::Mutex<String>>,
}

impl Running {
    async fn start(env: &BTreeMap<String, String>) -> Running {
        let mut cmd = server_command(env, &["monitor"]);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn secops-mcp monitor");
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let copy = log.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("secops-mcp monitor: running")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
                let mut l = copy.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        if tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .is_err()
        {
            panic!("monitor did not start: {}", log.lock().unwrap());
        }
        Running { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// kill -9: no shutdown, no flush.
    async fn kill9(mut self) -> String {
        self.child.kill().await.unwrap();
        let _ = self.child.wait().await;
        self.log()
    }
}

/// Poll `f` every 100 ms until it holds, for at most `secs`.
async fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Payloads the sink accepted (answered 200), as (status, dedup key) pairs; the sink's
/// script decides which requests those were, so the test passes the count it answered 503.
fn statuses(got: &[Received]) -> Vec<(String, String)> {
    got.iter()
        .map(|r| {
            (
                r.json()["status"].as_str().unwrap_or("").to_string(),
                r.header("x-secops-dedup-key").unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_once_prints_a_table_and_exits_like_a_monitoring_plugin() {
    let up = Arc::new(AtomicBool::new(true));
    let url = endpoint(up.clone()).await;
    let scratch = Scratch::new();
    let config = scratch.write(
        "secops.toml",
        &format!(
            "[[monitors]]\nname = \"web\"\nkind = \"uptime\"\nurl = \"{url}\"\n\n\
             [[monitors]]\nname = \"off\"\nkind = \"uptime\"\nenabled = false\nurl = \"{url}\"\n"
        ),
    );
    let mut env = scratch.env();
    env.insert("SECOPS_CONFIG".into(), config.to_string_lossy().to_string());
    let (code, out, err) = run(&env, &["monitor", "--once"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("MONITOR") && out.contains("web"), "{out}");
    assert!(
        !out.contains("off "),
        "a disabled monitor is not run: {out}"
    );
    assert!(out.trim_end().ends_with("OK: 1 monitor checked"), "{out}");

    up.store(false, Ordering::SeqCst);
    let (code, out, err) = run(&env, &["monitor", "--once"]).await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("CRITICAL") && out.contains("503"), "{out}");
    let (code, json, _) = run(&env, &["monitor", "--once", "--json"]).await;
    assert_eq!(code, Some(2));
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["monitor"], "web");
    assert_eq!(rows[0]["outcome"], "problems");
    assert_eq!(rows[0]["level"], "critical");
    // --once changes no alert: nothing fired (the threshold is 3 anyway) and nothing sent.
    let (code, list, _) = run(&env, &["alerts", "list", "--json"]).await;
    assert_eq!(code, Some(0), "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["firing"], serde_json::json!({}), "{list}");
    assert_eq!(list["pending"], serde_json::json!([]), "{list}");
    // Each probe went into the uptime history: one up, two down.
    let web = &list["monitors"][0];
    assert_eq!(web["name"], "web", "{list}");
    assert_eq!(web["schedule"], "every 1m", "{list}");
    assert!(web["next_run"].is_string(), "{list}");
    let day = &web["uptime"]["last_24h"];
    assert_eq!(
        (day["samples"].as_u64(), day["up"].as_u64()),
        (Some(3), Some(1)),
        "{list}"
    );
    assert_eq!(day["uptime_percent"], 33.33, "{list}");
    assert!(day["p95_ms"].is_u64(), "{list}");
    assert_eq!(web["uptime"]["last_7d"], *day);
    let off = &list["monitors"][1];
    assert_eq!(
        (off["name"].as_str(), off["enabled"].as_bool()),
        (Some("off"), Some(false))
    );
    assert!(
        off["next_run"].is_null(),
        "a disabled monitor has no next run: {list}"
    );

    // Bad alert ids are usage errors naming the argument; an unknown one is refused.
    let (code, _, err) = run(&env, &["alerts", "show", "nope"]).await;
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("alert_id"), "{err}");
    let (code, _, err) = run(&env, &["alerts", "ack", "ALR-999"]).await;
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("no alert ALR-999"), "{err}");
    let (code, _, err) = run(&env, &["alerts", "list", "--since", "yesterday"]).await;
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("since"), "{err}");

    // A monitor that cannot run (no indexer configured) is UNKNOWN: exit 3.
    let cfg3 = scratch.write(
        "unknown.toml",
        "[[monitors]]\nname = \"events\"\nkind = \"security_events\"\n",
    );
    env.insert("SECOPS_CONFIG".into(), cfg3.to_string_lossy().to_string());
    let (code, out, _) = run(&env, &["monitor", "--once"]).await;
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("UNKNOWN") && out.contains("indexer"), "{out}");

    // No monitor at all: a configuration error, saying what to do.
    env.remove("SECOPS_CONFIG");
    let (code, _, err) = run(&env, &["monitor"]).await;
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("[[monitors]]"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_notifications_pending_loses_none_and_repeats_no_firing() {
    let up = Arc::new(AtomicBool::new(false));
    let url = endpoint(up.clone()).await;
    // The receiver is down (503) until the test says otherwise.
    let sink = Sink::start(vec![]).await;
    sink.set_default(Answer::status(503));
    let scratch = Scratch::new();
    let config = scratch.write(
        "secops.toml",
        &format!(
            "[[monitors]]\nname = \"web\"\nkind = \"uptime\"\nevery = \"1s\"\nurl = \"{url}\"\n\
             failure_threshold = 1\nsuccess_threshold = 1\ngroup_wait = \"0s\"\n\n\
             [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n\n\
             [routing]\ncritical = [\"hook\"]\nwarning = [\"hook\"]\n"
        ),
    );
    let mut env = scratch.env();
    env.insert("SECOPS_CONFIG".into(), config.to_string_lossy().to_string());
    env.insert("HOOK_URL".into(), sink.url("/hook"));

    // 1. The endpoint is down: the alert fires; its notification is refused (503) and
    //    stays pending; kill -9.
    let m = Running::start(&env).await;
    until(30, "a first delivery attempt", || {
        !sink.received().is_empty()
    })
    .await;
    let log = m.kill9().await;
    let tried = sink.received();
    assert!(
        statuses(&tried).iter().all(|(s, _)| s == "firing"),
        "{tried:?}"
    );
    let firing_key = statuses(&tried)[0].1.clone();
    assert!(!firing_key.is_empty(), "{log}");

    // 2. Restart on the same state with the receiver up: the pending firing is delivered
    //    (same dedup key), and the alert, already firing, is not announced again.
    sink.set_default(Answer::ok());
    let before = sink.received().len();
    let m = Running::start(&env).await;
    until(30, "the pending firing delivered", || {
        sink.received().len() > before
    })
    .await;
    // Several more runs of the monitor (every second) while still down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = statuses(&sink.received());
    assert!(
        got.iter().all(|(s, k)| s == "firing" && *k == firing_key),
        "only the one episode's firing, redelivered with its key: {got:?}"
    );
    let delivered_after_restart = got.len() - before;
    assert_eq!(
        delivered_after_restart, 1,
        "the firing is delivered once after the restart, not re-announced: {got:?}"
    );

    // 3. The receiver goes down again, the endpoint recovers: the resolve is pending;
    //    kill -9 before it can be delivered.
    sink.set_default(Answer::status(503));
    let before = sink.received().len();
    up.store(true, Ordering::SeqCst);
    until(30, "a resolve attempt", || {
        statuses(&sink.received()[before..])
            .iter()
            .any(|(s, _)| s == "resolved")
    })
    .await;
    m.kill9().await;

    // 4. Restart with the receiver up: the resolve is delivered, nothing fires.
    sink.set_default(Answer::ok());
    let before = sink.received().len();
    let m = Running::start(&env).await;
    until(30, "the pending resolve delivered", || {
        sink.received().len() > before
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = statuses(&sink.received()[before..]);
    assert_eq!(
        after,
        vec![("resolved".to_string(), firing_key.clone())],
        "one resolve, same episode key, no new firing"
    );
    drop(m);

    // The store agrees: one alert, resolved, every notification delivered.
    let (code, list, _) = run(&env, &["alerts", "list", "--json"]).await;
    assert_eq!(code, Some(0), "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["firing"], serde_json::json!({}), "{list}");
    let resolved = list["recently_resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 1, "{list}");
    let hook = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "hook")
        .unwrap();
    assert_eq!(hook["pending"], 0, "{list}");
    assert_eq!(hook["failed"], 0, "{list}");
    assert_eq!(hook["delivered"], 2, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_wazuh_daemon_fires_and_its_restart_resolves_through_the_monitor_command() {
    let s = SimEnv::start(SimConfig::default()).await;
    let out = s.scratch.path().join("alerts.jsonl");
    let config = s.scratch.write(
        "secops.toml",
        &format!(
            "[[monitors]]\nname = \"wazuh\"\nkind = \"wazuh\"\nevery = \"1s\"\n\
             include = [\"manager\"]\ngroup_wait = \"0s\"\n\n\
             [[channels]]\nname = \"jsonl\"\nkind = \"file\"\npath = \"{}\"\n\n\
             [routing]\ncritical = [\"jsonl\"]\nwarning = [\"jsonl\"]\ninfo = [\"jsonl\"]\n",
            out.display()
        ),
    );
    let env = s.child_env(
        &s.vars(),
        &[("SECOPS_CONFIG", config.to_string_lossy().as_ref())],
    );
    let lines = |path: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let about_analysisd = |v: &serde_json::Value, status: &str| {
        v["kind"] == status
            && v["alerts"].as_array().is_some_and(|a| {
                a.iter().any(|a| {
                    a["code"] == "daemon_stopped" && a["labels"]["daemon"] == "wazuh-analysisd"
                })
            })
    };

    let m = Running::start(&env).await;
    // Runs happen and nothing about the daemon is said while it runs.
    until(30, "two monitor runs", || {
        m.log().matches("monitor run finished").count() >= 2
    })
    .await;
    assert!(!lines(&out).iter().any(|v| about_analysisd(v, "firing")));

    assert!(s.sim.faults().stop_daemon("wazuh-analysisd"));
    until(30, "the daemon_stopped firing in the file", || {
        lines(&out).iter().any(|v| about_analysisd(v, "firing"))
    })
    .await;
    s.sim.faults().start_daemon("wazuh-analysisd");
    until(30, "the daemon_stopped resolve in the file", || {
        lines(&out).iter().any(|v| about_analysisd(v, "resolved"))
    })
    .await;
    let all = lines(&out);
    assert_eq!(
        all.iter().filter(|v| about_analysisd(v, "firing")).count(),
        1,
        "one firing notification: {all:?}"
    );
    let fired = all.iter().find(|v| about_analysisd(v, "firing")).unwrap();
    let alert = fired["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "daemon_stopped")
        .unwrap();
    assert_eq!(alert["level"], "critical", "{fired}");
    drop(m);

    // And the CLI shows the alert with its timeline.
    let (code, list, _) = run(&env, &["alerts", "list", "--json"]).await;
    assert_eq!(code, Some(0), "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let resolved = list["recently_resolved"].as_array().unwrap();
    let a = resolved
        .iter()
        .find(|a| a["code"] == "daemon_stopped")
        .expect("the daemon alert resolved");
    let id = a["id"].as_str().unwrap();
    let (code, show, _) = run(&env, &["alerts", "show", id]).await;
    assert_eq!(code, Some(0), "{show}");
    for kind in ["firing", "resolved", "notification"] {
        assert!(show.contains(kind), "{kind} missing: {show}");
    }
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_url_and_hmac_secret_stay_out_of_trace_logs_cli_output_and_the_database() {
    const URL_SECRET: &str = "T0k3nInTheUrlPath-9f2c";
    const HMAC: &str = "hmac-S3cret-Value-77a1";
    let up = Arc::new(AtomicBool::new(false));
    let url = endpoint(up.clone()).await;
    let sink = Sink::start(vec![Answer::status(500)]).await;
    let scratch = Scratch::new();
    let hmac_file = scratch.write("hmac", HMAC);
    let config = scratch.write(
        "secops.toml",
        &format!(
            "log_level = \"trace\"\n\n\
             [[monitors]]\nname = \"web\"\nkind = \"uptime\"\nevery = \"1s\"\nurl = \"{url}\"\n\
             failure_threshold = 1\ngroup_wait = \"0s\"\n\n\
             [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n\
             hmac_secret_file = \"{}\"\n\n[routing]\ncritical = [\"hook\"]\n",
            hmac_file.display()
        ),
    );
    let mut env = scratch.env();
    env.insert("SECOPS_CONFIG".into(), config.to_string_lossy().to_string());
    env.insert("HOOK_URL".into(), sink.url(&format!("/hook/{URL_SECRET}")));

    let m = Running::start(&env).await;
    // One refused attempt (500), then a delivery.
    until(30, "two deliveries", || sink.received().len() >= 2).await;
    up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = m.kill9().await;
    assert!(log.contains("TRACE"), "the log ran at trace level");
    let mut said = vec![("trace log".to_string(), log)];
    for args in [
        &["alerts", "list", "--json"][..],
        &["alerts", "list"],
        &["alerts", "show", "ALR-1"],
        &["alerts", "show", "ALR-1", "--json"],
        &["config", "check"],
        &["channels", "list"],
    ] {
        let (_, out, err) = run(&env, args).await;
        said.push((args.join(" "), out + &err));
    }
    let state = scratch.state_dir();
    for entry in std::fs::read_dir(&state).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            said.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).to_string(),
            ));
        }
    }
    assert!(
        said.iter()
            .any(|(w, s)| w.ends_with(".db") || s.contains("ALR-1")),
        "the database was read: {:?}",
        said.iter().map(|(w, _)| w).collect::<Vec<_>>()
    );
    for (what, text) in &said {
        for secret in [URL_SECRET, HMAC, "/hook/"] {
            assert!(!text.contains(secret), "{secret} in {what}");
        }
    }
    // The notification really was signed with the secret (so it was in use).
    let got = sink.received();
    let sig = got[1].header("x-secops-signature").expect("signed");
    assert!(sig.starts_with("sha256="), "{sig}");
}

/// `serve --demo` on a fresh machine: demo monitors run by themselves and their alerts
/// show in alert_status and secops://alerts/firing, with no configuration at all.
#[cfg(feature = "demo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_runs_demo_monitors_whose_alerts_appear_without_setup() {
    use crate::common::mcp::{Era, call, stdio_client_args};
    let scratch = Scratch::new();
    let client = stdio_client_args(&scratch.env(), &["serve", "--demo"], Era::Legacy).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let report = loop {
        let r = call(&client, "alert_status", serde_json::json!({})).await;
        let report = r.structured_content.expect("alert_status report");
        // Finished runs (a run in progress has a last_run but no outcome yet).
        let ran = report["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["last_outcome"].is_string())
            .count();
        // The seeded day holds a level-15 exploit: an emergency incident alert.
        let emergency = report["firing"]["emergency"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["code"] == "incident_open"));
        if ran >= 4 && emergency {
            break report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no demo alerts: {report:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let names: Vec<&str> = report["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for m in [
        "demo-wazuh",
        "demo-security-events",
        "demo-certificates",
        "demo-self",
    ] {
        assert!(names.contains(&m), "{m} missing: {names:?}");
    }
    let res = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "secops://alerts/firing",
        ))
        .await
        .unwrap();
    let text = match &res.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("{other:?}"),
    };
    let firing: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(firing["count"].as_u64().unwrap() >= 1, "{firing}");
    assert_eq!(
        firing["firing"][0]["level"], "emergency",
        "most severe first: {firing}"
    );
    client.cancel().await.unwrap();
}
