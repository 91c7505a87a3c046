//! MCP adapters of the destructive tools (rotate_credentials, block_ip): arguments -> gate
//! (admit, plan/token, human confirmation through elicitation or the 2026-07-28
//! input-required round trip) -> remediation engine -> structured report. Listed only when enabled.

use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::model::{
    CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequiredResult, JsonObject, ProtocolVersion,
};
use rmcp::service::{ElicitationError, RequestContext};
use rmcp::{RoleServer, tool, tool_router};
use serde_json::Value;

use super::SecopsServer;
use super::tools::{parse_args, structured, tool_error};
use crate::remediation::Mode;
use crate::remediation::block_ip::{self, BlockArgs, BlockOutput};
use crate::remediation::credentials::{self, RotateArgs, RotateOutput};
use crate::remediation::gate::{self, ApproveArgs, ApproveOutput, Call, Redeemed};

const ROTATE_DESC: &str = include_str!("../../tools/rotate_credentials.md");
const BLOCK_IP_DESC: &str = include_str!("../../tools/block_ip.md");
const APPROVE_DESC: &str = include_str!("../../tools/approve_change.md");
/// Key of our confirmation question in the input-required round trip.
const CONFIRM_KEY: &str = "confirm";

/// What the human is asked to fill in.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Confirm {
    /// true to carry out the change described above
    pub confirm: bool,
}
rmcp::elicit_safe!(Confirm);

fn done(r: rmcp::model::CallToolResult) -> CallToolResponse {
    CallToolResponse::Complete(r)
}

