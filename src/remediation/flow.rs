//! The one order of every destructive call: admit -> parse -> prepare -> plan (check, issue a
//! token) or apply (redeem the token -> a human confirms when policy wants one -> consume ->
//! execute -> record the outcome). The gate decides at every step; the action supplies the
//! steps ([`Remediation`]); the transport asks the human ([`Human`], MCP: server/confirm.rs).

use std::future::Future;

use serde::Serialize;
use serde_json::{Map, Value};

use super::gate::{APPROVE_TOOL, ApproveArgs, ApproveOutput, Redeemed};
use super::{Arguments, Call, Gate, GateError, Mode, Outcome, Remediation};
use crate::context::AppContext;

/// A plan: the action's fields, and the steps with the token to apply them.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport<P> {
    #[serde(flatten)]
    pub action: P,
    pub mode: Mode,
    pub steps: Vec<String>,
    pub confirmation_token: String,
    pub expires_at: String,
    pub audit_id: i64,
}

/// An applied change: the action's fields, how it ended, and the audit row that says so.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport<A, O> {
    #[serde(flatten)]
    pub action: A,
    pub mode: Mode,
    pub outcome: O,
    pub audit_id: i64,
}

/// What an action's `execute` returns: its report, how it ended, and the detail of the
/// audit row the flow writes for that.
#[derive(Debug, Clone)]
pub struct Executed<A, O> {
    pub report: A,
    pub outcome: O,
    pub audit_detail: String,
}

