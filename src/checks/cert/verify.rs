//! The recording certificate verifier used for network targets: it keeps the presented
//! chain and stapled OCSP response, asks the real webpki verifier for its verdict and
//! records it, then lets the handshake go on so the negotiated version and cipher are known.
//! Also turns rustls/webpki errors into reasons a person can act on.

use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::trust::TrustStore;

/// What the verifier saw during one handshake.
#[derive(Debug, Default, Clone)]
pub(crate) struct Recorded {
    /// End entity first, then the intermediates in the order the server sent them.
    pub chain: Vec<CertificateDer<'static>>,
    /// The stapled OCSP response (empty when none).
    pub ocsp: Vec<u8>,
    /// The webpki verdict on the chain and name; `None` until the certificate arrived.
    pub verdict: Option<Result<(), rustls::Error>>,
    /// Why the server's handshake signature did not verify, when it did not.
    pub signature_error: Option<rustls::Error>,
}

/// A [`ServerCertVerifier`] that records, delegates to webpki, and never rejects the
/// certificate itself (the handshake signature is still checked: a server that cannot
/// prove it holds the key is not reported as serving that certificate).
///
/// Safe because check_cert never sends application data over the connection: it only
/// reads what the handshake reveals, then closes.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    trust: Arc<TrustStore>,
    record: Mutex<Recorded>,
}

impl RecordingVerifier {
    pub fn new(trust: Arc<TrustStore>) -> Self {
        Self {
            trust,
            record: Mutex::new(Recorded::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of what was recorded so far.
    pub fn recorded(&self) -> Recorded {
        self.lock().clone()
    }

    fn note_signature(
        &self,
        result: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if let Err(e) = &result {
            self.lock().signature_error = Some(e.clone());
        }
        result
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .trust
            .verify(end_entity, intermediates, server_name, ocsp_response, now);
        let mut record = self.lock();
        record.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        record.ocsp = ocsp_response.to_vec();
        record.verdict = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = match &self.trust.webpki {
            Some(webpki) => webpki.verify_tls12_signature(message, cert, dss),
            None => rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.trust.provider.signature_verification_algorithms,
            ),
        };
        self.note_signature(result)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = match &self.trust.webpki {
            Some(webpki) => webpki.verify_tls13_signature(message, cert, dss),
            None => rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.trust.provider.signature_verification_algorithms,
            ),
        };
        self.note_signature(result)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.trust.webpki {
            Some(webpki) => webpki.supported_verify_schemes(),
            None => self
                .trust
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

/// Whether a webpki error is only about the name (the chain itself verified: webpki checks
/// the chain before the name).
pub(crate) fn is_name_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// Broad kind of a chain verification failure, for choosing the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainFailure {
    Expired,
    NotYetValid,
    UnknownIssuer,
    BadSignature,
    UnsupportedAlgorithm,
    WrongPurpose,
    CaAsLeaf,
    Other,
}

pub(crate) fn classify(e: &rustls::Error) -> ChainFailure {
    #[allow(deprecated)]
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ChainFailure::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                ChainFailure::NotYetValid
            }
            CertificateError::UnknownIssuer => ChainFailure::UnknownIssuer,
            CertificateError::BadSignature => ChainFailure::BadSignature,
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                ChainFailure::UnsupportedAlgorithm
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                ChainFailure::WrongPurpose
            }
            CertificateError::Other(other)
                if format!("{other:?}").contains("CaUsedAsEndEntity") =>
            {
                ChainFailure::CaAsLeaf
            }
            _ => ChainFailure::Other,
        },
        _ => ChainFailure::Other,
    }
}

/// A readable description of a rustls error that has no more specific wording.
pub(crate) fn describe_rustls_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::BadEncoding) => {
            "a certificate in the chain is malformed (bad DER encoding)".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::UnhandledCriticalExtension) => {
            "a certificate in the chain has a critical extension that is not understood".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::Revoked) => {
            "a certificate in the chain is revoked".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            format!("certificate rejected: {other}")
        }
        rustls::Error::InvalidCertificate(ce) => format!("certificate rejected: {ce}"),
        rustls::Error::General(msg) => msg.clone(),
        other => other.to_string(),
    }
}
