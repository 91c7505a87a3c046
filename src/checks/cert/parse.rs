//! Certificate parsing for `check_cert` (x509-parser): turns each DER certificate of a
//! presented chain into the public [`ChainCert`] view plus the facts the analysis needs
//! (raw names, validity, key strength, signature hash, SANs, self-signature).

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::objects::oid_registry;
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::X509Name;

use super::ChainCert;

/// The public key of a certificate, as far as strength is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyInfo {
    Rsa { bits: usize },
    Ec { curve: String, bits: usize },
    Ed25519,
    Ed448,
    Dsa { bits: usize },
    Other(String),
}

impl KeyInfo {
    /// `RSA 2048`, `EC P-256`, `Ed25519`, ...
    pub fn describe(&self) -> String {
        match self {
            KeyInfo::Rsa { bits } => format!("RSA {bits}"),
            KeyInfo::Ec { curve, .. } => format!("EC {curve}"),
            KeyInfo::Ed25519 => "Ed25519".into(),
            KeyInfo::Ed448 => "Ed448".into(),
            KeyInfo::Dsa { bits } => format!("DSA {bits}"),
            KeyInfo::Other(name) => name.clone(),
        }
    }

    /// Why the key is too weak, if it is (RSA/DSA below 2048 bits, EC below 256 bits).
    pub fn weakness(&self) -> Option<String> {
        match self {
            KeyInfo::Rsa { bits } if *bits < 2048 => Some(format!(
                "RSA key of {bits} bits is below the 2048-bit minimum"
            )),
            KeyInfo::Dsa { bits } if *bits < 2048 => Some(format!(
                "DSA key of {bits} bits is below the 2048-bit minimum (and DSA is deprecated)"
            )),
            KeyInfo::Ec { curve, bits } if *bits < 256 => Some(format!(
                "EC key on {curve} ({bits} bits) is below the 256-bit minimum"
            )),
            _ => None,
        }
    }
}

/// One successfully parsed certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    pub view: ChainCert,
    /// Subject and issuer Name contents (DER, without the SEQUENCE header), for matching.
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key: KeyInfo,
    /// `SHA-1` / `MD5` / `MD2` when the signature uses a broken hash.
    pub weak_hash: Option<&'static str>,
    pub dns_sans: Vec<String>,
    pub ip_sans: Vec<IpAddr>,
    pub is_ca: bool,
}

/// One entry of a presented chain: parsed, or malformed with the reason.
#[derive(Debug, Clone)]
pub(crate) enum ChainEntry {
    Parsed(Box<CertInfo>),
    Malformed {
        view: Box<ChainCert>,
        reason: String,
    },
}

impl ChainEntry {
    pub fn view(&self) -> &ChainCert {
        match self {
            ChainEntry::Parsed(info) => &info.view,
            ChainEntry::Malformed { view, .. } => view,
        }
    }

    pub fn parsed(&self) -> Option<&CertInfo> {
        match self {
            ChainEntry::Parsed(info) => Some(info),
            ChainEntry::Malformed { .. } => None,
        }
    }
}

/// Parses every certificate of a chain (order kept), at time `now`.
pub(crate) fn parse_chain(ders: &[impl AsRef<[u8]>], now: OffsetDateTime) -> Vec<ChainEntry> {
    ders.iter()
        .map(|der| parse_cert(der.as_ref(), now))
        .collect()
}

