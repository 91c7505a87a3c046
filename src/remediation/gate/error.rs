//! `GateError`: every refusal of the gate, worded to say what failed and what to do, and the
//! token-free text an audit row keeps of it.

use std::path::PathBuf;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(
        "refused: `{tool}` is disabled: {why}. Destructive tools are off unless an operator \
         enables them (SECOPS_REMEDIATION=enabled or [remediation] enabled = true)"
    )]
    Disabled { tool: String, why: String },
    #[error(
        "refused: rate limit for destructive calls reached for caller `{caller}` \
         ({per_minute} per minute); wait and retry"
    )]
    RateLimited { caller: String, per_minute: u32 },
    #[error(
        "refused: invalid argument `confirmation_token`: is required for mode `apply`; call \
         with mode `plan` first and pass the token it returns"
    )]
    MissingToken,
    #[error(
        "refused: invalid argument `confirmation_token`: unknown or altered token (not issued \
         by this server for any call); run mode `plan` again"
    )]
    UnknownToken,
    #[error(
        "refused: invalid argument `confirmation_token`: issued for tool `{issued_for}`, not \
         `{tool}`"
    )]
    WrongTool { tool: String, issued_for: String },
    #[error(
        "refused: invalid argument `confirmation_token`: issued for different arguments; a \
         token only applies the exact plan it came from (run mode `plan` with these arguments)"
    )]
    WrongArguments,
    #[error("refused: invalid argument `confirmation_token`: issued to another caller")]
    WrongCaller,
    #[error(
        "refused: invalid argument `confirmation_token`: expired at {expires_at}; run mode \
         `plan` again"
    )]
    Expired { expires_at: String },
    #[error(
        "refused: invalid argument `confirmation_token`: already used (a token is single use); \
         run mode `plan` again"
    )]
    Replayed,
    #[error(
        "refused: a human must approve this change and {why}. Ask an operator to review the \
         plan and run, in a terminal on the server: `secops-mcp approve {token}` — then call \
         again with mode `apply` and the same token (before it expires at {expires_at})"
    )]
    NeedsApproval {
        why: String,
        token: String,
        expires_at: String,
    },
    #[error(
        "refused: the confirmation policy of caller `{caller}` is `second_principal`: another \
         principal with the approver right ({approvers}) must approve this change by calling \
         `approve_change` with confirmation_token `{token}` (or an operator runs \
         `secops-mcp approve {token}` on the server); your own client's answer does not count. \
         Then call again with mode `apply` and the same token (before it expires at \
         {expires_at})"
    )]
    NeedsSecondPrincipal {
        caller: String,
        approvers: String,
        token: String,
        expires_at: String,
    },
    #[error(
        "refused: caller `{caller}` is not an approver ([remediation] approvers); only a listed \
         approver may approve another principal's change"
    )]
    NotApprover { caller: String },
    #[error(
        "refused: invalid argument `confirmation_token`: it was issued to you (`{caller}`); a \
         change must be approved by a different principal"
    )]
    SelfApproval { caller: String },
    #[error(
        "refused: invalid argument `confirmation_token`: the confirmation policy of its caller \
         `{requester}` is `{policy}`, under which another principal's approval does not count{hint}"
    )]
    ApprovalNotAccepted {
        requester: String,
        policy: &'static str,
        hint: &'static str,
    },
    #[error("refused: invalid argument `confirmation_token`: already approved ({by})")]
    AlreadyApproved { by: String },
    #[error("refused: invalid argument `{0}`: {1}")]
    Argument(&'static str, String),
    #[error("refused: the human {0} the change; nothing was changed")]
    HumanRefused(&'static str),
    #[error("refused: the audit log cannot be written ({0}); nothing was changed")]
    Audit(String),
    #[error("refused: the remediation key in {path} cannot be used: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("refused: {0}")]
    Store(#[from] StoreError),
    #[error("refused: invalid request state: {0}")]
    RequestState(&'static str),
    #[error("refused: invalid argument `incident_id`: {0}")]
    Incident(String),
}

impl GateError {
    /// The text an audit row keeps: like the message, but never a token.
    pub fn audit_text(&self) -> String {
        match self {
            GateError::NeedsApproval { why, .. } => format!(
                "refused: a human must approve this change and {why}; awaiting \
                 `secops-mcp approve` on the server"
            ),
            GateError::NeedsSecondPrincipal { caller, .. } => format!(
                "refused: the confirmation policy of caller `{caller}` is `second_principal`; \
                 awaiting approval by another principal (approve_change) or `secops-mcp \
                 approve` on the server"
            ),
            other => other.to_string(),
        }
    }
}
