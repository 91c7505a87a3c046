//! check_cert against 100 local TLS servers, next to the usual shell loop of
//! `openssl s_client` (one process per target, one after another) as the peer.
//!
//! Run: `cargo bench --bench cert`. Prints times and ratios next to the goals; asserts
//! nothing about timing. Without `openssl` on PATH the peer part is skipped with a hint.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

mod common;

use common::{Row, median, ms, print_table, ratio_row};
use secops_mcp::checks::cert::{CertArgs, CertChecker, CertReport};

const SERVERS: usize = 100;
const BATCH_RUNS: usize = 5;
const SINGLE_RUNS: usize = 20;
const SNI: &str = "localhost";

const GOAL_BATCH_RATIO: f64 = 10.0;
const GOAL_SINGLE_RATIO: f64 = 0.5;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows = runtime.block_on(run());
    print_table("cert", &rows);
}

async fn run() -> Vec<Row> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(dir.path());
    let ports = start_tls_servers(&pki, SERVERS).await;
    let targets: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    println!(
        "{SERVERS} TLS servers on 127.0.0.1 (ports {}..{}), leaf for `localhost`/127.0.0.1 signed by a bench CA ({})",
        ports.iter().min().unwrap(),
        ports.iter().max().unwrap(),
        pki.ca_file.display()
    );

    let checker = match CertChecker::new(Some(&pki.ca_file)) {
        Ok(c) => c,
        Err(e) => {
            println!("CertChecker::new failed: {e}");
            return vec![];
        }
    };
    let openssl = openssl_version().await;
    let has_openssl = openssl.is_some();
    match &openssl {
        Some(v) => println!("peer: {v}"),
        None => println!(
            "peer skipped: `openssl` is not on PATH (Debian/Ubuntu: `apt-get install openssl`)"
        ),
    }

    let mut rows = Vec::new();
    let ours_batch = batch_check(&checker, &targets).await;
    let peer_batch = if has_openssl {
        openssl_loop(&pki.ca_file, &ports).await
    } else {
        None
    };
    rows.push(Row {
        what: format!("check_cert, {SERVERS} targets in one call (median of {BATCH_RUNS})"),
        value: fmt_opt_ms(ours_batch),
        goal: String::new(),
    });
    rows.push(Row {
        what: format!("openssl s_client x {SERVERS}, one after another"),
        value: fmt_opt_ms(peer_batch),
        goal: String::new(),
    });
    rows.push(ratio_row(
        "speed-up, 100 targets (openssl time / check_cert time)",
        peer_batch,
        ours_batch,
        |r| r >= GOAL_BATCH_RATIO,
        format!(">= {GOAL_BATCH_RATIO}x"),
    ));

    let ours_single = single_check(&checker, &targets[0]).await;
    let peer_single = if has_openssl {
        openssl_single(&pki.ca_file, ports[0]).await
    } else {
        None
    };
    rows.push(Row {
        what: format!("check_cert, 1 target (median of {SINGLE_RUNS})"),
        value: fmt_opt_ms(ours_single),
        goal: String::new(),
    });
    rows.push(Row {
        what: format!("openssl s_client, 1 target (median of {SINGLE_RUNS})"),
        value: fmt_opt_ms(peer_single),
        goal: String::new(),
    });
    rows.push(ratio_row(
        "single-target latency (check_cert time / openssl time)",
        ours_single,
        peer_single,
        |r| r <= GOAL_SINGLE_RATIO,
        format!("<= {GOAL_SINGLE_RATIO}x"),
    ));
    rows
}

/// (a) All targets in one `CertChecker::check` call: one warm-up, then the median of runs.
async fn batch_check(checker: &CertChecker, targets: &[String]) -> Option<Duration> {
    let report = match check(checker, targets).await {
        Ok(r) => r,
        Err(e) => {
            println!("check_cert on {} targets failed: {e}", targets.len());
            return None;
        }
    };
    report_problems(&report);
    let mut times = Vec::new();
    for _ in 0..BATCH_RUNS {
        let t = Instant::now();
        let r = check(checker, targets).await;
        times.push(t.elapsed());
        if let Err(e) = r {
            println!("check_cert failed during the timed runs: {e}");
            return None;
        }
    }
    let m = median(&mut times);
    println!(
        "check_cert: {} targets in {:.1} ms (median of {BATCH_RUNS}; runs: {})",
        targets.len(),
        ms(m),
        list_ms(&times)
    );
    Some(m)
}

/// (c) One target per call, one call after another.
async fn single_check(checker: &CertChecker, target: &str) -> Option<Duration> {
    let one = [target.to_string()];
    if let Err(e) = check(checker, &one).await {
        println!("check_cert on {target} failed: {e}");
        return None;
    }
    let mut times = Vec::new();
    for _ in 0..SINGLE_RUNS {
        let t = Instant::now();
        let r = check(checker, &one).await;
        times.push(t.elapsed());
        if let Err(e) = r {
            println!("check_cert on {target} failed: {e}");
            return None;
        }
    }
    let m = median(&mut times);
    println!(
        "check_cert: 1 target in {:.2} ms (median of {SINGLE_RUNS})",
        ms(m)
    );
    Some(m)
}

