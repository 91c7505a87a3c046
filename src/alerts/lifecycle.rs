//! The alert lifecycle: [`evaluate`] turns one monitor run's [`Observation`]s into alert
//! state (pending -> firing -> resolved, with failure/success thresholds and a `for`
//! duration) and the notifications that follow (firing, repeat, resolved; a monitor's
//! alerts that turn firing within `group_wait` share one notification). All writes of one
//! evaluation, notification rows included, commit in one transaction; the state lives only
//! in the store, so a restart neither re-announces nor forgets; a muted alert's firing
//! notification is held until nothing mutes it (`held.rs`). Also the two human changes:
//! [`acknowledge`] (stops repeats) and [`note`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::alerts::mute::Muter;
use crate::alerts::{
    AlertState, Level, NotificationBody, NotificationKind, Observation, episode_key, fingerprint,
    parse_alert_id,
};
use crate::clock::{Clock, Millis};
use crate::store::alerts::{AckNotice, AlertChange, AlertRow, AlertTx, Target};
use crate::store::{Store, StoreError};

#[path = "lifecycle_policy.rs"]
mod policy;
pub use policy::MonitorPolicy;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("monitor {monitor}: {field} {problem}")]
    Policy {
        monitor: String,
        field: &'static str,
        problem: String,
    },
    #[error("{0:?} is not an alert id (expected ALR-<number>)")]
    BadId(String),
    #[error("no alert {0}")]
    UnknownAlert(String),
    #[error("alert {0} is resolved; there is nothing to acknowledge")]
    Resolved(String),
    #[error("alert {id} was already acknowledged by {by}")]
    AlreadyAcknowledged { id: String, by: String },
    #[error("{field}: {problem}")]
    BadInput {
        field: &'static str,
        problem: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one evaluation changed (alert seqs; notification row ids).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    pub opened: Vec<i64>,
    pub fired: Vec<i64>,
    pub resolved: Vec<i64>,
    /// Pending alerts that recovered before firing (resolved without a notification).
    pub dropped: Vec<i64>,
    pub level_changed: Vec<i64>,
    pub repeated: Vec<i64>,
    /// Firing alerts whose firing notification is held (muted) | announced after being held.
    pub held: Vec<i64>,
    pub released: Vec<i64>,
    pub notifications: Vec<i64>,
}

fn ms(d: Duration) -> Millis {
    d.as_millis().min(i64::MAX as u128) as Millis
}

/// Apply one monitor run's observations to the monitor's alerts and enqueue the
/// notifications that result, in one transaction. Subjects the run did not mention stay as
/// they are; firing, unacknowledged alerts of the monitor get their due repeats.
pub fn evaluate(
    store: &Store,
    clock: &dyn Clock,
    monitor: &MonitorPolicy,
    observations: &[Observation],
) -> Result<Evaluation, LifecycleError> {
    evaluate_run(store, clock, monitor, observations, false)
}

/// [`evaluate`] for a run that looked at everything its monitor covers: an open alert of
/// the monitor that the run did not mention counts as fine (the condition is gone, like a
/// Prometheus alert whose expression no longer returns it). A run that failed part way must
/// use [`evaluate`], so what it could not see is left as it was.
pub fn evaluate_complete(
    store: &Store,
    clock: &dyn Clock,
    monitor: &MonitorPolicy,
    observations: &[Observation],
) -> Result<Evaluation, LifecycleError> {
    evaluate_run(store, clock, monitor, observations, true)
}

fn evaluate_run(
    store: &Store,
    clock: &dyn Clock,
    monitor: &MonitorPolicy,
    observations: &[Observation],
    complete: bool,
) -> Result<Evaluation, LifecycleError> {
    monitor.validate()?;
    let now = clock.now_ms();
    let merged = merge(monitor, observations);
    store.alerts_tx(|tx| {
        let mut out = Evaluation::default();
        let mut newly_firing = Vec::new();
        let mut risen = Vec::new();
        for (fp, obs) in &merged {
            let open = tx.open_by_fingerprint(fp)?;
            match (obs.level, open) {
                (None, None) => {}
                (Some(level), None) => {
                    let mut row = new_alert(monitor, fp, obs, level, now);
                    tx.insert(&mut row)?;
                    let detail = format!("{}: {}", level.as_str(), row.title);
                    tx.event(row.seq, now, "pending", Some(&detail))?;
                    out.opened.push(row.seq);
                    fire_if_due(tx, monitor, &mut row, now, &mut out, &mut newly_firing)?;
                    tx.update(&row)?;
                }
                (Some(level), Some(mut row)) => {
                    let old = row.level;
                    observe_problem(monitor, &mut row, obs, level, now);
                    if old != level {
                        let detail = format!("{} -> {}", old.as_str(), level.as_str());
                        tx.event(row.seq, now, "level_changed", Some(&detail))?;
                        out.level_changed.push(row.seq);
                        if row.state == AlertState::Firing && level > old {
                            risen.push(row.clone());
                        }
                    }
                    fire_if_due(tx, monitor, &mut row, now, &mut out, &mut newly_firing)?;
                    tx.update(&row)?;
                }
                (None, Some(mut row)) => observe_fine(tx, monitor, &mut row, now, &mut out)?,
            }
        }
        if complete {
            for mut row in tx.open_of_monitor(&monitor.name)? {
                if !merged.iter().any(|(fp, _)| *fp == row.fingerprint) {
                    observe_fine(tx, monitor, &mut row, now, &mut out)?;
                }
            }
        }
        let muter = super::held::settle(tx, monitor, &mut newly_firing, now, &mut out)?;
        for row in &risen {
            escalate(tx, monitor, row, &muter, now, &mut out)?;
        }
        announce(tx, monitor, &newly_firing, now, &mut out)?;
        repeat_due(tx, monitor, &newly_firing, &muter, now, &mut out)?;
        Ok::<_, LifecycleError>(out)
    })
}

