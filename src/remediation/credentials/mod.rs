//! rotate_credentials: preflight -> stage -> set -> test -> promote for a Wazuh API user,
//! with rollback after a failed set, an `orphaned` mark when rollback fails too, and
//! reconciliation at start of any rotation a crash interrupted. Secrets never leave here.
//! This file holds the arguments, the reports and the validation; `rotate.rs` applies,
//! `reconcile.rs` repairs after a crash, `secret.rs` makes and tests secrets.

mod reconcile;
mod rotate;
mod secret;

use serde::{Deserialize, Serialize};

pub use self::reconcile::ensure_reconciled;
use self::secret::login_works;
pub use self::secret::{generate_secret, pending_file, previous_file};
use super::gate::{Call, GateError, Mode};
use super::{ApplyReport, Arguments, Executed, Outcome, PlanReport, Remediation};
use crate::checks::ArgError;
use crate::config::{CredentialConfig, read_secret_file};
use crate::context::AppContext;

pub const TOOL: &str = "rotate_credentials";

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateArgs {
    /// Id of a credential from the server's configuration (`[[credentials]]`).
    pub credential: String,
    /// `plan` (default): validate and return the steps plus a confirmation token.
    /// `apply`: carry out the plan the token was issued for.
    #[serde(default)]
    pub mode: Mode,
    /// The token `plan` returned (required for `apply`).
    pub confirmation_token: Option<String>,
    /// Why the credential is rotated (recorded in the audit log).
    pub reason: String,
    /// Incident this change belongs to (recorded in the audit log).
    pub incident_id: Option<String>,
}

// The declared output schema only (the tools/list snapshot pins it): results are a
// `PlanReport<RotatePlan>` or an `ApplyReport<RotateApplied, RotateOutcome>`.
/// Plan or apply result (plan fields or apply fields are set, per `mode`).
#[derive(schemars::JsonSchema)]
pub struct RotateOutput {
    pub credential: String,
    /// `plan` or `apply`.
    pub mode: String,
    /// What is rotated, e.g. the Wazuh API user.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `rotated`, `rolled_back` or `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// Short HMAC of the new secret (never the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<i64>,
    /// What went wrong and, when needed, what a human must do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A plan's own fields.
#[derive(Debug, Clone, Serialize)]
pub struct RotatePlan {
    pub credential: String,
    pub target: String,
}

/// An applied rotation's own fields.
#[derive(Debug, Clone, Serialize)]
pub struct RotateApplied {
    pub credential: String,
    pub target: String,
    /// The stored secret's version (the previous one unless `rotated`).
    pub version: String,
    pub previous_version: String,
    /// Short HMAC of the new secret (never the secret).
    pub fingerprint: String,
    pub verified: bool,
    pub stored_at: String,
    /// What went wrong and, when needed, what a human must do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RotateOutcome {
    /// The new secret is set, tested and stored.
    Rotated,
    /// The new secret failed and the previous one was restored: nothing changed.
    RolledBack,
    /// Read `detail`: it may say a human must act.
    Failed,
}

impl Outcome for RotateOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RotateOutcome::Rotated => "rotated",
            RotateOutcome::RolledBack => "rolled_back",
            RotateOutcome::Failed => "failed",
        }
    }
    fn audit_action(self) -> &'static str {
        match self {
            RotateOutcome::Rotated => "success",
            RotateOutcome::RolledBack => "rollback",
            RotateOutcome::Failed => "failure",
        }
    }
    fn failed(self) -> bool {
        self == RotateOutcome::Failed
    }
}

impl Arguments for RotateArgs {
    fn mode(&self) -> Mode {
        self.mode
    }
    fn confirmation_token(&self) -> Option<&str> {
        self.confirmation_token.as_deref()
    }
    fn reason(&self) -> &str {
        &self.reason
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgError),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("refused: the Wazuh manager API is not configured (set SECOPS_WAZUH_URL)")]
    NotConfigured,
    #[error("refused: preflight failed: {0}")]
    Preflight(String),
    #[error(
        "refused: a rotation of `{0}` is already in progress; wait for it to finish (a rotation \
         interrupted by a crash is reconciled when the server starts)"
    )]
    InProgress(String),
}

/// A validated request.
pub struct Prepared {
    pub cred: CredentialConfig,
    pub target: String,
    pub steps: Vec<String>,
}

