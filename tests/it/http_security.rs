//! The HTTP transport's guards, probed with raw requests: bearer auth (401 with a
//! `WWW-Authenticate: Bearer` challenge), Origin and Host allowlists (403), body cap (413),
//! per-caller rate limit (429 with `Retry-After`), `/healthz` and `/metrics`, and refusing to
//! bind a non-loopback address without tokens.

use std::time::Duration;

use crate::common::*;
use futures::StreamExt;
use reqwest::StatusCode;
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::server::http::HttpServer;
use serde_json::json;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}"#;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn mcp_post(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401_with_a_bearer_challenge() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let c = http();

    let r = mcp_post(&c, &server.url()).body(INIT).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(!challenge.contains("invalid_token"));

    let r = mcp_post(&c, &server.url())
        .bearer_auth("wrong-token-wrong-token")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    // A non-Bearer scheme is not accepted either.
    let r = mcp_post(&c, &server.url())
        .basic_auth("alice", Some(TEST_TOKEN))
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The right token passes.
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_and_host_get_403() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let c = http();
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .header("origin", "https://evil.example")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.unwrap();
    assert!(body.contains("SECOPS_ALLOWED_ORIGINS"), "{body}");

    // The default allowlist admits a local browser UI (e.g. the MCP Inspector).
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .header("origin", "http://localhost:6274")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // DNS rebinding: a name that resolves here but is not ours.
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .header("host", "attacker.example")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_rejected_with_413() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "[http]\nmax_body_bytes = 4096\n", &[]).await;
    let c = http();
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"pad":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Chunked (no Content-Length) is capped while streaming.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(1000)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_over_the_rate_limit_get_429_with_retry_after() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "[http]\nrate_limit_per_minute = 5\n", &[]).await;
    let c = http();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let r = c
            .get(format!("http://{}/metrics", server.addr))
            .bearer_auth(TEST_TOKEN)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
        statuses.push(r.status());
    }
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    // /healthz is outside the limit and needs no token.
    let r = c
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap().trim(), "ok");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_auth_and_count_tool_calls() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let c = http();
    let url = format!("http://{}/metrics", server.addr);
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let client = server.client(Era::Legacy).await;
    let r = call(&client, "check_cert", json!({ "targets": [] })).await;
    assert_eq!(r.is_error, Some(true));
    client.cancel().await.unwrap();
    let body = c
        .get(&url)
        .bearer_auth(TEST_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(
            r#"secops_mcp_tool_calls_total{tool="check_cert",outcome="invalid_argument"} 1"#
        ),
        "{body}"
    );
    assert!(
        body.contains("secops_mcp_tool_call_duration_seconds_bucket{"),
        "{body}"
    );
    assert!(
        body.contains(r#"secops_mcp_http_refused_total{reason="unauthorized"} 1"#),
        "{body}"
    );
    assert!(!body.contains(TEST_TOKEN));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_bind_without_tokens_is_refused() {
    let scratch = Scratch::new();
    let config = Config::from_toml_str("", &scratch.env()).unwrap();
    let ctx = AppContext::new(config, false).unwrap();
    let err = match HttpServer::bind(ctx, "0.0.0.0:0".parse().unwrap()).await {
        Ok(_) => panic!("must refuse"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("SECOPS_HTTP_TOKENS_FILE"), "{err}");

    // The binary exits non-zero with the same message.
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
            .args(["serve", "--http", "0.0.0.0:0"])
            .env("SECOPS_STATE_DIR", scratch.state_dir())
            .env_remove("SECOPS_HTTP_TOKENS_FILE")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("binary must exit promptly")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to serve"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_without_tokens_serves_anonymous_callers() {
    let scratch = Scratch::new();
    let config = Config::from_toml_str("", &scratch.env()).unwrap();
    let ctx = AppContext::new(config, false).unwrap();
    let server = HttpServer::bind(ctx, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    let r = mcp_post(&http(), &format!("http://{addr}/mcp"))
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("shutdown must finish")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_http_server_cleanly() {
    let scratch = Scratch::new();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let url = read_listen_url(stderr).await;
    let r = http()
        .get(url.replace("/mcp", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pid = child.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc_kill(pid, 15) };
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("server must exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

async fn read_listen_url(stderr: tokio::process::ChildStderr) -> String {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(stderr).lines();
    let find = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("secops-mcp listening on ") {
                return url.trim().to_string();
            }
        }
        panic!("server exited without printing its address");
    };
    let url = tokio::time::timeout(Duration::from_secs(20), find)
        .await
        .expect("server did not start");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_tool_calls_finish() {
    for era in ERAS {
        shutdown_drains(era).await;
    }
}

/// A TLS endpoint that accepts and never answers: check_cert waits for its timeout.
async fn silent_endpoint() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    (addr, hold)
}

async fn shutdown_drains(era: Era) {
    let (silent_addr, hold) = silent_endpoint().await;
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let client = server.client(era).await;
    let started = std::time::Instant::now();
    let call_task = tokio::spawn(async move {
        let r = call(
            &client,
            "check_cert",
            json!({ "targets": [silent_addr.to_string()], "timeout_ms": 1500 }),
        )
        .await;
        (client, r)
    });
    // Wait until the call is in flight, then ask the server to stop.
    while server.ctx.inflight.current() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "call never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown.cancel();
    let (client, r) = tokio::time::timeout(Duration::from_secs(10), call_task)
        .await
        .unwrap_or_else(|_| panic!("{era:?}: in-flight call must complete"))
        .unwrap();
    let sc = r
        .structured_content
        .expect("a real result, not a dropped connection");
    assert_eq!(sc["results"][0]["status"], json!("error"));
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let _ = client.cancel().await;
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("server stops after draining")
        .unwrap()
        .unwrap();
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_with_delete_answers_204() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let c = http();
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let session = r
        .headers()
        .get("mcp-session-id")
        .expect("a 2025-11-25 initialize opens a session")
        .to_str()
        .unwrap()
        .to_string();
    drop(r);
    let r = c
        .delete(server.url())
        .bearer_auth(TEST_TOKEN)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
    // The session is gone: using it again is refused.
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tool_names_share_one_metrics_series_and_get_the_tool_list() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let client = server.client(Era::Legacy).await;
    for i in 0..30 {
        let name = format!("no_such_tool_{i}_{}", i * 7919);
        let params = rmcp::model::CallToolRequestParams::new(name.clone());
        let e = client
            .call_tool(params)
            .await
            .expect_err("an unknown tool is a protocol error");
        let msg = e.to_string();
        assert!(msg.contains("unknown tool"), "{msg}");
        assert!(
            msg.contains("wazuh_health") && msg.contains("check_cert"),
            "{msg}"
        );
    }
    let e = client
        .call_tool(rmcp::model::CallToolRequestParams::new("wazuh_healt"))
        .await
        .expect_err("unknown");
    assert!(
        e.to_string().contains("did you mean `wazuh_health`?"),
        "{e}"
    );
    client.cancel().await.unwrap();
    let body = http()
        .get(format!("http://{}/metrics", server.addr))
        .bearer_auth(TEST_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("no_such_tool"), "{body}");
    assert!(!body.contains("wazuh_healt\""), "{body}");
    assert!(
        body.contains(r#"secops_mcp_tool_calls_total{tool="(unknown)",outcome="unknown_tool"} 31"#),
        "{body}"
    );
    server.stop().await;
}

// ----- connections, sessions and messages under attack (bounded, loopback only) -----

const LIMITS: &str =
    "[http]\nheader_timeout_secs = 1\nbody_timeout_secs = 1\nwrite_timeout_secs = 2\n";

/// Whether the server closed `s` within `within` (a read gives EOF or an error).
async fn closed_by_server(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // an error response before the close
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_and_never_ending_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, LIMITS, &[]).await;
    let started = std::time::Instant::now();
    // 30 idle connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // 10 slowloris connections: a header byte every 200 ms, never finishing.
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    let head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa";
    let slow_task = tokio::spawn(async move {
        for b in head.iter().take(15) {
            for s in slow.iter_mut() {
                let _ = s.write_all(&[*b]).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    // 10 authenticated requests whose body never ends.
    let mut bodies = Vec::new();
    for _ in 0..10 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let req = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TEST_TOKEN}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{{\"jsonrpc\""
        );
        s.write_all(req.as_bytes()).await.unwrap();
        bodies.push(s);
    }
    for s in idle.iter_mut() {
        assert!(
            closed_by_server(s, Duration::from_secs(5)).await,
            "idle connection kept"
        );
    }
    for s in bodies.iter_mut() {
        assert!(
            closed_by_server(s, Duration::from_secs(5)).await,
            "endless body kept"
        );
    }
    let mut slow = slow_task.await.unwrap();
    for s in slow.iter_mut() {
        assert!(
            closed_by_server(s, Duration::from_secs(5)).await,
            "slow headers kept"
        );
    }
    eprintln!(
        "50 hostile connections closed by the server after {:?}",
        started.elapsed()
    );
    // The server still serves everyone else.
    let client = server.client(Era::Legacy).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_gets_408_and_connections_past_the_cap_get_503() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let scratch = Scratch::new();
    let server = HttpHarness::start(
        &scratch,
        "[http]\nheader_timeout_secs = 5\nbody_timeout_secs = 1\nmax_connections = 4\n",
        &[],
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Four held connections fill the cap; the fifth gets a clear 503.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("http.max_connections"), "{text}");
    drop(held);
    server.stop().await;
}

/// Send a 2025-11-25 `initialize` with raw requests (a session is opened when it succeeds).
async fn open_session(c: &reqwest::Client, url: &str) -> reqwest::Response {
    mcp_post(c, url)
        .bearer_auth(TEST_TOKEN)
        .body(INIT)
        .send()
        .await
        .unwrap()
}

/// A 2025-11-25 session, initialized (`notifications/initialized` sent); returns its id.
async fn initialized_session(c: &reqwest::Client, url: &str) -> String {
    let r = open_session(c, url).await;
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    drop(r);
    let note = mcp_post(c, url)
        .bearer_auth(TEST_TOKEN)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    assert!(note.status().is_success(), "{}", note.status());
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_id_in_a_session_all_get_an_answer() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let c = http();
    let session = initialized_session(&c, &server.url()).await;
    let started = std::time::Instant::now();
    let calls = (0..10).map(|_| {
        let c = c.clone();
        let url = server.url();
        let session = session.clone();
        async move {
            // host_metrics samples CPU for ~200 ms: the ten overlap.
            let r = mcp_post(&c, &url)
                .bearer_auth(TEST_TOKEN)
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-11-25")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"host_metrics","arguments":{}}}"#)
                .send()
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(10), r.text())
                .await
                .expect("every request is answered promptly")
                .unwrap()
        }
    });
    let bodies = futures::future::join_all(calls).await;
    let results = bodies.iter().filter(|b| b.contains("\"result\"")).count();
    let refused = bodies
        .iter()
        .filter(|b| b.contains("already in flight in this session"))
        .count();
    assert_eq!(results + refused, 10, "{bodies:#?}");
    assert!(results >= 1, "{bodies:#?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The id is free again afterwards.
    let r = mcp_post(&c, &server.url())
        .bearer_auth(TEST_TOKEN)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("\"tools\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_over_http_get_jsonrpc_errors() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let c = http();
    let cases: [(&str, u16, i64); 5] = [
        ("{not json", 400, -32700),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, 400, -32600),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, 400, -32600),
        (r#"{"jsonrpc":"2.0","id":1}"#, 400, -32600),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"host_metrics","arguments":[1]}}"#,
            200,
            -32602,
        ),
    ];
    for (body, status, code) in cases {
        let r = mcp_post(&c, &server.url())
            .bearer_auth(TEST_TOKEN)
            .header("mcp-protocol-version", "2025-11-25")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["jsonrpc"], json!("2.0"), "{body}: {v}");
        assert_eq!(v["error"]["code"], json!(code), "{body}: {v}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_cap_are_refused_with_a_clear_error() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "[http]\nmax_sessions = 3\n", &[]).await;
    let c = http();
    for _ in 0..3 {
        let r = open_session(&c, &server.url()).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = open_session(&c, &server.url()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], json!(-32001), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("http.max_sessions"),
        "{v}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_throttled_logged_and_counted() {
    let scratch = Scratch::new();
    let tokens = scratch.write("tokens", &format!("{TEST_TOKEN} alice\n"));
    let config = scratch.write("c.toml", "[http]\nauth_failures_per_minute = 5\n");
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
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("server starts")
            .unwrap()
            .expect("stderr open");
        if let Some(u) = line.strip_prefix("secops-mcp listening on ") {
            break u.trim().to_string();
        }
    };
    let log_task = tokio::spawn(async move {
        let mut out = String::new();
        while let Ok(Ok(Some(l))) =
            tokio::time::timeout(Duration::from_secs(3), lines.next_line()).await
        {
            out.push_str(&l);
            out.push('\n');
        }
        out
    });
    let c = http();
    let guess = "guess-0123456789-abcdef";
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = mcp_post(&c, &url)
            .bearer_auth(guess)
            .body(INIT)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // While throttled, the address is refused even with the right token (guessing stops).
    let r = mcp_post(&c, &url)
        .bearer_auth(TEST_TOKEN)
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Another address is not affected.
    let other = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = other
        .get(url.replace("/mcp", "/metrics"))
        .bearer_auth(TEST_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let metrics = r.text().await.unwrap();
    assert!(
        metrics.contains(r#"secops_mcp_http_refused_total{reason="unauthorized"} 5"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"reason="auth_throttled""#), "{metrics}");
    log.push_str(&log_task.await.unwrap());
    assert!(log.contains("HTTP authentication failed"), "{log}");
    assert!(log.contains("127.0.0.1"), "{log}");
    assert!(
        !log.contains(guess) && !log.contains(TEST_TOKEN),
        "token in the log: {log}"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_every_loopback_address_shares_one_budget() {
    let scratch = Scratch::new();
    let config =
        Config::from_toml_str("[http]\nrate_limit_per_minute = 3\n", &scratch.env()).unwrap();
    let ctx = AppContext::new(config, false).unwrap();
    let server = HttpServer::bind(ctx, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(server.run(stop.clone()));
    let mut statuses = Vec::new();
    for i in 0..4u8 {
        let c = reqwest::Client::builder()
            .local_address(Some(std::net::IpAddr::from([127, 0, 0, 2 + i])))
            .build()
            .unwrap();
        let r = c
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(40), task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_stream_nobody_reads_ends_after_sse_max_secs() {
    use tokio::io::AsyncWriteExt;
    let scratch = Scratch::new();
    let server = HttpHarness::start(
        &scratch,
        "[http]\nsse_max_secs = 1\nheader_timeout_secs = 2\n",
        &[],
    )
    .await;
    let c = http();
    let session = initialized_session(&c, &server.url()).await;
    // The standalone GET stream of the session, opened and never read.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TEST_TOKEN}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-11-25\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    assert!(
        closed_by_server(&mut s, Duration::from_secs(8)).await,
        "a stream nobody reads must end"
    );
    server.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_of_many_sessions_is_returned_after_they_expire() {
    let scratch = Scratch::new();
    let tokens = scratch.write("tokens", &format!("{TEST_TOKEN} alice\n"));
    let config = scratch.write(
        "c.toml",
        "[http]\nmax_sessions = 5000\nsession_idle_secs = 2\nrate_limit_per_minute = 1000000\n",
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
        .env("SECOPS_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let url = read_listen_url(child.stderr.take().unwrap()).await;
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(32)
        .build()
        .unwrap();
    // Warm up (first sessions, the router's schemas) before the baseline.
    for _ in 0..20 {
        let _ = open_session(&c, &url).await.text().await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let start = rss_kib(pid);
    let mut figures = vec![("start".to_string(), start)];
    const PER_ROUND: usize = 1500;
    for round in 1..=3 {
        let opened = futures::stream::iter(0..PER_ROUND)
            .map(|_| {
                let c = c.clone();
                let url = url.clone();
                async move { open_session(&c, &url).await.status() == StatusCode::OK }
            })
            .buffer_unordered(16)
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await;
        assert_eq!(opened, PER_ROUND, "round {round}");
        figures.push((
            format!("round {round}: {PER_ROUND} sessions open"),
            rss_kib(pid),
        ));
        // Idle sessions expire after 2 s; the heap is trimmed after they close.
        tokio::time::sleep(Duration::from_secs(8)).await;
        figures.push((format!("round {round}: after expiry"), rss_kib(pid)));
    }
    let report = figures
        .iter()
        .map(|(what, kib)| format!("{what}: {:.1} MiB", *kib as f64 / 1024.0))
        .collect::<Vec<_>>()
        .join("; ");
    eprintln!("RSS of serve --http: {report}");
    let end = figures.last().unwrap().1;
    let peak = figures.iter().map(|f| f.1).max().unwrap();
    assert!(peak > start, "{report}");
    assert!(
        end <= start + 16 * 1024 && end <= start * 3 / 2,
        "memory not returned: {report}"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_off_by_shutdown_get_a_jsonrpc_error_saying_so() {
    for era in ERAS {
        let (silent_addr, hold) = silent_endpoint().await;
        let scratch = Scratch::new();
        let server = HttpHarness::start(&scratch, "[http]\ndrain_timeout_secs = 1\n", &[]).await;
        let client = server.client(era).await;
        let started = std::time::Instant::now();
        let call_task = tokio::spawn(async move {
            let params = rmcp::model::CallToolRequestParams::new("check_cert").with_arguments(
                args(json!({ "targets": [silent_addr.to_string()], "timeout_ms": 20000 })),
            );
            let r = tokio::time::timeout(Duration::from_secs(15), client.call_tool(params)).await;
            (client, r)
        });
        while server.ctx.inflight.current() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "call never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.shutdown.cancel();
        let (client, r) = call_task.await.unwrap();
        let r = r.unwrap_or_else(|_| panic!("{era:?}: the cut-off call must be answered"));
        let e = r.expect_err("cut off before it finished");
        assert!(e.to_string().contains("shutting down"), "{era:?}: {e}");
        let _ = client.cancel().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), server.task).await;
        hold.abort();
    }
}
