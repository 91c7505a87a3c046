//! Test PKI and TLS servers: [`TlsFixture`] makes a root CA + intermediate with rcgen and
//! issues leaves from a [`LeafSpec`] (validity, names, key type incl. RSA-1024, issuer);
//! `serve_*` start real servers on 127.0.0.1 (TLS, silent, STARTTLS SMTP) that stop on drop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData, SignatureAlgorithm,
};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureScheme, pki_types::CertificateDer, pki_types::PrivateKeyDer};
use secops_mcp::checks::cert::CertChecker;
use tempfile::NamedTempFile;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Subject CN of the fixture's root CA.
pub const ROOT_CN: &str = "Secops Test Root CA";
/// Subject CN of the fixture's intermediate CA.
pub const INTERMEDIATE_CN: &str = "Secops Test Intermediate CA";

/// A fixed RSA-1024 key (generated once with openssl): too weak for aws-lc-rs / ring to sign
/// with, so the test server signs with the `rsa` crate.
const RSA1024_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALRmsmgLdO7qfwX7
GMFWzgj5nodgz4G74ugH+nK71cTGwYxp1gUbRJAWL7XRAryd45ZgjUy0Q4D2XCFV
b6F5g55te7hoVlT6cgi5JJKY/fmEef+AHF9/PA118076IQiyXDd9g5vy5PXybVRH
z1hBJpftEbBtEohs+2EAY9mSrWvlAgMBAAECgYAyGpvOXfA6MxLYfGbhu9Q5leq7
ut2nMKHSw/SBTT4QCwvSjcqNXIdsZV0W6FgUPt3o9CQKe76L4OCxuWLpvDAbpp4n
zCP/EyEYuhChuY3AT2K+RMI1EHhb7L0/tzOYYtHQvIQfTLLKKwoQmlPx/8ZJ8LXC
VBvvprj6yCG3xZg/QQJBAOgiFPkubMHRYdJ0cpmEULAP7dhZaMo+EQ7BjWrSV9KN
IzW4RtgDkdk1P15ZO4byg7Z1qE5Dp55Ii8cx8xaP1C0CQQDG8v2cY83nq6b/T0fT
YG4NgD1DDcnqnRrZ4xLRR3CCgL8vrQMgTtskU5/ybT8+zGZ512zSvoK1F655dk+V
ZzGZAkEAgTZ3djzhTQG/8eXf5JRCVb6IJmWebvUdiZkznsJ3IDxv3Pc2eAeEp+N7
4ojJGdTkfCwCA46lPvYi2D51kZl+AQJAfcrabG32nUs9liSsx4wrScIR+jnXt86K
UcZv+X9wNjPtrtl4Jo91pGxzr7c/zBc1nEiH+GCZCKPmn8oc29yZ0QJAWAwlNaTx
21lIkzXDT8nXmLZQORoIv4eYO3JpYbZYV6G13FRsUjIeJHBYMc4IidfVI7aKYTV+
A3jqhzbnIXoCTA==
-----END PRIVATE KEY-----
";

