//! The wazuh_health adapter.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::{tool, tool_router};

use super::answer;
use crate::checks::wazuh_health::{HealthArgs, HealthReport};
use crate::server::SecopsServer;

const WAZUH_HEALTH_DESC: &str = include_str!("../../../tools/wazuh_health.md");

#[tool_router(router = health_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "wazuh_health",
        description = WAZUH_HEALTH_DESC,
        input_schema = crate::server::schema::input::<HealthArgs>(),
        output_schema = crate::server::schema::output::<HealthReport>(),
        annotations(
            title = "Wazuh health",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn wazuh_health(&self, args: JsonObject) -> CallToolResult {
        let deps = self.context().health_deps();
        answer(args, async |a: HealthArgs| {
            crate::checks::wazuh_health::run(&deps, &a).await
        })
        .await
    }
}
