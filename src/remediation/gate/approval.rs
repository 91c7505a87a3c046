//! Who may approve whose change: the confirmation policy per principal, which stored
//! approvals satisfy it, `approve_change` (another principal approves) and `secops-mcp
//! approve` (the operator on the server approves).

use std::path::Path;

use super::token::{find_token, load_or_create_key, rfc3339_unix, verify_row};
use super::{CLI_CALLER, Call, Confirmation, Gate, GateError, PRINCIPAL_PREFIX, STDIO_CALLER};
use crate::config::RemediationPolicy;
use crate::store::{AuditEntry, Store};

/// The confirmation policy of `caller`: its own entry in
/// `[remediation.confirmation] principals`, else `stdio` for the stdio caller, else `http`
/// (every HTTP principal, the anonymous loopback caller included).
pub fn confirmation_for(policy: &RemediationPolicy, caller: &str) -> Confirmation {
    if let Some(c) = policy.confirm_principals.get(caller) {
        return *c;
    }
    if caller == STDIO_CALLER {
        policy.confirm_stdio
    } else {
        policy.confirm_http
    }
}

/// Whether a stored approval (`approved_by` of a token) satisfies the requester's policy.
/// The operator on the server (`cli`) satisfies every policy: shell access on the server is
/// already more than any token holder has. Another principal satisfies only
/// `second_principal`. An elicitation answer is never stored as an approval: it counts only
/// in the call it was given in, and only under `elicitation` ([`Gate::human_answer`]).
pub fn approval_satisfies(policy: Confirmation, requester: &str, approved_by: &str) -> bool {
    if approved_by == CLI_CALLER {
        return true;
    }
    match policy {
        Confirmation::Elicitation | Confirmation::OutOfBand => false,
        Confirmation::SecondPrincipal => approved_by
            .strip_prefix(PRINCIPAL_PREFIX)
            .is_some_and(|p| !p.is_empty() && p != requester),
    }
}

/// May `approver` approve anything at all (is it listed in `[remediation] approvers`)?
pub fn check_approver(policy: &RemediationPolicy, approver: &str) -> Result<(), GateError> {
    if policy.approvers.iter().any(|a| a == approver) {
        Ok(())
    } else {
        Err(GateError::NotApprover {
            caller: approver.to_string(),
        })
    }
}

/// May `approver` approve the change `requester` planned? Not its own, and only where the
/// requester's policy is `second_principal`.
pub fn check_approval_of(
    policy: &RemediationPolicy,
    approver: &str,
    requester: &str,
) -> Result<(), GateError> {
    check_approver(policy, approver)?;
    if approver == requester {
        return Err(GateError::SelfApproval {
            caller: approver.to_string(),
        });
    }
    match confirmation_for(policy, requester) {
        Confirmation::SecondPrincipal => Ok(()),
        Confirmation::OutOfBand => Err(GateError::ApprovalNotAccepted {
            requester: requester.to_string(),
            policy: "out_of_band",
            hint: "; only an operator running `secops-mcp approve` on the server can approve it",
        }),
        Confirmation::Elicitation => Err(GateError::ApprovalNotAccepted {
            requester: requester.to_string(),
            policy: "elicitation",
            hint: "; the requester's own client asks them (or an operator runs \
                   `secops-mcp approve` on the server)",
        }),
    }
}

/// How an approval reads in the audit log.
pub fn approval_label(approved_by: &str) -> String {
    match approved_by.strip_prefix(PRINCIPAL_PREFIX) {
        Some(p) => format!("principal `{p}`"),
        None => approved_by.to_string(),
    }
}

/// `approve_change` arguments.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveArgs {
    /// The `confirmation_token` another principal's plan returned (they pass it to you).
    pub confirmation_token: String,
    /// Why you approve (recorded in the audit log; at most 500 characters).
    pub comment: Option<String>,
}

/// What `approve_change` approved.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct ApproveOutput {
    pub approved: bool,
    /// The tool of the approved plan.
    pub tool: String,
    /// The principal who planned it (and may now apply it).
    pub requester: String,
    /// What the plan does.
    pub summary: String,
    /// The approver (you), as recorded in the audit log.
    pub approved_by: String,
    /// The token stays valid for the requester's apply until then.
    pub expires_at: String,
    pub audit_id: i64,
}