/// A root CA (RSA 2048, SHA-256, valid until 2126) made with openssl, for [`SHA1_LEAF_PEM`].
pub const SHA1_ROOT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDUTCCAjmgAwIBAgIUMC9ncXC2POdKAGFPzaH1PXe3yQQwDQYJKoZIhvcNAQEL
BQAwNzEUMBIGA1UECgwLU2Vjb3BzIFRlc3QxHzAdBgNVBAMMFlNlY29wcyBTSEEt
MSBUZXN0IFJvb3QwIBcNMjYxMTIzMTEzOTQ1WhgPMjEyNjEwMzAxMTM5NDVaMDcx
FDASBgNVBAoMC1NlY29wcyBUZXN0MR8wHQYDVQQDDBZTZWNvcHMgU0hBLTEgVGVz
dCBSb290MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAjuT2YqV4tc4r
1WhYKD57XVMAg5otNA8HE1Zk5W8QDrlxFyr4RuCux3upygUSmsMb2ym079khg5zu
JhUwuIgo7h9uK/5cg9Jn4fCSezo1tYo5kLIwhtb21/6HmjzJ48Uv+AFq6W30vFfL
QMlvQDC6QkqYHFEy1clTN3E7xRKp00o2+uGJY9JPPjbG9dHpHajtdod2PQi2WVzf
vunrQYeU6x8zxDymMpacZe19pgNR+YL8j2VpU78rCySsbIIHKoRrofoqVbtvdyNm
c1xWYOT4Q6NkmJsJK1grFcGrsM3QrdGywcYrjPv9JHSCdJcol4ruAhW4ki8quDb5
ax2mMg8KzwIDAQABo1MwUTAdBgNVHQ4EFgQUdhqe7D6HwABuvrufVfam+Oy0r7Iw
HwYDVR0jBBgwFoAUdhqe7D6HwABuvrufVfam+Oy0r7IwDwYDVR0TAQH/BAUwAwEB
/zANBgkqhkiG9w0BAQsFAAOCAQEAifkUbYKz8nRzHUGHRjkXYYJBnuOLuTD441pO
TXJ4sFDXILcYj/DrTyWJpAZId7mIBKMYzPBqrf3+4OpgqqUHhtLG86SvXiiAqGWt
ho0oVf9uac/gT/l/Blx7pH2LJgfqdjqYp5cT4eCk1aKmpWH3SMPCDVlXt8OPzY4j
xcbOx18yjhvXPv4U5RZp7RSyCtB6M+ZtQYeXfMuReXP8D4lG3+/ZMuF5MGES6oOL
Bi+tsz8oCIn3R9vNzYIaYHcOx0KMZH/YheTzAoRHE0Z11zQkZ88U08CAhJWatuh2
fcqgWT66i6pt5pk0X5RTADigRd9DnCvsGxnwDcAPSnD6CDdkKw==
-----END CERTIFICATE-----
";

/// A leaf for `sha1.secops.test` signed by [`SHA1_ROOT_PEM`] with sha1WithRSAEncryption
/// (rcgen cannot make SHA-1 signatures), valid until 2126.
pub const SHA1_LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDdzCCAl+gAwIBAgIUUerMYwKX9/V6rpEjY36bAod1QbEwDQYJKoZIhvcNAQEF
BQAwNzEUMBIGA1UECgwLU2Vjb3BzIFRlc3QxHzAdBgNVBAMMFlNlY29wcyBTSEEt
MSBUZXN0IFJvb3QwIBcNMjYxMTIzMTEzOTQ1WhgPMjEyNjEwMzAxMTM5NDVaMDEx
FDASBgNVBAoMC1NlY29wcyBUZXN0MRkwFwYDVQQDDBBzaGExLnNlY29wcy50ZXN0
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA80sm6Yl/3V6ruwHY9/nK
awsESYOX2EJdaPmdQn3Af3/wV4CYcdnEcDzKVEBDJ73Jl/TeAiO/PIjSgQZP0u5n
WZ99qLxnm82HpQLoy0CkgYAjfe2cqLyNNAoltwKI10ijVjnAOj5VbSFFo5/O/5F8
/XXbN9fEIX18af0y7+orhDtojmSCS5UF0m5AsU0nSGoOWAL1h0ijDpXO+X0gvz0T
ri2WewOn/01snZKPVdlHGLyWLmElTI8Rh5KjVM6W2scTwbpdk3RPR4nk2wRcynhU
/xITlKDzEleAFchsHvpY3yBfYxgF004aA/wBTkwrBKtxG/QagVAJXJMeDRTKPGw3
yQIDAQABo38wfTAbBgNVHREEFDASghBzaGExLnNlY29wcy50ZXN0MBMGA1UdJQQM
MAoGCCsGAQUFBwMBMAkGA1UdEwQCMAAwHQYDVR0OBBYEFIRfc1KNXJ0UcKjkcGJg
EufgMABxMB8GA1UdIwQYMBaAFHYanuw+h8AAbr67n1X2pvjstK+yMA0GCSqGSIb3
DQEBBQUAA4IBAQBJghxesQfry/xBNOC4Ohlifh/Hvoe7/ep07NFArNNAw3T7XXUM
v9gpX2Nq5xvpQqPyHt917JfwaIaEnONR2pyDr5CDwqjhrQD+JsxkueqNY5dUJvqh
5hnsYGk/HHjcudXH+sdMlhGsOgbrkANgLvLqRzFRFROTdU91zGtyIynQaOmijfcy
upKUQEasK+/2PNChKk+jxnqrvhyyk/zFVQtjje3bS50R8m0jBSZ9sUxWTSMV+fIK
MjzcvMw0bfs0eQf88vIvFJKRTEQTKMYapMiNhYo4F18p98kNeePprScDv/9lbMV4
EFXoasE9h/ikJaiTPodEjVcitCCa0g7Ic5U7
-----END CERTIFICATE-----
";

