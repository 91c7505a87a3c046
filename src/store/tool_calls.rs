//! The `tool_calls` log: one row per tool call (time, tool, caller, duration, outcome and a
//! short non-secret detail). Writes go through a background thread that batches them into
//! transactions, so logging never puts disk latency on a tool call.

use std::sync::mpsc;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    /// RFC 3339 UTC.
    pub ts: String,
    pub tool: String,
    pub caller: String,
    pub duration_ms: f64,
    /// `ok`, `error` (isError result) or `invalid_argument`.
    pub outcome: String,
    /// Non-secret shape of the call, e.g. `targets=3`.
    pub detail: Option<String>,
}

enum Msg {
    Record(ToolCallRecord),
    Flush(mpsc::SyncSender<()>),
}

pub struct ToolCallLog {
    tx: mpsc::Sender<Msg>,
}

impl ToolCallLog {
    pub fn spawn(conn: Connection) -> Self {
        let (tx, rx) = mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("secops-tool-call-log".into())
            .spawn(move || writer(conn, rx))
            .expect("spawning the tool-call log thread");
        Self { tx }
    }

    pub fn record(&self, rec: ToolCallRecord) {
        if self.tx.send(Msg::Record(rec)).is_err() {
            tracing::error!("tool-call log writer has stopped; call not recorded");
        }
    }

    pub fn flush(&self) {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Record(r) => batch.push(r),
                Msg::Flush(w) => waiters.push(w),
            }
            next = if batch.len() < 1000 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty()
            && let Err(e) = write_batch(&mut conn, &batch)
        {
            tracing::error!(error = %e, dropped = batch.len(), "cannot write tool-call log");
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

fn write_batch(conn: &mut Connection, batch: &[ToolCallRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO tool_calls (ts, tool, caller, duration_ms, outcome, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.ts,
                r.tool,
                r.caller,
                r.duration_ms,
                r.outcome,
                r.detail
            ])?;
        }
    }
    tx.commit()
}

pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<ToolCallRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT ts, tool, caller, duration_ms, outcome, detail FROM tool_calls
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(ToolCallRecord {
            ts: r.get(0)?,
            tool: r.get(1)?,
            caller: r.get(2)?,
            duration_ms: r.get(3)?,
            outcome: r.get(4)?,
            detail: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
