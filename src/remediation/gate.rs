//! The one gate every destructive tool goes through: enablement, per-caller rate limit,
//! plan-then-apply confirmation tokens (HMAC-bound to tool, exact arguments and caller,
//! single use, expiring), the human-approval decision, and fail-closed audit of every step.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::config::Confirmation;
use crate::config::{Config, RemediationPolicy};
use crate::store::audit::canonical_digest;
use crate::store::{AuditEntry, AuditRecord, Store, StoreError, TokenRow};

/// File (in the state directory) holding the server's 32-byte HMAC key.
pub const KEY_FILE: &str = "remediation.key";
const TOKEN_PREFIX: &str = "sct1";
/// The caller of the stdio transport (the person who launched the client).
pub const STDIO_CALLER: &str = "stdio";
/// The operator's `secops-mcp approve` on the server (audit caller and `approved_by`).
pub const CLI_CALLER: &str = "cli";
/// The tool through which an approver approves another principal's change.
pub const APPROVE_TOOL: &str = "approve_change";
/// `approved_by` of an approval by another principal: `principal:<name>`.
const PRINCIPAL_PREFIX: &str = "principal:";

/// Plan (default) or apply.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Validate and compute the steps; returns a confirmation token. Changes nothing.
    #[default]
    Plan,
    /// Carry out a plan: needs the plan's `confirmation_token`.
    Apply,
}

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

/// One destructive call, as the gate sees it.
#[derive(Debug, Clone)]
pub struct Call {
    pub tool: String,
    pub caller: String,
    /// Canonical digest of the arguments without `mode` and `confirmation_token`.
    pub args_digest: String,
    pub incident_id: Option<String>,
}

impl Call {
    /// Bind a call to its exact (secret-free) arguments.
    pub fn new(tool: &str, caller: &str, args: &Value) -> Self {
        let mut bound = args.clone();
        if let Some(o) = bound.as_object_mut() {
            o.remove("mode");
            o.remove("confirmation_token");
        }
        let incident_id = args
            .get("incident_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        Self {
            tool: tool.to_string(),
            caller: caller.to_string(),
            args_digest: canonical_digest(&serde_json::json!({"tool": tool, "args": bound})),
            incident_id,
        }
    }
}

/// A plan's confirmation token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_at: String,
    pub audit_id: i64,
}

/// A token that passed every check and is not used yet.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub token: String,
    pub token_digest: String,
    /// Approved in a way the caller's confirmation policy accepts.
    pub approved: bool,
    /// Who approved: `cli`, `principal:<name>`, or `elicitation` once the client said yes
    /// during this call.
    pub approved_by: Option<String>,
    /// Policy wants a human and none has approved yet.
    pub needs_human: bool,
    pub expires_at: String,
    /// The caller's confirmation policy.
    pub confirmation: Confirmation,
}

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

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

pub struct Gate {
    store: Store,
    state_dir: PathBuf,
    enabled: bool,
    policy: RemediationPolicy,
    key: OnceLock<[u8; 32]>,
    limiter: KeyedLimiter,
}

