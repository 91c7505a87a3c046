//! (a) 1,000 local HTTP endpoints (one listener each, on 127.0.0.1, served by this
//! process) probed on a schedule by two processes at once: `secops-mcp monitor` with 1,000
//! `uptime` monitors, and blackbox_exporter driven the way Prometheus drives it (one
//! `/probe?target=...&module=http_2xx` per target per cycle, spread over the cycle). The
//! endpoints count the probes each side really made (by User-Agent), so CPU seconds
//! (utime + stime from /proc) are compared per probe; peak RSS is VmHWM.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::harness::Scratch;
use crate::common::{Row, cpu_seconds, hwm_kib, proc_status_kib, rss_kib, verdict};
use crate::peers::{self, Proc};

const ENDPOINTS: usize = 1_000;
/// The bench's cycle: both sides probe every endpoint once per cycle. Shorter than the
/// goal's minute to keep the bench short; the comparison is per probe.
const CYCLE: Duration = Duration::from_secs(10);
/// Cycles before the measurement starts (start-up, first runs).
const WARMUP_CYCLES: u32 = 1;
const MEASURED_CYCLES: u32 = 6;
const GOAL_RATIO: f64 = 0.5;
const GOAL_RSS_MB: f64 = 50.0;

/// Probes counted by who made them.
#[derive(Default)]
struct Hits {
    ours: AtomicU64,
    blackbox: AtomicU64,
    other: AtomicU64,
}

impl Hits {
    fn get(&self) -> (u64, u64, u64) {
        (
            self.ours.load(Ordering::Relaxed),
            self.blackbox.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        )
    }
}

