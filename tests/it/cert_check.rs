//! check_cert against real local TLS servers (127.0.0.1 only) built from an rcgen test PKI:
//! valid, expiring, expired, not yet valid, self-signed, wrong name, incomplete and
//! out-of-order chains, weak keys, STARTTLS SMTP, files, dead targets, and bad arguments.

use std::time::{Duration, Instant};

use crate::common::tls::*;
use secops_mcp::checks::cert::*;
use secops_mcp::checks::{Severity, Summary};
use sha2::{Digest, Sha256};

fn args(targets: &[&str]) -> CertArgs {
    CertArgs {
        targets: targets.iter().map(|s| s.to_string()).collect(),
        ..CertArgs::default()
    }
}

fn codes(result: &CertResult) -> Vec<&str> {
    result.findings.iter().map(|f| f.code.as_str()).collect()
}

fn finding<'a>(result: &'a CertResult, code: &str) -> &'a secops_mcp::checks::Finding {
    result
        .findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no `{code}` finding in {:#?}", result.findings))
}

async fn check_one(checker: &CertChecker, args: CertArgs) -> CertResult {
    let report = checker.check(args).await.expect("valid arguments");
    assert_eq!(report.results.len(), 1);
    report.results.into_iter().next().expect("one result")
}

fn colon_sha256(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn valid_chain_is_ok_with_every_field_populated() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["secops.test", "127.0.0.1"]));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    let checker = pki.checker();

    let r = check_one(&checker, args(&[&server.target()])).await;

    assert_eq!(r.status, CertStatus::Ok, "{r:#?}");
    assert_eq!(r.target, server.target());
    assert_eq!(r.chain_valid, Some(true));
    assert_eq!(r.hostname_match, Some(true), "IP target matches the IP SAN");
    assert_eq!(r.verification_error, None);
    assert_eq!(r.days_left, Some(90));
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(
        r.cipher.as_deref().is_some_and(|c| c.starts_with("TLS13_")),
        "{:?}",
        r.cipher
    );
    assert_eq!(r.address.as_deref(), Some(server.target().as_str()));
    assert!(
        r.findings.iter().all(|f| f.severity == Severity::Info),
        "{:#?}",
        r.findings
    );

    assert_eq!(r.chain.len(), 2);
    let c0 = &r.chain[0];
    assert_eq!(c0.subject, "O=Secops Test,CN=secops.test");
    assert_eq!(c0.issuer, format!("O=Secops Test,CN={INTERMEDIATE_CN}"));
    assert_eq!(c0.sans, vec!["secops.test", "127.0.0.1"]);
    assert_eq!(c0.key, "EC P-256");
    assert_eq!(c0.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(c0.fingerprint_sha256, colon_sha256(&leaf.cert));
    assert_eq!(c0.days_left, 90);
    assert!(!c0.self_signed);
    assert!(
        c0.serial.len() >= 2 && c0.serial.chars().all(|c| c.is_ascii_hexdigit() || c == ':'),
        "{}",
        c0.serial
    );
    assert!(
        !c0.serial.chars().any(|c| c.is_ascii_lowercase()),
        "uppercase serial"
    );
    let not_after = time::OffsetDateTime::parse(
        &c0.not_after,
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339 not_after");
    assert_eq!(r.not_after.as_deref(), Some(c0.not_after.as_str()));
    assert!(c0.not_after.ends_with('Z'));
    assert!((not_after - time::OffsetDateTime::now_utc()).whole_days() == 90);
    assert!(c0.not_before.ends_with('Z'));

    let c1 = &r.chain[1];
    assert_eq!(c1.subject, format!("O=Secops Test,CN={INTERMEDIATE_CN}"));
    assert_eq!(c1.issuer, format!("O=Secops Test,CN={ROOT_CN}"));
    assert_eq!(c1.fingerprint_sha256, colon_sha256(&pki.intermediate_der()));
    assert!(c1.days_left > 1000);

    let report = checker.check(args(&[&server.target()])).await.unwrap();
    assert_eq!(report.summary.ok, 1);
    assert_eq!(report.summary(), "1 target: 1 ok.");
}

#[tokio::test]
async fn sni_sends_and_verifies_the_given_name() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["*.secops.test"]));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    let checker = pki.checker();

    let mut a = args(&[&server.target()]);
    a.sni = Some("www.secops.test".into());
    let r = check_one(&checker, a).await;
    assert_eq!(r.status, CertStatus::Ok, "{r:#?}");
    assert_eq!(r.hostname_match, Some(true), "wildcard covers one label");

    let mut a = args(&[&server.target()]);
    a.sni = Some("a.b.secops.test".into());
    let r = check_one(&checker, a).await;
    assert_eq!(
        r.hostname_match,
        Some(false),
        "wildcard covers only one label"
    );
    assert_eq!(r.chain_valid, Some(true));
}

