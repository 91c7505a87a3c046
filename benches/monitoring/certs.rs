//! (b) One `certificates` monitor with 1,000 targets (local TLS servers under a bench CA,
//! 900 valid for 200 days, 100 expiring in 20 days), configured from TOML as `serve` reads
//! it and run as the engine runs it: the kind's observe (check_cert over every target)
//! then the alert lifecycle in SQLite. Timed per run; the 100 warnings prove every target
//! was really checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secops_mcp::clock::{Clock, SystemClock};
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::monitor::engine;
use secops_mcp::monitor::kinds::engine_monitor;

use crate::common::harness::Scratch;
use crate::common::harness::tls::{LeafSpec, TlsFixture, serve_chain};
use crate::common::{Row, median, ms, verdict};

const TARGETS: usize = 1_000;
const EXPIRING: usize = 100;
const RUNS: usize = 5;
const GOAL: Duration = Duration::from_secs(2);

pub async fn run() -> Vec<Row> {
    println!("\n(b) {TARGETS} certificate targets in one certificates monitor run");
    let pki = TlsFixture::new();
    let good = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(200));
    let soon = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(20));
    let mut servers = Vec::with_capacity(TARGETS);
    for i in 0..TARGETS {
        let leaf = if i % (TARGETS / EXPIRING) == 0 {
            &soon
        } else {
            &good
        };
        servers.push(serve_chain(leaf.full_chain(), leaf.key.clone()).await);
    }
    let targets: Vec<String> = servers
        .iter()
        .map(|s| format!("\"{}\"", s.target()))
        .collect();
    let ca = pki.root_ca_file();
    let scratch = Scratch::new();
    let toml = format!(
        "[tls]\nextra_ca_file = \"{}\"\n[[monitors]]\nname = \"certs\"\nkind = \"certificates\"\n\
         targets = [{}]\n",
        ca.path().display(),
        targets.join(", ")
    );
    let ctx = match Config::from_toml_str(&toml, &scratch.env())
        .map_err(|e| e.to_string())
        .and_then(|c| AppContext::new(c, false).map_err(|e| e.to_string()))
    {
        Ok(ctx) => ctx,
        Err(e) => {
            println!("  the monitor's configuration was refused: {e}");
            return vec![Row::new("certificates monitor", "n/a", "not measured")];
        }
    };
    println!(
        "  {TARGETS} TLS servers on 127.0.0.1 (leaf + intermediate under a bench root, EC P-256), \
         {EXPIRING} of them expiring in 20 days (warning_days 30); the servers run in this \
         process, on the same 2 cores"
    );
    let monitor = engine_monitor(ctx.clone(), &ctx.config.monitors[0]);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let job = engine::job(
        ctx.store.clone(),
        clock,
        &monitor,
        Arc::new(tokio::sync::Notify::new()),
    );
    let mut times = Vec::new();
    let mut problems = Vec::new();
    for i in 0..RUNS {
        let t = Instant::now();
        let out = job.run().await;
        let took = t.elapsed();
        match out {
            Ok(o) => {
                println!(
                    "  run {}: {:.0} ms, {} observations, {} problems{}",
                    i + 1,
                    ms(took),
                    o.observations,
                    o.problems,
                    if i == 0 {
                        " (first run: the alerts are opened)"
                    } else {
                        ""
                    }
                );
                problems.push(o.problems);
            }
            Err(e) => {
                println!("  run {} failed: {e}", i + 1);
                return vec![Row::new("certificates monitor", "failed", e)];
            }
        }
        times.push(took);
    }
    let all_checked = problems.iter().all(|&p| p == EXPIRING);
    if !all_checked {
        println!(
            "  expected {EXPIRING} problems per run, got {problems:?}: a target was not checked as expected"
        );
    }
    let first = times[0];
    let worst = *times.iter().max().unwrap();
    let m = median(&mut times);
    vec![
        Row::new(
            format!("{TARGETS} certificate targets, one monitor run (median of {RUNS})"),
            format!(
                "{:.0} ms (first {:.0} ms, slowest {:.0} ms)",
                ms(m),
                ms(first),
                ms(worst)
            ),
            verdict(worst < GOAL && all_checked, "every run < 2 s"),
        ),
        Row::new(
            "  problems found per run (100 expected)",
            format!("{problems:?}"),
            String::new(),
        ),
    ]
}