#[tool_router(router = remediation_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "rotate_credentials",
        description = ROTATE_DESC,
        input_schema = super::schema::input::<RotateArgs>(),
        output_schema = super::schema::output::<RotateOutput>(),
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
        let ctx = self.context().clone();
        let call = Call::new(
            credentials::TOOL,
            &self.caller(&context).0,
            &Value::Object(args.clone()),
        );
        if let Err(e) = ctx.gate.admit(&call) {
            return done(tool_error(&e.to_string()));
        }
        let args: RotateArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return self.refused(&call, e.to_string()),
        };
        let mut prepared = match credentials::prepare(&ctx, &args) {
            Ok(p) => p,
            Err(e) => return self.refused(&call, e.to_string()),
        };
        if args.mode == Mode::Plan {
            match credentials::check(&ctx, &prepared).await {
                Ok(notes) => prepared.steps.extend(notes),
                Err(e) => return self.refused(&call, e.to_string()),
            }
        }
        let summary = format!(
            "rotate credential `{}` ({}); reason: {}",
            prepared.cred.id,
            prepared.target,
            clean(&args.reason)
        );
        let mut out = RotateOutput {
            credential: prepared.cred.id.clone(),
            target: prepared.target.clone(),
            ..Default::default()
        };
        let mut r = match args.mode {
            Mode::Plan => {
                return match ctx.gate.issue(&call, &summary) {
                    Ok(issued) => {
                        out.mode = "plan".into();
                        out.steps = Some(prepared.steps.clone());
                        out.confirmation_token = Some(issued.token);
                        out.expires_at = Some(issued.expires_at);
                        out.audit_id = Some(issued.audit_id);
                        let s = out.summary();
                        done(structured(&out, s))
                    }
                    Err(e) => done(tool_error(&e.to_string())),
                };
            }
            Mode::Apply => match ctx.gate.redeem(&call, args.confirmation_token.as_deref()) {
                Ok(r) => r,
                Err(e) => return done(tool_error(&e.to_string())),
            },
        };
        let question = format!(
            "secops-mcp asks to ROTATE credential `{}` ({}).\nReason: {}\nSteps:\n- {}\n\
             Approve this change?",
            prepared.cred.id,
            prepared.target,
            clean(&args.reason),
            prepared.steps.join("\n- ")
        );
        if let Err(stop) = self
            .confirm_human(&call, &mut r, question, &context, state, responses)
            .await
        {
            return stop;
        }
        let audit_id = match ctx.gate.consume(&call, &r, &summary) {
            Ok(id) => id,
            Err(e) => return done(tool_error(&e.to_string())),
        };
        match credentials::execute(&ctx, &prepared, &call, audit_id).await {
            Ok(out) => {
                let s = out.summary();
                let mut res = structured(&out, s);
                if out.outcome.as_deref() == Some("failed") {
                    res.is_error = Some(true);
                }
                done(res)
            }
            Err(e) => done(tool_error(&e.to_string())),
        }
    }

    #[tool(
        name = "block_ip",
        description = BLOCK_IP_DESC,
        input_schema = super::schema::input::<BlockArgs>(),
        output_schema = super::schema::output::<BlockOutput>(),
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
        let ctx = self.context().clone();
        let call = Call::new(
            block_ip::TOOL,
            &self.caller(&context).0,
            &Value::Object(args.clone()),
        );
        if let Err(e) = ctx.gate.admit(&call) {
            return done(tool_error(&e.to_string()));
        }
        let args: BlockArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return self.refused(&call, e.to_string()),
        };
        let prepared = match block_ip::prepare(&ctx, &args).await {
            Ok(p) => p,
            Err(e) => return self.refused(&call, e.to_string()),
        };
        let agents = prepared
            .agents
            .clone()
            .unwrap_or_else(|| vec!["all".into()]);
        let summary = format!(
            "block {} (firewall-drop) on agent(s) {}; reason: {}",
            prepared.ip,
            agents.join(","),
            clean(&args.reason)
        );
        let mut r = match args.mode {
            Mode::Plan => {
                return match ctx.gate.issue(&call, &summary) {
                    Ok(issued) => {
                        let out = BlockOutput {
                            ip: prepared.ip.to_string(),
                            mode: "plan".into(),
                            agents,
                            steps: Some(prepared.steps.clone()),
                            confirmation_token: Some(issued.token),
                            expires_at: Some(issued.expires_at),
                            audit_id: Some(issued.audit_id),
                            ..Default::default()
                        };
                        let s = out.summary();
                        done(structured(&out, s))
                    }
                    Err(e) => done(tool_error(&e.to_string())),
                };
            }
            Mode::Apply => match ctx.gate.redeem(&call, args.confirmation_token.as_deref()) {
                Ok(r) => r,
                Err(e) => return done(tool_error(&e.to_string())),
            },
        };
        let question = format!(
            "secops-mcp asks to BLOCK {} (firewall-drop) on agent(s) {}.\nReason: {}\n\
             Approve this change?",
            prepared.ip,
            agents.join(", "),
            clean(&args.reason)
        );
        if let Err(stop) = self
            .confirm_human(&call, &mut r, question, &context, state, responses)
            .await
        {
            return stop;
        }
        let audit_id = match ctx.gate.consume(&call, &r, &summary) {
            Ok(id) => id,
            Err(e) => return done(tool_error(&e.to_string())),
        };
        match block_ip::execute(&ctx, &prepared, &call, audit_id).await {
            Ok(out) => {
                let s = out.summary();
                let mut res = structured(&out, s);
                if out.outcome.as_deref() == Some("failed") {
                    res.is_error = Some(true);
                }
                done(res)
            }
            Err(e) => done(tool_error(&e.to_string())),
        }
    }
}

#[tool_router(router = approve_router, vis = "pub(crate)")]
impl SecopsServer {
    #[tool(
        name = "approve_change",
        description = APPROVE_DESC,
        input_schema = super::schema::input::<ApproveArgs>(),
        output_schema = super::schema::output::<ApproveOutput>(),
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
        let ctx = self.context().clone();
        let call = Call::new(
            gate::APPROVE_TOOL,
            &self.caller(&context).0,
            &Value::Object(args.clone()),
        );
        if let Err(e) = ctx.gate.admit(&call) {
            return done(tool_error(&e.to_string()));
        }
        let args: ApproveArgs = match parse_args(args) {
            Ok(a) => a,
            Err(e) => return self.refused(&call, e.to_string()),
        };
        match ctx.gate.approve_by_principal(&call, &args) {
            Ok(out) => {
                let s = out.summary();
                done(structured(&out, s))
            }
            Err(e) => done(tool_error(&e.to_string())),
        }
    }
}

