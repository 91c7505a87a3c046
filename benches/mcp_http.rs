//! MCP round trips over streamable HTTP on loopback, through rmcp's own HTTP client, for both
//! protocol eras (legacy sessions with `initialize`, and stateless 2026-07-28 with
//! `server/discover`), plus the idle and loaded memory of the real release binary.
//!
//! Run: `cargo bench --bench mcp_http`. Prints numbers next to the goals; asserts nothing
//! about timing. Client and server share this process and its 2 cores, so the in-process
//! numbers include the client's own cost.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientConfig, JsonObject, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientCacheConfig, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use tokio_util::sync::CancellationToken;

mod common;

use common::{Row, cores, cpu_seconds, hwm_kib, ms, percentile, print_table, rss_kib, verdict};
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::server::http::HttpServer;

const SEQUENTIAL_CALLS: usize = 2_000;
const WARMUP_CALLS: usize = 200;
const CONCURRENT_CLIENTS: usize = 32;
const LOAD_DURATION: Duration = Duration::from_secs(2);
/// The largest limit the config accepts (1..=1000000 per minute, with a burst of as many):
/// far above what the whole bench sends.
const RATE_LIMIT: &str = "1000000";

const GOAL_P50_MS: f64 = 1.0;
const GOAL_CALLS_PER_SEC: f64 = 10_000.0;
const GOAL_IDLE_RSS_MB: f64 = 15.0;

type Client = RunningService<RoleClient, ClientConfig>;

#[derive(Clone, Copy, PartialEq)]
enum Era {
    /// `initialize` handshake, `Mcp-Session-Id`, protocol 2025-11-25.
    Legacy,
    /// No handshake: `server/discover`, every request self-contained, protocol 2026-07-28.
    Stateless,
}

impl Era {
    fn name(self) -> &'static str {
        match self {
            Era::Legacy => "legacy session (2025-11-25)",
            Era::Stateless => "stateless (2026-07-28)",
        }
    }
}

#[derive(Clone, Copy)]
enum Call {
    /// `check_cert {"targets": []}`: the full tool path (routing, argument parsing,
    /// validation, metrics, tool-call log) ending in a quick `isError` argument error.
    CheckCertEmpty,
    ToolsList,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::CheckCertEmpty => "tools/call check_cert {targets:[]}",
            Call::ToolsList => "tools/list",
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    runtime.block_on(async {
        let state = tempfile::tempdir().expect("tempdir");
        let (addr, shutdown, server) = start_in_process_server(state.path()).await;
        let url = format!("http://{addr}/mcp");
        println!("in-process server at {url}");
        for era in [Era::Legacy, Era::Stateless] {
            for call in [Call::CheckCertEmpty, Call::ToolsList] {
                rows.push(sequential_latency(&url, era, call).await);
                rows.push(concurrent_throughput(&url, era, call).await);
            }
        }
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        rows.extend(binary_rss().await);
    });
    print_table("mcp_http", &rows);
}

/// The real HTTP server (auth/Origin/rate-limit layers included), no tokens, loopback.
async fn start_in_process_server(
    state_dir: &std::path::Path,
) -> (
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let env: BTreeMap<String, String> = [
        ("SECOPS_STATE_DIR", state_dir.to_str().expect("utf-8 path")),
        ("SECOPS_HTTP_RATE_LIMIT", RATE_LIMIT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_toml_str("", &env).expect("config");
    let ctx = AppContext::new(config, false).expect("context");
    let server = HttpServer::bind(ctx, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind");
    let addr = server.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    (addr, shutdown, task)
}

async fn connect(url: &str, era: Era) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_string()),
    );
    let client = match era {
        Era::Legacy => ClientConfig::default().serve(transport).await,
        Era::Stateless => {
            ClientConfig::default()
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
        }
    }
    .unwrap_or_else(|e| panic!("{} client cannot connect to {url}: {e}", era.name()));
    // Measure the server, never the client's response cache.
    client
        .set_response_cache_config(ClientCacheConfig::disabled())
        .await;
    client
}

fn negotiated(client: &Client) -> String {
    client
        .peer_info()
        .map(|i| i.protocol_version.to_string())
        .unwrap_or_else(|| "?".into())
}