pub(crate) fn parse_cert(der: &[u8], now: OffsetDateTime) -> ChainEntry {
    let fingerprint = fingerprint_sha256(der);
    let cert = match X509Certificate::from_der(der) {
        Ok((_, cert)) => cert,
        Err(e) => {
            return ChainEntry::Malformed {
                view: Box::new(ChainCert {
                    position: 0,
                    subject: "(malformed certificate)".into(),
                    issuer: String::new(),
                    sans: Vec::new(),
                    serial: String::new(),
                    not_before: String::new(),
                    not_after: String::new(),
                    days_left: 0,
                    key: String::new(),
                    signature_algorithm: String::new(),
                    fingerprint_sha256: fingerprint,
                    self_signed: false,
                }),
                reason: format!("cannot parse certificate: {e}"),
            };
        }
    };

    let not_before = asn1_to_datetime(cert.validity().not_before.timestamp());
    let not_after = asn1_to_datetime(cert.validity().not_after.timestamp());
    let key = key_info(&cert);
    let (signature_algorithm, weak_hash) = signature_info(&cert);

    let mut dns_sans = Vec::new();
    let mut ip_sans = Vec::new();
    let mut sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    sans.push(printable(dns));
                    dns_sans.push(dns.to_string());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        sans.push(ip.to_string());
                        ip_sans.push(ip);
                    }
                }
                _ => {}
            }
        }
    }

    let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let subject_raw = name_contents(cert.subject().as_raw()).to_vec();
    let issuer_raw = name_contents(cert.issuer().as_raw()).to_vec();
    let self_signed = subject_raw == issuer_raw && signed_by_own_key(&cert, &key);

    let view = ChainCert {
        position: 0,
        subject: rfc4514(cert.subject()),
        issuer: rfc4514(cert.issuer()),
        sans,
        serial: serial_hex(cert.raw_serial()),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        days_left: days_left(not_after, now),
        key: key.describe(),
        signature_algorithm,
        fingerprint_sha256: fingerprint,
        self_signed,
    };

    ChainEntry::Parsed(Box::new(CertInfo {
        view,
        subject_raw,
        issuer_raw,
        not_before,
        not_after,
        key,
        weak_hash,
        dns_sans,
        ip_sans,
        is_ca,
    }))
}

/// Whole days from `now` to `not_after`, rounded down (negative once expired).
pub(crate) fn days_left(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (not_after - now).whole_seconds().div_euclid(86_400)
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| format!("{}", t.unix_timestamp()))
}

fn asn1_to_datetime(timestamp: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(timestamp).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// SHA-256 of the DER, uppercase hex with colons (as `openssl x509 -fingerprint -sha256`).
pub(crate) fn fingerprint_sha256(der: &[u8]) -> String {
    colon_hex(&Sha256::digest(der))
}

/// The serial as uppercase colon-separated hex, without the sign-padding zero byte
/// (`04:A3:...`, the form browsers show).
fn serial_hex(raw: &[u8]) -> String {
    let trimmed = match raw {
        [0, next, ..] if raw.len() > 1 && *next >= 0x80 => &raw[1..],
        _ => raw,
    };
    colon_hex(trimmed)
}

fn colon_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// The contents of a DER `Name` (strips the outer SEQUENCE tag and length), which is how
/// webpki stores trust-anchor subjects.
pub(crate) fn name_contents(raw: &[u8]) -> &[u8] {
    let Some((&tag, rest)) = raw.split_first() else {
        return raw;
    };
    if tag != 0x30 {
        return raw;
    }
    let Some((&len0, rest)) = rest.split_first() else {
        return raw;
    };
    let (len, body) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return raw;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if body.len() == len { body } else { raw }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Subject is issuer and the signature verifies with the certificate's own key. When the
/// algorithm cannot be checked here (e.g. RSA under 2048 bits, unusual curves), fall back to
/// the key identifiers: self-signed if the authority key id is absent or equals the subject
/// key id.
fn signed_by_own_key(cert: &X509Certificate<'_>, key: &KeyInfo) -> bool {
    match cert.verify_signature(None) {
        Ok(()) => true,
        Err(X509Error::SignatureUnsupportedAlgorithm) => key_ids_match(cert),
        Err(_) if matches!(key, KeyInfo::Rsa { bits } if *bits < 2048) => key_ids_match(cert),
        Err(_) => false,
    }
}

fn key_ids_match(cert: &X509Certificate<'_>) -> bool {
    let mut aki = None;
    let mut ski = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            _ => {}
        }
    }
    match (aki, ski) {
        (None, _) => true,
        (Some(a), Some(s)) => a == s,
        (Some(_), None) => false,
    }
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_DSA: &str = "1.2.840.10040.4.1";

fn key_info(cert: &X509Certificate<'_>) -> KeyInfo {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        OID_RSA | OID_RSA_PSS => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyInfo::Rsa {
                bits: bit_length(rsa.modulus),
            },
            _ => KeyInfo::Other("RSA (unparsable key)".into()),
        },
        OID_EC => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let (curve, bits) = match curve_oid.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("P-256".to_string(), 256),
                Some("1.3.132.0.34") => ("P-384".to_string(), 384),
                Some("1.3.132.0.35") => ("P-521".to_string(), 521),
                Some("1.3.132.0.10") => ("secp256k1".to_string(), 256),
                Some("1.2.840.10045.3.1.1") => ("P-192".to_string(), 192),
                Some("1.3.132.0.33") => ("P-224".to_string(), 224),
                Some("1.3.36.3.3.2.8.1.1.7") => ("brainpoolP256r1".to_string(), 256),
                Some("1.3.36.3.3.2.8.1.1.11") => ("brainpoolP384r1".to_string(), 384),
                Some("1.3.36.3.3.2.8.1.1.13") => ("brainpoolP512r1".to_string(), 512),
                other => {
                    let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
                    (other.unwrap_or("unknown curve").to_string(), bits)
                }
            };
            KeyInfo::Ec { curve, bits }
        }
        OID_ED25519 => KeyInfo::Ed25519,
        OID_ED448 => KeyInfo::Ed448,
        OID_DSA => KeyInfo::Dsa {
            bits: spki.parsed().map(|k| k.key_size()).unwrap_or(0),
        },
        other => KeyInfo::Other(oid_name(&spki.algorithm.algorithm).unwrap_or(other.to_string())),
    }
}

