//! A real SMTP server for the `email` channel's tests: tests/smtp/server.py on Debian's
//! python3-aiosmtpd, started per test on 127.0.0.1 (STARTTLS required, implicit TLS, or
//! cleartext without STARTTLS), with a test CA (rcgen) whose root the channel trusts through
//! `ca_file`, AUTH for one user, each message saved as `<n>.eml` and every AUTH / MAIL command
//! logged. [`SmtpServer::start`] prints `SKIP:` and gives `None` when aiosmtpd is missing,
//! unless `CI=true` or `SECOPS_REQUIRE_SMTP=1` asks for the tests to be required.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The login the test server accepts.
pub const SMTP_USER: &str = "alerts";
pub const SMTP_PASSWORD: &str = "Sm7p-Pa55w0rd-xyzzy";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    /// STARTTLS offered and required; AUTH only after it.
    Starttls,
    /// TLS from the first byte.
    Implicit,
    /// Cleartext, STARTTLS never offered (AUTH offered, as bait).
    NoStarttls,
}

impl SmtpMode {
    fn arg(self) -> &'static str {
        match self {
            SmtpMode::Starttls => "starttls",
            SmtpMode::Implicit => "implicit",
            SmtpMode::NoStarttls => "nostarttls",
        }
    }
}

/// A running test SMTP server; stopped (killed) on drop.
pub struct SmtpServer {
    pub port: u16,
    /// The test CA's root (PEM), for the channel's `ca_file`.
    pub ca_file: PathBuf,
    dir: tempfile::TempDir,
    _child: Child,
}

/// A Python interpreter that can import aiosmtpd: `SECOPS_TEST_PYTHON`, Debian's
/// /usr/bin/python3 (where the Debian package lives), or `python3` on the PATH.
fn python() -> Option<String> {
    let candidates = std::env::var("SECOPS_TEST_PYTHON")
        .into_iter()
        .chain(["/usr/bin/python3".to_string(), "python3".to_string()]);
    for py in candidates {
        let ok = std::process::Command::new(&py)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py);
        }
    }
    None
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("SECOPS_REQUIRE_SMTP").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The test PKI: a root CA and a leaf for `localhost` and 127.0.0.1; writes
/// `ca.pem`, `cert.pem` (leaf + nothing else) and `key.pem` into `dir`.
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let now = time::OffsetDateTime::now_utc();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Secops SMTP Test Root CA");
    let mut root = CertificateParams::default();
    root.distinguished_name = dn;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = now - time::Duration::days(1);
    root.not_after = now + time::Duration::days(365);
    let root = CertifiedIssuer::self_signed(root, KeyPair::generate().expect("root key"))
        .expect("root certificate");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf names");
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(30);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("leaf key");
    let cert = leaf.signed_by(&key, &root).expect("leaf certificate");
    let (ca, crt, k) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca, root.pem()).unwrap();
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (ca, crt, k)
}

impl SmtpServer {
    /// Start a server in `mode`, or `None` (after printing `SKIP:`) when aiosmtpd is not
    /// installed and the tests are not required.
    pub async fn start(mode: SmtpMode) -> Option<SmtpServer> {
        let Some(py) = python() else {
            let reason = "python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd)";
            if required() {
                panic!("the SMTP tests are required (CI / SECOPS_REQUIRE_SMTP) but {reason}");
            }
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let pki_dir = dir.path().join("pki");
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir_all(&pki_dir).unwrap();
        std::fs::create_dir_all(&mail_dir).unwrap();
        let (ca_file, cert, key) = pki(&pki_dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let mut child = Command::new(py)
            .arg(script)
            .args(["--mode", mode.arg(), "--dir"])
            .arg(&mail_dir)
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--user", SMTP_USER, "--password", SMTP_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(dir.path().join("server.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/smtp/server.py");
        let stdout = child.stdout.take().expect("server stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP server must say its port within 30 s")
            .expect("read the SMTP server's stdout")
            .expect("the SMTP server exited before saying its port");
        let port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP server: {first}"));
        Some(SmtpServer {
            port,
            ca_file,
            dir,
            _child: child,
        })
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The messages received so far, in order (raw RFC 5322 text with CRLF line ends).
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in 1.. {
            match std::fs::read(self.mail_dir().join(format!("{n}.eml"))) {
                Ok(b) => out.push(String::from_utf8_lossy(&b).to_string()),
                Err(_) => break,
            }
        }
        out
    }

    /// The envelope recipients of message `n` (1-based).
    pub fn recipients(&self, n: usize) -> Vec<String> {
        std::fs::read_to_string(self.mail_dir().join(format!("{n}.eml.rcpt")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// What the server wrote to stderr (its log), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Every AUTH and MAIL command the server saw, one per line.
    pub fn commands(&self) -> String {
        std::fs::read_to_string(self.mail_dir().join("commands.log")).unwrap_or_default()
    }
}

/// A parsed message: unfolded headers (name lower-cased) and the decoded text parts by
/// content type.
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub parts: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn part(&self, content_type: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|(t, _)| t.starts_with(content_type))
            .map(|(_, b)| b.as_str())
    }
}

/// Parse a message with Python's own `email` package (the receiver's view, independent of
/// lettre): headers decoded (RFC 2047), parts decoded (quoted-printable / base64), line
/// ends as `\n`.
pub fn parse_message(raw: &str) -> Received {
    let py = python().expect("python with aiosmtpd");
    let code = r#"
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
hs = [[k, str(v)] for k, v in m.items()]
parts = []
for p in m.walk():
    if p.get_content_maintype() == "text":
        parts.append([p.get_content_type(), p.get_content().replace("\r\n", "\n")])
print(json.dumps({"headers": hs, "parts": parts}))
"#;
    let mut child = std::process::Command::new(py)
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python could not parse the message");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pairs = |k: &str| -> Vec<(String, String)> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    Received {
        headers: pairs("headers"),
        parts: pairs("parts"),
    }
}
