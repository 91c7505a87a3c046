//! STARTTLS negotiation for `check_cert`: SMTP, IMAP, POP3, FTP (`AUTH TLS`) and the
//! PostgreSQL SSLRequest, on a plain TCP stream before the TLS handshake. Reads are
//! bounded (line length, total bytes, number of lines); server text is untrusted and only
//! ever quoted as a short sanitised snippet.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::target::StartTls;

/// Longest reply line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Total bytes read from the server during the plaintext phase.
const MAX_TOTAL: usize = 64 * 1024;
/// Reply lines accepted for one command (multi-line greetings, capability lists).
const MAX_LINES: usize = 200;
/// Characters of server text quoted in an error (a short excerpt, never a whole banner).
pub(crate) const EXCERPT_CHARS: usize = 40;

/// Why the plaintext phase failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartTlsError {
    #[error("{0}")]
    Protocol(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

fn protocol(msg: impl Into<String>) -> StartTlsError {
    StartTlsError::Protocol(msg.into())
}

/// A short, printable, labelled excerpt of server text: at most [`EXCERPT_CHARS`]
/// characters (then `…`), printable ASCII only, backticks replaced so the quote cannot be
/// closed from inside.
fn snippet(line: &str) -> String {
    let clean = crate::util::sanitize_untrusted(line.trim_end().as_bytes(), EXCERPT_CHARS);
    format!("(server text, excerpt: `{}`)", clean.replace('`', "'"))
}

/// Runs the plaintext upgrade on `stream`; on success the next bytes are the TLS handshake.
pub(crate) async fn upgrade<S>(stream: &mut S, proto: StartTls) -> Result<(), StartTlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match proto {
        StartTls::Smtp => smtp(stream).await,
        StartTls::Ftp => ftp(stream).await,
        StartTls::Imap => imap(stream).await,
        StartTls::Pop3 => pop3(stream).await,
        StartTls::Postgres => postgres(stream).await,
    }
}

/// Reads CRLF (or LF) terminated lines with bounds, keeping any bytes after a line.
struct LineReader<'a, S> {
    stream: &'a mut S,
    buf: Vec<u8>,
    total: usize,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> LineReader<'a, S> {
    fn new(stream: &'a mut S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            total: 0,
        }
    }

    async fn line(&mut self) -> Result<String, StartTlsError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let rest = self.buf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.truncate(pos);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err(protocol(format!(
                    "server sent a line longer than {MAX_LINE} bytes"
                )));
            }
            if self.total >= MAX_TOTAL {
                return Err(protocol(format!(
                    "server sent more than {MAX_TOTAL} bytes before TLS started"
                )));
            }
            let mut chunk = [0u8; 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|source| StartTlsError::Io {
                    what: "reading the server's reply",
                    source,
                })?;
            if n == 0 {
                return Err(protocol(
                    "server closed the connection before STARTTLS completed",
                ));
            }
            self.total += n;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, command: &str) -> Result<(), StartTlsError> {
        self.stream
            .write_all(command.as_bytes())
            .await
            .map_err(|source| StartTlsError::Io {
                what: "sending a command",
                source,
            })?;
        self.stream
            .flush()
            .await
            .map_err(|source| StartTlsError::Io {
                what: "sending a command",
                source,
            })
    }

    /// A reply of the form `ddd text` / `ddd-text` ... (SMTP and FTP). Returns the code and
    /// every line. FTP allows continuation lines without the code, so only a line starting
    /// with `ddd ` ends a multi-line reply.
    async fn coded_reply(&mut self) -> Result<(u16, Vec<String>), StartTlsError> {
        let first = self.line().await?;
        let code = reply_code(&first).ok_or_else(|| {
            protocol(format!("expected a numeric reply, got {}", snippet(&first)))
        })?;
        let mut lines = vec![first.clone()];
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                if lines.len() >= MAX_LINES {
                    return Err(protocol(format!(
                        "server sent more than {MAX_LINES} reply lines"
                    )));
                }
                let line = self.line().await?;
                let done = line.starts_with(&end) || line == code.to_string();
                lines.push(line);
                if done {
                    break;
                }
            }
        }
        Ok((code, lines))
    }

    /// Fails if the server sent bytes past its last reply: they would be read as TLS (and
    /// could be an injection attempt), so the upgrade is refused.
    fn ensure_drained(&self) -> Result<(), StartTlsError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(protocol(
                "server sent unexpected data after accepting STARTTLS; refusing to continue",
            ))
        }
    }
}

fn reply_code(line: &str) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match line.as_bytes().get(3) {
        None | Some(b' ') | Some(b'-') => digits.parse().ok(),
        _ => None,
    }
}