/// Bits of a big-endian unsigned integer (leading zero bytes ignored).
fn bit_length(bytes: &[u8]) -> usize {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    let lead = trimmed[0].leading_zeros() as usize;
    trimmed.len() * 8 - lead
}

/// Human name of the signature algorithm (OpenSSL's names) and the broken hash, if any.
fn signature_info(cert: &X509Certificate<'_>) -> (String, Option<&'static str>) {
    let alg = &cert.signature_algorithm;
    let oid = alg.algorithm.to_id_string();
    let named = |name: &str, weak: Option<&'static str>| (name.to_string(), weak);
    match oid.as_str() {
        "1.2.840.113549.1.1.2" => named("md2WithRSAEncryption", Some("MD2")),
        "1.2.840.113549.1.1.4" => named("md5WithRSAEncryption", Some("MD5")),
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => named("sha1WithRSAEncryption", Some("SHA-1")),
        "1.2.840.113549.1.1.14" => named("sha224WithRSAEncryption", None),
        "1.2.840.113549.1.1.11" => named("sha256WithRSAEncryption", None),
        "1.2.840.113549.1.1.12" => named("sha384WithRSAEncryption", None),
        "1.2.840.113549.1.1.13" => named("sha512WithRSAEncryption", None),
        OID_RSA_PSS => {
            // RFC 4055: an absent hash algorithm means SHA-1.
            let hash = alg
                .parameters
                .as_ref()
                .and_then(|p| RsaSsaPssParams::try_from(p).ok())
                .map(|params| params.hash_algorithm_oid().to_id_string())
                .unwrap_or_else(|| "1.3.14.3.2.26".to_string());
            match hash.as_str() {
                "1.3.14.3.2.26" => named("rsassaPss (SHA-1)", Some("SHA-1")),
                "2.16.840.1.101.3.4.2.1" => named("rsassaPss (SHA-256)", None),
                "2.16.840.1.101.3.4.2.2" => named("rsassaPss (SHA-384)", None),
                "2.16.840.1.101.3.4.2.3" => named("rsassaPss (SHA-512)", None),
                other => (format!("rsassaPss ({other})"), None),
            }
        }
        "1.2.840.10045.4.1" => named("ecdsa-with-SHA1", Some("SHA-1")),
        "1.2.840.10045.4.3.1" => named("ecdsa-with-SHA224", None),
        "1.2.840.10045.4.3.2" => named("ecdsa-with-SHA256", None),
        "1.2.840.10045.4.3.3" => named("ecdsa-with-SHA384", None),
        "1.2.840.10045.4.3.4" => named("ecdsa-with-SHA512", None),
        OID_ED25519 => named("ED25519", None),
        OID_ED448 => named("ED448", None),
        "1.2.840.10040.4.3" => named("dsa-with-SHA1", Some("SHA-1")),
        "2.16.840.1.101.3.4.3.2" => named("dsa_with_SHA256", None),
        other => (oid_name(&alg.algorithm).unwrap_or(other.to_string()), None),
    }
}

