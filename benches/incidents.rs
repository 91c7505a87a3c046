//! Incident ingestion at volume: 100,000 simulated alerts (SSH brute-force runs from 50 IPs,
//! file-integrity trickles, everyday noise, over 24 h) correlated into incidents. Two modes,
//! each in its own process so peak memory (VmHWM) is its own: `core` (parse + correlate +
//! SQLite, alerts generated in pages of ~1000) and `e2e` (through the simulator's indexer
//! with `search_after` paging; the simulator's index lives in the same process).
//!
//! Run: `cargo bench --bench incidents` (both), or `-- core` / `-- e2e`. Prints numbers.

use std::time::Instant;

mod common;

use common::harness::SimEnv;
use common::self_hwm_mb;
use secops_mcp::config::{Config, IncidentsConfig};
use secops_mcp::context::AppContext;
use secops_mcp::incidents::{ParsedAlert, ingest_page};
use secops_mcp::store::Store;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use wazuh_sim::{AlertAgent, AlertGen, SimConfig};

const TOTAL: usize = 100_000;
const SLOTS: i64 = 100;

fn agents() -> Vec<AlertAgent> {
    (1..=60)
        .map(|i| AlertAgent {
            id: format!("{i:03}"),
            name: format!("host-{i:03}"),
            ip: format!("10.0.1.{i}"),
            platform: "ubuntu".into(),
        })
        .collect()
}

/// About 1000 alerts in time slot `k` of 100 over the 24 h before `now`.
fn slot(g: &mut AlertGen, k: i64, now: OffsetDateTime) -> Vec<Value> {
    let start = now - Duration::hours(24) + Duration::seconds(k * 864);
    let a = format!("{:03}", k % 60 + 1);
    let b = format!("{:03}", (k + 7) % 60 + 1);
    let ip = format!("198.51.100.{}", k % 50 + 1);
    let mut out = g.ssh_brute_force(&ip, &[&a, &b], 500, start);
    out.extend(g.fim_trickle(&[&b], 200, start, Duration::seconds(4)));
    let ids: Vec<String> = (1..=60).map(|i| format!("{i:03}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    out.extend(g.noise(&refs, 240, start, start + Duration::seconds(864)));
    out
}

/// Generate the 100,000 alerts page by page, handing each page to `f`.
fn generate(now: OffsetDateTime, mut f: impl FnMut(Vec<Value>)) {
    let mut g = AlertGen::new(7, agents());
    let mut left = TOTAL;
    for k in 0..SLOTS {
        if left == 0 {
            break;
        }
        let mut page = slot(&mut g, k, now);
        if k == SLOTS - 1 {
            while page.len() < left {
                page.extend(g.noise(&["001"], left - page.len(), now - Duration::hours(1), now));
            }
        }
        page.truncate(left);
        left -= page.len();
        f(page);
    }
}

fn core() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cfg = IncidentsConfig {
        min_level: 1,
        ..Default::default()
    };
    let now = OffsetDateTime::now_utc();
    let (mut n, mut alerts, mut incidents) = (0u64, 0u64, 0u64);
    let (mut parse_secs, mut work_secs) = (0.0, 0.0);
    let t = Instant::now();
    generate(now, |page| {
        let w = Instant::now();
        let parsed: Vec<ParsedAlert> = page
            .into_iter()
            .filter_map(|src| {
                n += 1;
                let hit = json!({"_index": "wazuh-alerts-4.x-bench", "_id": n.to_string(), "_source": src});
                ParsedAlert::from_hit(&hit)
            })
            .collect();
        parse_secs += w.elapsed().as_secs_f64();
        let (a, i) = ingest_page(&store, &cfg, &parsed, now).unwrap();
        work_secs += w.elapsed().as_secs_f64();
        alerts += a;
        incidents += i;
    });
    let total = t.elapsed().as_secs_f64();
    println!(
        "core: {n} alerts, {alerts} ingested into {incidents} incidents: parse + correlate + \
         SQLite {work_secs:.2} s (parse {parse_secs:.2} s); with generating the alerts \
         {total:.2} s; peak RSS (VmHWM) {:.1} MB",
        self_hwm_mb()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn e2e() {
    let s = SimEnv::start(SimConfig {
        seed_alerts: false,
        ..Default::default()
    })
    .await;
    let sim = &s.sim;
    let now = OffsetDateTime::now_utc();
    generate(now, |page| {
        sim.inject_alerts(page);
    });
    let seeded_mb = self_hwm_mb();
    let env = s.child_env(&s.indexer_vars(), &[("SECOPS_HEALTH_TIMEOUT_MS", "60000")]);
    let config = Config::from_toml_str("[incidents]\nmin_level = 1\n", &env).unwrap();
    let ctx = AppContext::new(config, false).unwrap();
    // What one page costs the simulator and the transport alone (no correlation).
    let q = secops_mcp::wazuh::AlertQuery {
        since: Some("now-25h".into()),
        min_level: Some(1),
        size: 1000,
        ascending: true,
        ..Default::default()
    };
    let p = Instant::now();
    for _ in 0..5 {
        ctx.indexer
            .as_ref()
            .unwrap()
            .search_alerts(&q)
            .await
            .unwrap();
    }
    let page_ms = p.elapsed().as_secs_f64() * 1000.0 / 5.0;
    let t = Instant::now();
    let (mut alerts, mut incidents, mut runs) = (0, 0, 0);
    loop {
        let st = ctx.ingest_incidents(now - Duration::hours(25)).await;
        assert_eq!(st.status, "ok", "{st:?}");
        alerts += st.new_alerts;
        incidents += st.new_incidents;
        runs += 1;
        if !st.more {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "e2e: {} alerts in the simulator's index, {alerts} ingested into {incidents} incidents in \
         {secs:.2} s ({runs} run(s), {} indexer requests); peak RSS {:.1} MB, of which {seeded_mb:.1} MB \
         before ingesting (simulator index and generator); one 1000-alert page from the \
         simulator alone: {page_ms:.0} ms",
        sim.alert_count(),
        sim.indexer_request_count(),
        self_hwm_mb()
    );
}

fn main() {
    let mode: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match mode.first().map(String::as_str) {
        Some("core") => core(),
        Some("e2e") => e2e(),
        _ => {
            let exe = std::env::current_exe().unwrap();
            for m in ["core", "e2e"] {
                let status = std::process::Command::new(&exe).arg(m).status().unwrap();
                assert!(status.success(), "{m} failed");
            }
        }
    }
}
