//! Service detection for open ports: read what the service says first (small byte and time
//! caps), and where it stays silent probe HTTP, then name it (ssh with its version, http with
//! its Server header, smtp, redis, mysql, postgres, elasticsearch/opensearch, the Wazuh
//! ports). Banners are untrusted text bound for a model's context: sanitised and capped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes read from a service.
const MAX_READ: usize = 1024;
/// Longest banner returned.
pub const MAX_BANNER: usize = 160;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    /// e.g. `ssh`, `http`, `smtp`, `redis`, `wazuh-api`; `unknown` when nothing matched.
    pub name: String,
    /// Sanitised first line(s) the service sent, or the HTTP `Server` header.
    pub banner: Option<String>,
    /// The port answered plaintext with a TLS record: worth a TLS handshake.
    pub tls: bool,
}

/// Well-known names by port, used when the service says nothing identifying.
pub fn name_by_port(port: u16) -> Option<&'static str> {
    Some(match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 | 465 | 587 => "smtp",
        53 => "dns",
        80 | 8080 | 8000 | 8008 => "http",
        110 | 995 => "pop3",
        143 | 993 => "imap",
        389 | 636 => "ldap",
        443 | 8443 => "https",
        445 => "smb",
        1433 => "mssql",
        1514 => "wazuh-agent-events",
        1515 => "wazuh-enrollment",
        1516 => "wazuh-cluster",
        3306 => "mysql",
        3389 => "rdp",
        5432 => "postgres",
        5601 => "wazuh-dashboard",
        5900 => "vnc",
        6379 => "redis",
        9200 => "opensearch",
        27017 => "mongodb",
        55000 => "wazuh-api",
        _ => return None,
    })
}

/// Ports that usually speak TLS from the first byte (a TLS handshake is tried on them
/// when they stay silent).
pub fn is_tls_port(port: u16) -> bool {
    matches!(
        port,
        443 | 465 | 636 | 853 | 993 | 995 | 1515 | 5601 | 5986 | 6443 | 8443 | 9200 | 9443 | 55000
    )
}

/// Identify the service on an open port within `timeout` (total).
pub async fn detect(addr: SocketAddr, timeout: Duration) -> Service {
    match tokio::time::timeout(timeout, detect_inner(addr, timeout)).await {
        Ok(s) => s,
        Err(_) => fallback(addr.port(), None),
    }
}

async fn detect_inner(addr: SocketAddr, timeout: Duration) -> Service {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return fallback(addr.port(), None);
    };
    // Many services speak first (ssh, smtp, ftp, mysql): listen briefly.
    let wait = (timeout / 3).min(Duration::from_millis(700));
    let first = read_some(&mut stream, wait).await;
    if !first.is_empty() {
        return classify_greeting(addr.port(), &first);
    }
    // Silent: try HTTP on the same connection.
    let req = format!(
        "HEAD / HTTP/1.0\r\nHost: {}\r\nUser-Agent: secops-mcp\r\n\r\n",
        addr.ip()
    );
    if stream.write_all(req.as_bytes()).await.is_err() {
        return fallback(addr.port(), None);
    }
    let reply = read_some(&mut stream, wait * 2).await;
    if reply.starts_with(b"HTTP/") {
        return classify_http(addr.port(), &reply);
    }
    if reply.first() == Some(&0x15) || reply.first() == Some(&0x16) {
        // A TLS alert or handshake record in answer to plaintext: a TLS service.
        return Service {
            name: name_by_port(addr.port())
                .filter(|n| n.contains("https") || n.starts_with("wazuh") || *n == "opensearch")
                .unwrap_or("tls")
                .to_string(),
            banner: None,
            tls: true,
        };
    }
    if reply.starts_with(b"-ERR") || reply.starts_with(b"-NOAUTH") {
        return Service {
            name: "redis".into(),
            banner: Some(clean(&reply)),
            tls: false,
        };
    }
    fallback(addr.port(), (!reply.is_empty()).then(|| clean(&reply)))
}

