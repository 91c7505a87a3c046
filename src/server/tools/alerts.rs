//! The alert_status and alert_update adapters (our own alerts, not Wazuh's).

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::answer;
use crate::alerts::status::{AlertStatusReport, ScheduledMonitor, StatusArgs};
use crate::alerts::update::{UpdateArgs, UpdateReport};
use crate::clock::{Clock, SystemClock};
use crate::server::SecopsServer;

const ALERT_STATUS_DESC: &str = include_str!("../../../tools/alert_status.md");
const ALERT_UPDATE_DESC: &str = include_str!("../../../tools/alert_update.md");

#[tool_router(router = alert_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "alert_status",
        description = ALERT_STATUS_DESC,
        input_schema = crate::server::schema::input::<StatusArgs>(),
        output_schema = crate::server::schema::output::<AlertStatusReport>(),
        annotations(
            title = "Alert status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn alert_status(&self, args: JsonObject) -> CallToolResult {
        let ctx = self.context().clone();
        answer(args, async |a: StatusArgs| {
            let configured = ScheduledMonitor::of_config(&ctx.config.monitors);
            crate::alerts::status::run_muted(
                &ctx.store,
                SystemClock.now_ms(),
                &configured,
                &a,
                &ctx.config.mute_rules(),
            )
        })
        .await
    }

    #[tool(
        name = "alert_update",
        description = ALERT_UPDATE_DESC,
        input_schema = crate::server::schema::input::<UpdateArgs>(),
        output_schema = crate::server::schema::output::<UpdateReport>(),
        annotations(
            title = "Acknowledge or annotate an alert",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn alert_update(
        &self,
        args: JsonObject,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let caller = self.caller(&context);
        let store = self.context().store.clone();
        let ack = self.context().config.notify.acknowledging_channels();
        answer(args, async |a: UpdateArgs| {
            crate::alerts::update::run(&store, &SystemClock, &caller.0, &a, &ack)
        })
        .await
    }
}