impl Gate {
    pub fn new(config: &Config, store: Store) -> Self {
        let per_minute = std::num::NonZeroU32::new(config.remediation.rate_limit_per_minute)
            .unwrap_or(std::num::NonZeroU32::MIN);
        Self {
            store,
            state_dir: config.state_dir.clone(),
            enabled: config.remediation_enabled,
            policy: config.remediation.clone(),
            key: OnceLock::new(),
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    pub fn policy(&self) -> &RemediationPolicy {
        &self.policy
    }

    /// Whether `tool` is listed and callable at all.
    pub fn tool_enabled(&self, tool: &str) -> Result<(), GateError> {
        let why = if !self.enabled {
            "remediation is disabled"
        } else {
            match tool {
                "rotate_credentials" if !self.policy.rotate_credentials_enabled => {
                    "[remediation.rotate_credentials] enabled = false"
                }
                "block_ip" if !self.policy.block_ip_enabled => {
                    "[remediation.block_ip] enabled = false"
                }
                _ => return Ok(()),
            }
        };
        Err(GateError::Disabled {
            tool: tool.to_string(),
            why: why.to_string(),
        })
    }

    /// Enablement and the per-caller rate limit, for every destructive call.
    pub fn admit(&self, call: &Call) -> Result<(), GateError> {
        let result = self.tool_enabled(&call.tool).and_then(|()| {
            self.limiter
                .check_key(&call.caller)
                .map_err(|_| GateError::RateLimited {
                    caller: call.caller.clone(),
                    per_minute: self.policy.rate_limit_per_minute,
                })
        });
        let result = result.and_then(|()| self.check_incident(call));
        result.map_err(|e| self.refuse(call, e))
    }

    /// An action filed under an incident must name one that exists (its audit rows join
    /// that incident's timeline).
    fn check_incident(&self, call: &Call) -> Result<(), GateError> {
        let Some(id) = &call.incident_id else {
            return Ok(());
        };
        let shown = crate::util::sanitize_untrusted(id.as_bytes(), 40);
        let seq = crate::checks::incidents::parse_incident_id(id).ok_or_else(|| {
            GateError::Incident(format!(
                "`{shown}` is not an incident id; ids look like `INC-000001` (see incident_status)"
            ))
        })?;
        match self.store.incident_get(seq)? {
            Some(_) => Ok(()),
            None => Err(GateError::Incident(format!(
                "no incident `{shown}`; list incidents with incident_status"
            ))),
        }
    }

    /// Append an audit row; the caller must stop when this fails (fail closed).
    pub fn audit(
        &self,
        call: &Call,
        action: &str,
        outcome: &str,
        detail: Option<String>,
    ) -> Result<AuditRecord, GateError> {
        self.store
            .audit_append(&AuditEntry {
                caller: call.caller.clone(),
                tool: call.tool.clone(),
                action: action.to_string(),
                args_digest: Some(call.args_digest.clone()),
                outcome: outcome.to_string(),
                detail,
                incident_id: call.incident_id.clone(),
            })
            .map_err(|e| GateError::Audit(e.to_string()))
    }

    /// Record a refusal (best effort: the call is refused either way) and return it.
    pub fn refuse(&self, call: &Call, err: GateError) -> GateError {
        // Never put a token in the audit log.
        if let Err(e) = self.audit(call, "refuse", "refused", Some(err.audit_text())) {
            tracing::error!(tool = %call.tool, "cannot audit a refusal: {e}");
        }
        err
    }

    /// Plan: issue a confirmation token bound to this call and record it.
    pub fn issue(&self, call: &Call, summary: &str) -> Result<Issued, GateError> {
        let key = self.key().map_err(|e| self.refuse(call, e))?;
        let nonce: [u8; 16] = random_bytes().map_err(|e| self.refuse(call, e))?;
        let now = unix_now();
        let expires = now + self.policy.token_ttl_secs as i64;
        let nonce = hex::encode(nonce);
        let mac = token_mac(&key, &nonce, expires, call);
        let token = format!("{TOKEN_PREFIX}_{nonce}_{expires}_{mac}");
        let audit = self.audit(call, "plan", "planned", Some(summary.to_string()))?;
        self.store.token_insert(&TokenRow {
            token_digest: token_digest(&token),
            tool: call.tool.clone(),
            args_digest: call.args_digest.clone(),
            caller: call.caller.clone(),
            summary: summary.to_string(),
            state: "issued".into(),
            issued_at: crate::util::now_rfc3339(),
            expires_at: expires,
            approved_by: None,
        })?;
        Ok(Issued {
            token,
            expires_at: rfc3339_unix(expires),
            audit_id: audit.id,
        })
    }

    /// Apply, first half: check the token against this exact call (refusals audited).
    pub fn redeem(&self, call: &Call, token: Option<&str>) -> Result<Redeemed, GateError> {
        self.check_token(call, token)
            .map_err(|e| self.refuse(call, e))
    }

    fn check_token(&self, call: &Call, token: Option<&str>) -> Result<Redeemed, GateError> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let token = token.ok_or(GateError::MissingToken)?;
        let (nonce, expires, digest, row) = find_token(&self.store, token)?;
        if row.tool != call.tool {
            return Err(GateError::WrongTool {
                tool: call.tool.clone(),
                issued_for: row.tool,
            });
        }
        if row.caller != call.caller {
            return Err(GateError::WrongCaller);
        }
        if row.args_digest != call.args_digest {
            return Err(GateError::WrongArguments);
        }
        let key = self.key()?;
        let row = verify_row(&key, token, nonce, expires, row)?;
        let confirmation = confirmation_for(&self.policy, &call.caller);
        let approved_by = row.approved_by.clone().filter(|_| row.state == "approved");
        let approved = approved_by
            .as_deref()
            .is_some_and(|by| approval_satisfies(confirmation, &call.caller, by));
        Ok(Redeemed {
            token: token.to_string(),
            token_digest: digest,
            approved,
            approved_by: approved_by.filter(|_| approved),
            needs_human: self.policy.require_human && !approved,
            expires_at: rfc3339_unix(row.expires_at),
            confirmation,
        })
    }

    /// Policy needs a human and none has approved: Ok when the client may be asked
    /// (policy `elicitation`), else the refusal that says who must approve (audited).
    pub fn human_step(&self, call: &Call, r: &Redeemed) -> Result<(), GateError> {
        match r.confirmation {
            Confirmation::Elicitation => Ok(()),
            Confirmation::OutOfBand => Err(self.refuse(
                call,
                GateError::NeedsApproval {
                    why: format!(
                        "the confirmation policy of caller `{}` is `out_of_band` (the client \
                         is never asked)",
                        call.caller
                    ),
                    token: r.token.clone(),
                    expires_at: r.expires_at.clone(),
                },
            )),
            Confirmation::SecondPrincipal => Err(self.refuse(
                call,
                GateError::NeedsSecondPrincipal {
                    caller: call.caller.clone(),
                    approvers: self.policy.approvers.join(", "),
                    token: r.token.clone(),
                    expires_at: r.expires_at.clone(),
                },
            )),
        }
    }

    /// The refusal for a client that cannot ask a human (audited).
    pub fn needs_out_of_band_approval(&self, call: &Call, r: &Redeemed) -> GateError {
        self.refuse(
            call,
            GateError::NeedsApproval {
                why: "this client cannot ask one".into(),
                token: r.token.clone(),
                expires_at: r.expires_at.clone(),
            },
        )
    }

    /// A human answered through the client: approve (audited) or refuse (token burnt).
    /// Only under policy `elicitation`: the caller's own client never satisfies another.
    pub fn human_answer(
        &self,
        call: &Call,
        r: &mut Redeemed,
        accepted: Result<(), &'static str>,
    ) -> Result<(), GateError> {
        if r.confirmation != Confirmation::Elicitation {
            self.human_step(call, r)?;
        }
        match accepted {
            Ok(()) => {
                self.audit(
                    call,
                    "approve",
                    "approved",
                    Some("by elicitation (the client said yes)".into()),
                )?;
                r.approved_by = Some("elicitation".into());
                Ok(())
            }
            Err(how) => {
                let _ = self.store.token_consume(&r.token_digest);
                Err(self.refuse(call, GateError::HumanRefused(how)))
            }
        }
    }

    /// Apply, second half: use the token up (atomically; a concurrent replay loses) and
    /// record the apply before anything changes.
    pub fn consume(&self, call: &Call, r: &Redeemed, summary: &str) -> Result<i64, GateError> {
        if !self.store.token_consume(&r.token_digest)? {
            return Err(self.refuse(call, GateError::Replayed));
        }
        let how = match &r.approved_by {
            Some(by) => format!("approved by {}", approval_label(by)),
            None if !self.policy.require_human => {
                "no approval required (require_human = false)".into()
            }
            None => "not approved".into(),
        };
        Ok(self
            .audit(call, "apply", "started", Some(format!("{summary}; {how}")))?
            .id)
    }

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

    /// Seal opaque request state for a stateless (2026-07-28) elicitation round trip,
    /// bound to this call and token.
    pub fn seal_state(&self, call: &Call, r: &Redeemed) -> Result<String, GateError> {
        if r.confirmation != Confirmation::Elicitation {
            return Err(GateError::RequestState(
                "this caller's confirmation policy never asks the client",
            ));
        }
        let key = self.key()?;
        let expires = unix_now() + 600;
        let mac = state_mac(&key, expires, call, &r.token_digest);
        Ok(format!("rs_{expires}_{mac}"))
    }

    /// Open request state echoed by the client; refuses forged, foreign or stale state.
    pub fn open_state(&self, call: &Call, r: &Redeemed, state: &str) -> Result<(), GateError> {
        if r.confirmation != Confirmation::Elicitation {
            return Err(GateError::RequestState(
                "this caller's confirmation policy never asks the client",
            ));
        }
        let key = self.key()?;
        let mut parts = state.split('_');
        let (Some("rs"), Some(exp), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(GateError::RequestState("malformed"));
        };
        let expires: i64 = exp
            .parse()
            .map_err(|_| GateError::RequestState("malformed"))?;
        let expected = state_mac(&key, expires, call, &r.token_digest);
        if !ct_eq(expected.as_bytes(), mac.as_bytes()) {
            return Err(GateError::RequestState("failed integrity verification"));
        }
        if unix_now() >= expires {
            return Err(GateError::RequestState("expired"));
        }
        Ok(())
    }

    /// A short HMAC fingerprint of a secret (never the secret).
    pub fn fingerprint(&self, secret: &str) -> Result<String, GateError> {
        let key = self.key()?;
        let mac = hmac_sha256(&key, &encode(&[b"fingerprint", secret.as_bytes()]));
        Ok(hex::encode(&mac[..8]))
    }

    /// The server key: 32 random bytes in the state directory (0600), created on first use.
    pub fn key(&self) -> Result<[u8; 32], GateError> {
        if let Some(k) = self.key.get() {
            return Ok(*k);
        }
        let k = load_or_create_key(&self.state_dir)?;
        Ok(*self.key.get_or_init(|| k))
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

fn load_or_create_key(state_dir: &Path) -> Result<[u8; 32], GateError> {
    let path = state_dir.join(KEY_FILE);
    let err = |reason: String| GateError::Key {
        path: path.clone(),
        reason,
    };
    crate::store::ensure_state_dir(state_dir).map_err(|e| err(e.to_string()))?;
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| err("expected exactly 32 bytes".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = random_bytes()?;
            match crate::remediation::write_private_new(&path, &key) {
                Ok(()) => Ok(key),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let bytes = std::fs::read(&path).map_err(|e| err(e.kind().to_string()))?;
                    bytes
                        .try_into()
                        .map_err(|_| err("expected exactly 32 bytes".into()))
                }
                Err(e) => Err(err(e.kind().to_string())),
            }
        }
        Err(e) => Err(err(e.kind().to_string())),
    }
}

/// Random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], GateError> {
    use rand::TryRng;
    let mut buf = [0u8; N];
    rand::rngs::SysRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| GateError::Key {
            path: PathBuf::from("(OS random source)"),
            reason: e.to_string(),
        })?;
    Ok(buf)
}

