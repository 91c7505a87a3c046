//! The host_metrics and container_status adapters (the host the server runs on).

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::{tool, tool_router};

use super::{NoArgs, answer};
use crate::checks::containers::ContainersReport;
use crate::checks::host::HostReport;
use crate::server::SecopsServer;

const HOST_METRICS_DESC: &str = include_str!("../../../tools/host_metrics.md");
const CONTAINER_STATUS_DESC: &str = include_str!("../../../tools/container_status.md");

#[tool_router(router = host_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "host_metrics",
        description = HOST_METRICS_DESC,
        input_schema = crate::server::schema::input::<NoArgs>(),
        output_schema = crate::server::schema::output::<HostReport>(),
        annotations(
            title = "Host metrics",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn host_metrics(&self, args: JsonObject) -> CallToolResult {
        let th = self.context().host_deps();
        answer(args, async |a: NoArgs| {
            crate::checks::host::run(&th, &a).await
        })
        .await
    }

    #[tool(
        name = "container_status",
        description = CONTAINER_STATUS_DESC,
        input_schema = crate::server::schema::input::<NoArgs>(),
        output_schema = crate::server::schema::output::<ContainersReport>(),
        annotations(
            title = "Container status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn container_status(&self, args: JsonObject) -> CallToolResult {
        let deps = self.context().containers_deps();
        answer(args, async |a: NoArgs| {
            crate::checks::containers::run(&deps, &a).await
        })
        .await
    }
}