#[tokio::test]
async fn expiring_in_five_days_is_critical_by_default_and_warning_with_lower_threshold() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(5));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    let checker = pki.checker();

    let r = check_one(&checker, args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical, "{r:#?}");
    assert_eq!(r.days_left, Some(5));
    assert_eq!(r.chain_valid, Some(true));
    let f = finding(&r, "cert_expires_soon");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.message.contains("in 5 days"), "{}", f.message);
    assert!(f.remediation.is_some());

    let mut a = args(&[&server.target()]);
    a.critical_days = Some(3);
    let report = checker.check(a).await.unwrap();
    let r = &report.results[0];
    assert_eq!(r.status, CertStatus::Warning, "{r:#?}");
    assert_eq!(finding(r, "cert_expires_soon").severity, Severity::Warning);
    assert_eq!(report.summary.warning, 1);
    let text = report.summary();
    assert!(
        text.contains("1 warning") && text.contains("expires in 5 days"),
        "{text}"
    );
}

#[tokio::test]
async fn expired_certificate_is_critical_and_still_reports_the_chain() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expired_days_ago(10));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;

    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical);
    assert_eq!(r.chain.len(), 2, "chain returned even though invalid");
    assert_eq!(r.chain_valid, Some(false));
    assert_eq!(r.hostname_match, Some(true));
    // Expired exactly 10 days before the fixture was made; days_left floors, so a slow run
    // (more than the second X.509 truncation leaves) reads -11.
    assert!(
        matches!(r.days_left, Some(-10) | Some(-11)),
        "{:?}",
        r.days_left
    );
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.3"));
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains("CN=127.0.0.1"), "{err}");
    let f = finding(&r, "cert_expired");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.message.contains("10 days ago"), "{}", f.message);
    assert!(codes(&r).contains(&"chain_untrusted"));
    assert!(
        r.short_reason().starts_with("expired 1"),
        "{}",
        r.short_reason()
    );
}

#[tokio::test]
async fn not_yet_valid_certificate_is_critical() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).not_yet_valid_for_days(3));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;

    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical);
    assert_eq!(r.chain_valid, Some(false));
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(err.contains("not yet valid"), "{err}");
    assert!(
        finding(&r, "cert_not_yet_valid")
            .message
            .contains("not valid until")
    );
    assert!(!codes(&r).contains(&"cert_expires_soon"));
}

#[tokio::test]
async fn self_signed_certificate_is_reported_with_its_data() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).issued_by(IssuedBy::SelfSigned));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;

    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical);
    assert_eq!(r.chain.len(), 1);
    assert!(r.chain[0].self_signed);
    assert_eq!(r.chain[0].subject, r.chain[0].issuer);
    assert_eq!(r.chain_valid, Some(false));
    assert_eq!(r.hostname_match, Some(true));
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(err.contains("self-signed"), "{err}");
    assert_eq!(finding(&r, "self_signed").severity, Severity::Critical);
    assert!(
        !codes(&r).contains(&"missing_intermediate"),
        "a self-signed leaf has no intermediate to miss"
    );
}