/// Key type of an issued leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcP256,
    EcP384,
    Ed25519,
    /// A weak 1024-bit RSA key (fixed, see [`RSA1024_PKCS8_PEM`]). Cannot be self-signed.
    Rsa1024,
}

/// Who signs a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuedBy {
    Intermediate,
    Root,
    SelfSigned,
}

/// What leaf to issue. Start from [`LeafSpec::new`] and adjust with the builder methods.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// SANs (DNS names or IP addresses); the first is also the subject CN.
    pub names: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key: KeyKind,
    pub issued_by: IssuedBy,
}

impl LeafSpec {
    /// An EC P-256 leaf for `names`, issued by the intermediate, valid from yesterday for
    /// 90 days and one hour from now (so `days_left` is exactly 90).
    pub fn new(names: &[&str]) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            names: names.iter().map(|s| s.to_string()).collect(),
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(90) + time::Duration::hours(1),
            key: KeyKind::EcP256,
            issued_by: IssuedBy::Intermediate,
        }
    }

    /// Expires `days` days and one hour from now (`days_left == days`).
    pub fn expires_in_days(mut self, days: i64) -> Self {
        self.not_after =
            OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::hours(1);
        self
    }

    /// Expired `days` days ago (valid for 90 days before that).
    pub fn expired_days_ago(mut self, days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_after = now - time::Duration::days(days);
        self.not_before = self.not_after - time::Duration::days(90);
        self
    }

    /// Valid only from `days` days from now (for 90 days).
    pub fn not_yet_valid_for_days(mut self, days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now + time::Duration::days(days);
        self.not_after = self.not_before + time::Duration::days(90);
        self
    }

    pub fn key(mut self, key: KeyKind) -> Self {
        self.key = key;
        self
    }

    pub fn issued_by(mut self, issuer: IssuedBy) -> Self {
        self.issued_by = issuer;
        self
    }
}

/// An issued leaf with the chain around it and a signing key a rustls server can use.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: Arc<dyn SigningKey>,
    pub intermediate: CertificateDer<'static>,
    pub root: CertificateDer<'static>,
    pub issued_by: IssuedBy,
}

impl Leaf {
    /// What a correctly configured server sends: leaf + intermediate (leaf + nothing when
    /// issued by the root or self-signed).
    pub fn full_chain(&self) -> Vec<CertificateDer<'static>> {
        match self.issued_by {
            IssuedBy::Intermediate => vec![self.cert.clone(), self.intermediate.clone()],
            IssuedBy::Root | IssuedBy::SelfSigned => vec![self.cert.clone()],
        }
    }

    /// Only the leaf (a server that forgot the intermediate).
    pub fn leaf_only(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.clone()]
    }

    /// leaf, root, intermediate: valid certificates, wrong order.
    pub fn out_of_order_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![
            self.cert.clone(),
            self.root.clone(),
            self.intermediate.clone(),
        ]
    }

    /// The leaf's DER as PEM.
    pub fn cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.cert)
    }

    /// PEM of a list of certificates, in order.
    pub fn chain_pem(chain: &[CertificateDer<'static>]) -> String {
        chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
    }
}