async fn read_some(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_READ];
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + wait;
    while got < MAX_READ {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[got..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                got += n;
                // A complete line is enough for a greeting.
                if buf[..got].contains(&b'\n') && !buf[..got].starts_with(b"HTTP/") {
                    break;
                }
                if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    buf.truncate(got);
    buf
}

fn classify_greeting(port: u16, data: &[u8]) -> Service {
    let text = String::from_utf8_lossy(data);
    let banner = Some(clean(data));
    let name = if text.starts_with("SSH-") {
        "ssh"
    } else if text.starts_with("220") && text.to_ascii_lowercase().contains("ftp") {
        "ftp"
    } else if text.starts_with("220") {
        "smtp"
    } else if text.starts_with("+OK") {
        "pop3"
    } else if text.starts_with("* OK") {
        "imap"
    } else if data.len() > 5 && data[4] == 0x0a {
        // MySQL/MariaDB handshake v10: 3-byte length, sequence 0, protocol 10.
        "mysql"
    } else {
        name_by_port(port).unwrap_or("unknown")
    };
    Service {
        name: name.to_string(),
        banner,
        tls: false,
    }
}

fn classify_http(port: u16, reply: &[u8]) -> Service {
    let text = String::from_utf8_lossy(reply);
    let server = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("server")
                .then(|| v.trim().to_string())
        })
        .map(|s| clean(s.as_bytes()));
    let lower = text.to_ascii_lowercase();
    let name = if lower.contains("opensearch") || lower.contains("elasticsearch") {
        "opensearch"
    } else if port == 55000 {
        "wazuh-api"
    } else {
        "http"
    };
    Service {
        name: name.to_string(),
        banner: server.or_else(|| text.lines().next().map(|l| clean(l.as_bytes()))),
        tls: false,
    }
}

fn fallback(port: u16, banner: Option<String>) -> Service {
    Service {
        name: name_by_port(port).unwrap_or("unknown").to_string(),
        banner,
        tls: false,
    }
}

fn clean(data: &[u8]) -> String {
    let first_lines: Vec<u8> = data
        .split(|b| *b == b'\n')
        .take(2)
        .collect::<Vec<_>>()
        .join(&b' ');
    crate::util::sanitize_untrusted(&first_lines, MAX_BANNER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve(greeting: &'static [u8], http_reply: Option<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.79:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    if !greeting.is_empty() {
                        let _ = s.write_all(greeting).await;
                    }
                    if let Some(reply) = http_reply {
                        let mut buf = [0u8; 512];
                        let _ = s.read(&mut buf).await;
                        let _ = s.write_all(reply).await;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn names_ssh_with_version_and_sanitises_the_banner() {
        let addr = serve(b"SSH-2.0-OpenSSH_9.2p1 Debian\x1b[31m\r\n", None).await;
        let s = detect(addr, Duration::from_secs(2)).await;
        assert_eq!(s.name, "ssh");
        let b = s.banner.unwrap();
        assert!(b.starts_with("SSH-2.0-OpenSSH_9.2p1"), "{b}");
        assert!(!b.contains('\x1b'));
    }

    #[tokio::test]
    async fn names_http_by_its_server_header() {
        let addr = serve(
            b"",
            Some(b"HTTP/1.1 200 OK\r\nServer: nginx/1.25.3\r\nContent-Length: 0\r\n\r\n"),
        )
        .await;
        let s = detect(addr, Duration::from_secs(2)).await;
        assert_eq!(s.name, "http");
        assert_eq!(s.banner.as_deref(), Some("nginx/1.25.3"));
    }

    #[tokio::test]
    async fn names_smtp_and_caps_long_banners() {
        static LONG: &[u8] = b"220 mail.example ESMTP AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";
        let addr = serve(LONG, None).await;
        let s = detect(addr, Duration::from_secs(2)).await;
        assert_eq!(s.name, "smtp");
        assert!(s.banner.unwrap().chars().count() <= MAX_BANNER + 1);
    }

    #[tokio::test]
    async fn a_silent_port_falls_back_to_its_well_known_name_in_time() {
        let addr = serve(b"", None).await;
        let started = std::time::Instant::now();
        let s = detect(addr, Duration::from_millis(600)).await;
        assert!(started.elapsed() < Duration::from_millis(900));
        assert_eq!(s.name, "unknown");
        assert_eq!(name_by_port(55000), Some("wazuh-api"));
    }
}