#[tokio::test]
async fn wrong_hostname_is_a_mismatch_while_the_chain_stays_valid() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["secops.test", "www.secops.test"]));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;

    let mut a = args(&[&server.target()]);
    a.sni = Some("other.example".into());
    let r = check_one(&pki.checker(), a).await;
    assert_eq!(r.status, CertStatus::Critical);
    assert_eq!(r.hostname_match, Some(false));
    assert_eq!(r.chain_valid, Some(true));
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("hostname mismatch")
            && err.contains("other.example")
            && err.contains("secops.test, www.secops.test"),
        "{err}"
    );
    let f = finding(&r, "hostname_mismatch");
    assert_eq!(f.severity, Severity::Critical);
    assert!(!codes(&r).contains(&"chain_untrusted"));
}

#[tokio::test]
async fn incomplete_chain_reports_missing_intermediate() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let server = serve_chain(leaf.leaf_only(), leaf.key.clone()).await;

    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical);
    assert_eq!(r.chain.len(), 1);
    assert_eq!(r.chain_valid, Some(false));
    assert_eq!(r.hostname_match, Some(true));
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("unknown issuer") && err.contains("incomplete chain"),
        "{err}"
    );
    assert!(
        err.contains(INTERMEDIATE_CN),
        "names the missing issuer: {err}"
    );
    let f = finding(&r, "missing_intermediate");
    assert!(f.message.contains(INTERMEDIATE_CN), "{}", f.message);
    assert!(!codes(&r).contains(&"self_signed"));
}

#[tokio::test]
async fn leaf_from_root_needs_no_intermediate() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).issued_by(IssuedBy::Root));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;

    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Ok, "{r:#?}");
    assert!(!codes(&r).contains(&"missing_intermediate"));
}

#[tokio::test]
async fn untrusted_root_is_unknown_issuer_without_the_extra_ca() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    // Trust another test PKI's root (and the system store): this root is unknown. (Not
    // `CertChecker::new(None)`, so the test holds even on a machine with no system roots.)
    let checker = TlsFixture::with_names("Other Root CA", "Other Intermediate CA").checker();

    let r = check_one(&checker, args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical);
    assert_eq!(r.chain_valid, Some(false));
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("unknown issuer") && err.contains(ROOT_CN) && err.contains(INTERMEDIATE_CN),
        "{err}"
    );
    assert!(
        !codes(&r).contains(&"missing_intermediate"),
        "the leaf's issuer was sent"
    );
    assert!(finding(&r, "chain_untrusted").message.contains(ROOT_CN));
}

#[tokio::test]
async fn same_named_root_with_another_key_is_explained() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    // Same CA names, different keys: an impostor (or re-keyed) root.
    let checker = TlsFixture::new().checker();

    let r = check_one(&checker, args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical);
    assert_eq!(r.chain_valid, Some(false));
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("a trust anchor has that name, but that anchor's key did not sign it"),
        "{err}"
    );
    assert!(!codes(&r).contains(&"missing_intermediate"));
}

#[tokio::test]
async fn rsa_1024_leaf_is_a_weak_key() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).key(KeyKind::Rsa1024));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;

    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Critical, "{r:#?}");
    assert_eq!(r.chain.len(), 2, "chain kept although the handshake failed");
    assert_eq!(r.chain[0].key, "RSA 1024");
    assert_eq!(r.chain_valid, Some(true), "the chain itself is fine");
    let f = finding(&r, "weak_key");
    assert!(f.message.contains("1024 bits"), "{}", f.message);
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("handshake signature") && err.contains("1024"),
        "{err}"
    );
}

