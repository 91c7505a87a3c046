//! The lifecycle's muting step, in the evaluation's transaction: an alert that turns firing
//! while muted (silence, maintenance window, inhibition; `alerts::mute`) is still firing
//! but its firing notification is HELD (`last_notified_ms` stays empty, the timeline says
//! `silenced` and why); a held alert that is no longer muted, still firing and not
//! acknowledged, is RELEASED: its firing notification goes out now (`unsilenced`), so
//! nobody misses an alert that outlived its silence. Repeats and level-rise escalations of
//! muted alerts are skipped (see `lifecycle::repeat_due`, `lifecycle::escalate`).

use super::lifecycle::{Evaluation, LifecycleError, MonitorPolicy};
use super::mute::Muter;
use crate::clock::{Millis, rfc3339};
use crate::store::alerts::{AlertRow, AlertTx};

/// Release the monitor's held alerts that are no longer muted (added to `newly_firing`, so
/// they are announced) and hold the newly firing ones that are muted (taken out of it).
/// Returns the view of what mutes, for the repeats that follow.
pub(super) fn settle<'r>(
    tx: &AlertTx<'_>,
    monitor: &'r MonitorPolicy,
    newly_firing: &mut Vec<AlertRow>,
    now: Millis,
    out: &mut Evaluation,
) -> Result<Muter<'r>, LifecycleError> {
    let muter = Muter::read(tx, &monitor.mute, now)?;
    for mut row in tx.firing_of_monitor(&monitor.name)? {
        let held = row.last_notified_ms.is_none()
            && row.acknowledged_ms.is_none()
            && !newly_firing.iter().any(|n| n.seq == row.seq);
        if !held || muter.check(&row).is_some() {
            continue;
        }
        row.last_notified_ms = Some(now);
        let detail = format!(
            "no longer muted; the firing notification held since {} is sent now",
            rfc3339(row.firing_ms.unwrap_or(now))
        );
        tx.event(row.seq, now, "unsilenced", Some(&detail))?;
        tx.update(&row)?;
        out.released.push(row.seq);
        newly_firing.push(row);
    }
    let mut kept = Vec::with_capacity(newly_firing.len());
    for mut row in newly_firing.drain(..) {
        match muter.check(&row) {
            None => kept.push(row),
            Some(s) => {
                row.last_notified_ms = None;
                let detail = format!("firing notification held: {}", s.reason);
                tx.event(row.seq, now, "silenced", Some(&detail))?;
                tx.update(&row)?;
                out.held.push(row.seq);
            }
        }
    }
    *newly_firing = kept;
    Ok(muter)
}

#[cfg(test)]
#[path = "held_tests.rs"]
mod tests;
