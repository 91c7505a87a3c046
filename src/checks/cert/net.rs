//! The network side of `check_cert`: resolve, connect, optional STARTTLS, and a rustls
//! client handshake with the recording verifier, all under one per-target deadline. Never
//! sends application data; closes with close_notify.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::Resumption;
use rustls::{AlertDescription, ClientConfig, ProtocolVersion};
use rustls_pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::policy::CertPolicy;
use super::starttls::{self, StartTlsError};
use super::target::{Host, StartTls, sanitize};
use super::trust::TrustStore;
use super::verify::{Recorded, RecordingVerifier};

/// What a completed handshake revealed.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
}

/// Outcome of probing one network target.
#[derive(Debug)]
pub(crate) struct Probe {
    pub recorded: Recorded,
    /// The address the TCP connection went to, once connected.
    pub address: Option<SocketAddr>,
    pub outcome: Result<Negotiated, ProbeError>,
}

/// Why a probe did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("cannot resolve `{host}`: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("STARTTLS ({proto}) failed: {source}")]
    StartTls {
        proto: StartTls,
        source: StartTlsError,
    },
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    #[error("timed out after {ms} ms while {stage}")]
    Timeout { ms: u128, stage: &'static str },
    #[error("cannot build the TLS client: {0}")]
    Config(String),
    /// Refused by `check_cert.allow` or the metadata rule, before any connection.
    #[error("{0}")]
    Refused(String),
}

const STAGE_RESOLVE: u8 = 0;
const STAGE_CONNECT: u8 = 1;
const STAGE_STARTTLS: u8 = 2;
const STAGE_HANDSHAKE: u8 = 3;
const STAGE_CLOSE: u8 = 4;

fn stage_name(stage: u8) -> &'static str {
    match stage {
        STAGE_RESOLVE => "resolving the host name",
        STAGE_CONNECT => "connecting",
        STAGE_STARTTLS => "negotiating STARTTLS",
        STAGE_HANDSHAKE => "waiting for the TLS handshake",
        _ => "closing the connection",
    }
}

/// Progress shared with the deadline, so a timeout can say where it happened and keep
/// what was already learned.
#[derive(Default)]
struct Progress {
    stage: AtomicU8,
    address: Mutex<Option<SocketAddr>>,
    negotiated: Mutex<Option<Negotiated>>,
}

