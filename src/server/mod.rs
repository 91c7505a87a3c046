//! The only code that knows MCP (rmcp): the `SecopsServer` handler with its tool router,
//! prompts and resources, shared by the stdio and the streamable HTTP transports.

pub mod auth;
mod confirm;
pub mod http;
pub mod jsonrpc;
mod logging;
pub mod prompts;
pub mod resources;
pub mod schema;
pub mod stdio;
pub mod tools;

use std::sync::Arc;
use std::time::Instant;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::calllog;
use crate::context::AppContext;
use crate::store::ToolCallRecord;

/// Who is calling: the HTTP principal named by the bearer token, or `stdio`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

pub const SERVER_NAME: &str = env!("CARGO_PKG_NAME");
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

const INSTRUCTIONS: &str = include_str!("../../tools/INSTRUCTIONS.md");

#[derive(Clone)]
pub struct SecopsServer {
    ctx: Arc<AppContext>,
    /// Built once per process: the HTTP transport creates a handler per session (and per
    /// request in the stateless era), and building the router generates every schema.
    tool_router: Arc<ToolRouter<Self>>,
    /// Destructive tools: listed and callable only when the gate enables them.
    remediation_router: Arc<ToolRouter<Self>>,
    /// Caller identity for transports without per-request principals (stdio).
    default_caller: Caller,
    /// The least severe operator note sent as `notifications/message` (`logging/setLevel`;
    /// per session: each session has its own handler).
    log_level: Arc<std::sync::Mutex<calllog::Level>>,
}

impl SecopsServer {
    pub fn new(ctx: Arc<AppContext>, default_caller: Caller) -> Self {
        Self {
            ctx,
            tool_router: shared_router(),
            remediation_router: shared_remediation_router(),
            default_caller,
            log_level: Arc::new(std::sync::Mutex::new(logging::DEFAULT_LEVEL)),
        }
    }

    pub fn context(&self) -> &Arc<AppContext> {
        &self.ctx
    }

    /// The caller of this request: the HTTP principal the auth layer attached to the
    /// request, else the transport's default (`stdio`).
    pub fn caller(&self, ctx: &RequestContext<RoleServer>) -> Caller {
        ctx.extensions
            .get::<::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
            .unwrap_or_else(|| self.default_caller.clone())
    }
}

impl SecopsServer {
    /// Route one tools/call to its router. Disabled destructive tools are refused by name
    /// (and the refusal audited).
    async fn dispatch(
        &self,
        tool: &str,
        caller: &Caller,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.remediation_router.has_route(tool) {
            match self.ctx.gate.tool_enabled(tool) {
                Ok(()) => {
                    let tcc = ToolCallContext::new(self, request, context);
                    self.remediation_router.call(tcc).await
                }
                Err(e) => {
                    let args = serde_json::Value::Object(request.arguments.unwrap_or_default());
                    let call = crate::remediation::Call::new(tool, &caller.0, &args);
                    let e = self.ctx.gate.refuse(&call, e);
                    Ok(tools::tool_error(&e.to_string()).into())
                }
            }
        } else {
            let tcc = ToolCallContext::new(self, request, context);
            self.tool_router.call(tcc).await
        }
    }
}

/// The metrics label and log name for a tool name no router knows.
pub const UNKNOWN_TOOL: &str = "(unknown)";

impl SecopsServer {
    /// The tools this server lists: every read-only tool, and the destructive ones the gate
    /// enables.
    fn listed_tools(&self) -> Vec<rmcp::model::Tool> {
        let mut tools = self.tool_router.list_all();
        tools.extend(
            self.remediation_router
                .list_all()
                .into_iter()
                .filter(|t| self.ctx.gate.tool_enabled(&t.name).is_ok()),
        );
        tools
    }
}

/// `unknown tool `x`; did you mean `y`? available tools: a, b, c` (the name sanitised: it
/// is caller text).
pub fn unknown_tool_message(name: &str, available: &[String]) -> String {
    let shown = crate::util::sanitize_untrusted(name.as_bytes(), 64);
    let lower = name.to_ascii_lowercase();
    let close = available
        .iter()
        .map(|t| (strsim::damerau_levenshtein(&lower, t), t))
        .filter(|(d, t)| *d <= 3.max(t.len() / 4) && *d < t.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, t)| t);
    let mut msg = format!("unknown tool `{shown}`");
    if let Some(t) = close {
        msg.push_str(&format!("; did you mean `{t}`?"));
    }
    msg.push_str(&format!(" Available tools: {}", available.join(", ")));
    msg
}

