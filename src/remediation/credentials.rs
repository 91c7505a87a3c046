//! rotate_credentials: preflight -> stage -> set -> test -> promote for a Wazuh API user,
//! with rollback after a failed set, an `orphaned` mark when rollback fails too, and
//! reconciliation at start of any rotation a crash interrupted. Secrets never leave here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::gate::{Call, GateError, Mode};
use super::{crash_point, sync_dir, write_private};
use crate::checks::ArgError;
use crate::config::{CredentialConfig, Login, Secret, WazuhConfig, read_secret_file};
use crate::context::AppContext;
use crate::wazuh::{ManagerClient, ManagerOptions};

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

/// Plan or apply result (plan fields or apply fields are set, per `mode`).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
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

impl RotateOutput {
    pub fn summary(&self) -> String {
        match self.outcome.as_deref() {
            None => format!(
                "Plan to rotate `{}` ({}): {} steps. Nothing changed yet; apply with the \
                 confirmation_token before {}.",
                self.credential,
                self.target,
                self.steps.as_ref().map_or(0, Vec::len),
                self.expires_at.as_deref().unwrap_or("?")
            ),
            Some("rotated") => format!(
                "Rotated `{}`: version {} (fingerprint {}), verified against the target, stored \
                 at {}.",
                self.credential,
                self.version.as_deref().unwrap_or("?"),
                self.fingerprint.as_deref().unwrap_or("?"),
                self.stored_at.as_deref().unwrap_or("?")
            ),
            Some(o) => format!(
                "Rotation of `{}` {o}: {}",
                self.credential,
                self.detail.as_deref().unwrap_or("")
            ),
        }
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
pub struct Prepared<'a> {
    pub cred: &'a CredentialConfig,
    pub target: String,
    pub steps: Vec<String>,
}

/// Validate the arguments against configuration and policy; compute the steps.
pub fn prepare<'a>(ctx: &'a AppContext, args: &RotateArgs) -> Result<Prepared<'a>, RotateError> {
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
        cred,
        target: format!("Wazuh API user `{}` at {}", cred.user, manager.base_url()),
        steps,
    })
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn pending_file(cred: &CredentialConfig) -> PathBuf {
    side_file(&cred.secret_file, ".pending")
}

pub fn previous_file(cred: &CredentialConfig) -> PathBuf {
    side_file(&cred.secret_file, ".previous")
}