impl Progress {
    fn set_stage(&self, stage: u8) {
        self.stage.store(stage, Ordering::Relaxed);
    }
    fn set_address(&self, addr: SocketAddr) {
        *self.address.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
    }
    fn address(&self) -> Option<SocketAddr> {
        *self.address.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set_negotiated(&self, n: Negotiated) {
        *self.negotiated.lock().unwrap_or_else(|p| p.into_inner()) = Some(n);
    }
    fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Probes `host:port` within `timeout` (resolve + connect + STARTTLS + handshake).
pub(crate) async fn probe(
    trust: &Arc<TrustStore>,
    policy: &CertPolicy,
    host: &Host,
    port: u16,
    starttls: Option<StartTls>,
    sni: Option<&ServerName<'static>>,
    timeout: Duration,
) -> Probe {
    let verifier = Arc::new(RecordingVerifier::new(trust.clone()));
    let progress = Progress::default();
    let run = run(
        trust, policy, host, port, starttls, sni, timeout, &verifier, &progress,
    );
    let outcome = match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        Err(_) => match progress.negotiated() {
            // The handshake finished; only the polite close ran out of time.
            Some(done) => Ok(done),
            None => Err(ProbeError::Timeout {
                ms: timeout.as_millis(),
                stage: stage_name(progress.stage.load(Ordering::Relaxed)),
            }),
        },
    };
    Probe {
        recorded: verifier.recorded(),
        address: progress.address(),
        outcome,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    trust: &Arc<TrustStore>,
    policy: &CertPolicy,
    host: &Host,
    port: u16,
    starttls: Option<StartTls>,
    sni: Option<&ServerName<'static>>,
    timeout: Duration,
    verifier: &Arc<RecordingVerifier>,
    progress: &Progress,
) -> Result<Negotiated, ProbeError> {
    if let Host::Ip(ip) = host {
        // Refused before anything at all is sent.
        policy
            .check_addresses(host, &[*ip])
            .map_err(ProbeError::Refused)?;
    }
    progress.set_stage(STAGE_RESOLVE);
    // Resolved once; only these addresses are checked and connected to.
    let addrs: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Dns(name) => tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| ProbeError::Resolve {
                host: name.clone(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(ProbeError::Resolve {
            host: host.to_string(),
            reason: "the name has no addresses".into(),
        });
    }

    let ips: Vec<std::net::IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    policy
        .check_addresses(host, &ips)
        .map_err(ProbeError::Refused)?;

    progress.set_stage(STAGE_CONNECT);
    let mut stream = connect_any(&addrs, timeout, progress).await?;

    if let Some(proto) = starttls {
        progress.set_stage(STAGE_STARTTLS);
        starttls::upgrade(&mut stream, proto)
            .await
            .map_err(|source| ProbeError::StartTls { proto, source })?;
    }

    progress.set_stage(STAGE_HANDSHAKE);
    let mut config = ClientConfig::builder_with_provider(trust.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ProbeError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    // A fresh full handshake every time, so the server always presents its chain.
    config.resumption = Resumption::disabled();
    let server_name = match sni {
        Some(name) => name.clone(),
        None => match host {
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
            Host::Dns(name) => ServerName::try_from(name.clone())
                .map_err(|e| ProbeError::Config(format!("invalid server name: {e}")))?,
        },
    };
    let connector = TlsConnector::from(Arc::new(config));
    let mut tls = connector
        .connect(server_name, stream)
        .await
        .map_err(|e| ProbeError::Handshake(describe_handshake_io(&e)))?;

    let (_, conn) = tls.get_ref();
    let negotiated = Negotiated {
        tls_version: conn.protocol_version().map(version_name),
        cipher: conn.negotiated_cipher_suite().map(|suite| {
            suite
                .suite()
                .as_str()
                .map_or_else(|| format!("{:?}", suite.suite()), str::to_string)
        }),
    };
    progress.set_negotiated(negotiated.clone());

    progress.set_stage(STAGE_CLOSE);
    // close_notify, then FIN; no application data is ever sent.
    let _ = tokio::time::timeout(Duration::from_millis(500), tls.shutdown()).await;
    Ok(negotiated)
}

/// Connects to the first address that answers. With several addresses each attempt gets a
/// share of the deadline, so one black-holed address does not use it all.
async fn connect_any(
    addrs: &[SocketAddr],
    timeout: Duration,
    progress: &Progress,
) -> Result<TcpStream, ProbeError> {
    let share = timeout / u32::try_from(addrs.len().max(1)).unwrap_or(1);
    let share = share.max(Duration::from_millis(500));
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let attempt = TcpStream::connect(addr);
        let result = if i + 1 == addrs.len() {
            attempt.await
        } else {
            match tokio::time::timeout(share, attempt).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer",
                )),
            }
        };
        match result {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                progress.set_address(*addr);
                return Ok(stream);
            }
            Err(e) => last = Some((*addr, e)),
        }
    }
    let (addr, e) = last.ok_or_else(|| ProbeError::Connect {
        addr: "(none)".into(),
        reason: "no address to connect to".into(),
    })?;
    Err(ProbeError::Connect {
        addr: addr.to_string(),
        reason: connect_reason(&e),
    })
}

fn connect_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => {
            "connection refused (nothing is listening on that port)".into()
        }
        ErrorKind::TimedOut => "connection timed out".into(),
        ErrorKind::HostUnreachable => "host unreachable".into(),
        ErrorKind::NetworkUnreachable => "network unreachable".into(),
        ErrorKind::AddrNotAvailable => "address not available".into(),
        _ => e.to_string(),
    }
}

pub(crate) fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        ProtocolVersion::TLSv1_1 => "TLSv1.1".into(),
        ProtocolVersion::TLSv1_0 => "TLSv1.0".into(),
        other => format!("{other:?}"),
    }
}

/// Explains a handshake failure reported by tokio-rustls.
fn describe_handshake_io(e: &std::io::Error) -> String {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return describe_handshake_error(inner);
    }
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedEof => "the server closed the connection during the handshake \
                                     (it may not speak TLS on this port, or rejected the \
                                     client hello)"
            .into(),
        ErrorKind::ConnectionReset => "the server reset the connection during the handshake".into(),
        _ => sanitize(&e.to_string(), 200),
    }
}

fn describe_handshake_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            "the server accepts none of the TLS versions this checker speaks (TLS 1.2 and 1.3); \
             it may only offer obsolete TLS 1.0/1.1"
                .into()
        }
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) => {
            "the server sent a handshake_failure alert: no cipher suite, group or signature \
             algorithm in common, or it requires something this client does not offer"
                .into()
        }
        rustls::Error::AlertReceived(AlertDescription::UnrecognisedName) => {
            "the server does not recognise the server name (SNI) sent".into()
        }
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (mutual TLS)".into()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the server aborted the handshake with TLS alert `{alert:?}`")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server's reply is not TLS (a plaintext service on this port? for SMTP, IMAP, \
             POP3, FTP or PostgreSQL set `starttls`)"
                .into()
        }
        rustls::Error::PeerIncompatible(why) => {
            format!("the server is incompatible with this client: {why:?}")
        }
        rustls::Error::PeerMisbehaved(why) => format!("the server misbehaved: {why:?}"),
        other => sanitize(&other.to_string(), 200),
    }
}
