//! The `email` channel: one SMTP submission per notification (lettre on rustls/aws-lc-rs),
//! TLS by default: `starttls` (port 587; the server must offer STARTTLS, or nothing is sent
//! in cleartext: no fallback), `implicit` (SMTPS, port 465) or `none` (port 25, only to a
//! loopback relay). AUTH PLAIN/LOGIN only over TLS (or loopback). The exchange is driven step
//! by step (connect, STARTTLS, AUTH, MAIL/RCPT/DATA) under one timeout, so each outcome is
//! classified where it happened: 4xx replies, connection errors and timeouts are retried;
//! 5xx replies (550 bad recipient, 535 bad credentials) and a missing STARTTLS fail for good.
//! The password (and its AUTH encodings) is scrubbed from every answer and reason.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::email_message;
use super::template::MessageTemplate;
use super::{Channel, ChannelError, Delivery, Recipient};
use crate::alerts::NotificationBody;
use crate::config::Secret;

/// How much of a server's answer is kept (characters).
const ANSWER_KEEP: usize = 300;
const MASK: &str = "***";
/// At most this many recipients per channel.
pub const MAX_RECIPIENTS: usize = 50;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain connect, then STARTTLS, required (the default).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS at all: only to a loopback host.
    None,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s {
            "starttls" => Some(TlsMode::Starttls),
            "implicit" => Some(TlsMode::Implicit),
            "none" => Some(TlsMode::None),
            _ => None,
        }
    }

    /// The usual port of the mode: 587, 465, 25.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        }
    }
}

/// An email channel's settings (from the config; the password from env or a file).
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
    /// The whole exchange must finish within this.
    pub timeout_ms: u64,
    /// Trust only the CAs of this PEM file (a private CA), instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// The subject and the plain body as templates (notify::template); else our own.
    pub subject_template: Option<MessageTemplate>,
    pub template: Option<MessageTemplate>,
}

/// Whether `host` is a loopback name or address (no DNS lookup: a name is taken at its word
/// only when it is `localhost`).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An email address (`ops@example.org` or `Ops <ops@example.org>`), or why not.
pub fn parse_address(s: &str) -> Result<Mailbox, String> {
    s.parse::<Mailbox>().map_err(|e| {
        format!(
            "`{}` is not an email address ({e}); write `name@domain` or `Name <name@domain>`",
            crate::util::sanitize_untrusted(s.as_bytes(), 80)
        )
    })
}

/// One configured email channel.
pub struct EmailChannel {
    name: String,
    host: String,
    port: u16,
    tls: TlsMode,
    tls_params: Option<TlsParameters>,
    credentials: Option<Credentials>,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout_ms: u64,
    hello: ClientId,
    /// Strings scrubbed from anything we say (the password and its AUTH encodings).
    redact: Vec<String>,
    subject_template: Option<MessageTemplate>,
    template: Option<MessageTemplate>,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("name", &self.name)
            .field("server", &format!("{}:{}", self.host, self.port))
            .field("tls", &self.tls)
            .field("password", &MASK)
            .finish()
    }
}

