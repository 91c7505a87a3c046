//! (c) Delivery through the real path: a monitor's job (observe -> the alert lifecycle,
//! whose transaction writes the alerts and their notification rows to SQLite -> wake the
//! outbox), the outbox sender claiming the rows and the webhook channel posting
//! Alertmanager's v4 payload to a local receiver. group_wait 0, so every alert is its own
//! notification.
//! - latency: one alert at a time, from the start of the monitor's run to its arrival;
//! - burst: 1,000 distinct alerts in one run, until the receiver has all 1,000, next to
//!   Alertmanager (each alert its own group: `group_by: ['...']`, group_wait 0) given the
//!   same 1,000 alerts on `/api/v2/alerts` and delivering them to the same receiver.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secops_mcp::alerts::lifecycle::MonitorPolicy;
use secops_mcp::alerts::outbox::{Outbox, OutboxSettings};
use secops_mcp::alerts::{Level, Observation};
use secops_mcp::clock::{Clock, SystemClock};
use secops_mcp::config::Secret;
use secops_mcp::monitor::Schedule;
use secops_mcp::monitor::engine::{self, KindRun, Monitor};
use secops_mcp::monitor::scheduler::Job;
use secops_mcp::notify::Channel;
use secops_mcp::notify::webhook::{WebhookChannel, WebhookSettings};
use secops_mcp::store::Store;
use tokio_util::sync::CancellationToken;

use crate::common::harness::Scratch;
use crate::common::{Row, median, ms, percentile, ratio_row, verdict};
use crate::peers::{self, Proc};
use crate::receiver::Receiver;

const WARMUP: usize = 10;
const LATENCY_RUNS: usize = 200;
const BURST: usize = 1_000;
const BURST_RUNS: usize = 3;
const GOAL_P99: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(60);

pub async fn run() -> Vec<Row> {
    println!("\n(c) condition -> delivered webhook, group_wait 0");
    let receiver = Receiver::start().await;
    let scratch = Scratch::new();
    let store = Store::open(&scratch.state_dir()).expect("store");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let channels: BTreeMap<String, Arc<dyn Channel>> = ["lat", "burst"]
        .into_iter()
        .map(|name| (name.to_string(), hook(name, receiver.url(&format!("ours-{name}")))))
        .collect();
    let outbox = Arc::new(Outbox::new(
        store.clone(),
        channels,
        clock.clone(),
        OutboxSettings::default(),
    ));
    let stop = CancellationToken::new();
    let sender = {
        let (outbox, stop) = (outbox.clone(), stop.clone());
        tokio::spawn(async move { outbox.run(stop).await })
    };
    let s = OutboxSettings::default();
    println!(
        "  our path: SQLite in WAL mode, synchronous=NORMAL (a committed row survives a kill \
         of the process); outbox defaults: batch {}, {} sends in flight",
        s.batch, s.concurrency
    );

    let mut rows = latency(&store, &clock, &outbox, &receiver).await;
    rows.extend(burst(&store, &clock, &outbox, &receiver, &scratch).await);
    stop.cancel();
    let _ = sender.await;
    rows
}

fn hook(name: &str, url: String) -> Arc<dyn Channel> {
    Arc::new(
        WebhookChannel::new(
            name,
            WebhookSettings {
                url: Secret::new(url),
                headers: BTreeMap::new(),
                hmac_secret: None,
                timeout_ms: 10_000,
            },
        )
        .expect("webhook channel"),
    )
}

type Slot = Arc<Mutex<Vec<Observation>>>;

/// A monitor whose run sees what the bench put in `slot`, routing critical alerts to
/// `channel` with group_wait 0.
fn monitor(name: &str, channel: &str, slot: Slot) -> Monitor {
    let mut policy = MonitorPolicy::new(name).route(Level::Critical, &[channel]);
    policy.group_wait = Duration::ZERO;
    Monitor {
        schedule: Schedule::Every {
            every: Duration::from_secs(60),
        },
        timeout: Duration::from_secs(60),
        policy,
        observe: Arc::new(move || {
            let observations = slot.lock().unwrap().clone();
            Box::pin(async move {
                Ok(KindRun {
                    observations,
                    complete: false,
                })
            })
        }),
    }
}

fn problem(name: &str) -> Observation {
    Observation {
        code: name.to_string(),
        subject: BTreeMap::from([("endpoint".to_string(), name.to_string())]),
        level: Some(Level::Critical),
        title: format!("{name} is down"),
        summary: format!("{name} did not answer."),
        value: None,
    }
}

fn job(store: &Store, clock: &Arc<dyn Clock>, outbox: &Outbox, m: &Monitor) -> Arc<dyn Job> {
    engine::job(store.clone(), clock.clone(), m, outbox.waker())
}

