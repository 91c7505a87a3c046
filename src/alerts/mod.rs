//! Our own alerts: a monitor's findings with a lifecycle (pending -> firing -> resolved),
//! their identity and episodes, and the notifications they cause. `model.rs` is the
//! vocabulary every part shares (monitors produce [`Observation`]s, the outbox carries
//! [`NotificationBody`]s, channels render them).

pub mod escalation;
pub mod lifecycle;
pub mod model;
pub mod outbox;
pub mod retention;
pub mod status;
pub mod update;

pub use model::{
    AlertSnapshot, AlertState, EscalationNote, Level, NotificationBody, NotificationKind,
    Observation, alert_id, episode_key, fingerprint, parse_alert_id,
};
