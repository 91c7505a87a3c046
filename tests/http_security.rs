//! The HTTP transport's guards, probed with raw requests: bearer auth (401 with a
//! `WWW-Authenticate: Bearer` challenge), Origin and Host allowlists (403), body cap (413),
//! per-caller rate limit (429 with `Retry-After`), `/healthz` and `/metrics`, and refusing to
//! bind a non-loopback address without tokens.

mod common;

use std::time::Duration;

use common::*;
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

async fn shutdown_drains(era: Era) {
    // A TLS endpoint that accepts and never answers: check_cert waits for its timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
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
