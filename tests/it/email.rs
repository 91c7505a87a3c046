//! The `email` channel against a real SMTP server (aiosmtpd, tests/common/smtp.rs): STARTTLS
//! under a test CA with AUTH, the received headers and both bodies (parsed by Python's own
//! `email` package); implicit TLS; a wrong password, a 550 and a 451; a server that does not
//! offer STARTTLS (refused: nothing sent, no AUTH, no MAIL FROM); a certificate from another
//! CA (no AUTH either); `tls = "none"` to a remote host refused by `config check`; and
//! `secops-mcp channels test NAME` end to end. The password never appears in what we say.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::Scratch;
use crate::common::smtp::{SMTP_PASSWORD, SMTP_USER, SmtpMode, SmtpServer, parse_message};
use secops_mcp::alerts::{AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind};
use secops_mcp::config::Secret;
use secops_mcp::notify::{Channel, Delivery, EmailChannel, EmailSettings, TlsMode};

fn settings(server: &SmtpServer, tls: TlsMode, password: &str) -> EmailSettings {
    EmailSettings {
        host: "127.0.0.1".into(),
        port: server.port,
        tls,
        username: Some(SMTP_USER.into()),
        password: Some(Secret::new(password)),
        from: "Secops Alerts <alerts@secops.test>".into(),
        to: vec!["ops@secops.test".into(), "Lead <lead@secops.test>".into()],
        timeout_ms: 15_000,
        ca_file: Some(server.ca_file.clone()),
        subject_template: None,
        template: None,
    }
}

fn alert(n: u32, level: Level, state: AlertState, title: &str) -> AlertSnapshot {
    AlertSnapshot {
        id: format!("ALR-{n}"),
        fingerprint: format!("fp{n}"),
        episode: format!("fp{n}-18c"),
        monitor: "certs".into(),
        code: "cert_expiring".into(),
        level,
        state,
        title: title.into(),
        summary: "The certificate of mail.example expires in 5 days.\nRenew it <now>.".into(),
        labels: BTreeMap::from([("target".into(), "mail.example:443".into())]),
        value: Some("5 days".into()),
        started_at: "2026-03-01T10:00:00Z".into(),
        resolved_at: (state == AlertState::Resolved).then(|| "2026-03-01T11:00:00Z".into()),
        runbook: Some("https://runbooks.example/certs".into()),
    }
}

fn body(kind: NotificationKind, dedup: &str, alerts: Vec<AlertSnapshot>) -> NotificationBody {
    NotificationBody {
        kind,
        group_key: "certs".into(),
        group_labels: BTreeMap::from([("monitor".into(), "certs".into())]),
        escalation: None,
        dedup_key: dedup.into(),
        alerts,
        digest: vec![],
    }
}

