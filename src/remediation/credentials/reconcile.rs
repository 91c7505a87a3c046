//! Reconciliation, once per process, of rotations a crash interrupted: whichever of the
//! stored and the staged secret logs in becomes (or stays) the stored secret.

use serde_json::json;

use super::TOOL;
use super::rotate::promote;
use super::secret::{login_works, pending_file};
use crate::config::{CredentialConfig, read_secret_file};
use crate::context::AppContext;
use crate::remediation::Call;

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