async fn latency(
    store: &Store,
    clock: &Arc<dyn Clock>,
    outbox: &Outbox,
    receiver: &Receiver,
) -> Vec<Row> {
    let slot: Slot = Arc::default();
    let job = job(store, clock, outbox, &monitor("latency", "lat", slot.clone()));
    let (mut total, mut persisted) = (Vec::new(), Vec::new());
    for i in 0..WARMUP + LATENCY_RUNS {
        let name = format!("latency_{i:04}");
        *slot.lock().unwrap() = vec![problem(&name)];
        let t0 = Instant::now();
        if let Err(e) = job.run().await {
            println!("  the monitor's run failed: {e}");
            return vec![Row::new("condition -> webhook", "failed", e)];
        }
        let committed = t0.elapsed();
        let Some(at) = receiver.wait_name("ours-lat", &name, WAIT).await else {
            println!("  {name} never reached the receiver");
            return vec![Row::new("condition -> webhook", "not delivered", "")];
        };
        if i >= WARMUP {
            total.push(at - t0);
            persisted.push(committed);
        }
    }
    total.sort();
    persisted.sort();
    let (p50, p99) = (percentile(&total, 0.5), percentile(&total, 0.99));
    println!(
        "  latency: {LATENCY_RUNS} alerts one after another (after {WARMUP} warm-up): p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms; of which run + lifecycle transaction p50 {:.2} ms",
        ms(p50),
        ms(p99),
        ms(*total.last().unwrap()),
        ms(percentile(&persisted, 0.5))
    );
    vec![
        Row::new(
            format!("condition -> delivered webhook, group_wait 0 ({LATENCY_RUNS} alerts)"),
            format!("p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99)),
            verdict(p99 < GOAL_P99, "p99 < 100 ms"),
        ),
        Row::new(
            "  of which the run + lifecycle commit (p50)",
            format!("{:.2} ms", ms(percentile(&persisted, 0.5))),
            String::new(),
        ),
    ]
}

/// Our side of one burst: 1,000 problems in one run of a fresh monitor. The time until the
/// receiver has them all, and the time to the lifecycle's commit.
async fn ours_burst(
    r: usize,
    store: &Store,
    clock: &Arc<dyn Clock>,
    outbox: &Outbox,
    receiver: &Receiver,
) -> Option<(Duration, Duration)> {
    let slot: Slot = Arc::new(Mutex::new(
        (0..BURST)
            .map(|i| problem(&format!("ours{r}_{i:04}")))
            .collect(),
    ));
    let job = job(store, clock, outbox, &monitor(&format!("burst-{r}"), "burst", slot));
    let before = receiver.counts("ours-burst").0;
    let t0 = Instant::now();
    if let Err(e) = job.run().await {
        println!("  our burst {r}: the run failed: {e}");
        return None;
    }
    let committed = t0.elapsed();
    let early = receiver.counts("ours-burst").0 - before;
    let all = receiver
        .wait_count("ours-burst", before + BURST, WAIT)
        .await;
    let Some(at) = all else {
        println!(
            "  our burst {r}: the receiver has {} of {BURST} after {} s",
            receiver.counts("ours-burst").0 - before,
            WAIT.as_secs()
        );
        return None;
    };
    println!(
        "  ours, burst {r}: all {BURST} received after {:.0} ms (lifecycle commit of the 1,000 \
         alerts and rows after {:.0} ms; {early} had arrived by then)",
        ms(at - t0),
        ms(committed)
    );
    Some((at - t0, committed))
}

async fn burst(
    store: &Store,
    clock: &Arc<dyn Clock>,
    outbox: &Outbox,
    receiver: &Receiver,
    scratch: &Scratch,
) -> Vec<Row> {
    println!("\n  {BURST} distinct alerts fired at once, each its own notification");
    let am = Alertmanager::start(scratch, &receiver.url("am")).await;
    if let Err(e) = &am {
        println!("  peer skipped: {e}");
    }
    // Warm both paths with one alert each.
    let _ = ours_burst_warm(store, clock, outbox, receiver).await;
    if let Ok(am) = &am
        && am.send(&["am_warm".to_string()]).await.is_ok()
    {
        let _ = receiver.wait_name("am", "am_warm", WAIT).await;
    }
    let (mut ours, mut commits, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..BURST_RUNS {
        if let Some((t, c)) = ours_burst(r, store, clock, outbox, receiver).await {
            ours.push(t);
            commits.push(c);
        }
        if let Ok(am) = &am
            && let Some(t) = am.burst(r, receiver).await
        {
            theirs.push(t);
        }
    }
    let health = delivered_rows(store).await;
    let ours_m = (!ours.is_empty()).then(|| median(&mut ours));
    let theirs_m = (!theirs.is_empty()).then(|| median(&mut theirs));
    let fmt = |d: Option<Duration>| d.map_or("n/a".to_string(), |d| format!("{:.0} ms", ms(d)));
    let mut rows = vec![
        Row::new(
            format!("{BURST} alerts fired at once -> all at the receiver, ours (median of {BURST_RUNS})"),
            fmt(ours_m),
            String::new(),
        ),
        Row::new(
            "  of which the lifecycle commit (alerts + 1,000 outbox rows, one transaction)",
            fmt((!commits.is_empty()).then(|| median(&mut commits))),
            String::new(),
        ),
        Row::new(
            "  every notification persisted before it was sent",
            health,
            String::new(),
        ),
        Row::new(
            format!("the same {BURST} through Alertmanager (median of {BURST_RUNS})"),
            fmt(theirs_m),
            String::new(),
        ),
    ];
    if let Ok(am) = &am {
        rows.push(Row::new("  peer", am.version.clone(), String::new()));
    }
    rows.push(ratio_row(
        "burst: ours / Alertmanager",
        ours_m,
        theirs_m,
        |r| r <= 1.0,
        "<= 1.00x (at least as fast)".into(),
    ));
    rows
}

async fn ours_burst_warm(
    store: &Store,
    clock: &Arc<dyn Clock>,
    outbox: &Outbox,
    receiver: &Receiver,
) -> Option<Instant> {
    let slot: Slot = Arc::new(Mutex::new(vec![problem("ours_warm")]));
    let job = job(store, clock, outbox, &monitor("burst-warm", "burst", slot));
    job.run().await.ok()?;
    receiver.wait_name("ours-burst", "ours_warm", WAIT).await
}

/// The outbox rows of the burst channel: every one delivered (once the last records are
/// written), none pending or dead.
async fn delivered_rows(store: &Store) -> String {
    let expected = (BURST_RUNS * BURST + 1) as u64;
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let h = store.outbox_health().unwrap_or_default();
        let b = h.iter().find(|c| c.channel == "burst");
        let (delivered, pending, dead) = b.map_or((0, 0, 0), |c| (c.delivered, c.pending, c.dead));
        if (delivered >= expected && pending == 0) || Instant::now() >= until {
            return format!("{delivered} rows delivered, {pending} pending, {dead} dead");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Alertmanager as a child process: every alert its own group, group_wait 0, one webhook
/// receiver; clustering off; listening on loopback only.
struct Alertmanager {
    _proc: Proc,
    api: String,
    client: reqwest::Client,
    version: String,
}

impl Alertmanager {
    async fn start(scratch: &Scratch, webhook: &str) -> Result<Alertmanager, String> {
        let bin = peers::ensure("prometheus-alertmanager", "prometheus-alertmanager")?;
        let version = peers::version(&bin);
        let dir = scratch.path().join("alertmanager");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: bench\n  group_by: ['...']\n  group_wait: 0s\n  \
                 group_interval: 5m\n  repeat_interval: 4h\n\
                 receivers:\n  - name: bench\n    webhook_configs:\n      - url: '{webhook}'\n        \
                 send_resolved: false\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let port = peers::free_port();
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn");
        let log = dir.join("alertmanager.log");
        let mut proc = Proc::spawn("alertmanager", cmd, &log)?;
        let api = format!("http://127.0.0.1:{port}");
        if !peers::wait_ready(&format!("{api}/-/ready"), &mut proc, Duration::from_secs(30)).await {
            return Err(format!(
                "alertmanager did not become ready:\n    {}",
                peers::tail(&log)
            ));
        }
        println!("  peer: {version} (pid {}), {api}", proc.pid());
        Ok(Alertmanager {
            _proc: proc,
            api,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
            version,
        })
    }

    async fn send(&self, names: &[String]) -> Result<(), String> {
        let alerts: Vec<serde_json::Value> = names
            .iter()
            .map(|n| {
                serde_json::json!({
                    "labels": {"alertname": n, "endpoint": n, "severity": "critical"},
                    "annotations": {"summary": format!("{n} is down")},
                })
            })
            .collect();
        let r = self
            .client
            .post(format!("{}/api/v2/alerts", self.api))
            .json(&alerts)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status()))
        }
    }

    /// From the POST of 1,000 new alerts until the receiver has them all.
    async fn burst(&self, r: usize, receiver: &Receiver) -> Option<Duration> {
        let names: Vec<String> = (0..BURST).map(|i| format!("am{r}_{i:04}")).collect();
        let before = receiver.counts("am").0;
        let t0 = Instant::now();
        if let Err(e) = self.send(&names).await {
            println!("  alertmanager, burst {r}: POST /api/v2/alerts failed: {e}");
            return None;
        }
        let posted = t0.elapsed();
        let Some(at) = receiver.wait_count("am", before + BURST, WAIT).await else {
            println!(
                "  alertmanager, burst {r}: the receiver has {} of {BURST} after {} s",
                receiver.counts("am").0 - before,
                WAIT.as_secs()
            );
            return None;
        };
        println!(
            "  alertmanager, burst {r}: all {BURST} received after {:.0} ms (its API accepted \
             them after {:.0} ms; {} payloads so far)",
            ms(at - t0),
            ms(posted),
            receiver.counts("am").1
        );
        Some(at - t0)
    }
}
