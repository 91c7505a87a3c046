//! MCP adapters of the destructive tools (rotate_credentials, block_ip) and of
//! approve_change: arguments -> remediation::flow (gate, human through server/confirm.rs,
//! action, audit) -> structured report. Listed only when enabled.

use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::model::{CallToolResponse, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use crate::remediation::block_ip::{BlockArgs, BlockIp, BlockOutput};
use crate::remediation::credentials::{RotateArgs, RotateCredentials, RotateOutput};
use crate::remediation::flow::{self, Done};
use crate::remediation::gate::{ApproveArgs, ApproveOutput};
use crate::remediation::{Outcome, Remediation};
use crate::server::SecopsServer;
use crate::server::confirm::McpHuman;
use crate::server::schema;
use crate::server::tools::{parse_args, structured, tool_error};

const ROTATE_DESC: &str = include_str!("../../../tools/rotate_credentials.md");
const BLOCK_IP_DESC: &str = include_str!("../../../tools/block_ip.md");
const APPROVE_DESC: &str = include_str!("../../../tools/approve_change.md");

#[tool_router(router = remediation_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "rotate_credentials",
        description = ROTATE_DESC,
        input_schema = schema::input::<RotateArgs>(),
        output_schema = schema::output::<RotateOutput>(),
        annotations(
            title = "Rotate a credential",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn rotate_credentials(
        &self,
        args: JsonObject,
        context: RequestContext<RoleServer>,
        state: RequestState,
        responses: InputResponses,
    ) -> CallToolResponse {
        self.remediate::<RotateCredentials>(args, &context, state, responses)
            .await
    }

    #[tool(
        name = "block_ip",
        description = BLOCK_IP_DESC,
        input_schema = schema::input::<BlockArgs>(),
        output_schema = schema::output::<BlockOutput>(),
        annotations(
            title = "Block an IP address on agents",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn block_ip(
        &self,
        args: JsonObject,
        context: RequestContext<RoleServer>,
        state: RequestState,
        responses: InputResponses,
    ) -> CallToolResponse {
        self.remediate::<BlockIp>(args, &context, state, responses)
            .await
    }
}

#[tool_router(router = approve_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "approve_change",
        description = APPROVE_DESC,
        input_schema = schema::input::<ApproveArgs>(),
        output_schema = schema::output::<ApproveOutput>(),
        annotations(
            title = "Approve another principal's planned change",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn approve_change(
        &self,
        args: JsonObject,
        context: RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let caller = self.caller(&context).0;
        CallToolResponse::Complete(
            match flow::approve(self.context(), &caller, args, parse_args) {
                Ok(out) => structured(&out, out.summary()),
                Err(e) => tool_error(&e.to_string()),
            },
        )
    }
}

impl SecopsServer {
    /// One call of the destructive tool `A` through the remediation flow, as an MCP result:
    /// an applied change that failed is an error result that still carries its report.
    async fn remediate<A: Remediation>(
        &self,
        args: JsonObject,
        context: &RequestContext<RoleServer>,
        state: RequestState,
        responses: InputResponses,
    ) -> CallToolResponse {
        let caller = self.caller(context).0;
        let human = McpHuman {
            context,
            state,
            responses,
        };
        let done = flow::run::<A, _, _>(self.context(), &caller, args, parse_args, human).await;
        CallToolResponse::Complete(match done {
            Ok(Done::Planned(plan)) => structured(&plan, A::plan_summary(&plan)),
            Ok(Done::Applied(applied)) => {
                let mut r = structured(&applied, A::applied_summary(&applied));
                if applied.outcome.failed() {
                    r.is_error = Some(true);
                }
                r
            }
            Ok(Done::Pending(pending)) => return pending,
            Err(e) => tool_error(&e.to_string()),
        })
    }
}
