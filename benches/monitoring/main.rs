//! The monitoring benchmarks of issue 13, each next to its peer in the same run:
//! (a) `uptime`: 1,000 local HTTP endpoints probed on a schedule by the `secops-mcp
//!     monitor` process vs Prometheus' blackbox_exporter driven by a Prometheus-like
//!     scraper: CPU seconds per probe and peak RSS of each process;
//! (b) `certs`: 1,000 local TLS endpoints in one certificates monitor run;
//! (c) `delivery`: condition -> delivered webhook latency (group_wait 0) through the
//!     lifecycle, the SQLite outbox and the webhook channel, and 1,000 distinct alerts fired
//!     at once, until a local receiver has them all, vs Alertmanager delivering the same
//!     1,000 to the same receiver.
//!
//! Run: `cargo bench --bench monitoring` (all three) or `-- uptime` / `-- certs` /
//! `-- delivery`. Peers (`prometheus-blackbox-exporter`, `prometheus-alertmanager`) are
//! installed with apt-get when missing; without them their part says so and is skipped.
//! Prints numbers, ratios and goal verdicts; asserts nothing about timing.

#[path = "../common/mod.rs"]
mod common;

mod certs;
mod delivery;
mod peers;
mod receiver;
mod uptime;

use common::{Row, print_table};

fn main() {
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let known = ["uptime", "certs", "delivery"];
    if let Some(bad) = parts.iter().find(|p| !known.contains(&p.as_str())) {
        eprintln!(
            "unknown part `{bad}`; the parts are: {} (none: all)",
            known.join(", ")
        );
        std::process::exit(64);
    }
    let wanted = |p: &str| parts.is_empty() || parts.iter().any(|x| x == p);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut tables: Vec<(&str, Vec<Row>)> = Vec::new();
    if wanted("certs") {
        tables.push(("monitoring -- certs", runtime.block_on(certs::run())));
    }
    if wanted("delivery") {
        tables.push(("monitoring -- delivery", runtime.block_on(delivery::run())));
    }
    if wanted("uptime") {
        tables.push(("monitoring -- uptime", runtime.block_on(uptime::run())));
    }
    for (bench, rows) in &tables {
        print_table(bench, rows);
    }
}
