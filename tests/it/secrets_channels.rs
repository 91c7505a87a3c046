//! The channels people read hold four more secrets: the SMTP password, the Slack webhook
//! URL, the Twilio auth token and the PagerDuty routing key. The real binary runs `serve`
//! with a monitor that fires at once, routed to all four channels, against receivers that
//! refuse it and echo what they were sent back in their error answers (as real providers
//! sometimes do). Nothing it wrote may hold a secret: not the trace log, not the failed
//! deliveries' error text (in the store, in `alerts show`, in alert_status), not the
//! metrics, not `config show`, and not the raw SQLite file.

use std::time::Duration;

use crate::common::providers::{PD_KEY, Provider, Providers, SLACK_PATH, TWILIO_SID, TWILIO_TOKEN};
use crate::common::sinks::Answer;
use crate::common::smtp::{SMTP_USER, SmtpMode, SmtpServer};
use crate::common::*;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tokio::io::AsyncReadExt;

/// Not the server's password: AUTH fails, and the refusal must not quote it.
const WRONG_SMTP_PASSWORD: &str = "Wr0ng-Sm7p-Pa55-c0ffee";

fn config(providers: &Providers, smtp: &SmtpServer, state: &std::path::Path) -> String {
    format!(
        r#"
state_dir = "{state}"

[[channels]]
name = "mail"
kind = "email"
host = "127.0.0.1"
port = {port}
tls = "starttls"
ca_file = "{ca}"
username = "{SMTP_USER}"
password_env = "T_SMTP_PASSWORD"
from = "secops-mcp <alerts@example.test>"
to = ["oncall@example.test"]
timeout_ms = 5000

[[channels]]
name = "chat"
kind = "slack"
url_env = "T_SLACK_URL"

[[channels]]
name = "phones"
kind = "sms"
base_url = "{base}"
account_sid = "{TWILIO_SID}"
auth_token_env = "T_TWILIO_TOKEN"
from = "+15005550006"
to = ["+15551230001"]

[[channels]]
name = "pager"
kind = "pagerduty"
base_url = "{base}"
routing_key_env = "T_PD_KEY"

[routing]
info = ["log"]
warning = ["log"]
critical = ["log", "mail", "chat", "phones", "pager"]
emergency = ["log", "mail", "chat", "phones", "pager"]

[[monitors]]
name = "closed-port"
kind = "uptime"
url = "http://127.0.0.1:1/health"
every = "5s"
group_wait = "0s"
"#,
        state = state.display(),
        port = smtp.port,
        ca = smtp.ca_file.display(),
        base = providers.base(),
    )
}