/// The stored row of a token that this server issued (its MAC verifies against the row's
/// binding), that is not used and not expired.
/// The stored row of a well-formed token: (nonce, expiry, digest, row). Unknown or
/// malformed tokens are one error, so a caller learns nothing about which it was.
fn find_token<'t>(
    store: &Store,
    token: &'t str,
) -> Result<(&'t str, i64, String, TokenRow), GateError> {
    let (nonce, expires) = parse_token(token).ok_or(GateError::UnknownToken)?;
    let digest = token_digest(token);
    let row = store.token_get(&digest)?.ok_or(GateError::UnknownToken)?;
    Ok((nonce, expires, digest, row))
}

fn verify_row(
    key: &[u8; 32],
    token: &str,
    nonce: &str,
    expires: i64,
    row: TokenRow,
) -> Result<TokenRow, GateError> {
    let bound = Call {
        tool: row.tool.clone(),
        caller: row.caller.clone(),
        args_digest: row.args_digest.clone(),
        incident_id: None,
    };
    let expected = token_mac(key, nonce, expires, &bound);
    let presented = token.rsplit('_').next().unwrap_or("");
    if !ct_eq(expected.as_bytes(), presented.as_bytes()) || expires != row.expires_at {
        return Err(GateError::UnknownToken);
    }
    if row.state == "used" {
        return Err(GateError::Replayed);
    }
    if unix_now() >= row.expires_at {
        return Err(GateError::Expired {
            expires_at: rfc3339_unix(row.expires_at),
        });
    }
    Ok(row)
}