fn shared_router() -> Arc<ToolRouter<SecopsServer>> {
    static ROUTER: std::sync::OnceLock<Arc<ToolRouter<SecopsServer>>> = std::sync::OnceLock::new();
    ROUTER
        .get_or_init(|| {
            Arc::new(
                SecopsServer::cert_router()
                    + SecopsServer::health_router()
                    + SecopsServer::scan_router()
                    + SecopsServer::host_router()
                    + SecopsServer::incident_router()
                    + SecopsServer::alert_router(),
            )
        })
        .clone()
}

fn shared_remediation_router() -> Arc<ToolRouter<SecopsServer>> {
    static ROUTER: std::sync::OnceLock<Arc<ToolRouter<SecopsServer>>> = std::sync::OnceLock::new();
    ROUTER
        .get_or_init(|| {
            Arc::new(SecopsServer::remediation_router() + SecopsServer::approve_router())
        })
        .clone()
}

impl ServerHandler for SecopsServer {
    // `enable_logging` is deprecated with the 2026-07-28 era; see `logging.rs`.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_logging()
                .build(),
        )
        .with_server_info(
            Implementation::new(SERVER_NAME, SERVER_VERSION)
                .with_title("secops-mcp: Wazuh operations and defence"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _inflight = self.ctx.inflight.enter();
        let started = Instant::now();
        let tool = request.name.to_string();
        let caller = self.caller(&context);
        if !self.tool_router.has_route(&tool) && !self.remediation_router.has_route(&tool) {
            // Unknown names are caller-controlled text: one metrics series, one log name.
            self.ctx.metrics.observe_call(
                UNKNOWN_TOOL,
                "unknown_tool",
                started.elapsed().as_secs_f64(),
            );
            let available: Vec<String> = self
                .listed_tools()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            return Err(ErrorData::invalid_params(
                unknown_tool_message(&tool, &available),
                None,
            ));
        }
        let detail = tools::call_detail(&tool, request.arguments.as_ref());
        // Operator notes of this call go to the client as notifications/message.
        let (notes, rx) = tokio::sync::mpsc::unbounded_channel::<calllog::Note>();
        let min_level = *self.log_level.lock().unwrap_or_else(|p| p.into_inner());
        let forwarder = tokio::spawn(logging::forward_notes(context.peer.clone(), rx, min_level));
        let result = calllog::scope(notes, self.dispatch(&tool, &caller, request, context)).await;
        // Let the notes go out before the result, but never hold the result for long.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), forwarder).await;
        let elapsed = started.elapsed();
        let outcome = tools::outcome_of(&result);
        self.ctx
            .metrics
            .observe_call(&tool, outcome, elapsed.as_secs_f64());
        // The `self` monitor: a tool that failed is an error, invalid arguments are not.
        self.ctx
            .selfwatch
            .tool_call(matches!(outcome, "error" | "protocol_error"), elapsed);
        self.ctx.store.record_tool_call(ToolCallRecord {
            ts: crate::util::now_rfc3339(),
            tool: tool.clone(),
            caller: caller.0.clone(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            outcome: outcome.to_string(),
            detail,
        });
        tracing::info!(tool = %tool, caller = %caller.0, outcome, ms = elapsed.as_millis() as u64, "tool call");
        result
    }

    async fn set_level(
        &self,
        request: logging::SetLevelParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner()) = logging::level_of(&request);
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        Ok(rmcp::model::ListToolsResult::with_all_items(
            self.listed_tools(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        match self.remediation_router.get(name) {
            Some(t) if self.ctx.gate.tool_enabled(name).is_ok() => Some(t.clone()),
            Some(_) => None,
            None => self.tool_router.get(name).cloned(),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        prompts::get(&request.name, request.arguments.as_ref()).map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list(
            &self.ctx,
        )))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(&self.ctx, &request.uri).map(Into::into)
    }
}