#[tokio::test]
async fn other_key_types_are_named() {
    let pki = TlsFixture::new();
    for (kind, name) in [(KeyKind::EcP384, "EC P-384"), (KeyKind::Ed25519, "Ed25519")] {
        let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).key(kind));
        let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
        let r = check_one(&pki.checker(), args(&[&server.target()])).await;
        assert_eq!(r.status, CertStatus::Ok, "{kind:?}: {r:#?}");
        assert_eq!(r.chain[0].key, name);
    }
}

#[tokio::test]
async fn tls12_server_and_stapled_ocsp_are_reported() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let server = serve_chain_tls12(leaf.full_chain(), leaf.key.clone()).await;
    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Ok, "{r:#?}");
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.2"));
    assert!(
        r.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS_ECDHE_ECDSA_WITH_")),
        "{:?}",
        r.cipher
    );

    let config = server_config_with_ocsp(
        leaf.full_chain(),
        leaf.key.clone(),
        Some(b"\x30\x03\x0a\x01\x00".to_vec()),
    );
    let server = serve_tls(config).await;
    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Ok, "{r:#?}");
    assert_eq!(finding(&r, "ocsp_stapled").severity, Severity::Info);
}

#[tokio::test]
async fn chain_out_of_order_is_a_warning() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let server = serve_chain(leaf.out_of_order_chain(), leaf.key.clone()).await;

    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Warning, "{r:#?}");
    assert_eq!(r.chain.len(), 3);
    assert_eq!(
        r.chain_valid,
        Some(true),
        "path building tolerates the order"
    );
    let f = finding(&r, "chain_out_of_order");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("position 3"), "{}", f.message);
    assert!(
        r.chain[1].self_signed,
        "the root sent in position 2 is self-signed"
    );
}

#[tokio::test]
async fn smtp_starttls_upgrade_then_certificate() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["mail.secops.test", "127.0.0.1"]));
    let server =
        serve_smtp_starttls(server_config(leaf.full_chain(), leaf.key.clone()), true).await;

    let mut a = args(&[&server.target()]);
    a.starttls = Some("smtp".into());
    let r = check_one(&pki.checker(), a).await;
    assert_eq!(r.status, CertStatus::Ok, "{r:#?}");
    assert_eq!(r.chain.len(), 2);
    assert_eq!(r.chain[0].subject, "O=Secops Test,CN=mail.secops.test");
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.3"));

    // Without `starttls` the same port is plaintext: a clear error, not a hang.
    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Error);
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(err.contains("not TLS") && err.contains("starttls"), "{err}");
}

#[tokio::test]
async fn smtp_server_without_starttls_is_a_clear_error() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let server =
        serve_smtp_starttls(server_config(leaf.full_chain(), leaf.key.clone()), false).await;

    let mut a = args(&[&server.target()]);
    a.starttls = Some("smtp".into());
    let r = check_one(&pki.checker(), a).await;
    assert_eq!(r.status, CertStatus::Error);
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("STARTTLS (smtp) failed") && err.contains("does not offer STARTTLS"),
        "{err}"
    );
    assert!(r.chain.is_empty());
}

#[tokio::test]
async fn file_target_reads_pem_chain() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["files.secops.test"]).expires_in_days(20));
    let file = write_temp(&Leaf::chain_pem(&leaf.full_chain()));
    let target = format!("file:{}", file.path().display());
    let checker = pki.checker();

    let r = check_one(&checker, args(&[&target])).await;
    assert_eq!(r.status, CertStatus::Warning, "{r:#?}");
    assert_eq!(r.chain.len(), 2);
    assert_eq!(r.days_left, Some(20));
    assert_eq!(r.chain_valid, Some(true));
    assert_eq!(r.hostname_match, None, "no sni: no name to match");
    assert_eq!(r.tls_version, None);
    assert_eq!(r.cipher, None);
    assert_eq!(finding(&r, "cert_expires_soon").severity, Severity::Warning);

    let mut a = args(&[&target]);
    a.sni = Some("other.secops.test".into());
    let r = check_one(&checker, a).await;
    assert_eq!(r.hostname_match, Some(false));
    assert_eq!(r.chain_valid, Some(true));

    // Leaf alone on disk: the intermediate is missing.
    let only = write_temp(&leaf.cert_pem());
    let r = check_one(
        &checker,
        args(&[&format!("file:{}", only.path().display())]),
    )
    .await;
    assert_eq!(r.chain_valid, Some(false));
    assert!(codes(&r).contains(&"missing_intermediate"));
}

