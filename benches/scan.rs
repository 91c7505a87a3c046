//! Full-range (1-65535) TCP connect scan: secops-mcp's engine against `nmap -sT -p- -T5 -n
//! -Pn` and RustScan, on the same targets in the same run: (a) a loopback alias with 20
//! listeners, (b) a network-namespace host answering RST, (c) a namespace host whose
//! firewall drops everything but two ports. Prints wall time, open ports found, missed open
//! ports and ratios against nmap. (b) and (c) need root; missing peers are skipped with a note.
//!
//! Run: `cargo bench --bench scan` (RustScan: `cargo install rustscan --locked`, found on
//! PATH or via SCAN_BENCH_RUSTSCAN; `SCAN_BENCH_RUNS` repeats (a) and (b), default 3).

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use secops_mcp::checks::cert::CertChecker;
use secops_mcp::checks::scan::{self, ScanArgs, ScanDeps, Scope};
use tokio_util::sync::CancellationToken;

use common::harness::netns;

struct Measure {
    tool: &'static str,
    wall: Duration,
    open: BTreeSet<u16>,
    filtered: Option<usize>,
}

async fn ours(ip: IpAddr) -> Measure {
    let scope = Scope::parse(&[ip.to_string()]).unwrap();
    let cert = CertChecker::new(None).unwrap();
    let deps = ScanDeps {
        scope: &scope,
        store: None,
        cert: &cert,
        budget: scan::connection_budget(),
    };
    let args = ScanArgs {
        target: ip.to_string(),
        ports: Some("all".into()),
        detect_services: Some(false),
        timeout_ms: None,
    };
    let started = Instant::now();
    let report = scan::run(&deps, &args, &CancellationToken::new(), &|_, _| {})
        .await
        .expect("scan");
    let wall = started.elapsed();
    let h = &report.hosts[0];
    assert_eq!(h.inconclusive_count, 0, "inconclusive ports");
    Measure {
        tool: "secops-mcp",
        wall,
        open: h.open.iter().map(|p| p.port).collect(),
        filtered: Some(h.filtered_count),
    }
}

fn nmap(ip: IpAddr) -> Option<Measure> {
    let started = Instant::now();
    let out = Command::new("nmap")
        .args([
            "-sT",
            "-p-",
            "-T5",
            "-n",
            "-Pn",
            "-oG",
            "-",
            &ip.to_string(),
        ])
        .output()
        .ok()?;
    let wall = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut open = BTreeSet::new();
    let mut filtered = None;
    for line in text.lines().filter(|l| l.contains("Ports:")) {
        let ports = line.split("Ports:").nth(1).unwrap_or("");
        for item in ports.split(',') {
            let fields: Vec<&str> = item.trim().split('/').collect();
            if fields.len() > 1 && fields[1] == "open" {
                open.insert(fields[0].parse().unwrap_or(0));
            }
        }
        if let Some(rest) = line.split("Ignored State: filtered (").nth(1) {
            filtered = rest.split(')').next().and_then(|n| n.parse().ok());
        }
    }
    Some(Measure {
        tool: "nmap -T5",
        wall,
        open,
        filtered,
    })
}

fn rustscan(ip: IpAddr, batch: u32) -> Option<Measure> {
    let bin = std::env::var("SCAN_BENCH_RUSTSCAN").unwrap_or_else(|_| "rustscan".into());
    let started = Instant::now();
    let out = Command::new(&bin)
        .args([
            "-a",
            &ip.to_string(),
            "-r",
            "1-65535",
            "-b",
            &batch.to_string(),
            "-u",
            "20000",
            "-g",
            "-n",
        ])
        .output()
        .ok()?;
    let wall = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let open = text
        .lines()
        .filter_map(|l| l.split("->").nth(1))
        .flat_map(|ports| {
            ports
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect::<Vec<u16>>()
        })
        .collect();
    Some(Measure {
        tool: "RustScan",
        wall,
        open,
        filtered: None,
    })
}

