//! The trust store of `check_cert`: the operating system's roots (rustls-native-certs,
//! which honours `SSL_CERT_FILE` / `SSL_CERT_DIR`) plus an optional extra PEM bundle,
//! loaded once, and the webpki verifier built from them.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::CertError;

/// Largest extra CA file read (a full public bundle is about 250 KiB).
const MAX_CA_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Trust anchors plus the verifier built from them. Shared by every check via `Arc`.
pub(crate) struct TrustStore {
    pub provider: Arc<CryptoProvider>,
    /// `None` when there is no trust anchor at all (empty system store, no extra file):
    /// then every chain is reported as untrusted, with that reason.
    pub webpki: Option<Arc<WebPkiServerVerifier>>,
    /// Subjects (DER contents of the Name, without its SEQUENCE header) of every anchor.
    anchor_subjects: HashSet<Vec<u8>>,
    pub system_anchors: usize,
    pub extra_anchors: usize,
    /// Which anchors these are, for reports: `system trust store (146) + /etc/ca.pem (1)`.
    pub description: String,
    /// Problems met while loading the system store (bad files, unparsable certificates);
    /// they are tolerated, not fatal.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("system_anchors", &self.system_anchors)
            .field("extra_anchors", &self.extra_anchors)
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

impl TrustStore {
    pub fn load(extra_ca_files: &[&Path]) -> Result<Self, CertError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        let mut warnings = Vec::new();

        let native = rustls_native_certs::load_native_certs();
        for error in native.errors.iter().take(10) {
            warnings.push(format!("system trust store: {error}"));
        }
        let (system_anchors, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            warnings.push(format!(
                "system trust store: {ignored} certificate(s) could not be used as trust anchors"
            ));
        }

        let mut description = format!("system trust store ({system_anchors})");
        let mut extra_anchors = 0;
        let mut seen = HashSet::new();
        for path in extra_ca_files {
            if !seen.insert(path.to_path_buf()) {
                continue;
            }
            let n = load_extra(path, &mut roots)?;
            extra_anchors += n;
            description.push_str(&format!(" + {} ({n})", path.display()));
        }
        let extra_ca_file = extra_ca_files.first();

        let anchor_subjects = roots
            .roots
            .iter()
            .map(|anchor| anchor.subject.as_ref().to_vec())
            .collect();

        let webpki = if roots.is_empty() {
            warnings.push(
                "no trust anchors: the system trust store is empty and no extra CA file is set"
                    .into(),
            );
            None
        } else {
            let built =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| CertError::TrustStore {
                        path: extra_ca_file.map_or_else(
                            || "system trust store".to_string(),
                            |p| p.display().to_string(),
                        ),
                        reason: e.to_string(),
                    })?;
            Some(built)
        };

        Ok(Self {
            provider,
            webpki,
            anchor_subjects,
            system_anchors,
            extra_anchors,
            description,
            warnings,
        })
    }

    /// Verifies the chain against the trust anchors at `now` and then the name, exactly as
    /// a rustls client would. The chain is checked first, so a name error means the chain
    /// itself is fine.
    pub fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        match &self.webpki {
            Some(verifier) => verifier
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ()),
            None => Err(rustls::Error::General(
                "no trust anchors are configured (the system trust store is empty and no \
                 extra CA file is set)"
                    .into(),
            )),
        }
    }

    /// Whether some trust anchor has this subject (Name contents, no SEQUENCE header).
    pub fn has_anchor_subject(&self, name_contents: &[u8]) -> bool {
        self.anchor_subjects.contains(name_contents)
    }
}

fn load_extra(path: &Path, roots: &mut RootCertStore) -> Result<usize, CertError> {
    let fail = |reason: String| CertError::TrustStore {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(io_reason(&e)))?;
    if meta.is_dir() {
        return Err(fail("is a directory, not a PEM file".into()));
    }
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(fail(format!(
            "is {} bytes, larger than the {MAX_CA_FILE_BYTES} bytes accepted for a CA bundle",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(io_reason(&e)))?;
    let mut added = 0;
    for (index, item) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = item.map_err(|e| fail(format!("is not a valid PEM file: {e}")))?;
        roots.add(cert).map_err(|e| {
            fail(format!(
                "certificate #{} cannot be used as a trust anchor: {e}",
                index + 1
            ))
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(fail(
            "holds no `-----BEGIN CERTIFICATE-----` block; give a PEM bundle of CA certificates"
                .into(),
        ));
    }
    Ok(added)
}

/// A short human reason for a file-system error.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
