//! The check_cert adapter.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::{tool, tool_router};

use super::answer;
use crate::checks::cert::{CertArgs, CertReport};
use crate::server::SecopsServer;

const CHECK_CERT_DESC: &str = include_str!("../../../tools/check_cert.md");

#[tool_router(router = cert_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "check_cert",
        description = CHECK_CERT_DESC,
        input_schema = crate::server::schema::input::<CertArgs>(),
        output_schema = crate::server::schema::output::<CertReport>(),
        annotations(
            title = "Check TLS certificates",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn check_cert(&self, args: JsonObject) -> CallToolResult {
        let deps = self.context().cert_deps();
        answer(args, async |a: CertArgs| {
            crate::checks::cert::run(&deps, &a).await
        })
        .await
    }
}