#[tokio::test]
async fn file_target_problems_are_error_results_not_call_failures() {
    let pki = TlsFixture::new();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let not_pem = write_temp("hello, I am not a certificate\n");
    let key_only = write_temp(&pem("PRIVATE KEY", b"\x30\x03\x02\x01\x00"));
    let targets = [
        format!("file:{}", missing.display()),
        format!("file:{}", not_pem.path().display()),
        format!("file:{}", key_only.path().display()),
        format!("file:{}", dir.path().display()),
    ];
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let report = pki
        .checker()
        .check(args(&refs))
        .await
        .expect("call succeeds");
    assert_eq!(report.summary.error, 4);
    let errors: Vec<&str> = report
        .results
        .iter()
        .map(|r| r.verification_error.as_deref().unwrap_or_default())
        .collect();
    assert!(
        errors[0].contains("file not found") && errors[0].contains("nope.pem"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("not a PEM certificate file"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("holds no certificate"), "{}", errors[2]);
    assert!(errors[3].contains("directory"), "{}", errors[3]);
}

#[tokio::test]
async fn sha1_signed_certificate_is_a_weak_signature() {
    let root = write_temp(SHA1_ROOT_PEM);
    let checker = CertChecker::new(Some(root.path())).expect("SHA-1 test root");
    let leaf = write_temp(SHA1_LEAF_PEM);
    let mut a = args(&[&format!("file:{}", leaf.path().display())]);
    a.sni = Some("sha1.secops.test".into());

    let r = check_one(&checker, a).await;
    assert_eq!(r.status, CertStatus::Critical, "{r:#?}");
    assert_eq!(r.chain[0].signature_algorithm, "sha1WithRSAEncryption");
    assert_eq!(r.chain[0].key, "RSA 2048");
    assert_eq!(r.hostname_match, Some(true));
    assert_eq!(r.chain_valid, Some(false), "webpki refuses SHA-1");
    let f = finding(&r, "weak_signature");
    assert!(f.message.contains("SHA-1"), "{}", f.message);
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(err.contains("sha1WithRSAEncryption"), "{err}");
}

#[tokio::test]
async fn ca_certificate_file_is_checked_for_expiry_only() {
    let pki = TlsFixture::new();
    let file = write_temp(&pki.root_pem());
    let r = check_one(
        &pki.checker(),
        args(&[&format!("file://{}", file.path().display())]),
    )
    .await;
    assert_eq!(r.status, CertStatus::Ok, "{r:#?}");
    assert_eq!(r.chain_valid, None);
    assert!(r.chain[0].self_signed);
    assert!(codes(&r).contains(&"ca_certificate"));
}

fn ca_pem(cn: &str, not_before_days: i64, not_after_days: i64) -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(not_before_days);
    params.not_after = now + time::Duration::days(not_after_days);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

#[tokio::test]
async fn ca_bundles_are_summarised_with_the_problems_numbered_as_listed() {
    let pki = TlsFixture::new();
    let bundle = [
        pki.root_pem(),
        ca_pem("Expired Root", -800, -30),
        ca_pem("Good Root", -10, 3000),
        ca_pem("Expiring Root", -400, 10),
    ]
    .concat();
    let file = write_temp(&bundle);
    let target = format!("file:{}", file.path().display());
    let r = check_one(&pki.checker(), args(&[&target])).await;
    let b = r.bundle.clone().expect("a bundle summary");
    assert_eq!(b.certificates, 4, "{r:#?}");
    assert_eq!(b.expired, 1);
    assert_eq!(b.expiring, 1);
    assert_eq!(b.with_problems, 2);
    assert!(!b.listed_all);
    // Only the two with a problem are listed, numbered by their place in the file, and
    // the findings use the same numbers.
    let positions: Vec<usize> = r.chain.iter().map(|c| c.position).collect();
    assert_eq!(positions, vec![2, 4], "{r:#?}");
    assert!(r.chain[0].subject.contains("Expired Root"));
    let expired = finding(&r, "cert_expired");
    assert!(expired.message.contains("#2 "), "{}", expired.message);
    assert!(!expired.message.contains("leaf"), "{}", expired.message);
    // Details on request: every certificate, numbered 1 to 4.
    let mut a = args(&[&target]);
    a.details = Some(true);
    let r = check_one(&pki.checker(), a).await;
    let positions: Vec<usize> = r.chain.iter().map(|c| c.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4]);
    assert!(r.bundle.unwrap().listed_all);
}

#[tokio::test]
async fn chain_positions_match_the_findings_for_presented_chains() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(3));
    let server = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    let positions: Vec<usize> = r.chain.iter().map(|c| c.position).collect();
    assert_eq!(positions, (1..=r.chain.len()).collect::<Vec<_>>());
    assert!(r.bundle.is_none());
    let f = r
        .findings
        .iter()
        .find(|f| f.code.starts_with("cert_expir"))
        .expect("expiry finding");
    assert!(f.message.contains("leaf (#1)"), "{}", f.message);
}