/// Validate the arguments against configuration and policy; compute the steps.
pub fn prepare(ctx: &AppContext, args: &RotateArgs) -> Result<Prepared, RotateError> {
    if args.reason.trim().is_empty() {
        return Err(
            ArgError::new("reason", "must say why (it is recorded in the audit log)").into(),
        );
    }
    let ids = || {
        ctx.config
            .credentials
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cred = ctx
        .config
        .credentials
        .iter()
        .find(|c| c.id == args.credential)
        .ok_or_else(|| {
            ArgError::new(
                "credential",
                format!(
                    "`{}` is not configured; allowed: {}",
                    crate::util::quote_untrusted(&args.credential, 64),
                    ids()
                ),
            )
        })?;
    if let Some(allow) = &ctx.config.remediation.rotate_allow
        && !allow.contains(&cred.id)
    {
        return Err(ArgError::new(
            "credential",
            format!(
                "`{}` is not in [remediation.rotate_credentials] allow; allowed: {}",
                cred.id,
                allow.join(", ")
            ),
        )
        .into());
    }
    let manager = ctx.wazuh.as_ref().ok_or(RotateError::NotConfigured)?;
    let file = cred.secret_file.display();
    let own = cred.user == manager.user();
    let mut steps = vec![
        format!(
            "preflight: check that the current secret in {file} logs in as `{}`, look up the \
             user id, and take the rotation lock",
            cred.user
        ),
        format!(
            "stage: generate a 32-character secret (OS CSPRNG; lower, upper, digit, symbol) \
             into {file}.pending (0600, fsync)"
        ),
        format!(
            "set: PUT /security/users/{{id}} on {} (Wazuh revokes the user's tokens)",
            manager.base_url()
        ),
        format!("test: log in as `{}` with the new secret", cred.user),
        format!(
            "promote: keep the current secret as {file}.previous (0600) and atomically replace \
             {file}"
        ),
    ];
    if own {
        steps.push("switch this server's own Wazuh login to the new secret (no restart)".into());
    }
    steps.push(
        "on failure after set: restore the previous secret on the target (rolled_back); if \
         that fails, mark the credential orphaned with instructions"
            .into(),
    );
    Ok(Prepared {
        cred: cred.clone(),
        target: format!("Wazuh API user `{}` at {}", cred.user, manager.base_url()),
        steps,
    })
}

/// Plan-time checks (read-only): the current secret logs in, no rotation holds the lock.
/// Returns warnings worth showing in the plan (e.g. an earlier orphaned rotation).
pub async fn check(ctx: &AppContext, p: &Prepared) -> Result<Vec<String>, RotateError> {
    ensure_reconciled(ctx).await;
    let cred = &p.cred;
    let current = read_secret_file(&cred.secret_file).map_err(RotateError::Preflight)?;
    login_works(ctx, &cred.user, &current).await.map_err(|e| {
        RotateError::Preflight(format!(
            "the current secret in {} does not log in as `{}` ({e}); fix the file or the \
             account first",
            cred.secret_file.display(),
            cred.user
        ))
    })?;
    let row = ctx.store.rotation_get(&cred.id).map_err(GateError::from)?;
    if row.as_ref().is_some_and(|r| r.lock_step.is_some()) {
        return Err(RotateError::InProgress(cred.id.clone()));
    }
    Ok(row
        .and_then(|r| r.orphaned)
        .map(|o| format!("note: an earlier rotation was marked {o}"))
        .into_iter()
        .collect())
}

/// The rotate_credentials action.
pub struct RotateCredentials;

impl Remediation for RotateCredentials {
    const TOOL: &'static str = TOOL;
    type Args = RotateArgs;
    type Prepared = Prepared;
    type Plan = RotatePlan;
    type Applied = RotateApplied;
    type Outcome = RotateOutcome;
    type Error = RotateError;

    async fn prepare(ctx: &AppContext, args: &RotateArgs) -> Result<Prepared, RotateError> {
        prepare(ctx, args)
    }

    async fn check(ctx: &AppContext, p: &mut Prepared) -> Result<(), RotateError> {
        let notes = check(ctx, p).await?;
        p.steps.extend(notes);
        Ok(())
    }

    fn steps(p: &Prepared) -> &[String] {
        &p.steps
    }

    fn summary(p: &Prepared, reason: &str) -> String {
        format!(
            "rotate credential `{}` ({}); reason: {reason}",
            p.cred.id, p.target
        )
    }

    fn question(p: &Prepared, reason: &str) -> String {
        format!(
            "secops-mcp asks to ROTATE credential `{}` ({}).\nReason: {reason}\nSteps:\n- {}\n\
             Approve this change?",
            p.cred.id,
            p.target,
            p.steps.join("\n- ")
        )
    }

    fn plan(p: &Prepared) -> RotatePlan {
        RotatePlan {
            credential: p.cred.id.clone(),
            target: p.target.clone(),
        }
    }

    async fn execute(
        ctx: &AppContext,
        p: &Prepared,
        call: &Call,
    ) -> Result<Executed<RotateApplied, RotateOutcome>, RotateError> {
        rotate::execute(ctx, p, call).await
    }

    fn plan_summary(r: &PlanReport<RotatePlan>) -> String {
        format!(
            "Plan to rotate `{}` ({}): {} steps. Nothing changed yet; apply with the \
             confirmation_token before {}.",
            r.action.credential,
            r.action.target,
            r.steps.len(),
            r.expires_at
        )
    }

    fn applied_summary(r: &ApplyReport<RotateApplied, RotateOutcome>) -> String {
        let a = &r.action;
        match r.outcome {
            RotateOutcome::Rotated => format!(
                "Rotated `{}`: version {} (fingerprint {}), verified against the target, stored \
                 at {}.",
                a.credential, a.version, a.fingerprint, a.stored_at
            ),
            o => format!(
                "Rotation of `{}` {}: {}",
                a.credential,
                o.as_str(),
                a.detail.as_deref().unwrap_or("")
            ),
        }
    }
}
