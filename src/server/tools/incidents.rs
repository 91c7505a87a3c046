//! The incident_status and incident_update adapters.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::answer;
use crate::incidents::{StatusArgs, StatusReport, UpdateArgs, UpdateReport};
use crate::server::SecopsServer;

const INCIDENT_STATUS_DESC: &str = include_str!("../../../tools/incident_status.md");
const INCIDENT_UPDATE_DESC: &str = include_str!("../../../tools/incident_update.md");

#[tool_router(router = incident_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "incident_status",
        description = INCIDENT_STATUS_DESC,
        input_schema = crate::server::schema::input::<StatusArgs>(),
        output_schema = crate::server::schema::output::<StatusReport>(),
        annotations(
            title = "Incident status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn incident_status(&self, args: JsonObject) -> CallToolResult {
        let deps = self.context().incident_deps();
        answer(args, async |a: StatusArgs| {
            crate::incidents::status::run(&deps, &a).await
        })
        .await
    }

    #[tool(
        name = "incident_update",
        description = INCIDENT_UPDATE_DESC,
        input_schema = crate::server::schema::input::<UpdateArgs>(),
        output_schema = crate::server::schema::output::<UpdateReport>(),
        annotations(
            title = "Update an incident",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn incident_update(
        &self,
        args: JsonObject,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let caller = self.caller(&context);
        let deps = self.context().incident_deps();
        answer(args, async |a: UpdateArgs| {
            crate::incidents::update::run(&deps, &caller.0, &a).await
        })
        .await
    }
}