/// One round trip; Err if the protocol failed or the answer was not what the call gives.
async fn call_once(client: &Client, call: Call) -> Result<(), String> {
    match call {
        Call::CheckCertEmpty => {
            let mut args = JsonObject::new();
            args.insert("targets".into(), serde_json::json!([]));
            let r = client
                .call_tool(CallToolRequestParams::new("check_cert").with_arguments(args))
                .await
                .map_err(|e| e.to_string())?;
            let text = r
                .content
                .first()
                .and_then(|c| c.as_text())
                .map(|t| t.text.as_str())
                .unwrap_or_default();
            if r.is_error == Some(true) && text.contains("targets") {
                Ok(())
            } else {
                Err(format!("unexpected check_cert answer: {r:?}"))
            }
        }
        Call::ToolsList => {
            let r = client.list_tools(None).await.map_err(|e| e.to_string())?;
            if r.tools.iter().any(|t| t.name == "check_cert") {
                Ok(())
            } else {
                Err("tools/list without check_cert".into())
            }
        }
    }
}

/// p50/p99 of sequential calls from one client.
async fn sequential_latency(url: &str, era: Era, call: Call) -> Row {
    let client = connect(url, era).await;
    let version = negotiated(&client);
    for _ in 0..WARMUP_CALLS {
        call_once(&client, call).await.expect("warm-up call");
    }
    let mut latencies = Vec::with_capacity(SEQUENTIAL_CALLS);
    for _ in 0..SEQUENTIAL_CALLS {
        let t = Instant::now();
        call_once(&client, call).await.expect("call");
        latencies.push(t.elapsed());
    }
    let _ = client.cancel().await;
    latencies.sort();
    let p50 = ms(percentile(&latencies, 0.50));
    let p99 = ms(percentile(&latencies, 0.99));
    println!(
        "{:<28} {:<36} 1 client, {SEQUENTIAL_CALLS} sequential calls: p50 {p50:.3} ms, p99 {p99:.3} ms (negotiated {version})",
        era.name(),
        call.name()
    );
    Row {
        what: format!("{} / {} / 1 client", era.name(), call.name()),
        value: format!("p50 {p50:.3} ms, p99 {p99:.3} ms"),
        goal: verdict(p50 < GOAL_P50_MS, format!("p50 < {GOAL_P50_MS} ms")),
    }
}

/// Calls per second from 32 clients calling back to back for a fixed time.
async fn concurrent_throughput(url: &str, era: Era, call: Call) -> Row {
    let clients = connect_many(url, era, call).await;
    let load = run_load(clients, call).await;
    println!(
        "{:<28} {:<36} {CONCURRENT_CLIENTS} clients: {:.0} calls/s over {:.1} s, p99 {:.2} ms, {} errors",
        era.name(),
        call.name(),
        load.rate,
        load.seconds,
        load.p99_ms,
        load.errors
    );
    Row {
        what: format!(
            "{} / {} / {CONCURRENT_CLIENTS} clients",
            era.name(),
            call.name()
        ),
        value: format!(
            "{:.0} calls/s (p99 {:.2} ms, {} errors)",
            load.rate, load.p99_ms, load.errors
        ),
        goal: verdict(
            load.rate > GOAL_CALLS_PER_SEC && load.errors == 0,
            format!("> {GOAL_CALLS_PER_SEC:.0} calls/s"),
        ),
    }
}

/// `CONCURRENT_CLIENTS` connected and warmed-up clients.
async fn connect_many(url: &str, era: Era, call: Call) -> Vec<Client> {
    let mut clients = Vec::with_capacity(CONCURRENT_CLIENTS);
    for _ in 0..CONCURRENT_CLIENTS {
        let client = connect(url, era).await;
        for _ in 0..10 {
            call_once(&client, call).await.expect("warm-up call");
        }
        clients.push(client);
    }
    clients
}

struct Load {
    calls: usize,
    errors: usize,
    seconds: f64,
    rate: f64,
    p99_ms: f64,
}

