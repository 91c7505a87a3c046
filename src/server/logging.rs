//! MCP logging (`logging/setLevel`, `notifications/message`) for the operator notes of a
//! tool call ([`crate::calllog`]). The capability is what 2025-11-25 clients such as the MCP
//! Inspector show in their log pane; the 2026-07-28 era deprecates it (SEP-2577), so rmcp
//! marks these types deprecated and this module alone uses them.
#![allow(deprecated)]

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{Peer, RoleServer};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::calllog::{Level, Note};

pub type SetLevelParams = rmcp::model::SetLevelRequestParams;

/// Notes sent before a client chose a level: warnings and errors only.
pub const DEFAULT_LEVEL: Level = Level::Warning;

/// The least severe level a `logging/setLevel` asks for.
pub fn level_of(request: &SetLevelParams) -> Level {
    match request.level {
        LoggingLevel::Debug => Level::Debug,
        LoggingLevel::Info => Level::Info,
        LoggingLevel::Notice => Level::Notice,
        LoggingLevel::Warning => Level::Warning,
        _ => Level::Error,
    }
}

fn to_mcp(l: Level) -> LoggingLevel {
    match l {
        Level::Debug => LoggingLevel::Debug,
        Level::Info => LoggingLevel::Info,
        Level::Notice => LoggingLevel::Notice,
        Level::Warning => LoggingLevel::Warning,
        Level::Error => LoggingLevel::Error,
    }
}

/// Send a call's notes at or above `min_level` to the client, until the call ends.
pub async fn forward_notes(
    peer: Peer<RoleServer>,
    mut rx: UnboundedReceiver<Note>,
    min_level: Level,
) {
    while let Some(n) = rx.recv().await {
        if n.level < min_level {
            continue;
        }
        let param = LoggingMessageNotificationParam::new(
            to_mcp(n.level),
            serde_json::Value::String(n.message),
        )
        .with_logger(n.logger);
        if peer.notify_logging_message(param).await.is_err() {
            break;
        }
    }
}