fn assert_no_password(text: &str) {
    assert!(!text.contains(SMTP_PASSWORD), "password shown: {text}");
    assert!(!text.contains("wrong-Pa55"), "password shown: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_auth_delivers_plain_and_html_with_our_headers() {
    let Some(server) = SmtpServer::start(SmtpMode::Starttls).await else {
        return;
    };
    let ch =
        EmailChannel::new("mail", settings(&server, TlsMode::Starttls, SMTP_PASSWORD)).unwrap();
    let firing = body(
        NotificationKind::Firing,
        "fp1-18c",
        vec![alert(
            1,
            Level::Critical,
            AlertState::Firing,
            "Certificate of <b>mail.example</b> expires in 5 days",
        )],
    );
    match ch.send(&firing).await {
        Delivery::Delivered { answer, .. } => {
            assert!(
                answer.starts_with("SMTP 250") && answer.contains("queued as test-1"),
                "{answer}"
            )
        }
        other => panic!("not delivered: {other:?}"),
    }
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1);
    let m = parse_message(&msgs[0]);
    assert_eq!(m.header("From"), Some("Secops Alerts <alerts@secops.test>"));
    assert_eq!(
        m.header("To"),
        Some("ops@secops.test, Lead <lead@secops.test>")
    );
    assert_eq!(
        m.header("Subject"),
        Some("[CRITICAL] Certificate of <b>mail.example</b> expires in 5 days")
    );
    assert_eq!(m.header("X-Secops-Dedup-Key"), Some("fp1-18c"));
    assert!(m.header("Date").is_some(), "{:?}", m.headers);
    assert!(
        m.header("Content-Type")
            .is_some_and(|t| t.starts_with("multipart/alternative")),
        "{:?}",
        m.headers
    );
    let message_id = m.header("Message-ID").unwrap().to_string();
    assert!(
        message_id.starts_with("<secops.") && message_id.ends_with("@secops.test>"),
        "{message_id}"
    );
    let plain = m.part("text/plain").expect("a plain part");
    assert!(
        plain.contains("FIRING CRITICAL: Certificate of <b>mail.example</b> expires in 5 days"),
        "{plain}"
    );
    assert!(plain.contains("Renew it <now>."), "{plain}");
    assert!(
        plain.contains("  Labels: target=mail.example:443"),
        "{plain}"
    );
    assert!(
        plain.contains("  Runbook: https://runbooks.example/certs"),
        "{plain}"
    );
    let html = m.part("text/html").expect("an html part");
    assert!(!html.contains("<b>mail.example</b>"), "{html}");
    assert!(
        html.contains("Certificate of &lt;b&gt;mail.example&lt;/b&gt; expires"),
        "{html}"
    );
    assert!(html.contains("Renew it &lt;now&gt;."), "{html}");
    assert_eq!(
        server.recipients(1),
        ["ops@secops.test", "lead@secops.test"]
    );
    let commands = server.commands();
    assert!(commands.contains("AUTH PLAIN alerts"), "{commands}");
    assert!(
        commands.contains("MAIL FROM:<alerts@secops.test>"),
        "{commands}"
    );

    // A redelivery of the same notification has the same Message-ID; the resolution and a
    // group say so in the subject.
    assert!(matches!(ch.send(&firing).await, Delivery::Delivered { .. }));
    let resolved = body(
        NotificationKind::Resolved,
        "fp1-18c",
        vec![alert(
            1,
            Level::Critical,
            AlertState::Resolved,
            "Certificate renewed",
        )],
    );
    assert!(matches!(
        ch.send(&resolved).await,
        Delivery::Delivered { .. }
    ));
    let group = body(
        NotificationKind::Firing,
        "grp-1",
        (1..=3)
            .map(|n| alert(n, Level::Warning, AlertState::Firing, &format!("cert {n}")))
            .chain([alert(4, Level::Critical, AlertState::Firing, "cert 4")])
            .collect(),
    );
    assert!(matches!(ch.send(&group).await, Delivery::Delivered { .. }));
    let msgs: Vec<_> = server.messages().iter().map(|m| parse_message(m)).collect();
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[1].header("Message-ID"), Some(message_id.as_str()));
    assert_eq!(
        msgs[2].header("Subject"),
        Some("[RESOLVED] Certificate renewed")
    );
    assert_ne!(msgs[2].header("Message-ID"), Some(message_id.as_str()));
    assert!(
        msgs[2]
            .part("text/plain")
            .unwrap()
            .contains("RESOLVED CRITICAL: Certificate renewed"),
    );
    assert_eq!(
        msgs[3].header("Subject"),
        Some("[CRITICAL] 4 alerts from certs")
    );
    assert_eq!(msgs[3].header("X-Secops-Dedup-Key"), Some("grp-1"));
    let plain = msgs[3].part("text/plain").unwrap();
    for n in 1..=4 {
        assert!(plain.contains(&format!(": cert {n}\n")), "{plain}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_delivers() {
    let Some(server) = SmtpServer::start(SmtpMode::Implicit).await else {
        return;
    };
    let ch =
        EmailChannel::new("mail", settings(&server, TlsMode::Implicit, SMTP_PASSWORD)).unwrap();
    let b = body(
        NotificationKind::Firing,
        "fp2-1",
        vec![alert(
            2,
            Level::Emergency,
            AlertState::Firing,
            "Manager down",
        )],
    );
    let d = ch.send(&b).await;
    assert!(matches!(d, Delivery::Delivered { .. }), "{d:?}");
    let m = parse_message(&server.messages()[0]);
    assert_eq!(m.header("Subject"), Some("[EMERGENCY] Manager down"));
    assert!(server.commands().contains("AUTH PLAIN alerts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusals_are_classified_and_never_show_the_password() {
    let Some(server) = SmtpServer::start(SmtpMode::Starttls).await else {
        return;
    };
    let b = body(
        NotificationKind::Firing,
        "fp3-1",
        vec![alert(3, Level::Critical, AlertState::Firing, "t")],
    );
    // The server echoes the wrong password in its 535 answer: we must not repeat it.
    let wrong =
        EmailChannel::new("mail", settings(&server, TlsMode::Starttls, "wrong-Pa55")).unwrap();
    match wrong.send(&b).await {
        Delivery::Failed { reason, .. } => {
            assert!(
                reason.contains("535") && reason.contains("AUTH"),
                "{reason}"
            );
            assert!(reason.contains("credentials alerts:***"), "{reason}");
            assert_no_password(&reason);
        }
        other => panic!("a wrong password must fail for good: {other:?}"),
    }
    assert!(server.commands().contains("AUTH PLAIN alerts"));
    assert!(
        !server.commands().contains("MAIL FROM"),
        "{}",
        server.commands()
    );

    let mut s = settings(&server, TlsMode::Starttls, SMTP_PASSWORD);
    s.to = vec!["reject-me@secops.test".into()];
    let bad_rcpt = EmailChannel::new("mail", s).unwrap();
    match bad_rcpt.send(&b).await {
        Delivery::Failed { reason, .. } => {
            assert!(
                reason.contains("SMTP 550") && reason.contains("no such user"),
                "{reason}"
            );
            assert_no_password(&reason);
        }
        other => panic!("550 must fail for good: {other:?}"),
    }
    let mut s = settings(&server, TlsMode::Starttls, SMTP_PASSWORD);
    s.to = vec!["later@secops.test".into()];
    let busy = EmailChannel::new("mail", s).unwrap();
    match busy.send(&b).await {
        Delivery::Retry { reason, .. } => {
            assert!(
                reason.contains("SMTP 451") && reason.contains("try again later"),
                "{reason}"
            );
        }
        other => panic!("451 must be retried: {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_gets_nothing_in_cleartext() {
    let Some(server) = SmtpServer::start(SmtpMode::NoStarttls).await else {
        return;
    };
    let ch =
        EmailChannel::new("mail", settings(&server, TlsMode::Starttls, SMTP_PASSWORD)).unwrap();
    let b = body(
        NotificationKind::Firing,
        "fp4-1",
        vec![alert(4, Level::Critical, AlertState::Firing, "t")],
    );
    match ch.send(&b).await {
        Delivery::Failed { reason, .. } => {
            assert!(
                reason.contains(&format!(
                    "the server at 127.0.0.1:{} does not offer STARTTLS; refusing to send in cleartext",
                    server.port
                )),
                "{reason}"
            );
            assert_no_password(&reason);
        }
        other => panic!("must fail for good, never fall back: {other:?}"),
    }
    // Neither the password nor the sender reached it.
    assert_eq!(server.commands(), "");
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_gets_no_password() {
    let Some(server) = SmtpServer::start(SmtpMode::Starttls).await else {
        return;
    };
    let other = rcgen::generate_simple_self_signed(vec!["other.test".into()]).unwrap();
    let scratch = Scratch::new();
    let other_ca = scratch.write("other-ca.pem", &other.cert.pem());
    let mut s = settings(&server, TlsMode::Starttls, SMTP_PASSWORD);
    s.ca_file = Some(other_ca);
    let ch = EmailChannel::new("mail", s).unwrap();
    let b = body(
        NotificationKind::Firing,
        "fp5-1",
        vec![alert(5, Level::Critical, AlertState::Firing, "t")],
    );
    match ch.send(&b).await {
        Delivery::Retry { reason, .. } | Delivery::Failed { reason, .. } => {
            assert!(
                reason.contains(&format!(
                    "STARTTLS at 127.0.0.1:{} failed: Connection error: invalid peer certificate: UnknownIssuer",
                    server.port
                )),
                "{reason}"
            );
            assert_no_password(&reason);
        }
        other => panic!("an untrusted certificate must not deliver: {other:?}"),
    }
    assert_eq!(server.commands(), "");
}

async fn run_cli(
    scratch: &Scratch,
    env: &[(&str, String)],
    args: &[&str],
) -> (Option<i32>, String) {
    let mut e = scratch.env();
    for (k, v) in env {
        e.insert(k.to_string(), v.clone());
    }
    let mut cmd = crate::common::server_command(&e, args);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command must finish")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_test_sends_a_test_email_and_prints_the_server_answer() {
    let Some(server) = SmtpServer::start(SmtpMode::Starttls).await else {
        return;
    };
    let scratch = Scratch::new();
    let config = scratch.write(
        "secops.toml",
        &format!(
            "[[channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {}\n\
             username = \"{SMTP_USER}\"\npassword_env = \"MAIL_PASSWORD\"\n\
             from = \"alerts@secops.test\"\nto = [\"ops@secops.test\"]\nca_file = \"{}\"\n\
             [routing]\nwarning = [\"mail\", \"log\"]\n",
            server.port,
            server.ca_file.display()
        ),
    );
    let cfg = config.to_string_lossy().to_string();
    let env = |pw: &str| {
        vec![
            ("SECOPS_CONFIG", cfg.clone()),
            ("MAIL_PASSWORD", pw.to_string()),
            // Logs at trace level go to stderr, which `run_cli` reads too.
            ("SECOPS_LOG", "trace".to_string()),
        ]
    };
    let (code, out) = run_cli(&scratch, &env(SMTP_PASSWORD), &["channels", "test", "mail"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("mail (email): delivered")
            && out.contains("answer: SMTP 250 2.0.0 queued as test-1"),
        "{out}"
    );
    let m = parse_message(&server.messages()[0]);
    assert_eq!(
        m.header("Subject"),
        Some("[INFO] Test notification for channel mail")
    );
    let (code, out) = run_cli(&scratch, &env("wrong-Pa55"), &["channels", "test", "mail"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("refused for good") && out.contains("535"),
        "{out}"
    );
    assert_no_password(&out);
    let (code, out) = run_cli(&scratch, &env(SMTP_PASSWORD), &["channels", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("mail") && out.contains("email") && out.contains("warning"),
        "{out}"
    );
    let (code, out) = run_cli(&scratch, &env(SMTP_PASSWORD), &["config", "check"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("MAIL_PASSWORD"), "{out}");
    assert_no_password(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_none_to_a_remote_host_is_a_config_error_naming_the_key() {
    let scratch = Scratch::new();
    let config = scratch.write(
        "secops.toml",
        "[[channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"smtp.example.org\"\n\
         tls = \"none\"\nfrom = \"alerts@example.org\"\nto = [\"ops@example.org\"]\n",
    );
    let env = [("SECOPS_CONFIG", config.to_string_lossy().to_string())];
    let (code, out) = run_cli(&scratch, &env, &["config", "check"]).await;
    assert_eq!(code, Some(78), "{out}");
    assert!(
        out.contains("channels[0].tls") && out.contains("only allowed to a loopback host"),
        "{out}"
    );
}
