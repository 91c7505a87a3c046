//! Operator notes during one tool call: what a person watching the call would want to see
//! (a Wazuh 429 backoff, a component that timed out, a scan's phases). Code anywhere below
//! the server calls [`note`]; when the call runs inside [`scope`] (the MCP server does this
//! for each `tools/call`), the note reaches the client as an MCP `notifications/message`,
//! else it goes nowhere. Notes are built from our own strings: never arguments, secrets or
//! remote text.

use std::future::Future;

use tokio::sync::mpsc::UnboundedSender;

/// Severity of a note, in MCP's (RFC 5424) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub level: Level,
    /// Which part speaks: `wazuh`, `wazuh_health`, `scan_host`.
    pub logger: &'static str,
    pub message: String,
}

tokio::task_local! {
    static SINK: UnboundedSender<Note>;
}

/// Run `fut` with its notes sent to `sink`.
pub async fn scope<F: Future>(sink: UnboundedSender<Note>, fut: F) -> F::Output {
    SINK.scope(sink, fut).await
}

/// Record a note for the current tool call, if any.
pub fn note(level: Level, logger: &'static str, message: impl Into<String>) {
    let _ = SINK.try_with(|s| {
        let _ = s.send(Note {
            level,
            logger,
            message: message.into(),
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_reach_the_scope_and_nowhere_else() {
        note(Level::Info, "test", "outside any call");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        scope(tx, async {
            note(Level::Warning, "test", "inside");
            tokio::join!(async { note(Level::Info, "test", "joined") });
        })
        .await;
        assert_eq!(rx.recv().await.unwrap().message, "inside");
        assert_eq!(rx.recv().await.unwrap().message, "joined");
        assert!(rx.recv().await.is_none());
    }
}
