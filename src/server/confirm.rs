//! Human confirmation for the remediation flow over MCP: elicitation in 2025-11-25
//! sessions, the input-required round trip with sealed request state in the 2026-07-28
//! era. The flow (remediation/flow.rs) decides when to ask; the gate decides whether the
//! client may be asked at all and what an answer counts for.

use rmcp::RoleServer;
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::model::{
    CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequiredResult, ProtocolVersion,
};
use rmcp::service::{ElicitationError, RequestContext};
use serde_json::Value;

use crate::remediation::flow::{Asked, Human, StateSeal};

/// Key of our confirmation question in the input-required round trip.
const CONFIRM_KEY: &str = "confirm";

/// What the human is asked to fill in.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Confirm {
    /// true to carry out the change described above
    pub confirm: bool,
}
rmcp::elicit_safe!(Confirm);

/// The client of one tool call, with what it sent back in a round trip.
pub struct McpHuman<'a> {
    pub context: &'a RequestContext<RoleServer>,
    pub state: RequestState,
    pub responses: InputResponses,
}

impl Human for McpHuman<'_> {
    type Pending = CallToolResponse;

    async fn ask(self, seal: StateSeal<'_>, question: String) -> Asked<CallToolResponse> {
        let context = self.context;
        let can_ask = context
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        if !can_ask {
            return Asked::CannotAsk;
        }
        let stateless = context
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        if !stateless {
            return match context.peer.elicit::<Confirm>(question).await {
                Ok(Some(c)) if c.confirm => Asked::Answer(Ok(())),
                Ok(_) => Asked::Answer(Err("did not confirm")),
                Err(ElicitationError::UserDeclined) => Asked::Answer(Err("declined")),
                Err(ElicitationError::UserCancelled) => Asked::Answer(Err("cancelled")),
                Err(ElicitationError::CapabilityNotSupported) => Asked::CannotAsk,
                Err(_) => Asked::Answer(Err("did not answer")),
            };
        }
        let reply = self.responses.0.and_then(|mut m| m.remove(CONFIRM_KEY));
        match (self.state.0, reply) {
            (Some(sealed), Some(reply)) => {
                if let Err(e) = seal.open(&sealed) {
                    return Asked::Refused(e);
                }
                Asked::Answer(match serde_json::from_value::<ElicitResult>(reply) {
                    Ok(res) => match res.action {
                        ElicitationAction::Accept => confirmed(res.content),
                        ElicitationAction::Decline => Err("declined"),
                        _ => Err("cancelled"),
                    },
                    Err(_) => Err("did not give a valid answer to"),
                })
            }
            _ => {
                let sealed = match seal.seal() {
                    Ok(s) => s,
                    Err(e) => return Asked::Refused(e),
                };
                let schema = match ElicitationSchema::from_type::<Confirm>() {
                    Ok(s) => s,
                    Err(e) => return Asked::Internal(e.to_string()),
                };
                let ask = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
                    meta: None,
                    message: question,
                    requested_schema: schema,
                });
                let mut requests = std::collections::BTreeMap::new();
                requests.insert(CONFIRM_KEY.to_string(), InputRequest::Elicitation(ask));
                Asked::Pending(CallToolResponse::InputRequired(InputRequiredResult::new(
                    Some(requests),
                    Some(sealed),
                )))
            }
        }
    }
}

fn confirmed(content: Option<Value>) -> Result<(), &'static str> {
    match content.and_then(|c| c.get("confirm").and_then(Value::as_bool)) {
        Some(true) => Ok(()),
        _ => Err("did not confirm"),
    }
}
