//! `secops-mcp audit verify|tail`: the tamper-evident audit log from a shell (verify exits
//! 0 intact, 1 broken, 2 unable to check).

use std::process::ExitCode;

use secops_mcp::config::Config;

pub fn verify(config: Config) -> anyhow::Result<ExitCode> {
    // Exit 1 means "broken chain" only; being unable to check is 2.
    let report =
        match secops_mcp::store::Store::open(&config.state_dir).and_then(|s| s.audit_verify()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("secops-mcp: cannot verify the audit log: {e}");
                return Ok(ExitCode::from(2));
            }
        };
    match &report.first_broken {
        None => {
            println!(
                "audit chain OK: {} verified",
                secops_mcp::util::count(report.rows as u64, "row", "rows")
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            println!("audit chain BROKEN at row {}: {}", b.id, b.reason);
            Ok(ExitCode::from(1))
        }
    }
}

pub fn tail(config: Config, n: usize) -> anyhow::Result<ExitCode> {
    let store = secops_mcp::store::Store::open(&config.state_dir)?;
    // Rows can quote caller-supplied text: keep the terminal safe.
    let clean = |s: &str| secops_mcp::util::sanitize_untrusted(s.as_bytes(), 500);
    for r in store.audit_recent(n)?.iter().rev() {
        println!(
            "{:>6} {} {:<10} {:<20} {:<9} {:<12} {}{}",
            r.id,
            r.ts,
            clean(&r.caller),
            r.tool,
            r.action,
            r.outcome,
            clean(r.detail.as_deref().unwrap_or("")),
            r.incident_id
                .as_deref()
                .map(|i| format!(" [incident {}]", clean(i)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
