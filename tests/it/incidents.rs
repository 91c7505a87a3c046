//! incident_status and incident_update end to end: the real server in-process over HTTP
//! (caller `alice`) against the simulator's indexer. Alerts are injected while the server
//! runs; incidents are checked for correlation, severity, idempotent ingest across
//! restarts, SLA breaches, lifecycle changes and their timeline, and refusals.

use crate::common::*;
use rmcp::model::ReadResourceRequestParams;
use secops_mcp::store::AuditEntry;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use wazuh_sim::SimConfig;

/// The simulator without its seeded day, wired to the indexer only.
async fn setup() -> SimEnv {
    SimEnv::start(SimConfig {
        seed_alerts: false,
        ..Default::default()
    })
    .await
}

/// An in-process server with `toml`, reading the simulator's indexer.
async fn start_server(s: &SimEnv, toml: &str) -> HttpHarness {
    s.http(toml, &s.indexer_vars(), &[]).await
}

async fn status(client: &Client, args: Value) -> Value {
    let r = call(client, "incident_status", args).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    r.structured_content.expect("structured content")
}

async fn update(client: &Client, args: Value) -> Result<Value, String> {
    let r = call(client, "incident_update", args).await;
    if r.is_error == Some(true) {
        Err(text_of(&r))
    } else {
        Ok(r.structured_content.expect("structured content"))
    }
}

fn qualifying(alerts: &[Value]) -> u64 {
    alerts
        .iter()
        .filter(|a| a["rule"]["level"].as_u64().unwrap() >= 7)
        .count() as u64
}