impl ApproveOutput {
    pub fn summary(&self) -> String {
        format!(
            "Approved for `{}`: {}. They may now apply it ({}) with the same token until {}.",
            self.requester, self.summary, self.tool, self.expires_at
        )
    }
}

/// The longest `comment` of `approve_change`.
pub const MAX_COMMENT_CHARS: usize = 500;

impl Gate {
    /// `approve_change`: the caller (an approver) approves another principal's token.
    /// Refusals (not an approver, its own token, unknown / expired / used token, a
    /// requester whose policy is not `second_principal`) are audited; so is the approval,
    /// naming the approver, before the token is marked approved.
    pub fn approve_by_principal(
        &self,
        call: &Call,
        args: &ApproveArgs,
    ) -> Result<ApproveOutput, GateError> {
        let approver = call.caller.as_str();
        let checked = (|| {
            check_approver(&self.policy, approver)?;
            let comment = args.comment.as_deref().map(str::trim).unwrap_or("");
            if comment.chars().count() > MAX_COMMENT_CHARS {
                return Err(GateError::Argument(
                    "comment",
                    format!("is longer than {MAX_COMMENT_CHARS} characters"),
                ));
            }
            let token = args.confirmation_token.trim();
            if token.is_empty() {
                return Err(GateError::Argument(
                    "confirmation_token",
                    "is required: the token the requester's plan returned".into(),
                ));
            }
            let (nonce, expires, digest, row) = find_token(&self.store, token)?;
            let row = verify_row(&self.key()?, token, nonce, expires, row)?;
            check_approval_of(&self.policy, approver, &row.caller)?;
            if row.state == "approved" {
                return Err(GateError::AlreadyApproved {
                    by: approval_label(row.approved_by.as_deref().unwrap_or("?")),
                });
            }
            Ok((
                row,
                digest,
                crate::util::sanitize_untrusted(comment.as_bytes(), 500),
            ))
        })();
        let (row, digest, comment) = checked.map_err(|e| self.refuse(call, e))?;
        let mut detail = format!(
            "by principal `{approver}` (second_principal) for caller `{}`: {}",
            row.caller, row.summary
        );
        if !comment.is_empty() {
            detail.push_str(&format!("; comment: {comment}"));
        }
        let audit = self
            .store
            .audit_append(&AuditEntry {
                caller: approver.to_string(),
                tool: row.tool.clone(),
                action: "approve".into(),
                args_digest: Some(row.args_digest.clone()),
                outcome: "approved".into(),
                detail: Some(detail),
                incident_id: None,
            })
            .map_err(|e| GateError::Audit(e.to_string()))?;
        let by = format!("{PRINCIPAL_PREFIX}{approver}");
        if !self.store.token_approve(&digest, &by)? {
            return Err(self.refuse(call, GateError::Replayed));
        }
        Ok(ApproveOutput {
            approved: true,
            tool: row.tool,
            requester: row.caller,
            summary: row.summary,
            approved_by: approver.to_string(),
            expires_at: rfc3339_unix(row.expires_at),
            audit_id: audit.id,
        })
    }
}

/// `secops-mcp approve <token>`: mark an issued, unexpired token approved (audited as
/// caller `cli`). Returns what was approved.
pub fn approve_out_of_band(
    store: &Store,
    state_dir: &Path,
    token: &str,
) -> Result<String, GateError> {
    let token = token.trim();
    let (nonce, expires, digest, row) = find_token(store, token)?;
    let key = load_or_create_key(state_dir)?;
    let row = verify_row(&key, token, nonce, expires, row)?;
    store
        .audit_append(&AuditEntry {
            caller: CLI_CALLER.into(),
            tool: row.tool.clone(),
            action: "approve".into(),
            args_digest: Some(row.args_digest.clone()),
            outcome: "approved".into(),
            detail: Some(format!(
                "out of band (cli, on the server), for caller `{}`",
                row.caller
            )),
            incident_id: None,
        })
        .map_err(|e| GateError::Audit(e.to_string()))?;
    if row.state == "issued" {
        store.token_approve(&digest, CLI_CALLER)?;
    }
    Ok(format!(
        "approved for caller `{}`: {}\nThe caller may now apply it with the same token until {}.",
        row.caller,
        row.summary,
        rfc3339_unix(row.expires_at)
    ))
}