async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<(), StartTlsError> {
    let mut r = LineReader::new(stream);
    let (code, lines) = r.coded_reply().await?;
    if code != 220 {
        return Err(protocol(format!(
            "SMTP greeting was not 220 (service ready): {}",
            snippet(&lines[0])
        )));
    }
    r.send("EHLO secops-mcp.localdomain\r\n").await?;
    let (code, lines) = r.coded_reply().await?;
    if code != 250 {
        return Err(protocol(format!(
            "server rejected EHLO: {}",
            snippet(&lines[0])
        )));
    }
    let offers_starttls = lines.iter().any(|line| {
        line.get(4..)
            .map(|kw| kw.trim().eq_ignore_ascii_case("STARTTLS"))
            .unwrap_or(false)
    });
    if !offers_starttls {
        return Err(protocol(
            "server does not offer STARTTLS (not listed in its EHLO reply)",
        ));
    }
    r.send("STARTTLS\r\n").await?;
    let (code, lines) = r.coded_reply().await?;
    if code != 220 {
        return Err(protocol(format!(
            "server refused STARTTLS: {}",
            snippet(&lines[0])
        )));
    }
    r.ensure_drained()
}

async fn ftp<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<(), StartTlsError> {
    let mut r = LineReader::new(stream);
    let (code, lines) = r.coded_reply().await?;
    if code != 220 {
        return Err(protocol(format!(
            "FTP greeting was not 220 (service ready): {}",
            snippet(&lines[0])
        )));
    }
    r.send("AUTH TLS\r\n").await?;
    let (code, lines) = r.coded_reply().await?;
    if code != 234 {
        return Err(protocol(format!(
            "server refused AUTH TLS (expected 234): {}",
            snippet(&lines[0])
        )));
    }
    r.ensure_drained()
}

async fn imap<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<(), StartTlsError> {
    let mut r = LineReader::new(stream);
    let greeting = r.line().await?;
    let upper = greeting.to_ascii_uppercase();
    if !(upper.starts_with("* OK") || upper.starts_with("* PREAUTH")) {
        return Err(protocol(format!(
            "IMAP greeting was not `* OK`: {}",
            snippet(&greeting)
        )));
    }
    r.send("a1 STARTTLS\r\n").await?;
    for _ in 0..MAX_LINES {
        let line = r.line().await?;
        if line.starts_with("* ") {
            continue; // untagged data (e.g. CAPABILITY)
        }
        if let Some(status) = line.strip_prefix("a1 ") {
            if status.to_ascii_uppercase().starts_with("OK") {
                return r.ensure_drained();
            }
            return Err(protocol(format!(
                "server refused STARTTLS: {}",
                snippet(&line)
            )));
        }
        return Err(protocol(format!(
            "unexpected IMAP reply: {}",
            snippet(&line)
        )));
    }
    Err(protocol(format!(
        "no tagged reply to STARTTLS within {MAX_LINES} lines"
    )))
}

async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<(), StartTlsError> {
    let mut r = LineReader::new(stream);
    let greeting = r.line().await?;
    if !greeting.starts_with("+OK") {
        return Err(protocol(format!(
            "POP3 greeting was not `+OK`: {}",
            snippet(&greeting)
        )));
    }
    r.send("STLS\r\n").await?;
    let reply = r.line().await?;
    if !reply.starts_with("+OK") {
        return Err(protocol(format!(
            "server refused STLS: {}",
            snippet(&reply)
        )));
    }
    r.ensure_drained()
}

