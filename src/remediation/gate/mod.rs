//! The one gate every destructive tool goes through: enablement, per-caller rate limit,
//! plan-then-apply confirmation tokens (HMAC-bound to tool, exact arguments and caller,
//! single use, expiring), the human-approval decision, and fail-closed audit of every step.
//! Every policy decision of a remediation is made here; `approval.rs` says who may approve
//! whose change, `token.rs` holds the token and key mechanics, `error.rs` the refusals.

mod approval;
mod error;
mod token;

use std::path::PathBuf;
use std::sync::OnceLock;

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde_json::Value;

pub use self::approval::{
    ApproveArgs, ApproveOutput, MAX_COMMENT_CHARS, approval_label, approval_satisfies,
    approve_out_of_band, check_approval_of, check_approver, confirmation_for,
};
pub use self::error::GateError;
use self::token::{
    TOKEN_PREFIX, ct_eq, encode, find_token, load_or_create_key, rfc3339_unix, state_mac,
    token_mac, unix_now, verify_row,
};
pub use self::token::{hmac_sha256, random_bytes, token_digest};
pub use crate::config::Confirmation;
use crate::config::{Config, RemediationPolicy};
use crate::store::audit::canonical_digest;
use crate::store::{AuditEntry, AuditRecord, Store, TokenRow};

/// File (in the state directory) holding the server's 32-byte HMAC key.
pub const KEY_FILE: &str = "remediation.key";
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
        let seq = crate::incidents::parse_incident_id(id).ok_or_else(|| {
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

#[cfg(test)]
mod tests;