/// A test PKI: one root CA and one intermediate CA (EC P-256), valid for years.
pub struct TlsFixture {
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

impl Default for TlsFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsFixture {
    /// Root [`ROOT_CN`] and intermediate [`INTERMEDIATE_CN`], fresh keys each time.
    pub fn new() -> Self {
        Self::with_names(ROOT_CN, INTERMEDIATE_CN)
    }

    /// A PKI with other CA names (e.g. an unrelated CA to trust instead).
    pub fn with_names(root_cn: &str, intermediate_cn: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        let mut root_params = CertificateParams::default();
        root_params.distinguished_name = dn(root_cn);
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root_params.not_before = now - time::Duration::days(1);
        root_params.not_after = now + time::Duration::days(3650);
        let root =
            CertifiedIssuer::self_signed(root_params, KeyPair::generate().expect("root key"))
                .expect("root certificate");

        let mut inter_params = CertificateParams::default();
        inter_params.distinguished_name = dn(intermediate_cn);
        inter_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        inter_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        inter_params.not_before = now - time::Duration::days(1);
        inter_params.not_after = now + time::Duration::days(1825);
        inter_params.use_authority_key_identifier_extension = true;
        let intermediate = CertifiedIssuer::signed_by(
            inter_params,
            KeyPair::generate().expect("intermediate key"),
            &root,
        )
        .expect("intermediate certificate");
        Self { root, intermediate }
    }

    pub fn root_der(&self) -> CertificateDer<'static> {
        self.root.der().clone()
    }

    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    pub fn intermediate_der(&self) -> CertificateDer<'static> {
        self.intermediate.der().clone()
    }

    /// A temporary file holding the root's PEM (for `extra_ca_file` / SECOPS_EXTRA_CA_FILE).
    pub fn root_ca_file(&self) -> NamedTempFile {
        write_temp(&self.root_pem())
    }

    /// A checker that trusts the system store plus this fixture's root.
    pub fn checker(&self) -> CertChecker {
        let file = self.root_ca_file();
        CertChecker::new(Some(file.path())).expect("checker with the test root")
    }

    /// Issues a leaf as described.
    pub fn leaf(&self, spec: &LeafSpec) -> Leaf {
        let mut params = CertificateParams::new(spec.names.clone()).expect("leaf names");
        params.distinguished_name = dn(spec.names.first().map_or("leaf", String::as_str));
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.is_ca = IsCa::NoCa;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = spec.issued_by != IssuedBy::SelfSigned;

        let (cert, key): (CertificateDer<'static>, Arc<dyn SigningKey>) = match spec.key {
            KeyKind::Rsa1024 => {
                let rsa_key = Rsa1024::load();
                let public = rsa_key.public_key_data();
                let cert = match spec.issued_by {
                    IssuedBy::Intermediate => params.signed_by(&public, &self.intermediate),
                    IssuedBy::Root => params.signed_by(&public, &self.root),
                    IssuedBy::SelfSigned => panic!("an RSA-1024 leaf cannot be self-signed here"),
                }
                .expect("RSA-1024 leaf");
                (cert.der().clone(), Arc::new(rsa_key))
            }
            kind => {
                let alg: &'static SignatureAlgorithm = match kind {
                    KeyKind::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
                    KeyKind::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
                    _ => &rcgen::PKCS_ED25519,
                };
                let key_pair = KeyPair::generate_for(alg).expect("leaf key");
                let cert = match spec.issued_by {
                    IssuedBy::Intermediate => params.signed_by(&key_pair, &self.intermediate),
                    IssuedBy::Root => params.signed_by(&key_pair, &self.root),
                    IssuedBy::SelfSigned => params.self_signed(&key_pair),
                }
                .expect("leaf certificate");
                let der = PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
                let signing = rustls::crypto::aws_lc_rs::default_provider()
                    .key_provider
                    .load_private_key(der)
                    .expect("rustls signing key");
                (cert.der().clone(), signing)
            }
        };
        Leaf {
            cert,
            key,
            intermediate: self.intermediate_der(),
            root: self.root_der(),
            issued_by: spec.issued_by,
        }
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "Secops Test");
    dn
}

