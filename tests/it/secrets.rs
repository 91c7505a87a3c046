//! Secrets never leave the process: not in logs (even at trace level), not in tool output,
//! not in resources or metrics. Runs the real binary and greps everything it wrote.

use std::time::Duration;

use crate::common::*;
use rmcp::model::ReadResourceRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tokio::io::AsyncReadExt;

const WAZUH_PASSWORD: &str = "Wz-Pass-4f9a1c!";
const INDEXER_PASSWORD: &str = "Ix-Pass-77be02!";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_output_or_metrics() {
    let scratch = Scratch::new();
    let tokens = scratch.write("tokens", &format!("{TEST_TOKEN} alice\n"));
    let pw_file = scratch.write("indexer-pw", &format!("{INDEXER_PASSWORD}\n"));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .env("SECOPS_LOG", "trace")
        .env("SECOPS_HTTP_TOKENS_FILE", &tokens)
        .env("SECOPS_WAZUH_URL", "https://127.0.0.1:9")
        .env("SECOPS_WAZUH_PASSWORD", WAZUH_PASSWORD)
        .env("SECOPS_INDEXER_URL", "https://127.0.0.1:9")
        .env("SECOPS_INDEXER_PASSWORD_FILE", &pw_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Read stderr until the listen line, keeping everything.
    let mut log = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stderr.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "server exited early: {}",
                String::from_utf8_lossy(&log)
            );
            log.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&log);
            if let Some(pos) = text.find("secops-mcp listening on ") {
                let rest = &text[pos + "secops-mcp listening on ".len()..];
                if let Some(end) = rest.find('\n') {
                    return rest[..end].trim().to_string();
                }
            }
        }
    })
    .await
    .expect("server start");
    let log_task = tokio::spawn(async move {
        let mut rest = Vec::new();
        let _ = stderr.read_to_end(&mut rest).await;
        rest
    });

    let mut seen = String::new();
    for era in ERAS {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(TEST_TOKEN),
        );
        let client = connect(transport, era).await;
        let r = call(
            &client,
            "check_cert",
            json!({ "targets": ["127.0.0.1:9"], "timeout_ms": 500 }),
        )
        .await;
        seen.push_str(&serde_json::to_string(&r).unwrap());
        let r = call(
            &client,
            "check_cert",
            json!({ "targets": [WAZUH_PASSWORD] }),
        )
        .await;
        // The agent's own argument may be echoed back to it; that is not a leak of ours.
        let _ = r;
        for uri in ["secops://config", "secops://tool-calls/recent"] {
            let res = client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
                .unwrap();
            seen.push_str(&serde_json::to_string(&res).unwrap());
        }
        client.cancel().await.unwrap();
    }
    let metrics = reqwest::Client::new()
        .get(url.replace("/mcp", "/metrics"))
        .bearer_auth(TEST_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    seen.push_str(&metrics);

    // Stop the server and collect the rest of its log.
    child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    log.extend(
        tokio::time::timeout(Duration::from_secs(10), log_task)
            .await
            .unwrap()
            .unwrap(),
    );
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.contains("tool call"),
        "trace log should record calls: {log}"
    );

    for secret in [TEST_TOKEN, WAZUH_PASSWORD, INDEXER_PASSWORD] {
        if let Some(pos) = log.find(secret) {
            let start = log[..pos].rfind('\n').unwrap_or(0);
            panic!(
                "secret in server log: {}",
                &log[start..(pos + 200).min(log.len())]
            );
        }
        let in_output = seen.contains(secret);
        assert!(!in_output, "secret in tool output, resources or metrics");
    }
    // The tool-call log in SQLite never holds arguments either.
    let db = std::fs::read(scratch.state_dir().join("secops.db")).unwrap_or_default();
    let db = String::from_utf8_lossy(&db);
    assert!(!db.contains(WAZUH_PASSWORD) && !db.contains(TEST_TOKEN));
}
