//! wazuh_health end to end against the built-in simulator: p50/p99 over 200 MCP calls with
//! every Wazuh component, then with one component (the indexer) slowed by 1 s, to show the
//! fan-out: the total follows the slowest component, not the sum of all of them.
//!
//! Run: `cargo bench --bench wazuh_health`. Prints numbers; asserts nothing about timing.

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod common;

use common::harness::SimEnv;
use common::percentile;
use secops_mcp::checks::wazuh_health::COMPONENTS;
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::server::http::HttpServer;
use wazuh_sim::SimConfig;

const CALLS: usize = 200;
/// The components that talk to Wazuh (all but host and containers).
const WAZUH: &[&str] = COMPONENTS.split_at(6).0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let s = SimEnv::start(SimConfig {
        // Wazuh's own 300/min would throttle 200 back-to-back health checks.
        rate_limit_per_minute: 0,
        ..SimConfig::default()
    })
    .await;
    let sim = &s.sim;
    let env = s.child_env(
        &s.vars(),
        &[
            ("SECOPS_HTTP_RATE_LIMIT", "1000000"),
            ("SECOPS_LOG", "warn"),
        ],
    );
    let config = Config::from_toml_str("[wazuh]\nrequests_per_minute = 1000000\n", &env)?;
    let ctx = AppContext::new(config, false)?;
    let server = HttpServer::bind(ctx, "127.0.0.1:0".parse()?).await?;
    let addr = server.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp")),
    );
    let client = ClientConfig::default().serve(transport).await?;

    let call = |include: serde_json::Value| {
        let client = &client;
        async move {
            let args = json!({ "include": include }).as_object().cloned().unwrap();
            let started = Instant::now();
            let r = client
                .call_tool(CallToolRequestParams::new("wazuh_health").with_arguments(args))
                .await
                .expect("call");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let status = r
                .structured_content
                .as_ref()
                .map(|s| s["status"].to_string());
            (ms, status.unwrap_or_default())
        }
    };

    let mut rows = Vec::new();
    for (label, include, n) in [
        (
            "all Wazuh components (manager, cluster, agents, indexer, logs, certificates)",
            json!(WAZUH),
            CALLS,
        ),
        (
            "every component incl. host (CPU sampling takes 200 ms) and containers",
            json!(null),
            20,
        ),
    ] {
        let _ = call(include.clone()).await; // warm-up (login)
        let mut lat = Vec::with_capacity(n);
        let mut status = String::new();
        for _ in 0..n {
            let (ms, s) = call(include.clone()).await;
            lat.push(ms);
            status = s;
        }
        lat.sort_by(f64::total_cmp);
        rows.push(format!(
            "{label:<80} {n:>4} calls  p50 {:>7.1} ms  p99 {:>7.1} ms  (verdict {status})",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        ));
    }

    // Fan-out: slow one component by 1 s.
    sim.faults().set_indexer_latency(Duration::from_secs(1));
    let mut lat = Vec::new();
    for _ in 0..10 {
        lat.push(call(json!(WAZUH)).await.0);
    }
    lat.sort_by(f64::total_cmp);
    let slowed_p50 = percentile(&lat, 0.5);
    sim.faults().set_indexer_latency(Duration::ZERO);
    sim.faults().set_latency(Duration::from_secs(1));
    let before = sim.request_count();
    let (all_slow, _) = call(json!(WAZUH)).await;
    let requests = sim.request_count() - before;
    sim.faults().set_latency(Duration::ZERO);
    rows.push(format!(
        "{:<80} {:>4} calls  p50 {slowed_p50:>7.1} ms  (sum of components would be > 2000 ms: indexer health + certificate)",
        "indexer slowed by 1 s", 10
    ));
    rows.push(format!(
        "{:<80} {:>4} call   {all_slow:>7.1} ms for {requests} manager requests of 1 s each (sequential: {} ms)",
        "every manager API response slowed by 1 s", 1, requests * 1000
    ));

    println!(
        "\ncommand: cargo bench --bench wazuh_health   (release, simulator in-process over HTTPS, MCP over HTTP)"
    );
    for r in rows {
        println!("{r}");
    }
    client.cancel().await?;
    shutdown.cancel();
    let _ = task.await;
    s.sim.stop().await;
    Ok(())
}