fn oid_name(oid: &Oid<'_>) -> Option<String> {
    oid_registry().get(oid).map(|entry| entry.sn().to_string())
}

/// RFC 4514 string: RDNs most specific first, `,` between RDNs, `+` inside one,
/// special characters escaped, non-string values as `#hex`.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let key = attribute_name(atv.attr_type());
                    let value = match atv.as_str() {
                        Ok(s) => escape_value(s),
                        Err(_) => match std::str::from_utf8(atv.as_slice()) {
                            Ok(s) if !s.is_empty() => escape_value(s),
                            _ => format!("#{}", hex::encode(atv.as_slice())),
                        },
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let mut reversed = rdns;
    reversed.reverse();
    reversed.join(",")
}

fn attribute_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let short = match id.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "2.5.4.4" => "SN",
        "2.5.4.42" => "GN",
        "2.5.4.12" => "title",
        "2.5.4.97" => "organizationIdentifier",
        "2.5.4.15" => "businessCategory",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        _ => return oid_name(oid).unwrap_or(id),
    };
    short.to_string()
}

fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Untrusted certificate text for output: control characters replaced.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01, 0x00]), 9);
        assert_eq!(bit_length(&[]), 0);
    }

    #[test]
    fn serial_drops_sign_padding_only() {
        assert_eq!(serial_hex(&[0x00, 0x9f, 0x01]), "9F:01");
        assert_eq!(serial_hex(&[0x00, 0x1f]), "00:1F");
        assert_eq!(serial_hex(&[0x05]), "05");
    }

    #[test]
    fn name_contents_strips_sequence_header() {
        assert_eq!(name_contents(&[0x30, 0x02, 0xAA, 0xBB]), &[0xAA, 0xBB]);
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        assert_eq!(name_contents(&long).len(), 0x80);
        // Inconsistent lengths are returned unchanged rather than sliced wrongly.
        assert_eq!(name_contents(&[0x30, 0x05, 0xAA]), &[0x30, 0x05, 0xAA]);
        assert_eq!(name_contents(&[]), &[] as &[u8]);
    }

    #[test]
    fn days_left_floors_and_goes_negative() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        assert_eq!(days_left(now + time::Duration::hours(47), now), 1);
        assert_eq!(days_left(now + time::Duration::hours(1), now), 0);
        assert_eq!(days_left(now - time::Duration::hours(1), now), -1);
        assert_eq!(days_left(now - time::Duration::days(10), now), -10);
    }

    #[test]
    fn escape_rfc4514_specials() {
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value(" lead"), "\\ lead");
        assert_eq!(escape_value("#x"), "\\#x");
        assert_eq!(escape_value("bell\u{7}"), "bell\\07");
    }

    #[test]
    fn malformed_der_is_reported_not_panicked() {
        let entry = parse_cert(b"not a certificate", OffsetDateTime::now_utc());
        assert!(entry.parsed().is_none());
        assert_eq!(entry.view().fingerprint_sha256.len(), 32 * 3 - 1);
    }
}
