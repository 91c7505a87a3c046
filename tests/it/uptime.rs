//! Uptime probes against real local endpoints: an HTTP server that answers 200, 500, slowly,
//! with or without the expected text, or not at all, and HTTPS servers presenting a valid and
//! an expired certificate under a test CA. Each probe's problem, level and time are checked,
//! and no shown URL carries its credentials.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::common::tls::{LeafSpec, TlsFixture, server_config};
use secops_mcp::alerts::Level;
use secops_mcp::checks::uptime::{Problem, UptimeProber, UptimeTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A plain HTTP server with a few paths: `/ok`, `/fail` (500), `/slow` (answers after
/// 600 ms), `/text` (200 with "all systems nominal").
async fn http_server() -> SocketAddr {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/fail",
            get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "late"
            }),
        )
        .route("/text", get(|| async { "status: all systems nominal" }));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

/// An HTTPS server answering every request with 200 "ok", presenting `config`'s chain.
async fn https_server(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 2048];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn target(url: &str, max_ms: Option<u64>, body: Option<&str>) -> UptimeTarget {
    UptimeTarget::parse(
        "monitors[0]",
        url,
        None,
        None,
        max_ms,
        body.map(str::to_string),
        Some(3_000),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probes_tell_up_down_wrong_status_slow_and_missing_text_apart() {
    let addr = http_server().await;
    let prober = UptimeProber::new(None).unwrap();
    let url = |p: &str| format!("http://{addr}{p}");

    let up = prober.probe(&target(&url("/ok"), None, None)).await;
    assert_eq!((up.status, &up.problem), (Some(200), &None), "{up:?}");
    assert!(up.response_ms.unwrap() < 2_000);
    assert!(up.observations().iter().all(|o| o.level.is_none()));

    let fail = prober.probe(&target(&url("/fail"), None, None)).await;
    assert_eq!(
        fail.problem,
        Some(Problem::UnexpectedStatus { status: 500 })
    );
    assert_eq!(fail.problem.as_ref().unwrap().level(), Level::Critical);

    let slow = prober.probe(&target(&url("/slow"), Some(300), None)).await;
    match &slow.problem {
        Some(Problem::Slow { response_ms }) => assert!(*response_ms >= 600, "{slow:?}"),
        other => panic!("expected slow, got {other:?}"),
    }
    let obs = slow.observations();
    let o = obs.iter().find(|o| o.code == "endpoint_slow").unwrap();
    assert_eq!(o.level, Some(Level::Warning));

    let text = prober
        .probe(&target(&url("/text"), None, Some("nominal")))
        .await;
    assert_eq!(text.problem, None, "{text:?}");
    let missing = prober
        .probe(&target(&url("/text"), None, Some("degraded")))
        .await;
    assert_eq!(missing.problem, Some(Problem::BodyMismatch));

    // Nothing listens: down, promptly, with no status or time.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = prober
        .probe(&target(&format!("http://{dead}/"), None, None))
        .await;
    assert!(
        matches!(down.problem, Some(Problem::Down { .. })),
        "{down:?}"
    );
    assert_eq!((down.status, down.response_ms), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_is_down_after_its_timeout_not_later() {
    // Accepts and never answers.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let prober = UptimeProber::new(None).unwrap();
    let mut t = target(&format!("http://{addr}/"), Some(200), None);
    t.timeout_ms = 400;
    let started = std::time::Instant::now();
    let p = prober.probe(&t).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    match p.problem {
        Some(Problem::Down { reason }) => assert!(reason.contains("400 ms"), "{reason}"),
        other => panic!("expected down, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_critical_and_a_valid_one_is_up() {
    let pki = TlsFixture::new();
    let good = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let expired = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expired_days_ago(3));
    let good_addr = https_server(server_config(good.full_chain(), good.key.clone())).await;
    let bad_addr = https_server(server_config(expired.full_chain(), expired.key.clone())).await;
    let ca = pki.root_ca_file();
    let prober = UptimeProber::new(Some(ca.path())).unwrap();

    let up = prober
        .probe(&target(&format!("https://{good_addr}/"), None, None))
        .await;
    assert_eq!((up.status, &up.problem), (Some(200), &None), "{up:?}");

    let bad = prober
        .probe(&target(&format!("https://{bad_addr}/"), None, None))
        .await;
    match &bad.problem {
        Some(p @ Problem::TlsInvalid { reason }) => {
            assert_eq!(p.level(), Level::Critical);
            assert!(reason.to_lowercase().contains("expired"), "{reason}");
        }
        other => panic!("expected an invalid certificate, got {other:?}"),
    }
    let obs = bad.observations();
    let o = obs
        .iter()
        .find(|o| o.code == "endpoint_tls_invalid")
        .unwrap();
    assert_eq!(o.level, Some(Level::Critical));
    assert!(o.summary.contains("check_cert"), "{}", o.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shown_urls_and_reasons_never_carry_credentials() {
    let addr = http_server().await;
    let prober = UptimeProber::new(None).unwrap();
    let p = prober
        .probe(&target(
            &format!("http://probe:Pa55-secret@{addr}/fail?token=Tok-secret"),
            None,
            None,
        ))
        .await;
    // And when the request fails, the transport's error text does not bring the URL back.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = prober
        .probe(&target(
            &format!("http://probe:Pa55-secret@{dead}/?token=Tok-secret"),
            None,
            None,
        ))
        .await;
    assert!(
        matches!(down.problem, Some(Problem::Down { .. })),
        "{down:?}"
    );
    let shown = serde_json::to_string(&p).unwrap()
        + &serde_json::to_string(&p.observations()).unwrap()
        + &serde_json::to_string(&down).unwrap()
        + &serde_json::to_string(&down.observations()).unwrap();
    assert!(
        !shown.contains("Pa55-secret") && !shown.contains("Tok-secret"),
        "{shown}"
    );
    assert!(shown.contains(&format!("http://{addr}/fail")), "{shown}");
}
