//! Real `observe()` runs of the monitor kinds, each from a `[[monitors]]` entry parsed as
//! `serve` parses it: uptime against a local HTTP server, certificates against local TLS
//! servers under a test CA, wazuh against the simulator with a stopped daemon, and
//! connections against a real loopback connection.

use std::sync::Arc;

use crate::common::tls::{LeafSpec, TlsFixture, serve_chain};
use crate::common::{Scratch, SimEnv};
use secops_mcp::alerts::Level;
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::monitor::kinds::{KindRun, observe};
use tokio::net::{TcpListener, TcpStream};
use wazuh_sim::SimConfig;

fn context(scratch: &Scratch, toml: &str, vars: &[(String, String)]) -> Arc<AppContext> {
    let mut env = scratch.env();
    env.extend(vars.iter().cloned());
    let config = Config::from_toml_str(toml, &env).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    AppContext::new(config, false).expect("context")
}

async fn run(ctx: &AppContext, i: usize) -> KindRun {
    observe(
        ctx,
        &ctx.config.monitors[i].name,
        &ctx.config.monitors[i].settings,
    )
    .await
    .unwrap_or_else(|e| panic!("monitor {i}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uptime_up_and_down_endpoints() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/ok", get(|| async { "all systems nominal" }))
        .route(
            "/fail",
            get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        &format!(
            "[[monitors]]\nname = \"up\"\nkind = \"uptime\"\nurl = \"http://{addr}/ok\"\n\
             body_contains = \"nominal\"\n\
             [[monitors]]\nname = \"down\"\nkind = \"uptime\"\nurl = \"http://{addr}/fail\"\n\
             timeout_ms = 3000\n"
        ),
        &[],
    );
    let up = run(&ctx, 0).await;
    assert!(up.complete);
    assert!(!up.observations.is_empty(), "{up:?}");
    assert!(up.observations.iter().all(|o| o.level.is_none()), "{up:?}");
    let down = run(&ctx, 1).await;
    let bad: Vec<_> = down
        .observations
        .iter()
        .filter(|o| o.level.is_some())
        .collect();
    assert_eq!(bad.len(), 1, "{down:?}");
    assert_eq!(bad[0].level, Some(Level::Critical));
    assert!(bad[0].summary.contains("500"), "{:?}", bad[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_alert_only_for_the_expiring_target() {
    let pki = TlsFixture::new();
    let good = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(200));
    let soon = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(5));
    let good_server = serve_chain(good.full_chain(), good.key.clone()).await;
    let soon_server = serve_chain(soon.full_chain(), soon.key.clone()).await;
    let ca = pki.root_ca_file();
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        &format!(
            "[tls]\nextra_ca_file = \"{}\"\n[[monitors]]\nname = \"certs\"\nkind = \"certificates\"\n\
             targets = [\"{}\", \"{}\"]\n",
            ca.path().display(),
            good_server.target(),
            soon_server.target()
        ),
        &[],
    );
    let r = run(&ctx, 0).await;
    assert!(r.complete);
    assert_eq!(r.observations.len(), 1, "{r:?}");
    let o = &r.observations[0];
    assert_eq!(o.subject["target"], soon_server.target());
    assert_eq!(
        o.level,
        Some(Level::Critical),
        "5 days is inside critical_days 7"
    );
    assert!(o.code.contains("expir"), "{o:?}");
}

/// More targets than one check_cert call takes (100): the run checks every slice and keeps
/// the targets' order. 250 targets, three of them expiring, at positions 0, 120 and 249.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_beyond_one_check_cert_call_checks_every_target_in_order() {
    let pki = TlsFixture::new();
    let good = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(200));
    let soon = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(5));
    let good_server = serve_chain(good.full_chain(), good.key.clone()).await;
    let mut soon_servers = Vec::new();
    for _ in 0..3 {
        soon_servers.push(serve_chain(soon.full_chain(), soon.key.clone()).await);
    }
    let mut targets = vec![good_server.target(); 250];
    for (server, at) in soon_servers.iter().zip([0, 120, 249]) {
        targets[at] = server.target();
    }
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let ca = pki.root_ca_file();
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        &format!(
            "[tls]\nextra_ca_file = \"{}\"\n[[monitors]]\nname = \"certs\"\nkind = \"certificates\"\n\
             targets = [{}]\n",
            ca.path().display(),
            list.join(", ")
        ),
        &[],
    );
    let r = run(&ctx, 0).await;
    assert!(r.complete);
    let seen: Vec<&str> = r
        .observations
        .iter()
        .map(|o| o.subject["target"].as_str())
        .collect();
    let want: Vec<String> = soon_servers.iter().map(|s| s.target()).collect();
    assert_eq!(seen, want, "{r:?}");
    assert!(
        r.observations
            .iter()
            .all(|o| o.level == Some(Level::Critical)),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wazuh_stopped_daemon_is_a_critical_observation_naming_it() {
    let s = SimEnv::start(SimConfig::default()).await;
    let toml = "[[monitors]]\nname = \"wazuh\"\nkind = \"wazuh\"\ninclude = [\"manager\"]\n";
    let ctx = context(&s.scratch, toml, &s.vars());
    let before = run(&ctx, 0).await;
    assert!(before.complete, "{before:?}");
    assert!(
        !before
            .observations
            .iter()
            .any(|o| o.code == "daemon_stopped")
    );

    assert!(s.sim.faults().stop_daemon("wazuh-analysisd"));
    let r = run(&ctx, 0).await;
    let stopped: Vec<_> = r
        .observations
        .iter()
        .filter(|o| o.code == "daemon_stopped")
        .collect();
    assert_eq!(stopped.len(), 1, "{r:?}");
    assert_eq!(stopped[0].subject["daemon"], "wazuh-analysisd");
    assert_eq!(stopped[0].level, Some(Level::Critical));
    assert!(r.complete);

    s.sim.faults().start_daemon("wazuh-analysisd");
    let after = run(&ctx, 0).await;
    assert!(
        !after
            .observations
            .iter()
            .any(|o| o.code == "daemon_stopped"),
        "{after:?}"
    );
    s.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_sees_a_real_loopback_connection_unless_allowed() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (_server_side, _) = l.accept().await.unwrap();
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        &format!(
            "[[monitors]]\nname = \"conn\"\nkind = \"connections\"\nports = [{port}]\n\
             [[monitors]]\nname = \"conn-allowed\"\nkind = \"connections\"\nports = [{port}]\n\
             allow = [\"127.0.0.0/8\"]\n"
        ),
        &[],
    );
    let r = run(&ctx, 0).await;
    assert_eq!(r.observations.len(), 1);
    let o = &r.observations[0];
    assert_eq!(o.code, "unexpected_connection");
    assert_eq!(o.level, Some(Level::Warning), "{o:?}");
    assert!(o.summary.contains(&format!("127.0.0.1:{port}")), "{o:?}");
    let allowed = run(&ctx, 1).await;
    assert_eq!(allowed.observations[0].level, None, "{allowed:?}");
    drop(client);
}