#[tokio::test]
async fn dead_targets_fail_fast_or_within_the_timeout_without_delaying_others() {
    let pki = TlsFixture::new();
    let leaf = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let good = serve_chain(leaf.full_chain(), leaf.key.clone()).await;
    let silent = serve_silent().await;
    let refused = refused_addr().await.to_string();

    let mut a = args(&[&silent.target(), &good.target(), &refused]);
    a.timeout_ms = Some(1000);
    let started = Instant::now();
    let report = pki.checker().check(a).await.unwrap();
    let elapsed = started.elapsed();

    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
        "took {elapsed:?}"
    );
    let [blackhole, ok, dead] = &report.results[..] else {
        panic!("three results in input order");
    };
    assert_eq!(blackhole.target, silent.target());
    assert_eq!(blackhole.status, CertStatus::Error);
    let err = blackhole.verification_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("timed out after 1000 ms") && err.contains("TLS handshake"),
        "{err}"
    );
    assert_eq!(ok.status, CertStatus::Ok);
    assert_eq!(dead.status, CertStatus::Error);
    let err = dead.verification_error.as_deref().unwrap_or_default();
    assert!(err.contains("connection refused"), "{err}");
    assert_eq!(report.summary.ok, 1);
    assert_eq!(report.summary.error, 2);
    let text = report.summary();
    assert!(
        text.starts_with("3 targets: 1 ok, 2 error (") && text.contains("connection refused"),
        "{text}"
    );
}

