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
use crate::common::{Row, cpu_seconds, median, ms, percentile, ratio_row, verdict};
use crate::peers::{self, Proc};
use crate::receiver::Receiver;

const WARMUP: usize = 10;
const LATENCY_RUNS: usize = 200;
const BURST: usize = 1_000;
const BURST_RUNS: usize = 3;
const GOAL_P99: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(60);

/// Our sending side: a store, the outbox sender running over it, and its webhook channels
/// (`lat` and `burst`, each to its own receiver path).
struct Ours {
    store: Store,
    clock: Arc<dyn Clock>,
    outbox: Arc<Outbox>,
    stop: CancellationToken,
    sender: tokio::task::JoinHandle<()>,
    /// The receiver side its `burst` channel posts to.
    side: String,
    _scratch: Scratch,
}

impl Ours {
    fn start(receiver: &Receiver, label: &str, settings: OutboxSettings) -> Ours {
        let scratch = Scratch::new();
        let store = Store::open(&scratch.state_dir()).expect("store");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let side = format!("ours-{label}-burst");
        let channels: BTreeMap<String, Arc<dyn Channel>> = BTreeMap::from([
            (
                "lat".to_string(),
                hook("lat", receiver.url(&format!("ours-{label}-lat"))),
            ),
            ("burst".to_string(), hook("burst", receiver.url(&side))),
        ]);
        let outbox = Arc::new(Outbox::new(
            store.clone(),
            channels,
            clock.clone(),
            settings,
        ));
        let stop = CancellationToken::new();
        let sender = {
            let (outbox, stop) = (outbox.clone(), stop.clone());
            tokio::spawn(async move { outbox.run(stop).await })
        };
        Ours {
            store,
            clock,
            outbox,
            stop,
            sender,
            side,
            _scratch: scratch,
        }
    }

    fn job(&self, m: &Monitor) -> Arc<dyn Job> {
        engine::job(
            self.store.clone(),
            self.clock.clone(),
            m,
            self.outbox.waker(),
        )
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.sender.await;
    }
}

/// More sends in flight and bigger claims than the defaults, to show what the sender's
/// concurrency buys on a burst.
fn wide() -> OutboxSettings {
    OutboxSettings {
        batch: 500,
        concurrency: 64,
        ..OutboxSettings::default()
    }
}