fn find(overview: &Value, pred: impl Fn(&Value) -> bool) -> Vec<&Value> {
    overview["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| pred(i))
        .collect()
}

fn has_ip(i: &Value, ip: &str) -> bool {
    i["source_ips"].as_array().unwrap().contains(&json!(ip))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_level15_and_noise_correlate_and_ingest_is_idempotent_across_restarts() {
    let s = setup().await;
    let now = OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    let burst = g.ssh_brute_force(
        "198.51.100.7",
        &["001", "002"],
        80,
        now - Duration::minutes(20),
    );
    let exploit = g.level15_attack("192.0.2.66", "003", now - Duration::minutes(5));
    let noise = g.noise(&["004"], 50, now - Duration::hours(1), now);
    let expected = qualifying(&burst);
    assert!(expected >= 10, "the burst has correlated level-10 alerts");
    s.sim.inject_alerts(burst.clone());
    s.sim.inject_alerts(exploit);
    s.sim.inject_alerts(noise);

    let server = start_server(&s, "").await;
    let client = server.client(Era::Legacy).await;
    let o = status(&client, json!({})).await;
    assert_eq!(o["ingest"]["status"], json!("ok"), "{o:#}");
    assert_eq!(o["open"], json!(2), "burst + exploit, no noise: {o:#}");
    let b = find(&o, |i| has_ip(i, "198.51.100.7"));
    assert_eq!(b.len(), 1, "the burst is one incident");
    assert_eq!(b[0]["alert_count"], json!(expected));
    assert_eq!(b[0]["severity"], json!("medium"));
    assert_eq!(b[0]["agents"].as_array().unwrap().len(), 2);
    assert_eq!(b[0]["status"], json!("open"));
    assert_eq!(b[0]["phase"], json!("detection_analysis"));
    let c = find(&o, |i| i["severity"] == json!("critical"));
    assert_eq!(c.len(), 1);
    assert!(c[0]["mitre"].as_array().unwrap().contains(&json!("T1190")));
    assert_eq!(c[0]["escalation"]["contact"], json!("security lead"));
    assert_eq!(o["by_severity"]["critical"], json!(1));
    assert_eq!(o["by_severity"]["medium"], json!(1));
    assert!(find(&o, |i| i["agents"][0]["id"] == json!("004")).is_empty());
    let burst_id = b[0]["id"].as_str().unwrap().to_string();

    // Re-running ingest adds nothing.
    let again = status(&client, json!({})).await;
    assert_eq!(again["ingest"]["new_alerts"], json!(0));
    assert_eq!(again["incidents"], o["incidents"]);

    // More of the burst while the server runs, one part indexed late (before the cursor).
    let more = g.ssh_brute_force("198.51.100.7", &["002"], 24, now - Duration::minutes(8));
    let extra = qualifying(&more);
    s.sim.inject_alerts(more);
    let o = status(&client, json!({ "min_severity": "medium" })).await;
    let b = find(&o, |i| i["id"] == json!(burst_id));
    assert_eq!(b[0]["alert_count"], json!(expected + extra));
    assert_eq!(o["open"], json!(2));

    // A new server on the same state directory: nothing is counted twice.
    client.cancel().await.unwrap();
    server.stop().await;
    let server = start_server(&s, "").await;
    let client = server.client(Era::Stateless).await;
    let o2 = status(&client, json!({})).await;
    assert_eq!(o2["ingest"]["new_alerts"], json!(0));
    assert_eq!(o2["open"], json!(2));
    let b = find(&o2, |i| i["id"] == json!(burst_id));
    assert_eq!(b[0]["alert_count"], json!(expected + extra));

    // min_severity filters; the detail has a bounded sample and the rest counted.
    let crit = status(&client, json!({ "min_severity": "critical" })).await;
    assert_eq!(crit["incidents"].as_array().unwrap().len(), 1);
    let d = status(&client, json!({ "incident_id": burst_id })).await;
    let rel = &d["incident"]["related_alerts"];
    assert_eq!(rel["total"], json!(expected + extra));
    assert_eq!(
        rel["not_shown"].as_u64().unwrap() + rel["sample"].as_array().unwrap().len() as u64,
        expected + extra
    );
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_breach_shows_once_respond_by_passes_and_breaches_come_first() {
    let s = setup().await;
    let now = OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    // A critical 30 minutes old (SLA 15 min: breached) and a fresh medium one.
    s.sim
        .inject_alerts(g.level15_attack("192.0.2.10", "001", now - Duration::minutes(30)));
    s.sim.inject_alerts(g.fim_trickle(
        &["003"],
        1,
        now - Duration::minutes(1),
        Duration::minutes(1),
    ));
    let server = start_server(
        &s,
        "[incidents]\ncritical_contact = \"Dana (security lead)\"\n",
    )
    .await;
    let client = server.client(Era::Legacy).await;
    let o = status(&client, json!({ "since": "2h" })).await;
    assert_eq!(o["sla_breaches"], json!(1), "{o:#}");
    assert_eq!(o["unacknowledged"], json!(2));
    let first = &o["incidents"][0];
    assert_eq!(first["severity"], json!("critical"));
    assert_eq!(first["sla"]["breached"], json!(true));
    assert_eq!(first["escalation"]["overdue"], json!(true));
    assert_eq!(
        first["escalation"]["contact"],
        json!("Dana (security lead)")
    );
    assert!(first["age_minutes"].as_i64().unwrap() >= 29);
    assert_eq!(o["oldest_open"]["id"], first["id"]);
    let second = &o["incidents"][1];
    assert_eq!(second["severity"], json!("medium"));
    assert_eq!(second["sla"]["breached"], json!(false));
    assert_eq!(second["escalation"]["contact"], json!("operations lead"));

    // Acknowledging responds: no longer breached.
    update(
        &client,
        json!({ "incident_id": first["id"], "action": "acknowledge" }),
    )
    .await
    .unwrap();
    let o = status(&client, json!({})).await;
    assert_eq!(o["sla_breaches"], json!(0));
    assert_eq!(o["by_status"]["acknowledged"], json!(1));

    // Bad arguments name the argument and what is allowed.
    for (args, arg) in [
        (json!({ "since": "yesterday" }), "`since`"),
        (json!({ "min_severity": "severe" }), "min_severity"),
        (json!({ "bogus": 1 }), "`bogus`"),
        (json!({ "incident_id": "INC-999999" }), "`incident_id`"),
    ] {
        let r = call(&client, "incident_status", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        assert!(text_of(&r).contains(arg), "{args}: {}", text_of(&r));
    }
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_is_audited_in_the_timeline_and_invalid_transitions_are_refused() {
    let s = setup().await;
    let now = OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    s.sim
        .inject_alerts(g.level15_attack("192.0.2.20", "002", now - Duration::minutes(3)));
    let server = start_server(&s, "").await;
    let client = server.client(Era::Legacy).await;
    let o = status(&client, json!({})).await;
    let id = o["incidents"][0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("INC-"), "{id}");

    let ok = |v: Value| {
        let mut v = v;
        v["incident_id"] = json!(id);
        v
    };
    let r = update(
        &client,
        ok(json!({ "action": "acknowledge", "assignee": "bob" })),
    )
    .await
    .unwrap();
    assert_eq!(r["incident"]["status"], json!("acknowledged"));
    assert_eq!(r["incident"]["assignee"], json!("bob"));
    assert!(r["incident"]["acknowledged_at"].is_string());
    update(
        &client,
        ok(json!({ "action": "set_phase", "phase": "containment" })),
    )
    .await
    .unwrap();
    let r = update(
        &client,
        ok(json!({ "action": "set_status", "status": "contained" })),
    )
    .await
    .unwrap();
    assert!(r["incident"]["contained_at"].is_string());
    update(
        &client,
        ok(json!({ "action": "note", "note": "blocked at the edge" })),
    )
    .await
    .unwrap();

    // A remediation tool's audit row naming the incident (as block_ip writes it).
    server
        .ctx
        .store
        .audit_append(&AuditEntry {
            caller: "alice".into(),
            tool: "block_ip".into(),
            action: "apply".into(),
            args_digest: None,
            outcome: "ok".into(),
            detail: Some("blocked 192.0.2.20 on 002".into()),
            incident_id: Some(id.clone()),
        })
        .unwrap();

    // Refusals: each names the argument and what is allowed.
    for (args, needle) in [
        (json!({ "action": "resolve" }), "`resolution`"),
        (
            json!({ "action": "resolve", "resolution": "maybe" }),
            "true_positive",
        ),
        (
            json!({ "action": "set_status", "status": "acknowledged" }),
            "forward only",
        ),
        (
            json!({ "action": "set_status", "status": "resolved" }),
            "`resolve`",
        ),
        (json!({ "action": "set_phase" }), "`phase`"),
        (
            json!({ "action": "note", "phase": "containment", "note": "x" }),
            "`phase`",
        ),
        (json!({ "action": "explode" }), "acknowledge"),
        (json!({ "action": "acknowledge" }), "already"),
    ] {
        let e = update(&client, ok(args.clone())).await.unwrap_err();
        assert!(e.contains(needle), "{args}: {e}");
    }
    let e = update(
        &client,
        json!({ "incident_id": "INC-424242", "action": "note", "note": "x" }),
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("`incident_id`") && e.contains("no incident"),
        "{e}"
    );
    let e = update(&client, json!({ "action": "note", "note": "x" }))
        .await
        .unwrap_err();
    assert!(e.contains("`incident_id`") && e.contains("required"), "{e}");

    let r = update(
        &client,
        ok(json!({ "action": "resolve", "resolution": "true_positive" })),
    )
    .await
    .unwrap();
    assert_eq!(r["incident"]["status"], json!("resolved"));
    assert_eq!(r["incident"]["phase"], json!("post_incident"));
    assert_eq!(r["incident"]["resolution"], json!("true_positive"));
    let e = update(
        &client,
        ok(json!({ "action": "set_status", "status": "contained" })),
    )
    .await
    .unwrap_err();
    assert!(e.contains("reopened with status `open`"), "{e}");

    // Timeline: alerts, then every change (caller alice) and the remediation, oldest first.
    let d = status(&client, json!({ "incident_id": id })).await;
    let tl = d["incident"]["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = tl.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "alert",
            "status_change",
            "status_change",
            "status_change",
            "note",
            "remediation",
            "status_change"
        ],
        "{tl:#?}"
    );
    let actions: Vec<&str> = tl[1..]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "acknowledge",
            "set_phase",
            "set_status",
            "note",
            "apply",
            "resolve"
        ]
    );
    assert_eq!(tl[1]["caller"], json!("alice"));
    assert_eq!(tl[5]["tool"], json!("block_ip"));
    assert!(
        tl[4]["summary"]
            .as_str()
            .unwrap()
            .contains("blocked at the edge")
    );
    let times: Vec<&str> = tl.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(d["incident"]["notes"][0]["by"], json!("alice"));

    // The resolved incident is no longer a resource; reopening makes it one again.
    let uri = format!("secops://incidents/{id}");
    let listed = |list: &[rmcp::model::Resource]| list.iter().any(|r| r.uri == uri);
    assert!(!listed(&client.list_all_resources().await.unwrap()));
    update(
        &client,
        ok(json!({ "action": "set_status", "status": "open" })),
    )
    .await
    .unwrap();
    assert!(listed(&client.list_all_resources().await.unwrap()));
    let res = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let text = serde_json::to_string(&res).unwrap();
    assert!(text.contains("timeline") && text.contains(&id), "{text}");
    assert!(
        client
            .read_resource(ReadResourceRequestParams::new(
                "secops://incidents/INC-777777"
            ))
            .await
            .is_err()
    );
    assert!(server.ctx.store.audit_verify().unwrap().ok());

    // The runbook prompt is there and names both tools.
    let p = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new(
            "incident_response",
        ))
        .await
        .unwrap();
    let text = serde_json::to_string(&p.messages).unwrap();
    assert!(text.contains("incident_status") && text.contains("incident_update"));
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_pages_beyond_fifty() {
    let s = setup().await;
    let now = OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    let agents: Vec<String> = (0..60).map(|i| format!("{:03}", 100 + i)).collect();
    let refs: Vec<&str> = agents.iter().map(String::as_str).collect();
    s.sim.inject_alerts(g.fim_trickle(
        &refs,
        60,
        now - Duration::minutes(30),
        Duration::seconds(10),
    ));
    let server = start_server(&s, "").await;
    let client = server.client(Era::Legacy).await;
    let p1 = status(&client, json!({})).await;
    assert_eq!(p1["open"], json!(60));
    assert_eq!(p1["total"], json!(60));
    assert_eq!(p1["incidents"].as_array().unwrap().len(), 50);
    let cursor = p1["next_cursor"].as_str().expect("next_cursor").to_string();
    let p2 = status(&client, json!({ "cursor": cursor })).await;
    assert_eq!(p2["incidents"].as_array().unwrap().len(), 10);
    assert!(p2["next_cursor"].is_null());
    let r = call(&client, "incident_status", json!({ "cursor": "x" })).await;
    assert!(text_of(&r).contains("`cursor`"));
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_or_with_a_dead_indexer_answers_from_the_store() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let client = server.client(Era::Legacy).await;
    let o = status(&client, json!({})).await;
    assert_eq!(o["ingest"]["status"], json!("not_configured"));
    assert_eq!(o["open"], json!(0));
    client.cancel().await.unwrap();
    server.stop().await;

    let server = HttpHarness::start(
        &scratch,
        "",
        &[
            ("SECOPS_INDEXER_URL", "https://127.0.0.1:1"),
            ("SECOPS_HEALTH_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let client = server.client(Era::Legacy).await;
    let o = status(&client, json!({})).await;
    assert_eq!(o["ingest"]["status"], json!("unreachable"), "{o:#}");
    assert!(o["ingest"]["error"].as_str().unwrap().contains("stored"));
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeded_demo_day_makes_a_few_realistic_incidents() {
    let s = SimEnv::start(SimConfig::default()).await;
    let server = start_server(&s, "").await;
    let client = server.client(Era::Legacy).await;
    let o = status(&client, json!({})).await;
    // Two SSH brute-force runs, a FIM trickle on three agents, one level-15 exploit.
    assert_eq!(o["open"], json!(6), "{o:#}");
    assert_eq!(o["by_severity"]["critical"], json!(1));
    assert_eq!(o["by_severity"]["medium"], json!(5));
    assert_eq!(find(&o, |i| has_ip(i, "203.0.113.45")).len(), 1);
    assert_eq!(find(&o, |i| has_ip(i, "198.51.100.23")).len(), 1);
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_injected_while_running_form_incidents_and_noise_none() {
    let s = setup().await;
    let server = start_server(&s, "").await;
    let client = server.client(Era::Legacy).await;
    assert_eq!(status(&client, json!({})).await["open"], json!(0));
    let names: Vec<&str> = (0..4).map(|n| s.sim.inject_scenario(n).0).collect();
    assert_eq!(
        names,
        ["ssh_brute_force", "level15_attack", "fim_trickle", "noise"]
    );
    let o = status(&client, json!({})).await;
    assert_eq!(
        o["open"],
        json!(3),
        "burst, exploit, trickle; noise none: {o:#}"
    );
    assert_eq!(o["by_severity"]["critical"], json!(1));
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ingests_in_the_background_on_its_interval() {
    let s = setup().await;
    let env = s.child_env(
        &s.indexer_vars(),
        &[("SECOPS_INCIDENTS_INGEST_INTERVAL_SECS", "1")],
    );
    let client = stdio_client(&env, Era::Legacy).await;
    s.sim.inject_scenario(1);
    // resources/list reads the store only: incidents appear without any incident_status call.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let list = client.list_all_resources().await.unwrap();
        if list
            .iter()
            .any(|r| r.uri.starts_with("secops://incidents/INC-"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no background ingest");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_ip_filed_under_an_incident_appears_in_its_timeline() {
    let s = setup().await;
    let now = OffsetDateTime::now_utc();
    let mut g = s.sim.alerts();
    s.sim.inject_alerts(g.ssh_brute_force(
        "203.0.113.77",
        &["001", "002"],
        40,
        now - Duration::minutes(10),
    ));
    // The same server also reaches the manager, with remediation on (no human in this
    // test: the gate's human step has its own tests).
    let server = s
        .http(
            "[remediation]\nenabled = true\nrequire_human = false\n",
            &s.vars(),
            &[],
        )
        .await;
    let client = server.client(Era::Legacy).await;
    let o = status(&client, json!({})).await;
    let inc = find(&o, |i| has_ip(i, "203.0.113.77"));
    assert_eq!(inc.len(), 1, "{o:#}");
    let id = inc[0]["id"].as_str().unwrap().to_string();

    let args = json!({
        "ip": "203.0.113.77", "agents": ["001", "002"],
        "reason": "SSH brute force", "incident_id": id,
    });
    let plan = call(&client, "block_ip", args.clone()).await;
    assert_ne!(plan.is_error, Some(true), "{}", text_of(&plan));
    let token = plan.structured_content.unwrap()["confirmation_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut apply = args.clone();
    apply["mode"] = json!("apply");
    apply["confirmation_token"] = json!(token);
    let r = call(&client, "block_ip", apply).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(s.sim.active_responses().len(), 1);

    let d = status(&client, json!({ "incident_id": id })).await;
    let timeline = d["incident"]["timeline"]
        .as_array()
        .unwrap_or_else(|| panic!("{d:#}"));
    let blocks: Vec<&Value> = timeline
        .iter()
        .filter(|e| e.to_string().contains("block_ip"))
        .collect();
    assert!(
        blocks.len() >= 2,
        "plan and apply of block_ip in the timeline: {timeline:#?}"
    );
    // Oldest first.
    let times: Vec<&str> = timeline.iter().filter_map(|e| e["at"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "timeline is oldest first");

    // An unknown incident is refused before anything happens.
    let mut bogus = args.clone();
    bogus["incident_id"] = json!("INC-424242");
    let r = call(&client, "block_ip", bogus).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("`incident_id`"), "{}", text_of(&r));
    client.cancel().await.unwrap();
    server.stop().await;
}
