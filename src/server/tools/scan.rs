//! The scan_host adapter: the per-caller rate limit, and progress notifications while the
//! scan runs (when the client asked for them).

use rmcp::model::{CallToolResult, JsonObject, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::{arg_error, parse_args, reply, tool_error};
use crate::checks::scan::{ScanArgs, ScanReport};
use crate::server::SecopsServer;

const SCAN_HOST_DESC: &str = include_str!("../../../tools/scan_host.md");

#[tool_router(router = scan_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "scan_host",
        description = SCAN_HOST_DESC,
        input_schema = crate::server::schema::input::<ScanArgs>(),
        output_schema = crate::server::schema::output::<ScanReport>(),
        annotations(
            title = "Scan a host's TCP ports",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn scan_host(
        &self,
        rctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        let args: ScanArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return arg_error(&e),
        };
        let plan = match args.validate() {
            Ok(p) => p,
            Err(e) => return arg_error(&e),
        };
        let caller = self.caller(&rctx);
        if let Err(msg) = self.context().scan_limiter.check(&caller.0) {
            return tool_error(&msg);
        }
        // Progress: the engine reports every 100 ms; a task forwards the latest count to the
        // client at most every 250 ms (only when the client asked for progress).
        let (tx, mut rx) = tokio::sync::watch::channel((0usize, 0usize));
        let forwarder = rctx.meta.get_progress_token().map(|token| {
            let peer = rctx.peer.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let (done, total) = *rx.borrow_and_update();
                    let note = ProgressNotificationParam::new(token.clone(), done as f64)
                        .with_total(total as f64)
                        .with_message(format!("{done}/{total} ports probed"));
                    if peer.notify_progress(note).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            })
        });
        let progress = move |done: usize, total: usize| {
            let _ = tx.send((done, total));
        };
        let deps = self.context().scan_deps();
        let result = crate::checks::scan::run_plan(&deps, &plan, &rctx.ct, &progress).await;
        drop(progress);
        if let Some(f) = forwarder {
            // Let the last count go out, but never hold the result for a slow client.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(300), f).await;
        }
        reply(result)
    }
}