/// How one call of a destructive tool ended well (an applied change may still have
/// failed: see [`Outcome::failed`]).
pub enum Done<A: Remediation, P> {
    Planned(PlanReport<A::Plan>),
    Applied(ApplyReport<A::Applied, A::Outcome>),
    /// The human's answer is awaited: the call ends with this (MCP: input_required).
    Pending(P),
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Refused by the gate (it audits its refusals).
    #[error(transparent)]
    Gate(#[from] GateError),
    /// Refused: arguments, configuration or a plan-time check (audited as `refuse`).
    #[error("{0}")]
    Refused(String),
    /// The action stopped before the change had an outcome (e.g. a failed preflight).
    #[error("{0}")]
    Failed(String),
    /// Asking the human failed on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a transport asks a human during a call (MCP: elicitation, or the 2026-07-28
/// input_required round trip). Whether a human is needed, and whether the client may be
/// asked at all, is the gate's decision, made before `ask`.
pub trait Human {
    /// What the call returns while the answer is awaited.
    type Pending;
    fn ask(
        self,
        seal: StateSeal<'_>,
        question: String,
    ) -> impl Future<Output = Asked<Self::Pending>> + Send;
}

/// What came of asking.
pub enum Asked<P> {
    /// The human's answer: yes, or how they did not say yes (`declined`, `cancelled`, ...).
    Answer(Result<(), &'static str>),
    /// This client cannot ask a human: an operator approves out of band.
    CannotAsk,
    /// The question went out; the call ends now and the answer comes with the retry.
    Pending(P),
    /// The request state could not be sealed, or the echoed state was refused.
    Refused(GateError),
    /// Asking failed on our side.
    Internal(String),
}

/// Request state for a stateless round trip, sealed to this call and token by the gate.
pub struct StateSeal<'a> {
    gate: &'a Gate,
    call: &'a Call,
    redeemed: &'a Redeemed,
}

impl StateSeal<'_> {
    /// Opaque state for the client to echo with its answer.
    pub fn seal(&self) -> Result<String, GateError> {
        self.gate.seal_state(self.call, self.redeemed)
    }

    /// Check state the client echoed: refuses forged, foreign or stale state.
    pub fn open(&self, state: &str) -> Result<(), GateError> {
        self.gate.open_state(self.call, self.redeemed, state)
    }
}

/// Run one call of the destructive tool `A` for `caller`, from its raw arguments.
pub async fn run<A, H, E>(
    ctx: &AppContext,
    caller: &str,
    args: Map<String, Value>,
    parse: impl FnOnce(Map<String, Value>) -> Result<A::Args, E>,
    human: H,
) -> Result<Done<A, H::Pending>, FlowError>
where
    A: Remediation,
    H: Human + Send,
    E: std::fmt::Display,
{
    let gate = &ctx.gate;
    let call = Call::new(A::TOOL, caller, &Value::Object(args.clone()));
    gate.admit(&call)?;
    let args = parse(args).map_err(|e| refused(gate, &call, e))?;
    let mut prepared = A::prepare(ctx, &args)
        .await
        .map_err(|e| refused(gate, &call, e))?;
    let reason = clean(args.reason());
    let summary = A::summary(&prepared, &reason);
    if args.mode() == Mode::Plan {
        A::check(ctx, &mut prepared)
            .await
            .map_err(|e| refused(gate, &call, e))?;
        let issued = gate.issue(&call, &summary)?;
        return Ok(Done::Planned(PlanReport {
            action: A::plan(&prepared),
            mode: Mode::Plan,
            steps: A::steps(&prepared).to_vec(),
            confirmation_token: issued.token,
            expires_at: issued.expires_at,
            audit_id: issued.audit_id,
        }));
    }
    let mut redeemed = gate.redeem(&call, args.confirmation_token())?;
    if redeemed.needs_human {
        let question = A::question(&prepared, &reason);
        if let Some(pending) = confirm(gate, &call, &mut redeemed, question, human).await? {
            return Ok(Done::Pending(pending));
        }
    }
    gate.consume(&call, &redeemed, &summary)?;
    let executed = A::execute(ctx, &prepared, &call)
        .await
        .map_err(|e| FlowError::Failed(e.to_string()))?;
    // Fail closed: an outcome that cannot be recorded is an error.
    let row = gate.audit(
        &call,
        executed.outcome.audit_action(),
        executed.outcome.as_str(),
        Some(executed.audit_detail),
    )?;
    Ok(Done::Applied(ApplyReport {
        action: executed.report,
        mode: Mode::Apply,
        outcome: executed.outcome,
        audit_id: row.id,
    }))
}

/// `approve_change`: admit, parse, and let the gate approve another principal's plan.
pub fn approve<E: std::fmt::Display>(
    ctx: &AppContext,
    caller: &str,
    args: Map<String, Value>,
    parse: impl FnOnce(Map<String, Value>) -> Result<ApproveArgs, E>,
) -> Result<ApproveOutput, FlowError> {
    let gate = &ctx.gate;
    let call = Call::new(APPROVE_TOOL, caller, &Value::Object(args.clone()));
    gate.admit(&call)?;
    let args = parse(args).map_err(|e| refused(gate, &call, e))?;
    Ok(gate.approve_by_principal(&call, &args)?)
}

/// Get a human's decision (policy wants one and none has approved yet): the gate says
/// whether the client may be asked, the transport asks, the gate records the answer.
/// `Some` carries what the call returns while the answer is awaited.
async fn confirm<H: Human>(
    gate: &Gate,
    call: &Call,
    redeemed: &mut Redeemed,
    question: String,
    human: H,
) -> Result<Option<H::Pending>, FlowError> {
    gate.human_step(call, redeemed)?;
    let seal = StateSeal {
        gate,
        call,
        redeemed,
    };
    let answer = match human.ask(seal, question).await {
        Asked::Answer(a) => a,
        Asked::CannotAsk => return Err(gate.needs_out_of_band_approval(call, redeemed).into()),
        Asked::Pending(p) => return Ok(Some(p)),
        Asked::Refused(e) => return Err(gate.refuse(call, e).into()),
        Asked::Internal(e) => return Err(FlowError::Internal(e)),
    };
    gate.human_answer(call, redeemed, answer)?;
    Ok(None)
}

/// Refuse (audited, best effort: the call is refused either way).
fn refused(gate: &Gate, call: &Call, e: impl std::fmt::Display) -> FlowError {
    let msg = e.to_string();
    if let Err(e) = gate.audit(call, "refuse", "refused", Some(msg.clone())) {
        tracing::error!(tool = %call.tool, "cannot audit a refusal: {e}");
    }
    FlowError::Refused(msg)
}

/// Caller-supplied text shown to a human (elicitation, `approve`): printable and short.
fn clean(text: &str) -> String {
    crate::util::sanitize_untrusted(text.as_bytes(), 300)
}
