//! TLS for both simulated servers: a CA generated at start (rcgen) that signs a leaf for
//! `localhost` and `127.0.0.1`, and the accept loop that serves an axum router over
//! tokio-rustls with hyper, honouring the "server down" knobs at the connection level.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{Shared, SimError};

/// The client's address, put into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Which server a listener belongs to (they have separate "down" knobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manager,
    Indexer,
}

pub struct Certs {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

fn cert_err(e: impl std::fmt::Display) -> SimError {
    SimError::Certificate(e.to_string())
}

/// A fresh CA and a leaf for `localhost` / `127.0.0.1` (valid for a year).
pub fn make_certs() -> Result<Certs, SimError> {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "secops-mcp");
    dn.push(DnType::CommonName, "secops-mcp Wazuh simulator CA");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - time::Duration::days(1);
    ca_params.not_after = now + time::Duration::days(730);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(cert_err)?;
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "secops-mcp");
    dn.push(DnType::CommonName, "wazuh-simulator");
    leaf.distinguished_name = dn;
    leaf.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().map_err(cert_err)?),
        SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::days(365);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(cert_err)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(cert_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(cert_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Certs {
        ca_pem: ca_cert.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

/// Accept connections until `shutdown`: closed at once while the server is "down",
/// otherwise TLS then HTTP/1.1 into `app`; open connections end when the server goes
/// down or the simulator stops.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    kind: Kind,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let (down, conn_token) = match kind {
            Kind::Manager => (
                shared.faults.is_manager_down(),
                shared.faults.manager_conn_token(),
            ),
            Kind::Indexer => (
                shared.faults.is_indexer_down(),
                shared.faults.indexer_conn_token(),
            ),
        };
        if down {
            // A crashed service: the port answers, then the connection closes.
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = conn_token.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)) => match r {
                    Ok(Ok(s)) => s,
                    _ => return,
                },
            };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                app.clone().oneshot(req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), svc);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.cancelled() => {}
                _ = conn_token.cancelled() => {}
            }
        });
    }
}
