//! Applying a rotation: preflight -> stage -> set -> test -> promote, with rollback after a
//! failed set or test and an `orphaned` mark with instructions when rollback fails too. Each
//! step is recorded in the rotation state (and the set in the audit log) before it happens,
//! so a crash at any step is reconciled at the next start.

use std::path::Path;

use super::reconcile::ensure_reconciled;
use super::secret::{
    client_as, generate_secret, login_works, new_version, pending_file, previous_file,
};
use super::{Prepared, RotateApplied, RotateError, RotateOutcome};
use crate::config::{CredentialConfig, Secret, read_secret_file};
use crate::context::AppContext;
use crate::remediation::{Call, Executed, GateError, crash_point, sync_dir, write_private};
use crate::wazuh::ManagerClient;

/// What an apply of rotate_credentials returns to the flow.
pub(super) type Rotation = Executed<RotateApplied, RotateOutcome>;

/// Apply a plan whose token the gate has consumed.
pub(super) async fn execute(
    ctx: &AppContext,
    p: &Prepared,
    call: &Call,
) -> Result<Rotation, RotateError> {
    ensure_reconciled(ctx).await;
    let gate = &ctx.gate;
    let cred = &p.cred;
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
    let id = match admin.user_id(&cred.user).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Err(fail(format!(
                "the Wazuh API has no user named `{}`",
                cred.user
            )));
        }
        Err(e) => return Err(fail(e.to_string())),
    };
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
    let mut out = RotateApplied {
        credential: cred.id.clone(),
        target: p.target.clone(),
        version: version.clone(),
        previous_version,
        fingerprint,
        verified: false,
        stored_at: file.display().to_string(),
        detail: None,
    };

    // 2. stage
    let pending = pending_file(cred);
    if let Err(e) = write_private(&pending, format!("{}\n", new.expose()).as_bytes())
        .and_then(|()| sync_dir(file.parent().unwrap_or(Path::new("/"))))
    {
        discard_staged(ctx, cred, &pending);
        return Ok(finish(
            out,
            RotateOutcome::Failed,
            format!(
                "cannot stage the new secret in {}: {}; nothing was changed",
                pending.display(),
                e.kind()
            ),
        ));
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
        discard_staged(ctx, cred, &pending);
        return Err(e.into());
    }
    if let Err(e) = set_password(admin, id, &new).await {
        // The answer may be lost although the change happened: ask the target.
        if login_works(ctx, &cred.user, &new).await.is_err() {
            discard_staged(ctx, cred, &pending);
            return Ok(finish(
                out,
                RotateOutcome::Failed,
                format!(
                    "the target refused the new secret ({e}); nothing was changed, the current \
                 secret still works"
                ),
            ));
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
    out.verified = true;
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
    Ok(finish(out, RotateOutcome::Rotated, String::new()))
}

/// Keep `current` as `.previous`, then atomically move `.pending` over the secret file.
pub(super) fn promote(cred: &CredentialConfig, current: &Secret) -> Result<(), String> {
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
    p: &Prepared,
    call: &Call,
    mut out: RotateApplied,
    id: u64,
    current: &Secret,
    new: &Secret,
    why: &str,
) -> Result<Rotation, RotateError> {
    let cred = &p.cred;
    let admin = ctx.wazuh.as_ref().ok_or(RotateError::NotConfigured)?;
    out.verified = false;
    ctx.gate
        .audit(call, "rollback", "started", Some(format!("after: {why}")))?;
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
            Ok(finish(
                out,
                RotateOutcome::RolledBack,
                format!(
                    "the new secret failed ({why}); the previous secret was restored on the target \
                 and still works; {} is unchanged",
                    cred.secret_file.display()
                ),
            ))
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
            Ok(finish(out, RotateOutcome::Failed, instructions))
        }
    }
}

/// Nothing was changed on the target: drop the staged secret and the rotation lock (best
/// effort; reconciliation cleans up what is left).
fn discard_staged(ctx: &AppContext, cred: &CredentialConfig, pending: &Path) {
    let _ = std::fs::remove_file(pending);
    let _ = ctx.store.rotation_release(&cred.id, false);
}

/// Set the password of API user `id`; a failed item is a refusal.
async fn set_password(m: &ManagerClient, id: u64, password: &Secret) -> Result<(), String> {
    let change = m
        .change_user_password(id, password)
        .await
        .map_err(|e| e.to_string())?;
    if change.total_failed > 0 {
        Err(format!(
            "the API refused the change: {}",
            change
                .failed
                .first()
                .and_then(|f| f.message.as_deref())
                .unwrap_or("failed item")
        ))
    } else {
        Ok(())
    }
}

/// The outcome for the flow to record (the audit row names the version that was tried) and
/// the report: a change that was not promoted leaves the stored secret at its previous
/// version.
fn finish(mut out: RotateApplied, outcome: RotateOutcome, detail: String) -> Rotation {
    let audit_detail = format!(
        "version {} fingerprint {}{}{}",
        out.version,
        out.fingerprint,
        if detail.is_empty() { "" } else { ": " },
        detail
    );
    if outcome != RotateOutcome::Rotated {
        // Not promoted: the stored secret is still the previous version.
        out.version = out.previous_version.clone();
    }
    if !detail.is_empty() {
        out.detail = Some(detail);
    }
    Executed {
        report: out,
        outcome,
        audit_detail,
    }
}