/// Error answers that quote the request back, secrets included.
fn echoing_refusals(providers: &Providers) {
    let many = |a: Answer| std::iter::repeat_n(a, 20);
    providers.push(
        Provider::Slack,
        many(Answer::Status(
            500,
            format!("internal error while posting to {SLACK_PATH}"),
        )),
    );
    providers.push(
        Provider::Twilio,
        many(Answer::Status(
            503,
            format!(r#"{{"code":20500,"message":"busy; token {TWILIO_TOKEN} accepted"}}"#),
        )),
    );
    providers.push(
        Provider::PagerDuty,
        many(Answer::Status(
            500,
            format!(r#"{{"status":"error","message":"routing_key {PD_KEY} unavailable"}}"#),
        )),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_secrets_never_appear_in_logs_errors_tool_output_metrics_or_the_store() {
    let Some(smtp) = SmtpServer::start(SmtpMode::Starttls).await else {
        return;
    };
    let providers = Providers::start().await;
    echoing_refusals(&providers);
    let slack_url = providers.slack_url();
    let secrets = [
        WRONG_SMTP_PASSWORD,
        slack_url.as_str(),
        SLACK_PATH,
        "sl4ckHookS3cret",
        TWILIO_TOKEN,
        PD_KEY,
    ];

    let scratch = Scratch::new();
    let tokens = scratch.write("tokens", &format!("{TEST_TOKEN} alice\n"));
    let cfg = scratch.write(
        "secops.toml",
        &config(&providers, &smtp, &scratch.state_dir()),
    );
    let base_cmd = |args: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
        c.arg("--config")
            .arg(&cfg)
            .args(args)
            .env("SECOPS_LOG", "trace")
            .env("SECOPS_HTTP_TOKENS_FILE", &tokens)
            .env("T_SMTP_PASSWORD", WRONG_SMTP_PASSWORD)
            .env("T_SLACK_URL", &slack_url)
            .env("T_TWILIO_TOKEN", TWILIO_TOKEN)
            .env("T_PD_KEY", PD_KEY)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        c
    };

    let mut child = base_cmd(&["serve", "--http", "127.0.0.1:0"])
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log_task = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => log.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        })
    };
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let text = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
            if let Some(pos) = text.find("secops-mcp listening on ") {
                let rest = &text[pos + "secops-mcp listening on ".len()..];
                if let Some(end) = rest.find('\n') {
                    return rest[..end].trim().to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("server start");

    // Every channel tried (and was refused) at least once, the SMTP login included.
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let tried = [Provider::Slack, Provider::Twilio, Provider::PagerDuty]
                .iter()
                .all(|p| !providers.received(*p).is_empty())
                && smtp.commands().contains("AUTH");
            if tried {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "not every channel was tried; smtp: {}; log: {}",
            smtp.commands(),
            String::from_utf8_lossy(&log.lock().unwrap())
        )
    });
    // Let the failures be recorded (the attempt rows) before reading them back.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut seen = String::new();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(TEST_TOKEN),
    );
    let client = connect(transport, ERAS[0]).await;
    let overview = call(&client, "alert_status", json!({})).await;
    seen.push_str(&serde_json::to_string(&overview).unwrap());
    let detail = call(&client, "alert_status", json!({ "alert_id": "ALR-1" })).await;
    let detail_text = serde_json::to_string(&detail).unwrap();
    seen.push_str(&detail_text);
    for uri in ["secops://config", "secops://alerts/firing"] {
        let res = client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
            .await
            .unwrap();
        seen.push_str(&serde_json::to_string(&res).unwrap());
    }
    client.cancel().await.unwrap();
    let metrics = reqwest::Client::new()
        .get(url.replace("/mcp", "/metrics"))
        .bearer_auth(TEST_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("chat"),
        "metrics name the channels: {metrics}"
    );
    seen.push_str(&metrics);

    child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), log_task).await;

    // The CLI's views of the same alert and of the configuration.
    for args in [
        &["alerts", "show", "ALR-1", "--json"][..],
        &["alerts", "list", "--json"][..],
        &["config", "check"][..],
    ] {
        let out = base_cmd(args).output().await.unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }

    // The failures were recorded, with what the receivers said (minus the secrets).
    // What each receiver said is kept, with the secret it echoed masked.
    for said in [
        "firing to chat: retry (HTTP 500: internal error while posting to ***)",
        "HTTP 503: Twilio error 20500: busy; token *** accepted",
        "HTTP 500: error: routing_key *** unavailable",
        "SMTP 535",
        "alerts:*** invalid",
    ] {
        assert!(detail_text.contains(said), "{said} in {detail_text}");
    }

    let log = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    let db = std::fs::read(scratch.state_dir().join("secops.db")).unwrap();
    let db = String::from_utf8_lossy(&db).to_string();
    for secret in secrets {
        if let Some(pos) = log.find(secret) {
            let start = log[..pos].rfind('\n').unwrap_or(0);
            panic!(
                "{secret} in the server log: {}",
                &log[start..(pos + 200).min(log.len())]
            );
        }
        if let Some(pos) = seen.find(secret) {
            panic!(
                "{secret} in tool output, resources, metrics or the CLI: {}",
                &seen[pos.saturating_sub(200)..(pos + 100).min(seen.len())]
            );
        }
        assert!(!db.contains(secret), "{secret} in the SQLite file");
    }
    assert!(log.contains("closed-port"), "the log did record the run");
}