/// Every client calls back to back until `LOAD_DURATION` is over; then they disconnect.
async fn run_load(clients: Vec<Client>, call: Call) -> Load {
    let started = Instant::now();
    let end = started + LOAD_DURATION;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < end {
                    let t = Instant::now();
                    match call_once(&client, call).await {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (client, latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut clients = Vec::new();
    for t in tasks {
        let (c, l, e) = t.await.expect("client task");
        clients.push(c);
        latencies.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    for c in clients {
        let _ = c.cancel().await;
    }
    latencies.sort();
    Load {
        calls: latencies.len(),
        errors,
        seconds,
        rate: latencies.len() as f64 / seconds,
        p99_ms: ms(percentile(&latencies, 0.99)),
    }
}

/// The real release binary in its own process: RSS after start, throughput and CPU per call
/// on each side of the socket under the 32-client load (both eras), RSS after the load; plus
/// `sleep`'s RSS as the floor any process pays.
async fn binary_rss() -> Vec<Row> {
    let bin = env!("CARGO_BIN_EXE_secops-mcp");
    let state = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::spawn(bin, state.path());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(server.pid()).unwrap_or(0);
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "release binary {bin}: RSS {:.1} MiB idle after start",
        mb(idle)
    );
    let mut rows = vec![Row {
        what: "secops-mcp serve --http: RSS idle after start".into(),
        value: format!("{:.1} MiB", mb(idle)),
        goal: verdict(
            mb(idle) < GOAL_IDLE_RSS_MB,
            format!("< {GOAL_IDLE_RSS_MB} MiB"),
        ),
    }];

    for era in [Era::Legacy, Era::Stateless] {
        let call = Call::CheckCertEmpty;
        let clients = connect_many(&server.url, era, call).await;
        let server_cpu0 = cpu_seconds(&server.pid().to_string());
        let client_cpu0 = cpu_seconds("self");
        let load = run_load(clients, call).await;
        // CPU per call on each side of the socket: what the server alone would need.
        let per_call_us = |cpu: f64| cpu / load.calls.max(1) as f64 * 1e6;
        let server_us = per_call_us(cpu_seconds(&server.pid().to_string()) - server_cpu0);
        let client_us = per_call_us(cpu_seconds("self") - client_cpu0);
        let capacity = cores() as f64 * 1e6 / server_us.max(f64::MIN_POSITIVE);
        println!(
            "release binary, {} {}, {CONCURRENT_CLIENTS} clients (server logging to a pipe): \
             {:.0} calls/s, {} errors; CPU per call: server {server_us:.0} us, client {client_us:.0} us; \
             server alone on {} cores: {capacity:.0} calls/s",
            era.name(),
            call.name(),
            load.rate,
            load.errors,
            cores()
        );
        rows.push(Row {
            what: format!("separate process / {} / {CONCURRENT_CLIENTS} clients", era.name()),
            value: format!(
                "{:.0} calls/s; server CPU {server_us:.0} us/call (client {client_us:.0}) = {capacity:.0} calls/s if the server had all {} cores",
                load.rate,
                cores()
            ),
            goal: verdict(
                capacity > GOAL_CALLS_PER_SEC,
                format!("server alone > {GOAL_CALLS_PER_SEC:.0} calls/s"),
            ),
        });
    }

    let loaded = rss_kib(server.pid()).unwrap_or(0);
    let peak = hwm_kib(server.pid()).unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rested = rss_kib(server.pid()).unwrap_or(0);
    server.stop();

    let mut sleep = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
    std::thread::sleep(Duration::from_millis(200));
    let sleep_rss = rss_kib(sleep.id()).unwrap_or(0);
    let _ = sleep.kill();
    let _ = sleep.wait();

    println!(
        "release binary RSS: after load {:.1} MiB (peak {:.1} MiB), 1 s later {:.1} MiB; `sleep` {:.1} MiB",
        mb(loaded),
        mb(peak),
        mb(rested),
        mb(sleep_rss)
    );
    rows.push(Row {
        what: "secops-mcp serve --http: RSS after the loads".into(),
        value: format!(
            "{:.1} MiB (peak {:.1}, 1 s later {:.1})",
            mb(loaded),
            mb(peak),
            mb(rested)
        ),
        goal: "(no goal)".into(),
    });
    rows.push(Row {
        what: "baseline: `sleep 5` RSS".into(),
        value: format!("{:.1} MiB", mb(sleep_rss)),
        goal: "(floor of any process)".into(),
    });
    rows
}

/// The release binary serving HTTP on a free loopback port; killed on drop.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn spawn(bin: &str, state_dir: &std::path::Path) -> Self {
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SECOPS_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .args(["serve", "--http", "127.0.0.1:0"])
            .env("SECOPS_STATE_DIR", state_dir)
            .env("SECOPS_HTTP_RATE_LIMIT", RATE_LIMIT)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        // Drain stderr for the process's whole life (it logs every call).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("secops-mcp listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("{bin} did not print its address within 15 s");
            }
        };
        Self { child, url }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