fn median(mut runs: Vec<Measure>) -> Measure {
    runs.sort_by_key(|m| m.wall);
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("SCAN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let ours_runs = runs;
    println!(
        "full-range TCP connect scan, 1-65535; median of {runs} run(s) for (a) and (b), 1 for (c)"
    );

    // (a) a loopback alias with 20 listeners (plus whatever listens on 0.0.0.0 here).
    let ip: IpAddr = "127.0.0.90".parse().unwrap();
    let listeners: Vec<std::net::TcpListener> = (0..20)
        .map(|_| std::net::TcpListener::bind((ip, 0)).unwrap())
        .collect();
    let expected: BTreeSet<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    compare("(a) loopback alias", ip, &expected, ours_runs, 15000).await;
    drop(listeners);

    if netns::unavailable(true).is_some() {
        println!("\n(b) and (c) skipped: namespace hosts need root, iproute2 and nftables");
        return;
    }
    // (b) a namespace host answering RST, 20 listeners.
    let host = netns::NetnsHost::rst();
    let ports: Vec<u16> = (0..20).map(|i| 1000 + i * 3000).collect();
    let listeners: Vec<_> = ports.iter().map(|p| host.listen(*p)).collect();
    compare(
        "(b) namespace host, RST",
        IpAddr::V4(host.addr),
        &ports.iter().copied().collect(),
        ours_runs,
        15000,
    )
    .await;
    drop(listeners);
    drop(host);

    // (c) a namespace host dropping everything but two ports.
    let host = netns::NetnsHost::dropping(&[22, 40000]);
    let l = [host.listen(22), host.listen(40000)];
    compare(
        "(c) namespace host, dropping",
        IpAddr::V4(host.addr),
        &BTreeSet::from([22, 40000]),
        1,
        15000,
    )
    .await;
    drop(l);
}

/// Time every tool on one target, one run at a time, and print the table.
async fn compare(label: &str, ip: IpAddr, expected: &BTreeSet<u16>, runs: usize, batch: u32) {
    let mut ours_runs = Vec::new();
    for _ in 0..runs {
        ours_runs.push(ours(ip).await);
    }
    let mut results = vec![median(ours_runs)];
    let n: Vec<Measure> = (0..runs).filter_map(|_| nmap(ip)).collect();
    if n.is_empty() {
        println!("  (nmap not found: apt install nmap)");
    } else {
        results.push(median(n));
    }
    let r: Vec<Measure> = (0..runs).filter_map(|_| rustscan(ip, batch)).collect();
    if r.is_empty() {
        println!("  (RustScan not found: cargo install rustscan --locked)");
    } else {
        results.push(median(r));
    }
    print_table(label, ip, expected, &results);
}

fn print_table(label: &str, ip: IpAddr, expected: &BTreeSet<u16>, results: &[Measure]) {
    let nmap_wall = results
        .iter()
        .find(|m| m.tool.starts_with("nmap"))
        .map(|m| m.wall);
    println!("\n{label} ({ip}), {} open ports expected:", expected.len());
    println!(
        "  {:<12} {:>10} {:>6} {:>7} {:>9} {:>10}",
        "tool", "wall", "open", "missed", "filtered", "vs nmap"
    );
    for m in results {
        let missed = expected.difference(&m.open).count();
        let ratio = nmap_wall
            .map(|n| format!("{:.2}x", m.wall.as_secs_f64() / n.as_secs_f64()))
            .unwrap_or_else(|| "-".into());
        println!(
            "  {:<12} {:>8.0}ms {:>6} {:>7} {:>9} {:>10}",
            m.tool,
            m.wall.as_secs_f64() * 1000.0,
            m.open.len(),
            missed,
            m.filtered
                .map(|f| f.to_string())
                .unwrap_or_else(|| "-".into()),
            ratio
        );
    }
}