fn parse_token(token: &str) -> Option<(&str, i64)> {
    let mut parts = token.split('_');
    let (Some(TOKEN_PREFIX), Some(nonce), Some(exp), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if nonce.len() != 32 || mac.len() != 64 {
        return None;
    }
    Some((nonce, exp.parse().ok()?))
}

fn token_mac(key: &[u8; 32], nonce: &str, expires: i64, call: &Call) -> String {
    hex::encode(hmac_sha256(
        key,
        &encode(&[
            b"confirmation-token",
            nonce.as_bytes(),
            expires.to_string().as_bytes(),
            call.tool.as_bytes(),
            call.args_digest.as_bytes(),
            call.caller.as_bytes(),
        ]),
    ))
}

fn state_mac(key: &[u8; 32], expires: i64, call: &Call, token_digest: &str) -> String {
    hex::encode(hmac_sha256(
        key,
        &encode(&[
            b"request-state",
            expires.to_string().as_bytes(),
            call.tool.as_bytes(),
            call.args_digest.as_bytes(),
            call.caller.as_bytes(),
            token_digest.as_bytes(),
        ]),
    ))
}

/// Hex SHA-256 of a token: what the store keeps instead of the token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Length-prefixed concatenation, so no two part lists encode alike.
fn encode(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// HMAC-SHA256 (RFC 2104), from the `hmac` crate.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339_unix(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(crate::util::rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate(toml: &str) -> (tempfile::TempDir, Gate) {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = std::collections::BTreeMap::new();
        env.insert(
            "SECOPS_STATE_DIR".to_string(),
            tmp.path().to_string_lossy().to_string(),
        );
        let config = Config::from_toml_str(toml, &env).unwrap();
        let store = Store::open(&config.state_dir).unwrap();
        let g = Gate::new(&config, store);
        (tmp, g)
    }

    const ON: &str = "[remediation]\nenabled = true\n";

    fn call(caller: &str, ip: &str) -> Call {
        Call::new(
            "block_ip",
            caller,
            &json!({"ip": ip, "agents": ["001"], "mode": "apply"}),
        )
    }

    #[test]
    fn hmac_matches_rfc4231() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn disabled_by_default_and_per_tool() {
        let (_t, g) = gate("");
        assert!(matches!(
            g.tool_enabled("block_ip"),
            Err(GateError::Disabled { .. })
        ));
        let (_t, g) =
            gate("[remediation]\nenabled = true\n[remediation.block_ip]\nenabled = false\n");
        assert!(g.tool_enabled("rotate_credentials").is_ok());
        assert!(g.tool_enabled("block_ip").is_err());
    }

    #[test]
    fn token_is_bound_single_use_and_mode_independent() {
        let (tmp, g) = gate(ON);
        let plan = Call::new(
            "block_ip",
            "alice",
            &json!({"ip": "192.0.2.1", "agents": ["001"]}),
        );
        let issued = g.issue(&plan, "plan").unwrap();
        // Mode and token are not part of the binding.
        let apply = call("alice", "192.0.2.1");
        assert_eq!(plan.args_digest, apply.args_digest);
        let r = g.redeem(&apply, Some(&issued.token)).unwrap();
        assert!(r.needs_human && !r.approved);
        assert!(matches!(
            g.redeem(&call("bob", "192.0.2.1"), Some(&issued.token)),
            Err(GateError::WrongCaller)
        ));
        assert!(matches!(
            g.redeem(&call("alice", "192.0.2.2"), Some(&issued.token)),
            Err(GateError::WrongArguments)
        ));
        let mut other = apply.clone();
        other.tool = "rotate_credentials".into();
        assert!(matches!(
            g.redeem(&other, Some(&issued.token)),
            Err(GateError::WrongTool { .. })
        ));
        assert!(matches!(
            g.redeem(&apply, None),
            Err(GateError::MissingToken)
        ));
        // Tampering with any character makes it unknown.
        let mut forged = issued.token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            g.redeem(&apply, Some(&forged)),
            Err(GateError::UnknownToken)
        ));
        // Out-of-band approval, then single use.
        approve_out_of_band(&g.store, tmp.path(), &issued.token).unwrap();
        let r = g.redeem(&apply, Some(&issued.token)).unwrap();
        assert!(r.approved && !r.needs_human);
        g.consume(&apply, &r, "apply").unwrap();
        assert!(matches!(
            g.redeem(&apply, Some(&issued.token)),
            Err(GateError::Replayed)
        ));
        // Every step is in the audit chain, which verifies, and no token is in it.
        let rows = g.store.audit_recent(100).unwrap();
        assert!(
            rows.iter()
                .any(|r| r.action == "approve" && r.caller == "cli")
        );
        assert!(rows.iter().any(|r| r.action == "refuse"));
        let all = serde_json::to_string(&rows).unwrap();
        assert!(!all.contains(&issued.token));
        assert!(g.store.audit_verify().unwrap().ok());
        // The key file is private.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tmp.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_unwritable_audit_log_refuses_before_anything_happens() {
        let (_t, g) = gate(ON);
        let c = call("stdio", "192.0.2.1");
        let issued = g.issue(&c, "plan").unwrap();
        let r = g.redeem(&c, Some(&issued.token)).unwrap();
        g.store
            .conn()
            .execute_batch(
                "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        assert!(matches!(g.issue(&c, "plan"), Err(GateError::Audit(_))));
        assert!(matches!(
            g.consume(&c, &r, "apply"),
            Err(GateError::Audit(_))
        ));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let (_t, g) = gate("[remediation]\nenabled = true\ntoken_ttl_secs = 1\n");
        let c = call("stdio", "192.0.2.1");
        let issued = g.issue(&c, "plan").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(matches!(
            g.redeem(&c, Some(&issued.token)),
            Err(GateError::Expired { .. })
        ));
    }

    #[test]
    fn request_state_is_sealed_to_the_call() {
        let (_t, g) = gate(ON);
        let c = call("stdio", "192.0.2.1");
        let issued = g.issue(&c, "plan").unwrap();
        let r = g.redeem(&c, Some(&issued.token)).unwrap();
        let sealed = g.seal_state(&c, &r).unwrap();
        g.open_state(&c, &r, &sealed).unwrap();
        assert!(
            g.open_state(&call("eve", "192.0.2.1"), &r, &sealed)
                .is_err()
        );
        assert!(g.open_state(&c, &r, "rs_99999999999_00").is_err());
    }

    const POLICY: &str = "[remediation]\nenabled = true\napprovers = [\"alice\", \"bob\"]\n\
                          [remediation.confirmation]\n\
                          principals = { alice = \"second_principal\", carol = \"elicitation\" }\n";

    #[test]
    fn confirmation_policy_is_per_principal_with_transport_defaults() {
        let (_t, g) = gate(ON);
        let p = g.policy();
        assert_eq!(confirmation_for(p, "stdio"), Confirmation::Elicitation);
        assert_eq!(confirmation_for(p, "alice"), Confirmation::OutOfBand);
        assert_eq!(
            confirmation_for(p, "http:anonymous"),
            Confirmation::OutOfBand
        );
        let (_t, g) = gate(POLICY);
        let p = g.policy();
        assert_eq!(confirmation_for(p, "alice"), Confirmation::SecondPrincipal);
        assert_eq!(confirmation_for(p, "carol"), Confirmation::Elicitation);
        assert_eq!(confirmation_for(p, "dave"), Confirmation::OutOfBand);
        assert_eq!(confirmation_for(p, "stdio"), Confirmation::Elicitation);
    }

    #[test]
    fn which_approvals_satisfy_which_policy() {
        use Confirmation::*;
        for policy in [Elicitation, OutOfBand, SecondPrincipal] {
            assert!(approval_satisfies(policy, "alice", "cli"), "{policy:?}");
            assert!(!approval_satisfies(policy, "alice", "elicitation"));
            assert!(!approval_satisfies(policy, "alice", "principal:alice"));
        }
        assert!(approval_satisfies(
            SecondPrincipal,
            "alice",
            "principal:bob"
        ));
        assert!(!approval_satisfies(OutOfBand, "alice", "principal:bob"));
        assert!(!approval_satisfies(Elicitation, "alice", "principal:bob"));
        assert!(!approval_satisfies(SecondPrincipal, "alice", "bob"));
        assert!(!approval_satisfies(SecondPrincipal, "alice", "principal:"));
    }

    #[test]
    fn who_may_approve_whom() {
        let (_t, g) = gate(POLICY);
        let p = g.policy();
        assert!(check_approval_of(p, "bob", "alice").is_ok());
        assert!(matches!(
            check_approval_of(p, "alice", "alice"),
            Err(GateError::SelfApproval { .. })
        ));
        assert!(matches!(
            check_approval_of(p, "carol", "alice"),
            Err(GateError::NotApprover { .. })
        ));
        // Another principal's approval does not count for out_of_band or elicitation.
        for requester in ["dave", "carol", "stdio"] {
            assert!(matches!(
                check_approval_of(p, "bob", requester),
                Err(GateError::ApprovalNotAccepted { .. })
            ));
        }
    }

    #[test]
    fn an_elicitation_answer_never_satisfies_out_of_band_or_second_principal() {
        let (_t, g) = gate(POLICY);
        for caller in ["alice", "dave"] {
            let c = call(caller, "192.0.2.1");
            let issued = g.issue(&c, "plan").unwrap();
            let mut r = g.redeem(&c, Some(&issued.token)).unwrap();
            assert!(r.needs_human);
            assert!(g.human_step(&c, &r).is_err());
            assert!(g.seal_state(&c, &r).is_err());
            assert!(g.human_answer(&c, &mut r, Ok(())).is_err(), "{caller}");
            assert!(r.approved_by.is_none());
        }
        // The stdio caller's client is asked, and its yes is recorded.
        let c = call("stdio", "192.0.2.1");
        let issued = g.issue(&c, "plan").unwrap();
        let mut r = g.redeem(&c, Some(&issued.token)).unwrap();
        assert!(g.human_step(&c, &r).is_ok());
        g.human_answer(&c, &mut r, Ok(())).unwrap();
        g.consume(&c, &r, "apply").unwrap();
        let rows = g.store.audit_recent(1).unwrap();
        assert!(
            rows[0]
                .detail
                .as_deref()
                .unwrap()
                .contains("approved by elicitation")
        );
    }

    #[test]
    fn a_second_principal_approves_and_the_audit_names_it() {
        let (_t, g) = gate(POLICY);
        let c = call("alice", "192.0.2.1");
        let issued = g.issue(&c, "block 192.0.2.1").unwrap();
        let approve = |who: &str, token: &str| {
            let a = Call::new(APPROVE_TOOL, who, &json!({"confirmation_token": token}));
            g.approve_by_principal(
                &a,
                &ApproveArgs {
                    confirmation_token: token.to_string(),
                    comment: Some("seen the brute force".into()),
                },
            )
        };
        assert!(matches!(
            approve("alice", &issued.token),
            Err(GateError::SelfApproval { .. })
        ));
        assert!(matches!(
            approve("carol", &issued.token),
            Err(GateError::NotApprover { .. })
        ));
        assert!(matches!(
            approve("bob", "sct1_nope"),
            Err(GateError::UnknownToken)
        ));
        let out = approve("bob", &issued.token).unwrap();
        assert_eq!(
            (out.requester.as_str(), out.approved_by.as_str()),
            ("alice", "bob")
        );
        assert!(matches!(
            approve("bob", &issued.token),
            Err(GateError::AlreadyApproved { .. })
        ));
        let r = g.redeem(&c, Some(&issued.token)).unwrap();
        assert!(r.approved && !r.needs_human);
        g.consume(&c, &r, "apply").unwrap();
        assert!(matches!(
            approve("bob", &issued.token),
            Err(GateError::Replayed)
        ));
        let rows = g.store.audit_recent(100).unwrap();
        let approved = rows.iter().find(|r| r.action == "approve").unwrap();
        assert_eq!(approved.caller, "bob");
        assert_eq!(approved.tool, "block_ip");
        assert!(
            approved
                .detail
                .as_deref()
                .unwrap()
                .contains("seen the brute force")
        );
        let applied = rows.iter().find(|r| r.action == "apply").unwrap();
        assert!(
            applied
                .detail
                .as_deref()
                .unwrap()
                .contains("approved by principal `bob`")
        );
        let refusals = rows.iter().filter(|r| r.tool == APPROVE_TOOL).count();
        assert_eq!(refusals, 5, "every refused approval is audited");
        assert!(
            !serde_json::to_string(&rows)
                .unwrap()
                .contains(&issued.token)
        );
        assert!(g.store.audit_verify().unwrap().ok());
    }

    #[test]
    fn rate_limit_is_per_caller() {
        let (_t, g) = gate("[remediation]\nenabled = true\nrate_limit_per_minute = 2\n");
        let a = call("alice", "192.0.2.1");
        assert!(g.admit(&a).is_ok() && g.admit(&a).is_ok());
        assert!(matches!(g.admit(&a), Err(GateError::RateLimited { .. })));
        assert!(g.admit(&call("bob", "192.0.2.1")).is_ok());
    }
}