pub async fn run() -> Vec<Row> {
    println!("\n(c) condition -> delivered webhook, group_wait 0");
    let receiver = Receiver::start();
    let s = OutboxSettings::default();
    println!(
        "  our path: SQLite in WAL mode, synchronous=NORMAL (a committed row survives a kill \
         of the process); outbox defaults: claims of {}, {} sends in flight",
        s.batch, s.concurrency
    );
    let ours = Ours::start(&receiver, "default", s);
    let mut rows = latency(&ours, &receiver).await;
    let w = wide();
    let wide = Ours::start(&receiver, "wide", w.clone());
    rows.extend(burst(&ours, &wide, &w, &receiver).await);
    ours.stop().await;
    wide.stop().await;
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

async fn latency(ours: &Ours, receiver: &Receiver) -> Vec<Row> {
    let slot: Slot = Arc::default();
    let job = ours.job(&monitor("latency", "lat", slot.clone()));
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
        let Some(at) = receiver.wait_name("ours-default-lat", &name, WAIT).await else {
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

/// One burst on one side.
struct Burst {
    /// Until the receiver had all of them.
    all: Duration,
    /// Until the lifecycle's commit (ours) or the API's answer (Alertmanager).
    accepted: Duration,
    /// Alerts at the receiver when the commit / the answer came.
    early: usize,
    /// CPU seconds of this process (the receiver, and our sender) and of the peer.
    cpu_here: f64,
    cpu_peer: f64,
}

/// Our side of one burst: 1,000 problems in one run of a fresh monitor.
async fn ours_burst(r: usize, ours: &Ours, receiver: &Receiver) -> Option<Burst> {
    let slot: Slot = Arc::new(Mutex::new(
        (0..BURST)
            .map(|i| problem(&format!("{}{r}_{i:04}", ours.side)))
            .collect(),
    ));
    let job = ours.job(&monitor(&format!("burst-{r}"), "burst", slot));
    let side = ours.side.as_str();
    let before = receiver.counts(side).0;
    let cpu0 = cpu_seconds("self");
    let t0 = Instant::now();
    if let Err(e) = job.run().await {
        println!("  {side}, burst {r}: the run failed: {e}");
        return None;
    }
    let accepted = t0.elapsed();
    let early = receiver.counts(side).0 - before;
    let Some(at) = receiver.wait_count(side, before + BURST, WAIT).await else {
        println!(
            "  {side}, burst {r}: the receiver has {} of {BURST} after {} s",
            receiver.counts(side).0 - before,
            WAIT.as_secs()
        );
        return None;
    };
    let b = Burst {
        all: at - t0,
        accepted,
        early,
        cpu_here: cpu_seconds("self") - cpu0,
        cpu_peer: 0.0,
    };
    println!(
        "  {side}, burst {r}: all {BURST} received after {:.0} ms (the lifecycle committed the \
         alerts and their rows after {:.0} ms, when {early} had arrived); CPU of this process \
         (sender + receiver) {:.2} s",
        ms(b.all),
        ms(accepted),
        b.cpu_here
    );
    Some(b)
}

fn med(runs: &mut [Burst], f: impl Fn(&Burst) -> Duration) -> Option<Duration> {
    let mut v: Vec<Duration> = runs.iter().map(f).collect();
    (!v.is_empty()).then(|| median(&mut v))
}

fn mean(runs: &[Burst], f: impl Fn(&Burst) -> f64) -> f64 {
    runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64
}

async fn burst(ours: &Ours, wide: &Ours, w: &OutboxSettings, receiver: &Receiver) -> Vec<Row> {
    println!("\n  {BURST} distinct alerts fired at once, each its own notification");
    let scratch = Scratch::new();
    let am = Alertmanager::start(&scratch, &receiver.url("am")).await;
    if let Err(e) = &am {
        println!("  peer skipped: {e}");
    }
    // Warm every path with one alert.
    for o in [ours, wide] {
        let _ = warm(o, receiver).await;
    }
    if let Ok(am) = &am
        && am.send(&["am_warm".to_string()]).await.is_ok()
    {
        let _ = receiver.wait_name("am", "am_warm", WAIT).await;
    }
    let (mut mine, mut wider, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..BURST_RUNS {
        mine.extend(ours_burst(r, ours, receiver).await);
        if let Ok(am) = &am {
            theirs.extend(am.burst(r, receiver).await);
        }
        wider.extend(ours_burst(r, wide, receiver).await);
    }
    let persisted = format!(
        "{} at the receiver when the commit came (of {BURST}, each burst); {}",
        mine.iter()
            .chain(&wider)
            .map(|b| b.early.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        delivered_rows(&ours.store).await
    );
    let ours_m = med(&mut mine, |b| b.all);
    let wide_m = med(&mut wider, |b| b.all);
    let theirs_m = med(&mut theirs, |b| b.all);
    let fmt = |d: Option<Duration>| d.map_or("n/a".to_string(), |d| format!("{:.0} ms", ms(d)));
    let mut rows = vec![
        Row::new(
            format!(
                "1,000 alerts fired at once -> all at the receiver, ours (median of {BURST_RUNS})"
            ),
            fmt(ours_m),
            String::new(),
        ),
        Row::new(
            "  of which the lifecycle commit (1,000 alerts + their outbox rows, one transaction)",
            fmt(med(&mut mine, |b| b.accepted)),
            String::new(),
        ),
        Row::new(
            "  every notification persisted before it was sent",
            persisted,
            String::new(),
        ),
        Row::new(
            "  CPU of the bench process per burst (our sender + the receiver)",
            format!("{:.2} s", mean(&mine, |b| b.cpu_here)),
            String::new(),
        ),
        Row::new(
            format!(
                "  ours with claims of {} and {} sends in flight (defaults {} and {})",
                w.batch,
                w.concurrency,
                OutboxSettings::default().batch,
                OutboxSettings::default().concurrency
            ),
            fmt(wide_m),
            String::new(),
        ),
        Row::new(
            format!("the same 1,000 through Alertmanager (median of {BURST_RUNS})"),
            fmt(theirs_m),
            String::new(),
        ),
        Row::new(
            "  of which its API accepting the 1,000 (POST /api/v2/alerts)",
            fmt(med(&mut theirs, |b| b.accepted)),
            String::new(),
        ),
        Row::new(
            "  CPU per burst: Alertmanager | the bench process (the receiver)",
            format!(
                "{:.2} s | {:.2} s",
                mean(&theirs, |b| b.cpu_peer),
                mean(&theirs, |b| b.cpu_here)
            ),
            String::new(),
        ),
    ];
    if let Ok(am) = &am {
        rows.push(Row::new("  peer", am.version.clone(), String::new()));
    }
    rows.push(ratio_row(
        "burst: ours / Alertmanager (defaults)",
        ours_m,
        theirs_m,
        |r| r <= 1.0,
        "<= 1.00x (at least as fast)".into(),
    ));
    rows
}

async fn warm(ours: &Ours, receiver: &Receiver) -> Option<Instant> {
    let name = format!("{}_warm", ours.side);
    let slot: Slot = Arc::new(Mutex::new(vec![problem(&name)]));
    let job = ours.job(&monitor("burst-warm", "burst", slot));
    job.run().await.ok()?;
    receiver.wait_name(&ours.side, &name, WAIT).await
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
    proc: Proc,
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
        if !peers::wait_ready(
            &format!("{api}/-/ready"),
            &mut proc,
            Duration::from_secs(30),
        )
        .await
        {
            return Err(format!(
                "alertmanager did not become ready:\n    {}",
                peers::tail(&log)
            ));
        }
        println!("  peer: {version} (pid {}), {api}", proc.pid());
        Ok(Alertmanager {
            proc,
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
    async fn burst(&self, r: usize, receiver: &Receiver) -> Option<Burst> {
        let names: Vec<String> = (0..BURST).map(|i| format!("am{r}_{i:04}")).collect();
        let before = receiver.counts("am").0;
        let pid = self.proc.pid().to_string();
        let (here0, peer0) = (cpu_seconds("self"), cpu_seconds(&pid));
        let t0 = Instant::now();
        if let Err(e) = self.send(&names).await {
            println!("  alertmanager, burst {r}: POST /api/v2/alerts failed: {e}");
            return None;
        }
        let accepted = t0.elapsed();
        let early = receiver.counts("am").0 - before;
        let Some(at) = receiver.wait_count("am", before + BURST, WAIT).await else {
            println!(
                "  alertmanager, burst {r}: the receiver has {} of {BURST} after {} s",
                receiver.counts("am").0 - before,
                WAIT.as_secs()
            );
            return None;
        };
        let b = Burst {
            all: at - t0,
            accepted,
            early,
            cpu_here: cpu_seconds("self") - here0,
            cpu_peer: cpu_seconds(&pid) - peer0,
        };
        println!(
            "  alertmanager, burst {r}: all {BURST} received after {:.0} ms (its API answered \
             after {:.0} ms, when {early} had arrived); CPU: alertmanager {:.2} s, this process \
             (receiver) {:.2} s",
            ms(b.all),
            ms(accepted),
            b.cpu_peer,
            b.cpu_here
        );
        Some(b)
    }
}