/// PEM-encodes DER bytes with a label.
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                b64.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes `contents` to a new temporary file.
pub fn write_temp(contents: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".pem")
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut file, contents.as_bytes()).expect("write temp file");
    file
}

// ---------------------------------------------------------------------------------------
// RSA-1024 signing for rustls (the `rsa` crate; aws-lc-rs refuses keys under 2048 bits).

#[derive(Debug, Clone)]
struct Rsa1024 {
    key: rsa::RsaPrivateKey,
}

struct RsaPublicKeyData(Vec<u8>);

impl PublicKeyData for RsaPublicKeyData {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl Rsa1024 {
    fn load() -> Self {
        use rsa::pkcs8::DecodePrivateKey;
        Self {
            key: rsa::RsaPrivateKey::from_pkcs8_pem(RSA1024_PKCS8_PEM).expect("RSA-1024 key"),
        }
    }

    fn public_key_data(&self) -> RsaPublicKeyData {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let der = self
            .key
            .to_public_key()
            .to_pkcs1_der()
            .expect("RSA public key DER");
        RsaPublicKeyData(der.as_bytes().to_vec())
    }
}

impl SigningKey for Rsa1024 {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        [
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PKCS1_SHA256,
        ]
        .into_iter()
        .find(|s| offered.contains(s))
        .map(|scheme| {
            Box::new(RsaSigner {
                key: self.key.clone(),
                scheme,
            }) as Box<dyn Signer>
        })
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct RsaSigner {
    key: rsa::RsaPrivateKey,
    scheme: SignatureScheme,
}

impl Signer for RsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        use rsa::sha2::Sha256;
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        let mut rng = rsa::rand_core::OsRng;
        let signature = if self.scheme == SignatureScheme::RSA_PSS_SHA256 {
            rsa::pss::BlindedSigningKey::<Sha256>::new(self.key.clone())
                .try_sign_with_rng(&mut rng, message)
                .map(|s| s.to_vec())
        } else {
            rsa::pkcs1v15::SigningKey::<Sha256>::new(self.key.clone())
                .try_sign_with_rng(&mut rng, message)
                .map(|s| s.to_vec())
        };
        signature.map_err(|e| rustls::Error::General(format!("RSA signing failed: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

// ---------------------------------------------------------------------------------------
// Servers.

#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A rustls server config that presents exactly `chain` (in that order) with `key`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
) -> Arc<ServerConfig> {
    server_config_with_ocsp(chain, key, None)
}

/// Like [`server_config`], also stapling `ocsp` (any bytes) when the client asks for it.
pub fn server_config_with_ocsp(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
    ocsp: Option<Vec<u8>>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut certified = CertifiedKey::new(chain, key);
    certified.ocsp = ocsp;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(Arc::new(certified))));
    Arc::new(config)
}

/// A TLS 1.2-only server presenting `chain` with `key`.
pub async fn serve_chain_tls12(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
) -> TlsServer {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(Arc::new(CertifiedKey::new(chain, key)))));
    serve_tls(Arc::new(config)).await
}