impl EmailChannel {
    /// Validate the settings; the error names the setting, never the password.
    pub fn new(name: &str, s: EmailSettings) -> Result<Self, ChannelError> {
        let err = |reason: String| ChannelError::new(name, reason);
        if s.host.is_empty() || s.host.len() > 253 || s.host.contains(['/', ' ', ':']) {
            return Err(err(format!(
                "host must be a host name or IP address, not `{}`",
                crate::util::sanitize_untrusted(s.host.as_bytes(), 80)
            )));
        }
        if s.port == 0 {
            return Err(err("port must be between 1 and 65535".into()));
        }
        if s.tls == TlsMode::None && !is_loopback_host(&s.host) {
            return Err(err(format!(
                "tls = \"none\" is only allowed to a loopback host (localhost, 127.0.0.1, ::1), \
                 not `{}`; use \"starttls\" or \"implicit\"",
                s.host
            )));
        }
        if !(1..=300_000).contains(&s.timeout_ms) {
            return Err(err(format!(
                "timeout_ms must be between 1 and 300000, not {}",
                s.timeout_ms
            )));
        }
        let from = parse_address(&s.from).map_err(|p| err(format!("from: {p}")))?;
        if s.to.is_empty() || s.to.len() > MAX_RECIPIENTS {
            return Err(err(format!(
                "to must list 1 to {MAX_RECIPIENTS} addresses, not {}",
                s.to.len()
            )));
        }
        let to =
            s.to.iter()
                .enumerate()
                .map(|(i, t)| parse_address(t).map_err(|p| err(format!("to[{i}]: {p}"))))
                .collect::<Result<Vec<_>, _>>()?;
        let mut redact = Vec::new();
        let credentials = match (&s.username, &s.password) {
            (Some(u), Some(p)) => {
                if p.expose().is_empty() {
                    return Err(err("the password is empty".into()));
                }
                let b64 = base64::engine::general_purpose::STANDARD;
                redact.push(b64.encode(format!("\0{u}\0{}", p.expose())));
                redact.push(b64.encode(p.expose()));
                redact.push(p.expose().to_string());
                Some(Credentials::new(u.clone(), p.expose().to_string()))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    "username is set but no password (password_env or password_file)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err("a password is set but no username".into()));
            }
        };
        redact.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let tls_params = match s.tls {
            TlsMode::None => None,
            TlsMode::Starttls | TlsMode::Implicit => {
                Some(tls_parameters(&s.host, &s.ca_file).map_err(err)?)
            }
        };
        let hello = sysinfo::System::host_name()
            .ok()
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            })
            .map(ClientId::Domain)
            .unwrap_or_default();
        Ok(Self {
            name: name.to_string(),
            host: s.host,
            port: s.port,
            tls: s.tls,
            tls_params,
            credentials,
            from,
            to,
            timeout_ms: s.timeout_ms,
            hello,
            redact,
            subject_template: s.subject_template,
            template: s.template,
        })
    }

    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The secrets out first (in the raw text, where a non-ASCII password is still whole),
    /// then control and non-ASCII characters, then the secrets' sanitised forms.
    fn scrub(&self, text: &str) -> String {
        let mut raw = text.to_string();
        for s in &self.redact {
            raw = raw.replace(s.as_str(), MASK);
        }
        let mut out = crate::util::sanitize_untrusted(raw.as_bytes(), ANSWER_KEEP * 2);
        for s in &self.redact {
            let clean = crate::util::sanitize_untrusted(s.as_bytes(), usize::MAX);
            if !clean.is_empty() {
                out = out.replace(clean.as_str(), MASK);
            }
        }
        out.chars().take(ANSWER_KEEP).collect()
    }

    async fn deliver(&self, body: &NotificationBody, to: Option<&Recipient>) -> Delivery {
        // An escalation goes To its contact alone.
        let contact;
        let to: &[Mailbox] = match to {
            None => &self.to,
            Some(r) => match r.email.as_deref().map(parse_address) {
                Some(Ok(m)) => {
                    contact = [m];
                    &contact
                }
                Some(Err(e)) => {
                    return Delivery::Failed {
                        status: None,
                        reason: format!("contact {}: {e}", r.name),
                    };
                }
                None => return super::unaddressable(r, "email", "email address"),
            },
        };
        // A digest always has the default text (notify::digest).
        let templated = !super::digest::is_digest(body);
        let rendered = email_message::Rendered {
            subject: self
                .subject_template
                .as_ref()
                .filter(|_| templated)
                .map(|t| t.render_or(&self.name, body, email_message::subject(body))),
            plain: self
                .template
                .as_ref()
                .filter(|_| templated)
                .map(|t| t.render_or(&self.name, body, email_message::plain_body(body))),
        };
        let message = match email_message::build(body, &self.from, to, &rendered) {
            Ok(m) => m,
            Err(e) => {
                return Delivery::Failed {
                    status: None,
                    reason: self.scrub(&format!("cannot build the message: {e}")),
                };
            }
        };
        let limit = Duration::from_millis(self.timeout_ms);
        match tokio::time::timeout(limit, self.exchange(&message)).await {
            Ok(d) => d,
            Err(_) => Delivery::Retry {
                status: None,
                reason: format!(
                    "the SMTP exchange with {} timed out after {} ms",
                    self.server(),
                    self.timeout_ms
                ),
                after: None,
            },
        }
    }

    /// Connect, secure, authenticate, submit; each step's failure classified.
    async fn exchange(&self, message: &lettre::Message) -> Delivery {
        let per_step = Some(Duration::from_millis(self.timeout_ms));
        let implicit = match self.tls {
            TlsMode::Implicit => self.tls_params.clone(),
            _ => None,
        };
        let mut conn = match AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            per_step,
            &self.hello,
            implicit,
            None,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return self.smtp_error("connect", &e),
        };
        if self.tls == TlsMode::Starttls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Delivery::Failed {
                    status: None,
                    reason: format!(
                        "the server at {} does not offer STARTTLS; refusing to send in cleartext \
                         (set tls = \"implicit\" for an SMTPS port)",
                        self.server()
                    ),
                };
            }
            let Some(params) = self.tls_params.clone() else {
                conn.abort().await;
                return Delivery::Failed {
                    status: None,
                    reason: "no TLS parameters for STARTTLS".into(),
                };
            };
            if let Err(e) = conn.starttls(params, &self.hello).await {
                // No QUIT: a failed handshake leaves no stream to write to (lettre would
                // panic); dropping the connection closes the socket.
                return self.smtp_error("STARTTLS", &e);
            }
        }
        if let Some(creds) = &self.credentials {
            let r = conn
                .auth(&[Mechanism::Plain, Mechanism::Login], creds)
                .await;
            if let Err(e) = r {
                conn.abort().await;
                return self.smtp_error("AUTH", &e);
            }
        }
        let result = conn.send(message.envelope(), &message.formatted()).await;
        match result {
            Ok(resp) => {
                let _ = conn.quit().await;
                let code: u16 = resp.code().into();
                let text = resp.message().collect::<Vec<_>>().join(" ");
                Delivery::Delivered {
                    status: None,
                    answer: self.scrub(&format!("SMTP {code} {text}")),
                }
            }
            Err(e) => {
                conn.abort().await;
                self.smtp_error("sending", &e)
            }
        }
    }

    /// 4xx, network and connection trouble: retried; 5xx and client errors: failed.
    fn smtp_error(&self, step: &str, e: &lettre::transport::smtp::Error) -> Delivery {
        let mut text = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(c) = src {
            let s = c.to_string();
            if !text.contains(&s) {
                text.push_str(": ");
                text.push_str(&s);
            }
            src = c.source();
        }
        // lettre nests errors that repeat their kind ("Connection error: Connection error:
        // ..."): keep each part once.
        let mut parts: Vec<&str> = Vec::new();
        for p in text.split(": ") {
            if parts.last() != Some(&p) {
                parts.push(p);
            }
        }
        let text = parts.join(": ");
        let code = e.status().map(u16::from);
        let reason = self.scrub(&format!("{step} at {} failed: {text}", self.server()));
        if e.is_permanent() || (e.is_client() && !e.is_timeout()) {
            Delivery::Failed {
                status: None,
                reason: match code {
                    Some(c) => self.scrub(&format!("SMTP {c}: {reason}")),
                    None => reason,
                },
            }
        } else {
            Delivery::Retry {
                status: None,
                reason: match code {
                    Some(c) => self.scrub(&format!("SMTP {c}: {reason}")),
                    None => reason,
                },
                after: None,
            }
        }
    }
}