/// A TLS server on one port whose certificate can be replaced between connections.
async fn swappable_tls(
    first: Arc<rustls::ServerConfig>,
) -> (
    std::net::SocketAddr,
    Arc<std::sync::Mutex<Arc<rustls::ServerConfig>>>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let current = Arc::new(std::sync::Mutex::new(first));
    let shared = current.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let config = shared.lock().unwrap().clone();
            tokio::spawn(async move {
                let _ = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await;
            });
        }
    });
    (addr, current)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_resolves_the_alert() {
    use crate::common::tls::server_config;
    use secops_mcp::alerts::lifecycle::evaluate_complete;
    use secops_mcp::clock::SystemClock;

    let pki = TlsFixture::new();
    let old = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(3));
    let renewed = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(90));
    let (addr, current) = swappable_tls(server_config(old.full_chain(), old.key.clone())).await;
    let ca = pki.root_ca_file();
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        &format!(
            "[tls]\nextra_ca_file = \"{}\"\n[[monitors]]\nname = \"certs\"\nkind = \"certificates\"\n\
             targets = [\"{addr}\"]\n",
            ca.path().display()
        ),
        &[],
    );
    let policy = ctx.config.monitors[0].policy();
    let r = run(&ctx, 0).await;
    assert_eq!(r.observations.len(), 1, "{r:?}");
    let e = evaluate_complete(&ctx.store, &SystemClock, &policy, &r.observations).unwrap();
    assert_eq!(e.fired.len(), 1, "{e:?}");

    *current.lock().unwrap() = server_config(renewed.full_chain(), renewed.key.clone());
    let r = run(&ctx, 0).await;
    assert!(r.complete && r.observations.is_empty(), "{r:?}");
    let e = evaluate_complete(&ctx.store, &SystemClock, &policy, &r.observations).unwrap();
    assert_eq!(e.resolved.len(), 1, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_an_injected_burst_goes_over_the_threshold() {
    let s = SimEnv::start(SimConfig {
        seed_alerts: false,
        ..Default::default()
    })
    .await;
    let toml = "[[monitors]]\nname = \"events\"\nkind = \"security_events\"\nmin_level = 5\n\
                threshold_per_minute = 5\nwindow = \"5m\"\n";
    let ctx = context(&s.scratch, toml, &s.indexer_vars());
    let quiet = run(&ctx, 0).await;
    assert!(
        quiet.observations.iter().all(|o| o.level.is_none()),
        "{quiet:?}"
    );

    let now = time::OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    s.sim.inject_alerts(g.ssh_brute_force(
        "203.0.113.9",
        &["001"],
        40,
        now - time::Duration::minutes(4),
    ));
    let r = run(&ctx, 0).await;
    let o = &r.observations[0];
    assert_eq!(o.code, "security_event_rate");
    assert!(o.level >= Some(Level::Warning), "{o:?}");
    assert!(r.complete);
    s.sim.stop().await;
}

/// The incident part: a run ingests the simulator's alerts into incidents itself, an
/// open level-15 incident is an emergency naming the incident, a run while another ingest
/// holds the lock reads the store without waiting, and acknowledging the incident (the
/// real incident_update) ends the alert in the next complete run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_an_open_incident_is_an_alert_until_it_is_acknowledged() {
    use secops_mcp::alerts::lifecycle::{MonitorPolicy, evaluate_complete};
    use secops_mcp::clock::SystemClock;
    let s = SimEnv::start(SimConfig {
        seed_alerts: false,
        ..Default::default()
    })
    .await;
    let toml = "[[monitors]]\nname = \"events\"\nkind = \"security_events\"\n";
    let ctx = context(&s.scratch, toml, &s.indexer_vars());
    let mut policy = MonitorPolicy::new("events");
    policy.group_wait = std::time::Duration::ZERO;
    let incident_alerts = |r: &KindRun| -> Vec<(String, String, Option<Level>)> {
        r.observations
            .iter()
            .filter(|o| o.code.starts_with("incident_"))
            .map(|o| (o.code.clone(), o.subject["incident"].clone(), o.level))
            .collect()
    };
    let quiet = run(&ctx, 0).await;
    assert!(incident_alerts(&quiet).is_empty(), "{quiet:?}");

    let now = time::OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    s.sim
        .inject_alerts(g.level15_attack("198.51.100.66", "002", now - time::Duration::minutes(1)));
    // Another ingest is under way: this run does not wait for it, nor ingest again.
    let held = ctx.ingest_lock.lock().await;
    let busy = tokio::time::timeout(std::time::Duration::from_secs(60), run(&ctx, 0))
        .await
        .expect("a run does not wait for the ingest lock");
    assert!(incident_alerts(&busy).is_empty(), "{busy:?}");
    drop(held);

    let r = run(&ctx, 0).await;
    assert!(r.complete, "{r:?}");
    let open = incident_alerts(&r);
    assert!(
        open.iter().any(|(code, id, level)| code == "incident_open"
            && id.starts_with("INC-")
            && *level == Some(Level::Emergency)),
        "{open:?}"
    );
    let fired = evaluate_complete(&ctx.store, &SystemClock, &policy, &r.observations).unwrap();
    assert_eq!(fired.fired.len(), open.len(), "{fired:?}");

    for (_, id, _) in &open {
        let args: secops_mcp::incidents::UpdateArgs = serde_json::from_value(
            serde_json::json!({"incident_id": id, "action": "acknowledge", "assignee": "bob"}),
        )
        .unwrap();
        secops_mcp::incidents::update::run(&ctx.incident_deps(), "alice", &args)
            .await
            .unwrap();
    }
    let after = run(&ctx, 0).await;
    assert!(incident_alerts(&after).is_empty(), "{after:?}");
    let e = evaluate_complete(&ctx.store, &SystemClock, &policy, &after.observations).unwrap();
    assert_eq!(e.resolved.len(), open.len(), "{e:?}");
    s.sim.stop().await;
}