/// A server running on 127.0.0.1 until dropped.
pub struct TlsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsServer {
    /// `127.0.0.1:PORT`, ready to use as a check_cert target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Completes TLS on `tcp`, then waits (up to 5 s) for the client to close.
async fn finish_tls(acceptor: TlsAcceptor, tcp: TcpStream) {
    if let Ok(mut tls) = acceptor.accept(tcp).await {
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

/// A TLS server presenting `chain` with `key`.
pub async fn serve_chain(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
) -> TlsServer {
    serve_tls(server_config(chain, key)).await
}

/// A TLS server with any rustls config.
pub async fn serve_tls(config: Arc<ServerConfig>) -> TlsServer {
    let (listener, addr) = listener().await;
    serve_tls_with(listener, addr, config)
}

/// A TLS server presenting `chain` on another loopback address (e.g. `127.0.0.2`).
pub async fn serve_chain_on(
    ip: std::net::IpAddr,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
) -> TlsServer {
    let listener = TcpListener::bind((ip, 0))
        .await
        .expect("bind loopback alias");
    let addr = listener.local_addr().expect("local addr");
    serve_tls_with(listener, addr, server_config(chain, key))
}

fn serve_tls_with(listener: TcpListener, addr: SocketAddr, config: Arc<ServerConfig>) -> TlsServer {
    let acceptor = TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(finish_tls(acceptor.clone(), tcp));
        }
    });
    TlsServer { addr, task }
}

/// A black hole: accepts connections and never says anything (nor closes).
pub async fn serve_silent() -> TlsServer {
    let (listener, addr) = listener().await;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    TlsServer { addr, task }
}

/// A plaintext server that writes `banner` to every connection and keeps it open.
pub async fn serve_plaintext(banner: &'static [u8]) -> TlsServer {
    let (listener, addr) = listener().await;
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.write_all(banner).await;
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                })
                .await;
            });
        }
    });
    TlsServer { addr, task }
}

/// An address on 127.0.0.1 where nothing listens (connections are refused).
pub async fn refused_addr() -> SocketAddr {
    let (listener, addr) = listener().await;
    drop(listener);
    addr
}

/// An SMTP server: greeting, EHLO (advertising STARTTLS when `offer_starttls`), then
/// STARTTLS → 220 → TLS with `config`. Without STARTTLS it answers `502` to it.
pub async fn serve_smtp_starttls(config: Arc<ServerConfig>, offer_starttls: bool) -> TlsServer {
    let (listener, addr) = listener().await;
    let acceptor = TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = smtp_session(tcp, acceptor, offer_starttls).await;
            });
        }
    });
    TlsServer { addr, task }
}

async fn smtp_session(
    mut tcp: TcpStream,
    acceptor: TlsAcceptor,
    offer_starttls: bool,
) -> std::io::Result<()> {
    tcp.write_all(b"220-mail.secops.test ESMTP test server\r\n220 ready\r\n")
        .await?;
    loop {
        let line = read_line(&mut tcp).await?;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let reply: &[u8] = if offer_starttls {
                b"250-mail.secops.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n"
            } else {
                b"250-mail.secops.test\r\n250 SIZE 10240000\r\n"
            };
            tcp.write_all(reply).await?;
        } else if upper.starts_with("STARTTLS") && offer_starttls {
            tcp.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            finish_tls(acceptor, tcp).await;
            return Ok(());
        } else if upper.starts_with("QUIT") || line.is_empty() {
            return Ok(());
        } else {
            tcp.write_all(b"502 5.5.1 command not implemented\r\n")
                .await?;
        }
    }
}

/// Reads one line byte by byte (so nothing after it is consumed); empty at EOF.
async fn read_line(tcp: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 4096 {
        if tcp.read(&mut byte).await? == 0 {
            break;
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// A self-signed certificate for `names`, written as PEM into scratch; returns its path.
pub fn self_signed_pem(scratch: &super::Scratch, file: &str, names: &[&str]) -> std::path::PathBuf {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("rcgen");
    scratch.write(file, &ck.cert.pem())
}