#[tokio::test]
async fn plaintext_service_is_reported_as_not_tls() {
    let pki = TlsFixture::new();
    let server = serve_plaintext(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let r = check_one(&pki.checker(), args(&[&server.target()])).await;
    assert_eq!(r.status, CertStatus::Error);
    let err = r.verification_error.as_deref().unwrap_or_default();
    assert!(err.contains("not TLS"), "{err}");
}

#[tokio::test]
async fn many_targets_are_checked_concurrently_in_input_order() {
    let pki = TlsFixture::new();
    let soon = pki.leaf(&LeafSpec::new(&["127.0.0.1"]).expires_in_days(12));
    let fine = pki.leaf(&LeafSpec::new(&["127.0.0.1"]));
    let s1 = serve_chain(soon.full_chain(), soon.key.clone()).await;
    let s2 = serve_chain(fine.full_chain(), fine.key.clone()).await;
    let targets: Vec<String> = (0..40)
        .map(|i| if i % 2 == 0 { s1.target() } else { s2.target() })
        .collect();
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let report = pki.checker().check(args(&refs)).await.unwrap();
    assert_eq!(report.results.len(), 40);
    for (i, r) in report.results.iter().enumerate() {
        let expected = if i % 2 == 0 { 12 } else { 90 };
        assert_eq!(r.days_left, Some(expected), "result {i} in input order");
    }
    assert_eq!(report.summary.warning, 20);
    assert_eq!(report.summary.ok, 20);
    let text = report.summary();
    assert!(
        text.contains("20 warning (") && text.contains("and 17 more"),
        "{text}"
    );
}

#[tokio::test]
async fn extra_ca_file_problems_name_the_file() {
    let err = CertChecker::new(Some(std::path::Path::new("/nonexistent/secops-ca.pem")))
        .expect_err("missing file");
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/secops-ca.pem") && text.contains("not found"),
        "{text}"
    );

    let empty = write_temp("no certificates here\n");
    let err = CertChecker::new(Some(empty.path())).expect_err("no certificates");
    let text = err.to_string();
    assert!(
        text.contains(&empty.path().display().to_string()) && text.contains("no"),
        "{text}"
    );
    assert!(matches!(err, CertError::TrustStore { .. }));

    let pki = TlsFixture::new();
    let (_, extra) = pki.checker().trust_anchor_counts();
    assert_eq!(extra, 1);
}

// ---------------------------------------------------------------------------------------
// Argument validation: every mistake names the argument, none panics.

fn arg_error(a: CertArgs) -> secops_mcp::checks::ArgError {
    match a.validate() {
        Err(e) => e,
        Ok(o) => panic!("expected an error, got {o:?}"),
    }
}

#[tokio::test]
async fn bad_arguments_name_the_argument() {
    let pki = TlsFixture::new();
    let checker = pki.checker();

    let e = checker.check(args(&[])).await.expect_err("empty targets");
    match e {
        CertError::InvalidArgument(e) => {
            assert_eq!(e.argument, "targets");
            assert!(e.reason.contains("at least one"), "{}", e.reason);
        }
        other => panic!("{other:?}"),
    }

    let many: Vec<String> = (0..101).map(|i| format!("host{i}.example")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = arg_error(args(&refs));
    assert_eq!(e.argument, "targets");
    assert!(e.reason.contains("at most 100"), "{}", e.reason);

    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("host:70000", "70000"),
        ("host:0", "port 0"),
        ("https://exa mple.com/", "` `"),
        ("bad!host", "`!`"),
        ("file:", "empty path"),
        ("http://example.com", "plaintext"),
        ("[::1", "`]`"),
    ];
    for (target, expected) in cases {
        let e = arg_error(args(&["ok.example", target]));
        assert_eq!(e.argument, "targets", "{target}");
        assert!(e.reason.contains("target #2"), "{}", e.reason);
        assert!(e.reason.contains(expected), "{target}: {}", e.reason);
    }
    let e = arg_error(args(&["host:70000"]));
    assert!(
        e.reason.contains("`host:70000`") && e.reason.contains("1-65535"),
        "{}",
        e.reason
    );

    let mut a = args(&["example.com"]);
    a.starttls = Some("telnet".into());
    let e = arg_error(a);
    assert_eq!(e.argument, "starttls");
    assert!(
        e.reason.contains("telnet")
            && e.reason
                .contains("`smtp`, `imap`, `pop3`, `ftp`, `postgres`"),
        "{}",
        e.reason
    );

    for (w, c, name) in [
        (Some(-1), None, "warning_days"),
        (Some(100_000), None, "warning_days"),
        (None, Some(-5), "critical_days"),
        (Some(10), Some(20), "critical_days"),
    ] {
        let mut a = args(&["example.com"]);
        a.warning_days = w;
        a.critical_days = c;
        assert_eq!(arg_error(a).argument, name, "{w:?} {c:?}");
    }

    for t in [0, -1, 120_001, i64::MAX] {
        let mut a = args(&["example.com"]);
        a.timeout_ms = Some(t);
        let e = arg_error(a);
        assert_eq!(e.argument, "timeout_ms");
        assert!(e.reason.contains("1 to 120000"), "{}", e.reason);
    }

    for sni in ["", "bad name", "*.wild.example"] {
        let mut a = args(&["example.com"]);
        a.sni = Some(sni.into());
        assert_eq!(arg_error(a).argument, "sni", "{sni:?}");
    }

    let mut a = args(&["https://example.com"]);
    a.starttls = Some("smtp".into());
    assert_eq!(arg_error(a).argument, "targets");
}

