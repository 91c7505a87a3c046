//! scan_host end to end: the real server over stdio (and HTTP) scanning listeners this test
//! starts on private loopback aliases (127.0.0.81+; never 127.0.0.1's full range, where
//! other processes listen) and on hosts in network namespaces the test creates (root only;
//! CI sets SECOPS_REQUIRE_NETNS=1 so they cannot be skipped there).

use std::collections::BTreeSet;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::netns::{self, NetnsHost};
use crate::common::{Era, HttpHarness, Recorder, Scratch, call, stdio_client, text_of};
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ReadResourceRequestParams,
    ResourceContents,
};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};

const SSH_GREETING: &[u8] = b"SSH-2.0-OpenSSH_9.6 Test\x1b[31m\r\n";
const HTTP_REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.25.3\r\nContent-Length: 0\r\n\r\n";

fn bind(ip: &str) -> TcpListener {
    TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0)).expect("bind loopback alias")
}

/// A port on `ip` that nothing listens on (bound, learned, released).
fn free_port(ip: &str) -> u16 {
    bind(ip).local_addr().unwrap().port()
}

fn port_of(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

fn open_ports(host: &Value) -> BTreeSet<u16> {
    host["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap() as u16)
        .collect()
}

fn open_entry(host: &Value, port: u16) -> Value {
    host["open"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == json!(port))
        .cloned()
        .unwrap_or_else(|| panic!("port {port} not open in {host}"))
}

fn ports_arg(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn env_with_scope(scratch: &Scratch, scope: &str) -> std::collections::BTreeMap<String, String> {
    let mut env = scratch.env();
    env.insert("SECOPS_SCAN_ALLOW".into(), scope.into());
    env
}

#[tokio::test]
async fn scan_finds_open_ports_names_services_and_sanitises_banners() {
    let ip = "127.0.0.81";
    let ssh = bind(ip);
    let http = bind(ip);
    let silent = bind(ip);
    let open = [port_of(&ssh), port_of(&http), port_of(&silent)];
    let closed: Vec<u16> = (0..3).map(|_| free_port(ip)).collect();
    crate::common::netns::serve(ssh, SSH_GREETING, None);
    crate::common::netns::serve(http, b"", Some(HTTP_REPLY));
    crate::common::netns::serve(silent, b"", None);

    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    let mut all = open.to_vec();
    all.extend(&closed);
    let r = call(
        &client,
        "scan_host",
        json!({ "target": ip, "ports": ports_arg(&all) }),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let sc = r.structured_content.clone().expect("structured content");
    assert_eq!(sc["addresses"], json!([ip]));
    assert_eq!(sc["ports_scanned"], json!(6));
    assert_eq!(sc["complete"], json!(true));
    let host = &sc["hosts"][0];
    assert_eq!(open_ports(host), open.iter().copied().collect());
    assert_eq!(
        host["closed_count"],
        json!(3),
        "no closed port reported open"
    );
    assert_eq!(host["inconclusive_count"], json!(0));

    let ssh = open_entry(host, open[0]);
    assert_eq!(ssh["service"], json!("ssh"));
    let banner = ssh["banner"].as_str().unwrap();
    assert!(banner.starts_with("SSH-2.0-OpenSSH_9.6 Test"), "{banner}");
    assert!(
        !banner.contains('\u{1b}'),
        "control bytes removed: {banner:?}"
    );
    assert!(ssh["risk"].as_str().unwrap().contains("SSH"), "{ssh}");
    let http = open_entry(host, open[1]);
    assert_eq!(http["service"], json!("http"));
    assert_eq!(http["banner"], json!("nginx/1.25.3"));
    assert!(
        sc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == json!("remote_admin_exposed") && f["severity"] == json!("info")),
        "SSH on loopback is noted as info: {}",
        sc["findings"]
    );
    let summary = text_of(&r);
    assert!(summary.contains("3 open"), "{summary}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scan_reports_ports_opened_and_closed_since_the_last_scan() {
    let ip = "127.0.0.82";
    let stays = bind(ip);
    let closes = bind(ip);
    let later = free_port(ip);
    let ports = [port_of(&stays), port_of(&closes), later];
    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    let scan = || {
        call(
            &client,
            "scan_host",
            json!({ "target": ip, "ports": ports_arg(&ports), "detect_services": false }),
        )
    };
    let first = scan().await.structured_content.unwrap();
    assert!(
        first["changes_since_last"].is_null(),
        "no baseline yet: {first}"
    );
    drop(closes);
    let _opened = TcpListener::bind((ip, later)).expect("rebind the later port");
    let second = scan().await.structured_content.unwrap();
    let changes = &second["changes_since_last"];
    assert_eq!(
        changes["opened"],
        json!([{ "address": ip, "port": later }]),
        "{second}"
    );
    assert_eq!(
        changes["closed"],
        json!([{ "address": ip, "port": ports[1] }])
    );
    assert!(changes["previous_scan_at"].as_str().unwrap().ends_with('Z'));
    // A third scan with nothing changed says so.
    let third = scan().await;
    let changes = &third.structured_content.clone().unwrap()["changes_since_last"];
    assert_eq!(changes["opened"], json!([]));
    assert_eq!(changes["closed"], json!([]));
    assert!(
        text_of(&third).contains("No change since"),
        "{}",
        text_of(&third)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scan_refuses_targets_outside_scope_metadata_oversized_cidrs_and_bad_ports() {
    // A listener just outside the scope counts connection attempts.
    let outside = bind("127.0.0.84");
    let outside_port = port_of(&outside);
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = accepted.clone();
        outside.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(outside).unwrap();
        tokio::spawn(async move {
            while l.accept().await.is_ok() {
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let scratch = Scratch::new();
    let client = stdio_client(&env_with_scope(&scratch, "127.0.0.83/32"), Era::Legacy).await;
    let refused = |target: &'static str, ports: String| {
        let client = &client;
        async move {
            let r = call(
                client,
                "scan_host",
                json!({ "target": target, "ports": ports }),
            )
            .await;
            assert_eq!(r.is_error, Some(true), "{target}: {}", text_of(&r));
            text_of(&r)
        }
    };
    let t = refused("127.0.0.84", outside_port.to_string()).await;
    assert!(t.contains("rule `scan.allow`"), "{t}");
    let t = refused("169.254.169.254", "80".into()).await;
    assert!(t.contains("rule `metadata`"), "{t}");
    let t = refused("127.0.0.0/23", "80".into()).await;
    assert!(t.contains("rule `cidr_size`") && t.contains("512"), "{t}");
    let t = refused("localhost", "80".into()).await;
    assert!(
        t.contains("scan.allow"),
        "a name resolving out of scope: {t}"
    );
    let t = refused("127.0.0.83", "22,,80".into()).await;
    assert!(t.contains("`ports`") && t.contains("empty item"), "{t}");
    let t = refused("127.0.0.83", "70000".into()).await;
    assert!(t.contains("`ports`") && t.contains("70000"), "{t}");
    let t = refused("127.0.0.83", "http".into()).await;
    assert!(t.contains("`ports`") && t.contains("top100"), "{t}");
    let r = call(
        &client,
        "scan_host",
        json!({ "target": "127.0.0.83", "timeout_ms": 0 }),
    )
    .await;
    assert!(text_of(&r).contains("`timeout_ms`"), "{}", text_of(&r));
    let r = call(
        &client,
        "scan_host",
        json!({ "target": "127.0.0.83", "port": "22" }),
    )
    .await;
    assert!(
        text_of(&r).contains("`port`") && text_of(&r).contains("unknown argument"),
        "{}",
        text_of(&r)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "no connection to an out-of-scope address"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scan_sends_progress_and_logs_target_and_port_count() {
    let scratch = Scratch::new();
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(
        crate::common::server_command(&scratch.env(), &["serve"]),
    )
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let recorder = Recorder::default();
    let client = recorder.clone().serve(transport).await.expect("initialize");
    #[allow(deprecated)]
    client
        .set_level(rmcp::model::SetLevelRequestParams::new(
            rmcp::model::LoggingLevel::Info,
        ))
        .await
        .expect("logging/setLevel is supported");
    let params = CallToolRequestParams::new("scan_host").with_arguments(crate::common::args(
        json!({ "target": "127.0.0.85", "ports": "1-20000", "detect_services": false }),
    ));
    let r = tokio::time::timeout(Duration::from_secs(60), client.call_tool(params))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let seen = recorder.progress();
    assert!(!seen.is_empty(), "at least one progress notification");
    for (done, total) in &seen {
        assert_eq!(*total, Some(20000.0));
        assert!(*done <= 20000.0);
    }
    // The scan's phases reached the client's log as notifications/message.
    let logs = recorder.logs();
    assert!(
        logs.iter()
            .any(|(l, m)| l == "scan_host" && m == "scanning 20000 ports on 1 address"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|(_, m)| m.starts_with("port scan done in")),
        "{logs:?}"
    );
    let res = client
        .read_resource(ReadResourceRequestParams::new("secops://tool-calls/recent"))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &res.contents[0] else {
        panic!("text resource expected");
    };
    let log: Value = serde_json::from_str(text).unwrap();
    let entry = &log["tool_calls"][0];
    assert_eq!(entry["tool"], json!("scan_host"));
    assert_eq!(entry["detail"], json!("target=127.0.0.85 ports=20000"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scan_rate_limit_applies_per_caller_over_http() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "[scan]\nrate_per_minute = 2\n", &[]).await;
    let client = server.client(Era::Stateless).await;
    let port = free_port("127.0.0.86").to_string();
    for _ in 0..2 {
        let r = call(
            &client,
            "scan_host",
            json!({ "target": "127.0.0.86", "ports": port }),
        )
        .await;
        assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    }
    let r = call(
        &client,
        "scan_host",
        json!({ "target": "127.0.0.86", "ports": port }),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("scan rate limit"), "{}", text_of(&r));
    // Bad arguments do not use up the budget and still get their precise error.
    let r = call(&client, "scan_host", json!({ "target": "" })).await;
    assert!(text_of(&r).contains("`target`"), "{}", text_of(&r));
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn scan_classifies_open_and_closed_ports_on_a_namespace_host_answering_rst() {
    if netns::unavailable(false).is_some() {
        return;
    }
    let host = NetnsHost::rst();
    let ssh = host.listen(22);
    let http = host.listen(80);
    let other = host.listen(8443);
    netns::serve(ssh, SSH_GREETING, None);
    netns::serve(http, b"", Some(HTTP_REPLY));
    netns::serve(other, b"", None);
    let scratch = Scratch::new();
    let client = stdio_client(
        &env_with_scope(&scratch, &host.addr.to_string()),
        Era::Legacy,
    )
    .await;
    let r = call(
        &client,
        "scan_host",
        json!({ "target": host.addr.to_string(), "ports": "1-1024,8443" }),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let sc = r.structured_content.unwrap();
    let h = &sc["hosts"][0];
    assert_eq!(open_ports(h), BTreeSet::from([22, 80, 8443]), "{sc}");
    assert_eq!(h["closed_count"], json!(1022));
    assert_eq!(h["filtered_count"], json!(0));
    assert_eq!(h["inconclusive_count"], json!(0));
    assert_eq!(open_entry(h, 22)["service"], json!("ssh"));
    assert_eq!(open_entry(h, 80)["banner"], json!("nginx/1.25.3"));
    // Not on loopback: exposed SSH is a warning.
    assert!(
        sc["findings"].as_array().unwrap().iter().any(|f| {
            f["code"] == json!("remote_admin_exposed") && f["severity"] == json!("warning")
        }),
        "{}",
        sc["findings"]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scan_classifies_filtered_ports_on_a_namespace_host_that_drops_packets() {
    if netns::unavailable(true).is_some() {
        return;
    }
    let host = NetnsHost::dropping(&[22, 8080]);
    netns::serve(host.listen(22), SSH_GREETING, None);
    netns::serve(host.listen(8080), b"", Some(HTTP_REPLY));
    let scratch = Scratch::new();
    let client = stdio_client(
        &env_with_scope(&scratch, &host.addr.to_string()),
        Era::Legacy,
    )
    .await;
    let started = Instant::now();
    let r = call(
        &client,
        "scan_host",
        json!({ "target": host.addr.to_string(), "ports": "1-2000,8080" }),
    )
    .await;
    let took = started.elapsed();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let sc = r.structured_content.unwrap();
    let h = &sc["hosts"][0];
    assert_eq!(open_ports(h), BTreeSet::from([22, 8080]), "{sc}");
    assert_eq!(h["filtered_count"], json!(1999), "{h}");
    assert_eq!(h["filtered"], json!("1-21,23-2000"));
    assert_eq!(h["closed_count"], json!(0));
    assert_eq!(sc["complete"], json!(true));
    eprintln!("dropping host, 2001 ports: {took:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scan_stops_within_a_second_when_cancelled() {
    if netns::unavailable(true).is_some() {
        return;
    }
    // Everything dropped and a long fixed timeout: this scan would take minutes.
    let host = NetnsHost::dropping(&[9]);
    let scratch = Scratch::new();
    let client = stdio_client(
        &env_with_scope(&scratch, &host.addr.to_string()),
        Era::Legacy,
    )
    .await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("scan_host").with_arguments(crate::common::args(json!({
            "target": host.addr.to_string(), "ports": "all", "timeout_ms": 5000
        }))),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let cancelled_at = Instant::now();
    handle.cancel(Some("test".into())).await.unwrap();
    // The scan's tool-call log entry appears once the handler returned.
    let deadline = Instant::now() + Duration::from_secs(5);
    let entry = loop {
        let res = client
            .read_resource(ReadResourceRequestParams::new("secops://tool-calls/recent"))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents { text, .. } = &res.contents[0] else {
            panic!("text resource expected");
        };
        let log: Value = serde_json::from_str(text).unwrap();
        if let Some(e) = log["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["tool"] == json!("scan_host"))
        {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "the scan did not stop: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stopped_after = cancelled_at.elapsed();
    assert!(
        stopped_after < Duration::from_millis(1500),
        "stopped {stopped_after:?} after cancel"
    );
    let ms = entry["duration_ms"].as_f64().unwrap();
    assert!(ms < 700.0 + 1000.0 + 200.0, "scan ran {ms} ms: {entry}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scan_reports_tls_certificate_details_and_expiry_findings() {
    use crate::common::tls::{LeafSpec, TlsFixture, serve_chain};
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["scan.secops.test"]).expires_in_days(5));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    // Only the test server's port on 127.0.0.1 (never its full range).
    let r = call(
        &client,
        "scan_host",
        json!({ "target": "127.0.0.1", "ports": server.port().to_string() }),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let sc = r.structured_content.unwrap();
    let port = open_entry(&sc["hosts"][0], server.port());
    assert_eq!(port["service"], json!("tls"), "{port}");
    let tls = &port["tls"];
    assert!(
        tls["subject"]
            .as_str()
            .unwrap()
            .contains("scan.secops.test"),
        "{tls}"
    );
    let days = tls["days_left"].as_i64().unwrap();
    assert!((4..=5).contains(&days), "{tls}");
    assert_eq!(
        tls["chain_valid"],
        json!(false),
        "test CA is not trusted: {tls}"
    );
    assert!(
        sc["findings"].as_array().unwrap().iter().any(|f| {
            f["code"] == json!("tls_cert_expires_soon") && f["severity"] == json!("critical")
        }),
        "{}",
        sc["findings"]
    );
    client.cancel().await.unwrap();
}
