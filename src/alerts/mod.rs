//! Our own alerts: a monitor's findings with a lifecycle (pending -> firing -> resolved),
//! their identity and episodes, and the notifications they cause. `model.rs` is the
//! vocabulary every part shares (monitors produce [`Observation`]s, the outbox carries
//! [`NotificationBody`]s, channels render them).

pub mod escalation;
mod held;
pub mod inhibit;
pub mod lifecycle;
pub mod matcher;
pub mod model;
pub mod mute;
pub mod outbox;
pub mod rate_limit;
pub mod retention;
pub mod silence;
pub mod status;
pub mod update;

pub use model::{
    AlertSnapshot, AlertState, DigestEntry, EscalationNote, Level, NotificationBody,
    NotificationKind, Observation, alert_id, episode_key, fingerprint, parse_alert_id,
};
