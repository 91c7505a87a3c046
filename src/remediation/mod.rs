//! Anything that changes the world: the [`Remediation`] trait each destructive action
//! implements (credentials, block_ip), the one order they run in ([`flow`]), and the gate
//! that makes every policy decision ([`gate`]). Also the small file helpers the actions share
//! (private, durable writes) and the crash hook the crash-safety tests use.

pub mod block_ip;
pub mod credentials;
pub mod flow;
pub mod gate;

use std::future::Future;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

pub use flow::{ApplyReport, Done, Executed, FlowError, PlanReport};
pub use gate::{Call, Gate, GateError, Issued, Mode};

use crate::context::AppContext;

/// One destructive action: the steps it owns (validate and prepare, plan-time checks, what
/// the plan says, the change itself). The order they run in, the token, the human and the
/// audit of the call are [`flow::run`]'s; every policy decision is the gate's. An action
/// records only its own intermediate steps (e.g. `set started` before a password change).
pub trait Remediation {
    /// The tool name: audit rows, token binding, enablement.
    const TOOL: &'static str;
    type Args: Arguments + serde::de::DeserializeOwned + Send + Sync;
    /// A validated request.
    type Prepared: Send + Sync;
    /// The action's own fields of a plan report ([`PlanReport`] adds mode, steps, token).
    type Plan: Serialize + Send;
    /// The action's own fields of an apply report ([`ApplyReport`] adds mode, outcome,
    /// audit id).
    type Applied: Serialize + Send;
    /// How an applied change ended.
    type Outcome: Outcome;
    type Error: std::fmt::Display + Send;

    /// Validate the arguments against configuration and policy; compute the steps.
    fn prepare(
        ctx: &AppContext,
        args: &Self::Args,
    ) -> impl Future<Output = Result<Self::Prepared, Self::Error>> + Send;

    /// Read-only checks at plan time (refuse a plan that cannot apply); may add notes.
    fn check(
        _ctx: &AppContext,
        _prepared: &mut Self::Prepared,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// The steps the plan shows.
    fn steps(prepared: &Self::Prepared) -> &[String];

    /// What the change does, in one line (the audit rows, the token's summary); `reason`
    /// is the caller's, already cleaned.
    fn summary(prepared: &Self::Prepared, reason: &str) -> String;

    /// What a human is asked to approve.
    fn question(prepared: &Self::Prepared, reason: &str) -> String;

    /// The action's fields of the plan report.
    fn plan(prepared: &Self::Prepared) -> Self::Plan;

    /// Carry out the change: the token is consumed and the apply recorded. The flow records
    /// the returned outcome (fail closed) and reports it.
    fn execute(
        ctx: &AppContext,
        prepared: &Self::Prepared,
        call: &Call,
    ) -> impl Future<Output = Result<Executed<Self::Applied, Self::Outcome>, Self::Error>> + Send;

    /// The one-paragraph text of a plan.
    fn plan_summary(report: &PlanReport<Self::Plan>) -> String;

    /// The one-paragraph text of an applied change.
    fn applied_summary(report: &ApplyReport<Self::Applied, Self::Outcome>) -> String;
}

/// What the flow reads of every action's arguments.
pub trait Arguments {
    fn mode(&self) -> Mode;
    fn confirmation_token(&self) -> Option<&str>;
    /// Why (recorded in the audit log).
    fn reason(&self) -> &str;
}

/// How an applied change ended (`rotated`, `blocked`, `failed`, ...).
pub trait Outcome: Copy + Serialize + Send {
    /// The word in the report and the audit row.
    fn as_str(self) -> &'static str;
    /// The audit action of the row that records it: `success`, `rollback` or `failure`.
    fn audit_action(self) -> &'static str;
    /// Whether the change failed: the tool result is then an error (report included).
    fn failed(self) -> bool;
}

/// Create `path` (it must not exist) with mode 0600, write `bytes` and fsync.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replace `path` with `bytes` (0600), durably: write a fresh file, fsync, then overwrite.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    write_private_new(path, bytes)
}

/// fsync a directory so renames in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Test hook: when `SECOPS_TEST_CRASH_AT` names `step`, the process aborts right there (as
/// a kill -9 would), so tests can prove recovery from every step.
pub fn crash_point(step: &str) {
    if std::env::var("SECOPS_TEST_CRASH_AT").is_ok_and(|v| v == step) {
        eprintln!("secops-mcp: SECOPS_TEST_CRASH_AT={step}: aborting");
        std::process::abort();
    }
}