impl SecopsServer {
    /// Refuse (audited, best effort: the call is refused either way).
    fn refused(&self, call: &Call, msg: String) -> CallToolResponse {
        if let Err(e) = self
            .context()
            .gate
            .audit(call, "refuse", "refused", Some(msg.clone()))
        {
            tracing::error!(tool = %call.tool, "cannot audit a refusal: {e}");
        }
        done(tool_error(&msg))
    }

    /// Get a human's decision when policy needs one: elicitation (2025-11-25 sessions), the
    /// input-required round trip with sealed request state (2026-07-28), or a refusal that
    /// says how to approve out of band. `Err` carries the response to return instead.
    async fn confirm_human(
        &self,
        call: &Call,
        r: &mut Redeemed,
        question: String,
        context: &RequestContext<RoleServer>,
        state: RequestState,
        responses: InputResponses,
    ) -> Result<(), CallToolResponse> {
        if !r.needs_human {
            return Ok(());
        }
        let gate = &self.context().gate;
        let refuse = |e: crate::remediation::GateError| done(tool_error(&e.to_string()));
        // The policy decides whether the client may be asked at all (gate.rs).
        gate.human_step(call, r).map_err(refuse)?;
        let can_ask = context
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        if !can_ask {
            return Err(refuse(gate.needs_out_of_band_approval(call, r)));
        }
        let stateless = context
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let answer: Result<(), &'static str> = if stateless {
            match (state.0, responses.0.and_then(|mut m| m.remove(CONFIRM_KEY))) {
                (Some(sealed), Some(reply)) => {
                    if let Err(e) = gate.open_state(call, r, &sealed) {
                        return Err(refuse(gate.refuse(call, e)));
                    }
                    match serde_json::from_value::<ElicitResult>(reply) {
                        Ok(res) => match res.action {
                            ElicitationAction::Accept => confirmed(res.content),
                            ElicitationAction::Decline => Err("declined"),
                            _ => Err("cancelled"),
                        },
                        Err(_) => Err("did not give a valid answer to"),
                    }
                }
                _ => {
                    let sealed = gate
                        .seal_state(call, r)
                        .map_err(|e| refuse(gate.refuse(call, e)))?;
                    let schema = ElicitationSchema::from_type::<Confirm>()
                        .map_err(|e| done(tool_error(&format!("internal error: {e}"))))?;
                    let ask = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
                        meta: None,
                        message: question,
                        requested_schema: schema,
                    });
                    let mut requests = std::collections::BTreeMap::new();
                    requests.insert(CONFIRM_KEY.to_string(), InputRequest::Elicitation(ask));
                    return Err(CallToolResponse::InputRequired(InputRequiredResult::new(
                        Some(requests),
                        Some(sealed),
                    )));
                }
            }
        } else {
            match context.peer.elicit::<Confirm>(question).await {
                Ok(Some(c)) if c.confirm => Ok(()),
                Ok(_) => Err("did not confirm"),
                Err(ElicitationError::UserDeclined) => Err("declined"),
                Err(ElicitationError::UserCancelled) => Err("cancelled"),
                Err(ElicitationError::CapabilityNotSupported) => {
                    return Err(refuse(gate.needs_out_of_band_approval(call, r)));
                }
                Err(_) => Err("did not answer"),
            }
        };
        gate.human_answer(call, r, answer).map_err(refuse)
    }
}

/// Caller-supplied text shown to a human (elicitation, `approve`): printable and short.
fn clean(text: &str) -> String {
    crate::util::sanitize_untrusted(text.as_bytes(), 300)
}

fn confirmed(content: Option<Value>) -> Result<(), &'static str> {
    match content.and_then(|c| c.get("confirm").and_then(Value::as_bool)) {
        Some(true) => Ok(()),
        _ => Err("did not confirm"),
    }
}