async fn check(checker: &CertChecker, targets: &[String]) -> Result<CertReport, String> {
    checker
        .check(CertArgs {
            targets: targets.to_vec(),
            sni: Some(SNI.to_string()),
            timeout_ms: Some(5_000),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())
}

/// Times only count when every target was really checked: say so when one was not.
fn report_problems(report: &CertReport) {
    let s = &report.summary;
    println!(
        "check_cert report: {} ok, {} warning, {} critical, {} error",
        s.ok, s.warning, s.critical, s.error
    );
    if let Some(bad) = report
        .results
        .iter()
        .find(|r| r.verification_error.is_some() || r.chain.is_empty())
    {
        println!(
            "  e.g. {}: status {:?}, verification_error {:?}, findings {:?}",
            bad.target,
            bad.status,
            bad.verification_error,
            bad.findings.iter().map(|f| &f.code).collect::<Vec<_>>()
        );
    }
}

/// (b) The shell loop: `echo | openssl s_client -connect 127.0.0.1:PORT -servername localhost`
/// for each port in turn (stdin at EOF, output discarded, verifying against the bench CA;
/// only the handshake and verification, no `openssl x509` parsing step after it).
async fn openssl_loop(ca_file: &Path, ports: &[u16]) -> Option<Duration> {
    let _ = s_client(ca_file, ports[0]).await; // warm the page cache
    let t = Instant::now();
    let mut failed = 0;
    for &port in ports {
        if !s_client(ca_file, port).await {
            failed += 1;
        }
    }
    let elapsed = t.elapsed();
    println!(
        "openssl s_client: {} targets one after another in {:.1} ms ({failed} failed)",
        ports.len(),
        ms(elapsed)
    );
    Some(elapsed)
}

async fn openssl_single(ca_file: &Path, port: u16) -> Option<Duration> {
    let _ = s_client(ca_file, port).await;
    let mut times = Vec::new();
    for _ in 0..SINGLE_RUNS {
        let t = Instant::now();
        s_client(ca_file, port).await;
        times.push(t.elapsed());
    }
    let m = median(&mut times);
    println!(
        "openssl s_client: 1 target in {:.2} ms (median of {SINGLE_RUNS})",
        ms(m)
    );
    Some(m)
}

async fn s_client(ca_file: &Path, port: u16) -> bool {
    let status = tokio::process::Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-servername")
        .arg(SNI)
        .arg("-CAfile")
        .arg(ca_file)
        // Fail (non-zero exit) when verification fails, so a broken setup cannot look fast.
        .arg("-verify_return_error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    matches!(
        tokio::time::timeout(Duration::from_secs(10), status).await,
        Ok(Ok(s)) if s.success()
    )
}

async fn openssl_version() -> Option<String> {
    let out = tokio::process::Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A bench CA and one leaf (`localhost`, 127.0.0.1) it signed; the CA as a PEM file.
struct Pki {
    ca_file: std::path::PathBuf,
    leaf: CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

impl Pki {
    fn generate(dir: &Path) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "secops-mcp bench CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = now - time::Duration::days(1);
        ca.not_after = now + time::Duration::days(365);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");

        let mut leaf =
            CertificateParams::new(vec![SNI.to_string(), "127.0.0.1".to_string()]).expect("SANs");
        leaf.distinguished_name.push(DnType::CommonName, SNI);
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = now - time::Duration::days(1);
        leaf.not_after = now + time::Duration::days(200);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let issuer = Issuer::from_params(&ca, &ca_key);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");

        let ca_file = dir.join("bench-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("write CA");
        Pki {
            ca_file,
            leaf: leaf_cert.der().clone(),
            leaf_key: leaf_key.serialize_der(),
        }
    }
}

/// `count` TLS servers on 127.0.0.1, each completing the handshake and then reading until
/// the client closes (bounded at 10 s per connection).
async fn start_tls_servers(pki: &Pki, count: usize) -> Vec<u16> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key.clone()));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let mut ports = Vec::with_capacity(count);
    for _ in 0..count {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        ports.push(listener.local_addr().expect("addr").port());
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async move {
                        let mut tls = acceptor.accept(tcp).await?;
                        let mut buf = [0u8; 1024];
                        while tls.read(&mut buf).await? > 0 {}
                        tls.shutdown().await
                    })
                    .await;
                });
            }
        });
    }
    ports
}

fn list_ms(times: &[Duration]) -> String {
    times
        .iter()
        .map(|t| format!("{:.1}", ms(*t)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "n/a".to_string(), |d| format!("{:.2} ms", ms(d)))
}