#[test]
fn defaults_and_target_forms() {
    let o = args(&["example.com"]).validate().unwrap();
    assert_eq!(o.warning_days, 30);
    assert_eq!(o.critical_days, 7);
    assert_eq!(o.timeout, Duration::from_millis(5000));

    let o = args(&[
        "example.com",
        "example.com:8443",
        "https://example.com:9443/some/path",
        "[::1]:443",
        "file:/etc/ssl/cert.pem",
    ])
    .validate()
    .unwrap();
    let parsed: Vec<&Target> = o.targets.iter().map(|(_, t)| t).collect();
    assert_eq!(
        parsed[0],
        &Target::Network {
            host: Host::Dns("example.com".into()),
            port: 443
        }
    );
    assert_eq!(
        parsed[1],
        &Target::Network {
            host: Host::Dns("example.com".into()),
            port: 8443
        }
    );
    assert_eq!(
        parsed[2],
        &Target::Network {
            host: Host::Dns("example.com".into()),
            port: 9443
        }
    );
    assert_eq!(
        parsed[3],
        &Target::Network {
            host: Host::Ip("::1".parse().unwrap()),
            port: 443
        }
    );
    assert_eq!(
        parsed[4],
        &Target::File {
            path: "/etc/ssl/cert.pem".into()
        }
    );

    let mut a = args(&["mail.example.com", "mail.example.com:587"]);
    a.starttls = Some("SMTP".into());
    let e = a.validate().unwrap_err();
    assert!(e.reason.contains("write `smtp`"), "{}", e.reason);
    a.starttls = Some("smtp".into());
    let o = a.validate().unwrap();
    assert_eq!(o.starttls, Some(StartTls::Smtp));
    assert!(matches!(o.targets[0].1, Target::Network { port: 25, .. }));
    assert!(matches!(o.targets[1].1, Target::Network { port: 587, .. }));
    for (proto, port) in [
        ("imap", 143),
        ("pop3", 110),
        ("ftp", 21),
        ("postgres", 5432),
    ] {
        let mut a = args(&["db.example.com"]);
        a.starttls = Some(proto.into());
        let o = a.validate().unwrap();
        assert!(
            matches!(o.targets[0].1, Target::Network { port: p, .. } if p == port),
            "{proto}"
        );
    }
}

#[test]
fn no_input_panics() {
    let nasty = [
        "\u{0}",
        "[",
        "]",
        ":",
        "::",
        ":::::",
        "[]:",
        "[::1]:",
        "https://[",
        "https://:443",
        "file://",
        "file:///",
        "\u{202e}evil.com",
        "xn--",
        "a:b:c:d:e:f:g:h:i",
        "😀.example",
        "https://😀",
        "host:+443",
        "host:-1",
        "host: 443",
        "1.2.3.4.5",
        "999.999.999.999",
        "https://host:99999999999999999999999/",
    ];
    for input in nasty {
        let _ = parse_target(input, None);
        let _ = parse_target(input, Some(StartTls::Smtp));
        let _ = args(&[input]).validate();
        let mut a = args(&["example.com"]);
        a.sni = Some(input.into());
        let _ = a.validate();
        a.starttls = Some(input.into());
        let _ = a.validate();
    }
}