/// PostgreSQL SSLRequest: length 8, code 80877103 (0x04D2162F); the server answers one byte.
async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<(), StartTlsError> {
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    stream
        .write_all(&SSL_REQUEST)
        .await
        .map_err(|source| StartTlsError::Io {
            what: "sending the PostgreSQL SSLRequest",
            source,
        })?;
    let mut answer = [0u8; 1];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|source| StartTlsError::Io {
            what: "reading the answer to the PostgreSQL SSLRequest",
            source,
        })?;
    match answer[0] {
        b'S' => Ok(()),
        b'N' => Err(protocol(
            "PostgreSQL server does not accept SSL (answered `N` to SSLRequest)",
        )),
        b'E' => Err(protocol(
            "PostgreSQL server answered the SSLRequest with an error (too old, or not \
             accepting connections)",
        )),
        other => Err(protocol(format!(
            "unexpected answer 0x{other:02x} to the PostgreSQL SSLRequest (not a PostgreSQL \
             server?)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// Runs `upgrade` against a scripted server: `script` is (expected client line prefix,
    /// server answer) pairs after an initial greeting.
    async fn run(
        proto: StartTls,
        greeting: &'static [u8],
        script: Vec<(&'static str, &'static [u8])>,
    ) -> Result<(), StartTlsError> {
        let (mut client, mut server) = duplex(64 * 1024);
        let server_task = tokio::spawn(async move {
            server.write_all(greeting).await.ok();
            let mut buf = Vec::new();
            for (expect, answer) in script {
                buf.clear();
                let mut byte = [0u8; 1];
                while server.read_exact(&mut byte).await.is_ok() {
                    buf.push(byte[0]);
                    if byte[0] == b'\n' {
                        break;
                    }
                }
                assert!(
                    String::from_utf8_lossy(&buf).starts_with(expect),
                    "client sent {:?}, expected {expect:?}",
                    String::from_utf8_lossy(&buf)
                );
                server.write_all(answer).await.ok();
            }
            server
        });
        let result = upgrade(&mut client, proto).await;
        drop(server_task.await);
        result
    }

    #[tokio::test]
    async fn smtp_multiline_ehlo_with_starttls() {
        let r = run(
            StartTls::Smtp,
            b"220-mail.test ESMTP\r\n220 ready\r\n",
            vec![
                (
                    "EHLO ",
                    b"250-mail.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
                ),
                ("STARTTLS", b"220 go ahead\r\n"),
            ],
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
    }

    #[tokio::test]
    async fn smtp_without_starttls_is_a_clear_error() {
        let err = run(
            StartTls::Smtp,
            b"220 mail.test\r\n",
            vec![("EHLO ", b"250-mail.test\r\n250 SIZE 1000\r\n")],
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("does not offer STARTTLS"), "{err}");
    }

    #[tokio::test]
    async fn smtp_refusal_quotes_a_sanitised_snippet() {
        let err = run(
            StartTls::Smtp,
            b"220 mail.test\r\n",
            vec![
                ("EHLO ", b"250 STARTTLS\r\n"),
                ("STARTTLS", b"454 TLS not available \x1b[31m due to temporary reason, and this text goes on and on and on\r\n"),
            ],
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("refused STARTTLS"), "{err}");
        assert!(
            err.contains("excerpt: `454 TLS not available .[31m"),
            "{err}"
        );
        assert!(!err.contains('\x1b'));
        assert!(err.contains('…'), "{err}");
    }

    #[tokio::test]
    async fn smtp_data_after_220_is_refused() {
        let err = run(
            StartTls::Smtp,
            b"220 mail.test\r\n",
            vec![
                ("EHLO ", b"250 STARTTLS\r\n"),
                ("STARTTLS", b"220 go\r\n250 injected\r\n"),
            ],
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("unexpected data"), "{err}");
    }

    #[tokio::test]
    async fn smtp_bad_greeting() {
        let err = run(StartTls::Smtp, b"554 no service\r\n", vec![])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("greeting was not 220"), "{err}");
    }

    #[tokio::test]
    async fn imap_pop3_ftp_ok() {
        let r = run(
            StartTls::Imap,
            b"* OK IMAP ready\r\n",
            vec![(
                "a1 STARTTLS",
                b"* CAPABILITY IMAP4rev1\r\na1 OK begin TLS\r\n",
            )],
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        let r = run(
            StartTls::Pop3,
            b"+OK POP3 ready\r\n",
            vec![("STLS", b"+OK begin TLS\r\n")],
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        let r = run(
            StartTls::Ftp,
            b"220-Welcome\r\n banner line\r\n220 ready\r\n",
            vec![("AUTH TLS", b"234 AUTH TLS ok\r\n")],
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
    }

    #[tokio::test]
    async fn imap_pop3_ftp_refusals() {
        let err = run(
            StartTls::Imap,
            b"* OK ready\r\n",
            vec![("a1 STARTTLS", b"a1 BAD unknown command\r\n")],
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("refused STARTTLS"), "{err}");
        let err = run(
            StartTls::Pop3,
            b"+OK ready\r\n",
            vec![("STLS", b"-ERR not supported\r\n")],
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("refused STLS"), "{err}");
        let err = run(
            StartTls::Ftp,
            b"220 ready\r\n",
            vec![("AUTH TLS", b"502 not implemented\r\n")],
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("refused AUTH TLS"), "{err}");
    }

    #[tokio::test]
    async fn postgres_answers() {
        for (answer, ok, text) in [
            (b"S", true, ""),
            (b"N", false, "does not accept SSL"),
            (b"X", false, "unexpected answer"),
        ] {
            let (mut client, mut server) = duplex(1024);
            let task = tokio::spawn(async move {
                let mut req = [0u8; 8];
                server.read_exact(&mut req).await.ok();
                assert_eq!(req, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
                server.write_all(answer).await.ok();
                server
            });
            let r = upgrade(&mut client, StartTls::Postgres).await;
            drop(task.await);
            assert_eq!(r.is_ok(), ok);
            if let Err(e) = r {
                assert!(e.to_string().contains(text), "{e}");
            }
        }
    }

    #[tokio::test]
    async fn overlong_line_is_bounded() {
        let (mut client, mut server) = duplex(64 * 1024);
        let task = tokio::spawn(async move {
            let junk = vec![b'2'; 20 * 1024];
            server.write_all(&junk).await.ok();
            server
        });
        let err = upgrade(&mut client, StartTls::Smtp).await.unwrap_err();
        drop(task.await);
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