/// `ENDPOINTS` listeners answering `GET /health` with 200 `ok`.
async fn endpoints(hits: Arc<Hits>) -> Vec<String> {
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let hits = hits.clone();
            async move {
                let ua = headers
                    .get(axum::http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let counter = if ua.starts_with("secops-mcp") {
                    &hits.ours
                } else if ua.starts_with("Blackbox Exporter") {
                    &hits.blackbox
                } else {
                    &hits.other
                };
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let mut urls = Vec::with_capacity(ENDPOINTS);
    for _ in 0..ENDPOINTS {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an endpoint");
        urls.push(format!("http://{}/health", l.local_addr().unwrap()));
        let app = app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
    }
    urls
}

/// The `secops-mcp monitor` process: one uptime monitor per endpoint, every CYCLE.
fn start_ours(scratch: &Scratch, urls: &[String]) -> Result<Proc, String> {
    let mut toml = String::from("log_level = \"warn\"\n");
    for (i, url) in urls.iter().enumerate() {
        toml.push_str(&format!(
            "[[monitors]]\nname = \"ep-{i:04}\"\nkind = \"uptime\"\nurl = \"{url}\"\nevery = \"{}s\"\n",
            CYCLE.as_secs()
        ));
    }
    let config = scratch.write("monitor.toml", &toml);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
    cmd.arg("monitor")
        .arg("--config")
        .arg(&config)
        .env("SECOPS_STATE_DIR", scratch.state_dir());
    Proc::spawn(
        "secops-mcp monitor",
        cmd,
        &scratch.path().join("monitor.log"),
    )
}

/// blackbox_exporter with one `http_2xx` module, on a loopback port.
async fn start_blackbox(scratch: &Scratch) -> Result<(Proc, String, String), String> {
    let bin = peers::ensure(
        "prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
    )?;
    let version = peers::version(&bin);
    let config = scratch.write(
        "blackbox.yml",
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 10s\n    http:\n      \
         preferred_ip_protocol: ip4\n",
    );
    let port = peers::free_port();
    let mut cmd = Command::new(&bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    let log = scratch.path().join("blackbox.log");
    let mut proc = Proc::spawn("blackbox_exporter", cmd, &log)?;
    let base = format!("http://127.0.0.1:{port}");
    if !peers::wait_ready(
        &format!("{base}/-/healthy"),
        &mut proc,
        Duration::from_secs(30),
    )
    .await
    {
        return Err(format!(
            "blackbox_exporter did not become ready:\n    {}",
            peers::tail(&log)
        ));
    }
    Ok((proc, base, version))
}

/// What the scraper saw.
#[derive(Default)]
struct Scrapes {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// Like Prometheus: every target once per CYCLE, the targets' scrapes spread evenly over
/// the cycle, each `GET /probe?target=URL&module=http_2xx` with a timeout.
fn scrape(
    base: String,
    urls: Vec<String>,
    stop: tokio_util::sync::CancellationToken,
) -> Arc<Scrapes> {
    let seen = Arc::new(Scrapes::default());
    let out = seen.clone();
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client");
        let mut tick = tokio::time::interval(CYCLE / ENDPOINTS as u32);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for url in urls.iter().cycle() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (client, seen) = (client.clone(), seen.clone());
            let req = client
                .get(format!("{base}/probe"))
                .query(&[("target", url.as_str()), ("module", "http_2xx")]);
            tokio::spawn(async move {
                let ok = match req.send().await {
                    Ok(r) => r
                        .text()
                        .await
                        .is_ok_and(|t| t.lines().any(|l| l == "probe_success 1")),
                    Err(_) => false,
                };
                let c = if ok { &seen.ok } else { &seen.failed };
                c.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    out
}

pub async fn run() -> Vec<Row> {
    println!(
        "\n(a) {ENDPOINTS} local HTTP endpoints probed every {} s (the goal says once a minute; \
         the bench runs the cycle faster and compares per probe), {MEASURED_CYCLES} cycles measured \
         after {WARMUP_CYCLES} warm-up",
        CYCLE.as_secs()
    );
    let scratch = Scratch::new();
    let hits = Arc::new(Hits::default());
    let urls = endpoints(hits.clone()).await;
    let mut ours = match start_ours(&scratch, &urls) {
        Ok(p) => p,
        Err(e) => {
            println!("  secops-mcp monitor: {e}");
            return vec![Row::new("uptime monitors", "n/a", "not measured")];
        }
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let peer = match start_blackbox(&scratch).await {
        Ok((proc, base, version)) => {
            println!("  peer: {version} (pid {}), {base}", proc.pid());
            let scrapes = scrape(base, urls.clone(), stop.clone());
            Some((proc, scrapes, version))
        }
        Err(e) => {
            println!("  peer skipped: {e}");
            None
        }
    };
    println!(
        "  ours: {} monitor --config ({ENDPOINTS} uptime monitors, every = \"{}s\"; pid {})",
        env!("CARGO_BIN_EXE_secops-mcp"),
        CYCLE.as_secs(),
        ours.pid()
    );

    tokio::time::sleep(CYCLE * WARMUP_CYCLES).await;
    let ours_pid = ours.pid().to_string();
    let peer_pid = peer.as_ref().map(|(p, _, _)| p.pid().to_string());
    let cpu = |pid: &Option<String>| pid.as_deref().map_or(0.0, cpu_seconds);
    let scraped = |p: &Option<(Proc, Arc<Scrapes>, String)>| {
        p.as_ref().map_or((0, 0), |(_, s, _)| {
            (
                s.ok.load(Ordering::Relaxed),
                s.failed.load(Ordering::Relaxed),
            )
        })
    };
    let s0 = scraped(&peer);
    let (h0, c0_ours, c0_peer) = (hits.get(), cpu_seconds(&ours_pid), cpu(&peer_pid));
    let ours_hwm0 = hwm_kib(ours.pid()).map(|k| k as f64 / 1024.0);
    let t0 = Instant::now();
    tokio::time::sleep(CYCLE * MEASURED_CYCLES).await;
    let (h1, c1_ours, c1_peer) = (hits.get(), cpu_seconds(&ours_pid), cpu(&peer_pid));
    let s1 = scraped(&peer);
    let window = t0.elapsed();
    stop.cancel();

    let alive = ours.alive();
    let ours_probes = h1.0 - h0.0;
    let peer_probes = h1.1 - h0.1;
    let ours_cpu = c1_ours - c0_ours;
    let peer_cpu = c1_peer - c0_peer;
    let ours_hwm = hwm_kib(ours.pid()).map(|k| k as f64 / 1024.0);
    let ours_rss = rss_kib(ours.pid()).map(|k| k as f64 / 1024.0);
    let ours_threads = proc_status_kib(&ours_pid, "Threads:");
    let peer_hwm = peer
        .as_ref()
        .and_then(|(p, _, _)| hwm_kib(p.pid()))
        .map(|k| k as f64 / 1024.0);
    let expected = ENDPOINTS as u64 * u64::from(MEASURED_CYCLES);
    println!(
        "  in {:.1} s: ours {ours_probes} probes ({:.2} CPU s), blackbox_exporter {peer_probes} \
         probes ({:.2} CPU s), {} other requests; {expected} expected per side",
        window.as_secs_f64(),
        ours_cpu,
        peer_cpu,
        h1.2 - h0.2
    );
    if peer.is_some() {
        println!(
            "  scraper, same window: {} probes answered probe_success 1, {} did not",
            s1.0 - s0.0,
            s1.1 - s0.1
        );
    }
    if !alive {
        println!(
            "  secops-mcp monitor exited early:\n    {}",
            peers::tail(&scratch.path().join("monitor.log"))
        );
    }
    let per_probe = |cpu: f64, n: u64| (n > 0).then(|| cpu / n as f64);
    let ours_pp = per_probe(ours_cpu, ours_probes);
    let peer_pp = per_probe(peer_cpu, peer_probes);
    let us = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{:.0} µs", v * 1e6));
    let mb = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1} MB"));
    let mut rows = vec![
        Row::new(
            format!("secops-mcp monitor: CPU per probe ({ours_probes} probes)"),
            format!("{} ({ours_cpu:.2} s)", us(ours_pp)),
            String::new(),
        ),
        Row::new(
            format!("blackbox_exporter: CPU per probe ({peer_probes} probes)"),
            format!("{} ({peer_cpu:.2} s)", us(peer_pp)),
            String::new(),
        ),
    ];
    rows.push(match (ours_pp, peer_pp) {
        (Some(o), Some(p)) if p > 0.0 => Row::new(
            "CPU per probe: ours / blackbox_exporter",
            format!("{:.2}x", o / p),
            verdict(o / p <= GOAL_RATIO, format!("<= {GOAL_RATIO}x")),
        ),
        _ => Row::new(
            "CPU per probe: ours / blackbox_exporter",
            "n/a",
            format!("<= {GOAL_RATIO}x: not measured"),
        ),
    });
    rows.push(Row::new(
        "peak RSS (VmHWM), secops-mcp monitor",
        mb(ours_hwm),
        ours_hwm.map_or("< 50 MB: not measured".into(), |m| {
            verdict(m < GOAL_RSS_MB, "< 50 MB")
        }),
    ));
    rows.push(Row::new(
        "  of it reached in the warm-up cycle (every monitor is due at start)",
        mb(ours_hwm0),
        String::new(),
    ));
    rows.push(Row::new(
        "  RSS (VmRSS) and threads at the end",
        format!(
            "{}, {} threads",
            mb(ours_rss),
            ours_threads.map_or("?".into(), |t| t.to_string())
        ),
        String::new(),
    ));
    if let Some((_, _, version)) = &peer {
        rows.push(Row::new(
            "peak RSS (VmHWM), blackbox_exporter",
            mb(peer_hwm),
            String::new(),
        ));
        rows.push(Row::new("  peer", version.clone(), String::new()));
    }
    rows
}