/// A fine observation of an open alert: counts towards its success threshold.
fn observe_fine(
    tx: &AlertTx<'_>,
    monitor: &MonitorPolicy,
    row: &mut AlertRow,
    now: Millis,
    out: &mut Evaluation,
) -> Result<(), LifecycleError> {
    row.ok_streak += 1;
    row.fail_streak = 0;
    row.failing_since_ms = None;
    if row.ok_streak >= i64::from(monitor.success_threshold) {
        resolve(tx, monitor, row, now, out)?;
    }
    tx.update(row)?;
    Ok(())
}

/// One observation per fingerprint: the loudest one when a run mentions a subject twice.
fn merge<'a>(
    monitor: &MonitorPolicy,
    observations: &'a [Observation],
) -> Vec<(String, &'a Observation)> {
    let mut order: Vec<(String, &Observation)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for obs in observations {
        let fp = fingerprint(&monitor.name, &obs.code, &obs.subject);
        match index.get(&fp) {
            Some(&i) => {
                if obs.level > order[i].1.level {
                    order[i].1 = obs;
                }
            }
            None => {
                index.insert(fp.clone(), order.len());
                order.push((fp, obs));
            }
        }
    }
    order
}

fn labels_of(monitor: &MonitorPolicy, obs: &Observation) -> BTreeMap<String, String> {
    let mut labels = monitor.labels.clone();
    labels.extend(obs.subject.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

fn new_alert(
    monitor: &MonitorPolicy,
    fp: &str,
    obs: &Observation,
    level: Level,
    now: Millis,
) -> AlertRow {
    AlertRow {
        seq: 0,
        fingerprint: fp.to_string(),
        episode: episode_key(fp, now),
        monitor: monitor.name.clone(),
        code: obs.code.clone(),
        subject: obs.subject.clone(),
        labels: labels_of(monitor, obs),
        level,
        state: AlertState::Pending,
        title: obs.title.clone(),
        summary: obs.summary.clone(),
        value: obs.value.clone(),
        first_seen_ms: now,
        firing_ms: None,
        last_seen_ms: now,
        resolved_ms: None,
        occurrences: 1,
        fail_streak: 1,
        ok_streak: 0,
        last_notified_ms: None,
        acknowledged_ms: None,
        acknowledged_by: None,
        failing_since_ms: Some(now),
    }
}

fn observe_problem(
    monitor: &MonitorPolicy,
    row: &mut AlertRow,
    obs: &Observation,
    level: Level,
    now: Millis,
) {
    row.occurrences += 1;
    row.last_seen_ms = now;
    if row.fail_streak == 0 || row.failing_since_ms.is_none() {
        row.failing_since_ms = Some(now);
    }
    row.fail_streak += 1;
    row.ok_streak = 0;
    row.level = level;
    row.title = obs.title.clone();
    row.summary = obs.summary.clone();
    row.value = obs.value.clone();
    row.labels = labels_of(monitor, obs);
}

fn fire_if_due(
    tx: &AlertTx<'_>,
    monitor: &MonitorPolicy,
    row: &mut AlertRow,
    now: Millis,
    out: &mut Evaluation,
    newly_firing: &mut Vec<AlertRow>,
) -> Result<(), StoreError> {
    let since = row.failing_since_ms.unwrap_or(now);
    if row.state != AlertState::Pending
        || row.fail_streak < i64::from(monitor.failure_threshold)
        || now - since
            < ms(monitor
                .for_by_code
                .get(&row.code)
                .copied()
                .unwrap_or(monitor.for_duration))
    {
        return Ok(());
    }
    row.state = AlertState::Firing;
    row.firing_ms = Some(now);
    row.last_notified_ms = Some(now);
    let detail = format!(
        "{} after {} failing observation(s) over {} s",
        row.level.as_str(),
        row.fail_streak,
        (now - since) / 1000
    );
    tx.event(row.seq, now, "firing", Some(&detail))?;
    out.fired.push(row.seq);
    newly_firing.push(row.clone());
    Ok(())
}

fn body(monitor: &MonitorPolicy, kind: NotificationKind, rows: &[&AlertRow]) -> NotificationBody {
    NotificationBody {
        kind,
        group_key: monitor.name.clone(),
        group_labels: monitor.group_labels(),
        escalation: None,
        dedup_key: dedup_key(rows.iter().map(|r| r.episode.as_str())),
        alerts: rows.iter().map(|r| r.snapshot()).collect(),
        digest: vec![],
    }
}

/// The episode for a notification about one alert; the group's key (from its first
/// alert's episode) for several.
fn dedup_key<'a>(mut episodes: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = episodes.len();
    let first = episodes.next().unwrap_or_default();
    if n == 1 {
        first.to_string()
    } else {
        format!("group-{first}")
    }
}

/// Firing notifications of the alerts that turned firing in this evaluation: joined to
/// the monitor's gathering row on each channel when there is one, else a new row that
/// waits `group_wait` for more.
fn announce(
    tx: &AlertTx<'_>,
    monitor: &MonitorPolicy,
    newly_firing: &[AlertRow],
    now: Millis,
    out: &mut Evaluation,
) -> Result<(), StoreError> {
    let wait = ms(monitor.group_wait);
    for row in newly_firing {
        for target in monitor.targets(row.level) {
            if wait > 0
                && let Some((id, mut gathered)) = tx.open_group(&target, &monitor.name, now)?
            {
                gathered.alerts.push(row.snapshot());
                gathered.dedup_key = dedup_key(gathered.alerts.iter().map(|a| a.episode.as_str()));
                if tx.extend_group(id, &gathered, &[row.seq])? {
                    continue;
                }
            }
            let b = body(monitor, NotificationKind::Firing, &[row]);
            let due = now + wait;
            let id = tx.enqueue_to(
                &target,
                &b,
                &[row.seq],
                now,
                due,
                due + ms(monitor.delivery_deadline),
            )?;
            if !out.notifications.contains(&id) {
                out.notifications.push(id);
            }
        }
    }
    Ok(())
}

/// A firing alert whose level rose: the new level's channels not told yet get a firing
/// notification now (not while muted or held: `held.rs` releases a held one to them all).
fn escalate(
    tx: &AlertTx<'_>,
    monitor: &MonitorPolicy,
    row: &AlertRow,
    muter: &Muter<'_>,
    now: Millis,
    out: &mut Evaluation,
) -> Result<(), StoreError> {
    if row.last_notified_ms.is_none() || muter.check(row).is_some() {
        return Ok(());
    }
    let told: BTreeSet<Target> = tx.firing_targets(row.seq)?.into_iter().collect();
    for target in monitor.targets(row.level) {
        if told.contains(&target) {
            continue;
        }
        let b = body(monitor, NotificationKind::Firing, &[row]);
        let id = tx.enqueue_to(
            &target,
            &b,
            &[row.seq],
            now,
            now,
            now + ms(monitor.delivery_deadline),
        )?;
        out.notifications.push(id);
    }
    Ok(())
}

fn resolve(
    tx: &AlertTx<'_>,
    monitor: &MonitorPolicy,
    row: &mut AlertRow,
    now: Millis,
    out: &mut Evaluation,
) -> Result<(), StoreError> {
    let was = row.state;
    row.state = AlertState::Resolved;
    row.resolved_ms = Some(now);
    let detail = format!("after {} fine observation(s)", row.ok_streak);
    if was != AlertState::Firing {
        let detail = format!("{detail}; recovered before firing, not announced");
        tx.event(row.seq, now, "dropped", Some(&detail))?;
        out.dropped.push(row.seq);
        return Ok(());
    }
    tx.event(row.seq, now, "resolved", Some(&detail))?;
    out.resolved.push(row.seq);
    // Tell every target (channel, contact) that was told it fired (whatever the routes say
    // now).
    for target in tx.firing_targets(row.seq)? {
        let b = body(monitor, NotificationKind::Resolved, &[row]);
        // Never before its firing notification, when that one is still gathering a group.
        let due = tx
            .pending_firing_due(row.seq, &target)?
            .map_or(now, |d| d.max(now));
        let id = tx.enqueue_to(
            &target,
            &b,
            &[row.seq],
            now,
            due,
            due + ms(monitor.delivery_deadline),
        )?;
        out.notifications.push(id);
    }
    Ok(())
}

/// Repeats of the monitor's firing, unacknowledged, unmuted alerts last announced at least
/// `repeat_interval` ago: one notification per channel carrying every due alert.
fn repeat_due(
    tx: &AlertTx<'_>,
    monitor: &MonitorPolicy,
    newly_firing: &[AlertRow],
    muter: &Muter<'_>,
    now: Millis,
    out: &mut Evaluation,
) -> Result<(), StoreError> {
    let every = ms(monitor.repeat_interval);
    if every == 0 {
        return Ok(());
    }
    let mut due: Vec<AlertRow> = tx
        .firing_of_monitor(&monitor.name)?
        .into_iter()
        .filter(|r| r.acknowledged_ms.is_none())
        .filter(|r| !newly_firing.iter().any(|n| n.seq == r.seq))
        .filter(|r| r.last_notified_ms.is_none_or(|t| now - t >= every))
        .filter(|r| !monitor.targets(r.level).is_empty())
        .filter(|r| muter.check(r).is_none())
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let mut by_target: BTreeMap<Target, Vec<&AlertRow>> = BTreeMap::new();
    for row in &due {
        for target in monitor.targets(row.level) {
            by_target.entry(target).or_default().push(row);
        }
    }
    for (target, rows) in &by_target {
        let b = body(monitor, NotificationKind::Repeat, rows);
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let id = tx.enqueue_to(
            target,
            &b,
            &seqs,
            now,
            now,
            now + ms(monitor.delivery_deadline),
        )?;
        out.notifications.push(id);
    }
    for row in &mut due {
        row.last_notified_ms = Some(now);
        let told: Vec<String> = monitor
            .targets(row.level)
            .iter()
            .map(Target::to_string)
            .collect();
        tx.event(row.seq, now, "repeat", Some(&told.join(", ")))?;
        tx.update(row)?;
        out.repeated.push(row.seq);
    }
    Ok(())
}

fn seq_of(id: &str) -> Result<i64, LifecycleError> {
    parse_alert_id(id.trim()).ok_or_else(|| LifecycleError::BadId(id.to_string()))
}

fn check_actor(actor: &str) -> Result<(), LifecycleError> {
    if actor.trim().is_empty() || actor.len() > 200 || actor.chars().any(char::is_control) {
        return Err(LifecycleError::BadInput {
            field: "actor",
            problem: "must be 1-200 printable characters".into(),
        });
    }
    Ok(())
}

/// How long an `acknowledged` notification may take to deliver.
pub const ACK_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// Acknowledge an open alert: its repeats stop; the timeline records who and when; the
/// `ack_channels` (those that take acknowledgements, e.g. PagerDuty) that were told it
/// fired get an `acknowledged` notification in the same transaction.
pub fn acknowledge(
    store: &Store,
    clock: &dyn Clock,
    id: &str,
    actor: &str,
    ack_channels: &[String],
) -> Result<AlertRow, LifecycleError> {
    let seq = seq_of(id)?;
    check_actor(actor)?;
    let notice = AckNotice {
        channels: ack_channels,
        deadline_ms: ms(ACK_DEADLINE),
    };
    match store.alert_acknowledge(seq, actor.trim(), clock.now_ms(), &notice)? {
        AlertChange::Done(row) => Ok(*row),
        AlertChange::NotFound => Err(LifecycleError::UnknownAlert(id.to_string())),
        AlertChange::Resolved => Err(LifecycleError::Resolved(id.to_string())),
        AlertChange::AlreadyAcknowledged { by, .. } => Err(LifecycleError::AlreadyAcknowledged {
            id: id.to_string(),
            by,
        }),
    }
}

/// The longest note kept.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Add a note to an alert's timeline.
pub fn note(
    store: &Store,
    clock: &dyn Clock,
    id: &str,
    actor: &str,
    text: &str,
) -> Result<AlertRow, LifecycleError> {
    let seq = seq_of(id)?;
    check_actor(actor)?;
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(LifecycleError::BadInput {
            field: "note",
            problem: format!("must be 1-{MAX_NOTE_CHARS} characters"),
        });
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(LifecycleError::BadInput {
            field: "note",
            problem: "must not contain control characters other than newlines".into(),
        });
    }
    match store.alert_note(seq, actor.trim(), text, clock.now_ms())? {
        AlertChange::Done(row) => Ok(*row),
        _ => Err(LifecycleError::UnknownAlert(id.to_string())),
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "lifecycle_contact_tests.rs"]
mod contact_tests;