/// TLS parameters for `host`: the system roots, or only the CAs of `ca_file`.
fn tls_parameters(host: &str, ca_file: &Option<PathBuf>) -> Result<TlsParameters, String> {
    let domain = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut b = TlsParameters::builder(domain);
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let pem = std::fs::read(path)
            .map_err(|e| format!("ca_file: cannot read {}: {}", path.display(), e.kind()))?;
        let mut n = 0;
        b = b.certificate_store(lettre::transport::smtp::client::CertificateStore::None);
        for der in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let der = der.map_err(|_| format!("ca_file: {} is not PEM", path.display()))?;
            let cert = Certificate::from_der(der.to_vec())
                .map_err(|_| format!("ca_file: {} holds an invalid certificate", path.display()))?;
            b = b.add_root_certificate(cert);
            n += 1;
        }
        if n == 0 {
            return Err(format!(
                "ca_file: {} holds no PEM certificate",
                path.display()
            ));
        }
    }
    b.build_rustls()
        .map_err(|e| format!("cannot set up TLS for {host}: {e}"))
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "email"
    }

    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(body, None))
    }

    fn send_to<'a>(
        &'a self,
        body: &'a NotificationBody,
        to: Option<&'a Recipient>,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(body, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EmailSettings {
        EmailSettings {
            host: "smtp.example.org".into(),
            port: 587,
            tls: TlsMode::Starttls,
            username: Some("alerts".into()),
            password: Some(Secret::new("Pa55-w0rd!")),
            from: "Secops <alerts@example.org>".into(),
            to: vec!["ops@example.org".into()],
            timeout_ms: 1_000,
            ca_file: None,
            subject_template: None,
            template: None,
        }
    }

    #[test]
    fn loopback_hosts_are_names_or_addresses_of_this_machine() {
        for h in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "smtp.example.org",
            "10.0.0.1",
            "localhost.example.org",
            "::2",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn bad_settings_name_the_setting_and_never_the_password() {
        let mut s = settings();
        s.tls = TlsMode::None;
        let e = EmailChannel::new("mail", s).unwrap_err().to_string();
        assert!(
            e.contains("tls = \"none\" is only allowed to a loopback host"),
            "{e}"
        );
        let mut s = settings();
        s.to = vec!["ops@example.org".into(), "not an address".into()];
        let e = EmailChannel::new("mail", s).unwrap_err().to_string();
        assert!(
            e.contains("to[1]: `not an address` is not an email address"),
            "{e}"
        );
        let mut s = settings();
        s.to = vec![];
        let e = EmailChannel::new("mail", s).unwrap_err().to_string();
        assert!(e.contains("to must list 1 to 50"), "{e}");
        let mut s = settings();
        s.username = None;
        let e = EmailChannel::new("mail", s).unwrap_err().to_string();
        assert!(e.contains("no username") && !e.contains("Pa55"), "{e}");
        let mut s = settings();
        s.tls = TlsMode::None;
        s.host = "127.0.0.1".into();
        let ok = EmailChannel::new("mail", s).unwrap();
        assert!(!format!("{ok:?}").contains("Pa55"));
        let scrubbed = ok.scrub("535 bad AGFsZXJ0cwBQYTU1LXcwcmQh and Pa55-w0rd! UGE1NS13MHJkIQ==");
        assert_eq!(scrubbed, "535 bad *** and *** ***");
        let mut s = settings();
        s.password = Some(Secret::new("pässwörd-42"));
        let ch = EmailChannel::new("mail", s).unwrap();
        assert_eq!(
            ch.scrub("535 bad pässwörd-42 (p..ssw..rd-42)"),
            "535 bad *** (***)"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_retried_and_says_where() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let mut s = settings();
        s.host = "127.0.0.1".into();
        s.port = port;
        let ch = EmailChannel::new("mail", s).unwrap();
        let body = crate::alerts::outbox::self_body(
            crate::alerts::NotificationKind::Test,
            "channel_test",
            crate::alerts::Level::Info,
            "mail",
            &[],
            "t".into(),
            "s".into(),
            0,
        );
        match ch.send(&body).await {
            Delivery::Retry { reason, .. } => {
                assert!(
                    reason.contains(&format!("connect at 127.0.0.1:{port} failed")),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