#[tokio::test]
async fn security_events_without_an_indexer_is_an_error_saying_so() {
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        "[[monitors]]\nname = \"events\"\nkind = \"security_events\"\n",
        &[],
    );
    let e = observe(
        &ctx,
        &ctx.config.monitors[0].name,
        &ctx.config.monitors[0].settings,
    )
    .await
    .unwrap_err();
    assert!(e.contains("indexer"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_reports_a_newly_opened_and_a_closed_port() {
    let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p1 = first.local_addr().unwrap().port();
    let p2 = {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap().port()
    };
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        &format!(
            "[[monitors]]\nname = \"nightly\"\nkind = \"scan\"\ntargets = [\"127.0.0.1\"]\n\
             ports = \"{p1},{p2}\"\n"
        ),
        &[],
    );
    let baseline = run(&ctx, 0).await;
    assert!(
        baseline.observations.is_empty(),
        "no baseline yet: {baseline:?}"
    );

    let second = TcpListener::bind(("127.0.0.1", p2)).await.unwrap();
    let r = run(&ctx, 0).await;
    assert_eq!(r.observations.len(), 1, "{r:?}");
    assert_eq!(r.observations[0].code, "port_opened");
    assert_eq!(r.observations[0].subject["port"], p2.to_string());
    assert!(r.observations[0].level >= Some(Level::Warning));

    drop(first);
    let r = run(&ctx, 0).await;
    let closed: Vec<_> = r
        .observations
        .iter()
        .filter(|o| o.code == "port_closed")
        .collect();
    assert_eq!(closed.len(), 1, "{r:?}");
    assert_eq!(closed[0].subject["port"], p1.to_string());
    assert_eq!(closed[0].level, Some(Level::Info));
    drop(second);
}

/// Observe monitor 0 and put the run through the alert lifecycle, as the engine does.
async fn run_and_evaluate(ctx: &AppContext) -> KindRun {
    use secops_mcp::alerts::lifecycle::evaluate_complete;
    let r = run(ctx, 0).await;
    let policy = ctx.config.monitors[0].policy();
    evaluate_complete(
        &ctx.store,
        &secops_mcp::clock::SystemClock,
        &policy,
        &r.observations,
    )
    .unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_opened_port_keeps_alerting_until_acknowledged_or_closed() {
    use secops_mcp::alerts::AlertState;
    let p1 = {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap().port()
    };
    let p2 = {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap().port()
    };
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        &format!(
            "[[monitors]]\nname = \"nightly\"\nkind = \"scan\"\ntargets = [\"127.0.0.1\"]\n\
             ports = \"{p1},{p2}\"\n"
        ),
        &[],
    );
    assert!(run_and_evaluate(&ctx).await.observations.is_empty());
    let l1 = TcpListener::bind(("127.0.0.1", p1)).await.unwrap();
    let l2 = TcpListener::bind(("127.0.0.1", p2)).await.unwrap();
    let r = run_and_evaluate(&ctx).await;
    assert_eq!(r.observations.len(), 2, "{r:?}");
    let open = |ctx: &AppContext| -> Vec<(String, AlertState)> {
        ctx.store
            .alerts_open()
            .unwrap()
            .into_iter()
            .map(|a| (a.subject["port"].clone(), a.state))
            .collect()
    };
    assert_eq!(open(&ctx).len(), 2);
    assert!(open(&ctx).iter().all(|(_, s)| *s == AlertState::Firing));

    // The baseline now holds both ports; still open and unacknowledged, both keep alerting.
    let r = run_and_evaluate(&ctx).await;
    assert_eq!(r.observations.len(), 2, "carried forward: {r:?}");
    assert_eq!(open(&ctx).len(), 2, "{:?}", open(&ctx));

    // Acknowledged ("expected"): that one resolves; the closed one resolves too.
    let a1 = ctx
        .store
        .alerts_open()
        .unwrap()
        .into_iter()
        .find(|a| a.subject["port"] == p1.to_string())
        .unwrap();
    secops_mcp::alerts::lifecycle::acknowledge(
        &ctx.store,
        &secops_mcp::clock::SystemClock,
        &a1.id(),
        "alice",
        &[],
    )
    .unwrap();
    drop(l2);
    let r = run_and_evaluate(&ctx).await;
    assert!(
        r.observations.iter().all(|o| o.code == "port_closed"),
        "{r:?}"
    );
    let left: Vec<(String, String)> = ctx
        .store
        .alerts_open()
        .unwrap()
        .into_iter()
        .map(|a| (a.code, a.subject["port"].clone()))
        .collect();
    assert_eq!(
        left,
        vec![("port_closed".to_string(), p2.to_string())],
        "both port_opened alerts resolved (acknowledged; closed); the closure is info"
    );
    drop(l1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_gives_one_observation_per_metric() {
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        "[[monitors]]\nname = \"host\"\nkind = \"host\"\ncpu_percent = 100\nmemory_percent = 100\n\
         disk_percent = 100\n",
        &[],
    );
    let r = run(&ctx, 0).await;
    assert!(r.complete);
    let codes: Vec<&str> = r.observations.iter().map(|o| o.code.as_str()).collect();
    assert!(
        codes.contains(&"host_cpu_high") && codes.contains(&"host_memory_high"),
        "{codes:?}"
    );
    assert!(
        r.observations
            .iter()
            .all(|o| o.value.as_deref().is_some_and(|v| v.ends_with('%')))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_monitor_becomes_an_engine_monitor() {
    let scratch = Scratch::new();
    let ctx = context(
        &scratch,
        "[[monitors]]\nname = \"conn\"\nkind = \"connections\"\nevery = \"30s\"\n\
         failure_threshold = 2\n",
        &[],
    );
    let m = secops_mcp::monitor::kinds::engine_monitor(ctx.clone(), &ctx.config.monitors[0]);
    assert_eq!(m.schedule.describe(), "every 30s");
    assert_eq!(m.timeout, std::time::Duration::from_secs(30));
    assert_eq!(
        (m.policy.name.as_str(), m.policy.failure_threshold),
        ("conn", 2)
    );
    let r = (m.observe)().await.unwrap();
    assert!(r.complete && r.observations.len() == 1, "{r:?}");
}
