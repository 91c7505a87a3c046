//! The MCP side of the harness: the real server as a child process over stdio or in-process
//! over HTTP, rmcp's client in either protocol era, tool calls with timeouts, and a client
//! handler that records progress and log notifications.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, JsonObject, ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::server::http::HttpServer;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Scratch;

pub type Client = RunningService<RoleClient, ClientConfig>;

/// The two MCP protocol eras rmcp supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25: `initialize` handshake and (over HTTP) sessions.
    Legacy,
    /// 2026-07-28: `server/discover`, stateless per-request metadata.
    Stateless,
}

pub const ERAS: [Era; 2] = [Era::Legacy, Era::Stateless];

pub const TEST_TOKEN: &str = "test-token-0123456789abcdef";

pub async fn connect<T, E, A>(transport: T, era: Era) -> Client
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    connect_with(ClientConfig::default(), transport, era).await
}

/// Connect with any client handler (one that answers elicitation, records notes, ...).
pub async fn connect_with<H, T, E, A>(
    handler: H,
    transport: T,
    era: Era,
) -> RunningService<RoleClient, H>
where
    H: rmcp::ClientHandler,
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let fut = async {
        match era {
            Era::Legacy => handler.serve(transport).await.expect("legacy initialize"),
            Era::Stateless => handler
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .expect("2026-07-28 discover"),
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), fut)
        .await
        .expect("client connect timed out")
}

/// Spawn `secops-mcp serve` over stdio with `env` and connect in `era`.
pub async fn stdio_client(env: &BTreeMap<String, String>, era: Era) -> Client {
    stdio_client_args(env, &["serve"], era).await
}

pub fn server_command(env: &BTreeMap<String, String>, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
    cmd.args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// Spawn the binary with `args` (e.g. `serve --demo`) over stdio and connect in `era`.
pub async fn stdio_client_args(env: &BTreeMap<String, String>, args: &[&str], era: Era) -> Client {
    let (transport, _stderr) = TokioChildProcess::builder(server_command(env, args))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn secops-mcp");
    connect(transport, era).await
}

/// Like [`stdio_client`], with the server's stderr (its log) written to `log_file`.
pub async fn stdio_client_logging(env: &BTreeMap<String, String>, log_file: &Path) -> Client {
    let file = std::fs::File::create(log_file).expect("log file");
    let (transport, _stderr) = TokioChildProcess::builder(server_command(env, &["serve"]))
        .stderr(std::process::Stdio::from(file))
        .spawn()
        .expect("spawn secops-mcp serve");
    connect(transport, Era::Legacy).await
}

/// An in-process HTTP server with a tokens file and extra TOML config.
pub struct HttpHarness {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub ctx: Arc<AppContext>,
}

impl HttpHarness {
    pub async fn start(scratch: &Scratch, toml: &str, extra_env: &[(&str, &str)]) -> Self {
        let mut env = scratch.env();
        let tokens = scratch.write("tokens", &format!("{TEST_TOKEN} alice\n"));
        env.insert(
            "SECOPS_HTTP_TOKENS_FILE".into(),
            tokens.to_string_lossy().to_string(),
        );
        for (k, v) in extra_env {
            env.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_toml_str(toml, &env).expect("config");
        let ctx = AppContext::new(config, false).expect("context");
        let server = HttpServer::bind(ctx.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind");
        let addr = server.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Self {
            addr,
            shutdown,
            task,
            ctx,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub async fn client(&self, era: Era) -> Client {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(self.url()).auth_header(TEST_TOKEN),
        );
        connect(transport, era).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(40), self.task).await;
    }
}

pub fn args(v: Value) -> JsonObject {
    v.as_object().cloned().expect("arguments must be an object")
}

pub async fn call<S: rmcp::service::Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args(arguments));
    tokio::time::timeout(std::time::Duration::from_secs(30), client.call_tool(params))
        .await
        .expect("tool call timed out")
        .expect("tool call failed at the protocol level")
}

/// All text content of a result, joined.
pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compare the listed tools named by `keep` (all when `None`), sorted by name, with the
/// reviewed snapshot `tests/snapshots/{name}.snap`: names, titles, descriptions, schemas and
/// annotations. An interface change is a reviewed diff of that file.
pub fn assert_tool_surface(name: &str, tools: &[rmcp::model::Tool], keep: Option<&[&str]>) {
    let mut surface: Vec<Value> = tools
        .iter()
        .filter(|t| keep.is_none_or(|k| k.contains(&t.name.as_ref())))
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "title": t.title,
                "description": t.description,
                "inputSchema": t.input_schema,
                "outputSchema": t.output_schema,
                "annotations": t.annotations,
            })
        })
        .collect();
    surface.sort_by_key(|t| t["name"].as_str().unwrap_or_default().to_string());
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(name, surface);
    });
}

/// (progress, total) of one progress notification.
pub type Progress = (f64, Option<f64>);

/// A client handler that records progress notifications and MCP log messages
/// (logger, text) the server sends during a call.
#[derive(Clone, Default)]
pub struct Recorder {
    progress: Arc<Mutex<Vec<Progress>>>,
    logs: Arc<Mutex<Vec<(String, String)>>>,
}

impl Recorder {
    pub fn progress(&self) -> Vec<Progress> {
        self.progress.lock().unwrap().clone()
    }
    pub fn logs(&self) -> Vec<(String, String)> {
        self.logs.lock().unwrap().clone()
    }
}

#[allow(deprecated)] // MCP logging: deprecated in the 2026-07-28 era, used in 2025-11-25
impl rmcp::ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.progress
            .lock()
            .unwrap()
            .push((params.progress, params.total));
    }

    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push((
            params.logger.unwrap_or_default(),
            params.data.as_str().unwrap_or_default().to_string(),
        ));
    }
}