/// A client logging in as `user` with `password` (to test a secret or act as that user).
fn client_as(ctx: &AppContext, user: &str, password: &Secret) -> Result<ManagerClient, String> {
    let w = ctx
        .config
        .wazuh
        .as_ref()
        .ok_or("the Wazuh manager API is not configured")?;
    let cfg = WazuhConfig {
        url: w.url.clone(),
        login: Login {
            user: user.to_string(),
            password: Some(password.clone()),
            password_source: None,
        },
        ca_file: w.ca_file.clone(),
        requests_per_minute: 60,
    };
    ManagerClient::new(
        &cfg,
        ManagerOptions {
            request_timeout: Duration::from_millis(ctx.config.health.timeout_ms),
            insecure: ctx.config.tls_insecure,
            max_rate_limit_retries: 1,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())
}

async fn login_works(ctx: &AppContext, user: &str, password: &Secret) -> Result<(), String> {
    client_as(ctx, user, password)?
        .login()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Look up the numeric id of an API user by name.
async fn user_id(m: &ManagerClient, user: &str) -> Result<u64, String> {
    let body = m
        .get(
            "/security/users",
            &[("search", user.to_string()), ("limit", "500".into())],
        )
        .await
        .map_err(|e| e.to_string())?;
    body.pointer("/data/affected_items")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .find(|u| u.get("username").and_then(|n| n.as_str()) == Some(user))
        .and_then(|u| u.get("id").and_then(|i| i.as_u64()))
        .ok_or_else(|| format!("the Wazuh API has no user named `{user}`"))
}

async fn set_password(m: &ManagerClient, id: u64, password: &Secret) -> Result<(), String> {
    m.request(
        Method::PUT,
        &format!("/security/users/{id}"),
        &[],
        Some(&json!({ "password": password.expose() })),
    )
    .await
    .map_err(|e| e.to_string())
    .and_then(|body| {
        let failed = body
            .pointer("/data/total_failed_items")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if failed > 0 {
            Err(format!(
                "the API refused the change: {}",
                body.pointer("/data/failed_items/0/error/message")
                    .and_then(|v| v.as_str())
                    .unwrap_or("failed item")
            ))
        } else {
            Ok(())
        }
    })
}

/// 32 characters from the OS CSPRNG with a lowercase and an uppercase letter, a digit and
/// a symbol (Wazuh's policy).
pub fn generate_secret() -> Result<Secret, GateError> {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%+-.:=?@^_~";
    let limit = 256 - 256 % ALPHABET.len();
    loop {
        let mut out = String::with_capacity(32);
        while out.len() < 32 {
            let bytes: [u8; 64] = super::gate::random_bytes()?;
            for b in bytes {
                if (b as usize) < limit && out.len() < 32 {
                    out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
                }
            }
        }
        let ok = out.bytes().any(|c| c.is_ascii_lowercase())
            && out.bytes().any(|c| c.is_ascii_uppercase())
            && out.bytes().any(|c| c.is_ascii_digit())
            && out.bytes().any(|c| !c.is_ascii_alphanumeric());
        if ok {
            return Ok(Secret::new(out));
        }
    }
}

fn new_version() -> Result<String, GateError> {
    let r: [u8; 3] = super::gate::random_bytes()?;
    let ts = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    Ok(format!("v{ts}-{}", hex::encode(r)))
}

/// Plan-time checks (read-only): the current secret logs in, no rotation holds the lock.
/// Returns warnings worth showing in the plan (e.g. an earlier orphaned rotation).
pub async fn check(ctx: &AppContext, p: &Prepared<'_>) -> Result<Vec<String>, RotateError> {
    ensure_reconciled(ctx).await;
    let cred = p.cred;
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

/// Apply a plan whose token the gate has consumed (`audit_id` is the `apply` row).
pub async fn execute(
    ctx: &AppContext,
    p: &Prepared<'_>,
    call: &Call,
    audit_id: i64,
) -> Result<RotateOutput, RotateError> {
    ensure_reconciled(ctx).await;
    let gate = &ctx.gate;
    let cred = p.cred;
    let admin = ctx.wazuh.as_ref().ok_or(RotateError::NotConfigured)?;
    let file = &cred.secret_file;
    let fail = |why: String| {
        let _ = gate.audit(call, "failure", "failed", Some(format!("preflight: {why}")));
        RotateError::Preflight(why)
    };

    // 1. preflight
    let current = read_secret_file(file).map_err(fail)?;
    login_works(ctx, &cred.user, &current).await.map_err(|e| {
        fail(format!(
            "the current secret in {} does not log in as `{}` ({e}); fix the file or the \
             account first",
            file.display(),
            cred.user
        ))
    })?;
    let id = user_id(admin, &cred.user).await.map_err(fail)?;
    let previous_version = match ctx.store.rotation_get(&cred.id).map_err(GateError::from)? {
        Some(row) if row.version.is_some() => row.version.unwrap_or_default(),
        _ => format!("unversioned-{}", gate.fingerprint(current.expose())?),
    };
    let version = new_version()?;
    let new = generate_secret()?;
    let fingerprint = gate.fingerprint(new.expose())?;
    if !ctx
        .store
        .rotation_lock(&cred.id, &version, &fingerprint)
        .map_err(GateError::from)?
    {
        let _ = gate.audit(
            call,
            "failure",
            "refused",
            Some("rotation in progress".into()),
        );
        return Err(RotateError::InProgress(cred.id.clone()));
    }
    let mut out = RotateOutput {
        credential: cred.id.clone(),
        mode: "apply".into(),
        target: p.target.clone(),
        version: Some(version.clone()),
        previous_version: Some(previous_version),
        fingerprint: Some(fingerprint),
        verified: Some(false),
        stored_at: Some(file.display().to_string()),
        audit_id: Some(audit_id),
        ..Default::default()
    };

    // 2. stage
    let pending = pending_file(cred);
    if let Err(e) = write_private(&pending, format!("{}\n", new.expose()).as_bytes())
        .and_then(|()| sync_dir(file.parent().unwrap_or(Path::new("/"))))
    {
        let _ = std::fs::remove_file(&pending);
        let _ = ctx.store.rotation_release(&cred.id, false);
        return finish(
            ctx,
            call,
            out,
            "failed",
            format!(
                "cannot stage the new secret in {}: {}; nothing was changed",
                pending.display(),
                e.kind()
            ),
        );
    }
    ctx.store
        .rotation_step(&cred.id, "staged")
        .map_err(GateError::from)?;
    crash_point("stage");

    // 3. set (recorded before it happens: fail closed)
    if let Err(e) = gate.audit(
        call,
        "set",
        "started",
        Some(format!("PUT /security/users/{id}")),
    ) {
        let _ = std::fs::remove_file(&pending);
        let _ = ctx.store.rotation_release(&cred.id, false);
        return Err(e.into());
    }
    if let Err(e) = set_password(admin, id, &new).await {
        // The answer may be lost although the change happened: ask the target.
        if login_works(ctx, &cred.user, &new).await.is_err() {
            let _ = std::fs::remove_file(&pending);
            let _ = ctx.store.rotation_release(&cred.id, false);
            return finish(
                ctx,
                call,
                out,
                "failed",
                format!(
                    "the target refused the new secret ({e}); nothing was changed, the current \
                 secret still works"
                ),
            );
        }
    }
    ctx.store
        .rotation_step(&cred.id, "set")
        .map_err(GateError::from)?;
    crash_point("set");

    // 4. test
    if let Err(e) = login_works(ctx, &cred.user, &new).await {
        return rollback(ctx, p, call, out, id, &current, &new, &e).await;
    }
    out.verified = Some(true);
    ctx.store
        .rotation_step(&cred.id, "tested")
        .map_err(GateError::from)?;
    crash_point("test");

    // 5. promote
    if let Err(e) = promote(cred, &current) {
        return rollback(ctx, p, call, out, id, &current, &new, &e).await;
    }
    ctx.store
        .rotation_release(&cred.id, true)
        .map_err(GateError::from)?;
    if cred.user == admin.user() {
        admin.set_password(new.clone()).await;
    }
    finish(ctx, call, out, "rotated", String::new())
}

/// Keep `current` as `.previous`, then atomically move `.pending` over the secret file.
fn promote(cred: &CredentialConfig, current: &Secret) -> Result<(), String> {
    let file = &cred.secret_file;
    let dir = file.parent().unwrap_or(Path::new("/"));
    write_private(
        &previous_file(cred),
        format!("{}\n", current.expose()).as_bytes(),
    )
    .map_err(|e| format!("cannot keep the previous secret: {}", e.kind()))?;
    crash_point("promote");
    std::fs::rename(pending_file(cred), file)
        .and_then(|()| sync_dir(dir))
        .map_err(|e| format!("cannot replace {}: {}", file.display(), e.kind()))
}

#[allow(clippy::too_many_arguments)]
async fn rollback(
    ctx: &AppContext,
    p: &Prepared<'_>,
    call: &Call,
    mut out: RotateOutput,
    id: u64,
    current: &Secret,
    new: &Secret,
    why: &str,
) -> Result<RotateOutput, RotateError> {
    let cred = p.cred;
    let admin = ctx.wazuh.as_ref().ok_or(RotateError::NotConfigured)?;
    out.verified = Some(false);
    gate_audit(ctx, call, "rollback", "started", format!("after: {why}"))?;
    // Our own login was just changed: act as that user with the new secret.
    let restored = if cred.user == admin.user() {
        match client_as(ctx, &cred.user, new) {
            Ok(c) => set_password(&c, id, current).await,
            Err(e) => Err(e),
        }
    } else {
        set_password(admin, id, current).await
    };
    let restored = match restored {
        Ok(()) => login_works(ctx, &cred.user, current).await,
        Err(e) => Err(e),
    };
    match restored {
        Ok(()) => {
            let _ = std::fs::remove_file(pending_file(cred));
            ctx.store
                .rotation_release(&cred.id, false)
                .map_err(GateError::from)?;
            out.version = out.previous_version.clone();
            finish(
                ctx,
                call,
                out,
                "rolled_back",
                format!(
                    "the new secret failed ({why}); the previous secret was restored on the target \
                 and still works; {} is unchanged",
                    cred.secret_file.display()
                ),
            )
        }
        Err(e) => {
            let instructions = format!(
                "ORPHANED: the new secret failed ({why}) and restoring the previous one failed \
                 too ({e}). The target may hold either secret. A human must: 1) log in to Wazuh \
                 as an administrator; 2) set the password of API user `{}` to the content of {} \
                 (the previous secret) — or, if the new one works, move {} over {}; 3) run \
                 rotate_credentials again. Do not delete {}.",
                cred.user,
                cred.secret_file.display(),
                pending_file(cred).display(),
                cred.secret_file.display(),
                pending_file(cred).display()
            );
            ctx.store
                .rotation_orphan(&cred.id, Some(&instructions))
                .map_err(GateError::from)?;
            finish(ctx, call, out, "failed", instructions)
        }
    }
}

fn gate_audit(
    ctx: &AppContext,
    call: &Call,
    action: &str,
    outcome: &str,
    detail: String,
) -> Result<i64, GateError> {
    Ok(ctx.gate.audit(call, action, outcome, Some(detail))?.id)
}

/// Record the outcome (fail closed: an unrecordable outcome is an error) and report it.
fn finish(
    ctx: &AppContext,
    call: &Call,
    mut out: RotateOutput,
    outcome: &str,
    detail: String,
) -> Result<RotateOutput, RotateError> {
    let action = match outcome {
        "rotated" => "success",
        "rolled_back" => "rollback",
        _ => "failure",
    };
    let audit_detail = format!(
        "version {} fingerprint {}{}{}",
        out.version.as_deref().unwrap_or("-"),
        out.fingerprint.as_deref().unwrap_or("-"),
        if detail.is_empty() { "" } else { ": " },
        detail
    );
    out.audit_id = Some(gate_audit(ctx, call, action, outcome, audit_detail)?);
    if outcome != "rotated" {
        // Not promoted: the stored secret is still the previous version.
        out.version = out.previous_version.clone();
    }
    out.outcome = Some(outcome.to_string());
    if !detail.is_empty() {
        out.detail = Some(detail);
    }
    Ok(out)
}

/// Reconcile, once per process, rotations a crash interrupted.
pub async fn ensure_reconciled(ctx: &AppContext) {
    ctx.reconciled.get_or_init(|| reconcile(ctx)).await;
}

/// Make every credential with an interrupted rotation agree with its target: whichever of
/// the stored and the staged secret logs in becomes (or stays) the stored secret.
async fn reconcile(ctx: &AppContext) {
    let rows = match ctx.store.rotations_in_progress() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read rotation state: {e}");
            return;
        }
    };
    for cred in &ctx.config.credentials {
        let row = rows.iter().find(|r| r.credential == cred.id);
        let pending = pending_file(cred);
        if row.is_none() && !pending.exists() {
            continue;
        }
        let result =
            reconcile_one(ctx, cred, row.and_then(|r| r.pending_fingerprint.clone())).await;
        let call = Call {
            tool: TOOL.into(),
            caller: "system".into(),
            args_digest: crate::store::audit::canonical_digest(&json!({"credential": cred.id})),
            incident_id: None,
        };
        match result {
            Ok(what) => {
                tracing::info!(credential = %cred.id, "reconciled an interrupted rotation: {what}");
                let _ = ctx.gate.audit(&call, "reconcile", "ok", Some(what));
            }
            Err(why) => {
                tracing::error!(credential = %cred.id, "cannot reconcile an interrupted rotation: {why}");
                let _ = ctx.gate.audit(&call, "reconcile", "failed", Some(why));
            }
        }
    }
}

async fn reconcile_one(
    ctx: &AppContext,
    cred: &CredentialConfig,
    pending_fp: Option<String>,
) -> Result<String, String> {
    let pending = pending_file(cred);
    let current = read_secret_file(&cred.secret_file)?;
    if login_works(ctx, &cred.user, &current).await.is_ok() {
        let _ = std::fs::remove_file(&pending);
        let promoted =
            pending_fp.is_some() && ctx.gate.fingerprint(current.expose()).ok() == pending_fp;
        ctx.store
            .rotation_release(&cred.id, promoted)
            .map_err(|e| e.to_string())?;
        return Ok(if promoted {
            "the new secret was already promoted".into()
        } else {
            "the target still has the stored secret; the staged one was discarded".into()
        });
    }
    let staged = read_secret_file(&pending).map_err(|e| {
        format!("the stored secret does not log in and no staged secret is usable ({e})")
    })?;
    if login_works(ctx, &cred.user, &staged).await.is_err() {
        let why = format!(
            "neither {} nor {} logs in as `{}` (or Wazuh is unreachable); a human must set the \
             user's password to one of them",
            cred.secret_file.display(),
            pending.display(),
            cred.user
        );
        // Leave the lock: the next start tries again (Wazuh may just be down).
        return Err(why);
    }
    promote(cred, &current)?;
    ctx.store
        .rotation_release(&cred.id, true)
        .map_err(|e| e.to_string())?;
    if let Some(m) = ctx.wazuh.as_ref()
        && m.user() == cred.user
    {
        m.set_password(staged).await;
    }
    Ok("the target had the staged secret; it was promoted".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_meet_wazuh_policy() {
        for _ in 0..50 {
            let s = generate_secret().unwrap();
            let s = s.expose();
            assert_eq!(s.len(), 32);
            assert!(s.bytes().any(|c| c.is_ascii_lowercase()));
            assert!(s.bytes().any(|c| c.is_ascii_uppercase()));
            assert!(s.bytes().any(|c| c.is_ascii_digit()));
            assert!(s.bytes().any(|c| !c.is_ascii_alphanumeric()));
        }
        assert_ne!(
            generate_secret().unwrap().expose(),
            generate_secret().unwrap().expose()
        );
    }
}
