//! Established TCP connections to watched remote ports (the `connections` monitor's check):
//! read from `/proc/net/tcp` and `/proc/net/tcp6`, minus an allow list of expected peers.
//! By default the remote-administration ports (SSH 22, Telnet 23, RDP 3389, VNC 5900) are
//! watched: a session from this host to one of them that nobody expects is worth a look.
//! The alert lists the connections, bounded; everything in it is numbers and addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use ipnet::IpNet;
use serde::Serialize;

use super::ArgError;
use crate::alerts::{Level, Observation};

/// The remote ports watched by default.
pub const DEFAULT_PORTS: [u16; 4] = [22, 23, 3389, 5900];
/// Connections listed in a report (the count is always exact).
pub const MAX_LISTED: usize = 50;
/// `/proc/net/tcp` state code of ESTABLISHED.
const ESTABLISHED: u8 = 0x01;

/// What to watch, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionsSpec {
    pub ports: BTreeSet<u16>,
    pub allow: Vec<IpNet>,
}

impl ConnectionsSpec {
    /// `key` names the setting in errors (e.g. `monitors[3]`).
    pub fn parse(key: &str, ports: Option<&[i64]>, allow: &[String]) -> Result<Self, ArgError> {
        let ports = match ports {
            None => DEFAULT_PORTS.into_iter().collect(),
            Some(list) => {
                if list.is_empty() {
                    return Err(ArgError::new(
                        format!("{key}.ports"),
                        "is empty: name at least one port, or leave it out for 22, 23, 3389, 5900",
                    ));
                }
                list.iter()
                    .map(|p| {
                        u16::try_from(*p).ok().filter(|p| *p > 0).ok_or_else(|| {
                            ArgError::new(
                                format!("{key}.ports"),
                                format!("{p} is not a port (1-65535)"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let allow = allow
            .iter()
            .map(|a| {
                let t = a.as_str();
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ArgError::new(
                            format!("{key}.allow"),
                            format!(
                                "`{}` is not an address or a CIDR (e.g. 10.0.0.0/8, 2001:db8::1)",
                                crate::util::sanitize_untrusted(t.as_bytes(), 60)
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { ports, allow })
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// One established connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Connection {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The owning user id.
    pub uid: u32,
}

/// What one look at the connection tables found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionsReport {
    /// Established connections to watched ports from peers not allowed (at most
    /// [`MAX_LISTED`], sorted).
    pub unexpected: Vec<Connection>,
    /// How many there are in all.
    pub total: usize,
    /// Established connections to watched ports that the allow list expected.
    pub allowed: usize,
}

impl ConnectionsReport {
    /// One observation for the whole host: warning while any unexpected connection exists.
    pub fn observations(&self) -> Vec<Observation> {
        let listed: Vec<String> = self
            .unexpected
            .iter()
            .map(|c| format!("{} -> {} (uid {})", c.local, c.remote, c.uid))
            .collect();
        let more = self.total.saturating_sub(listed.len());
        let mut summary = if self.total == 0 {
            String::new()
        } else {
            format!(
                "{} established connection(s) to watched remote ports from this host that the allow list does not expect: {}",
                self.total,
                listed.join(", ")
            )
        };
        if more > 0 {
            summary.push_str(&format!(" (and {more} more)"));
        }
        if self.total > 0 {
            summary.push_str(
                ". Check who opened them (ss -tnp); add expected peers to the monitor's `allow` list.",
            );
        }
        vec![Observation {
            code: "unexpected_connection".into(),
            subject: BTreeMap::new(),
            level: (self.total > 0).then_some(Level::Warning),
            title: format!(
                "{} unexpected connection(s) to remote-administration ports",
                self.total
            ),
            summary,
            value: Some(self.total.to_string()),
        }]
    }
}

/// Read `<proc_root>/net/tcp` and `tcp6` (proc_root is `/proc` outside tests).
pub fn run(spec: &ConnectionsSpec, proc_root: &Path) -> std::io::Result<ConnectionsReport> {
    let mut all = Vec::new();
    let mut read_any = false;
    for (file, v6) in [("net/tcp", false), ("net/tcp6", true)] {
        match std::fs::read_to_string(proc_root.join(file)) {
            Ok(text) => {
                read_any = true;
                all.extend(parse_table(&text, v6));
            }
            // A kernel without IPv6 has no tcp6.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !read_any {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no TCP table under {} (net/tcp, net/tcp6)",
                proc_root.display()
            ),
        ));
    }
    Ok(judge(spec, all))
}

/// Established connections to watched ports, split by the allow list.
pub fn judge(spec: &ConnectionsSpec, rows: Vec<(Connection, u8)>) -> ConnectionsReport {
    let mut unexpected = BTreeSet::new();
    let mut allowed = 0;
    for (c, state) in rows {
        if state != ESTABLISHED || !spec.ports.contains(&c.remote.port()) {
            continue;
        }
        if spec.allowed(c.remote.ip()) {
            allowed += 1;
        } else {
            unexpected.insert(c);
        }
    }
    let total = unexpected.len();
    ConnectionsReport {
        unexpected: unexpected.into_iter().take(MAX_LISTED).collect(),
        total,
        allowed,
    }
}

/// Parse one `/proc/net/tcp{,6}` table into (connection, state); malformed lines are skipped.
pub fn parse_table(text: &str, v6: bool) -> Vec<(Connection, u8)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = parse_endpoint(f.get(1)?, v6)?;
            let remote = parse_endpoint(f.get(2)?, v6)?;
            let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
            let uid = f.get(7)?.parse().ok()?;
            Some((Connection { local, remote, uid }, state))
        })
        .collect()
}

/// `0100007F:0016` (IPv4: one little-endian word) or 32 hex digits (IPv6: four words,
/// each in host order) and a hex port. IPv4-mapped IPv6 becomes IPv4.
fn parse_endpoint(s: &str, v6: bool) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        if addr.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for w in 0..4 {
            let word = u32::from_str_radix(&addr[w * 8..w * 8 + 8], 16).ok()?;
            bytes[w * 4..w * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        let v6 = Ipv6Addr::from(bytes);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    } else {
        if addr.len() != 8 {
            return None;
        }
        let word = u32::from_str_radix(addr, 16).ok()?;
        IpAddr::V4(Ipv4Addr::from(word.to_le_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0F02000A:C350 6401A8C0:0016 01 00000000:00000000 02:000A7B2D 00000000  1000        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0F02000A:C352 0A0A0A0A:0016 01 00000000:00000000 02:000A7B2D 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0F02000A:C354 6401A8C0:01BB 01 00000000:00000000 02:000A7B2D 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1
   4: 0F02000A:C356 6401A8C0:0D3D 06 00000000:00000000 02:000A7B2D 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1
   garbage line
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:D431 0000000000000000FFFF00006401A8C0:170C 01 00000000:00000000 00:00000000 00000000     7        0 6 1 0000000000000000 20 4 30 10 -1
   1: B80D0120000000000000000001000000:D432 B80D0120000000000000000002000000:0016 01 00000000:00000000 00:00000000 00000000     8        0 7 1 0000000000000000 20 4 30 10 -1
";

    fn spec(allow: &[&str]) -> ConnectionsSpec {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        ConnectionsSpec::parse("m", None, &allow).unwrap()
    }

    #[test]
    fn tables_parse_in_kernel_byte_order() {
        let rows = parse_table(TCP, false);
        assert_eq!(rows.len(), 5, "the garbage line is skipped");
        assert_eq!(rows[1].0.local, "10.0.2.15:50000".parse().unwrap());
        assert_eq!(rows[1].0.remote, "192.168.1.100:22".parse().unwrap());
        assert_eq!((rows[1].0.uid, rows[1].1), (1000, ESTABLISHED));
        let rows6 = parse_table(TCP6, true);
        assert_eq!(rows6[0].0.local, "[::1]:54321".parse().unwrap());
        // IPv4-mapped peers read as IPv4 (so IPv4 allow entries match them).
        assert_eq!(rows6[0].0.remote, "192.168.1.100:5900".parse().unwrap());
        assert_eq!(rows6[1].0.remote, "[2001:db8::2]:22".parse().unwrap());
    }

    #[test]
    fn only_established_watched_unexpected_connections_count() {
        let mut rows = parse_table(TCP, false);
        rows.extend(parse_table(TCP6, true));
        let r = judge(&spec(&["10.10.10.10"]), rows.clone());
        // SSH to 192.168.1.100 and 2001:db8::2, VNC (mapped) to 192.168.1.100; HTTPS and the
        // TIME_WAIT RDP are not counted; SSH to 10.10.10.10 is allowed.
        assert_eq!((r.total, r.allowed), (3, 1), "{r:#?}");
        let o = &r.observations()[0];
        assert_eq!(o.level, Some(Level::Warning));
        assert!(
            o.summary.contains("192.168.1.100:22 (uid 1000)"),
            "{}",
            o.summary
        );
        let none = judge(
            &spec(&["192.168.1.0/24", "2001:db8::/32", "10.0.0.0/8"]),
            rows,
        );
        assert_eq!(none.total, 0);
        assert_eq!(none.observations()[0].level, None);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = ConnectionsSpec::parse("monitors[1]", Some(&[22, 70000]), &[]).unwrap_err();
        assert_eq!(e.argument, "monitors[1].ports");
        assert!(e.reason.contains("70000"));
        let e = ConnectionsSpec::parse("monitors[1]", Some(&[]), &[]).unwrap_err();
        assert_eq!(e.argument, "monitors[1].ports");
        let e = ConnectionsSpec::parse("monitors[1]", None, &["10.0.0.0/33".into()]).unwrap_err();
        assert_eq!(e.argument, "monitors[1].allow");
        assert!(ConnectionsSpec::parse("m", None, &["10.1.2.3".into(), "fd00::/8".into()]).is_ok());
    }

    #[test]
    fn the_real_tables_show_a_connection_this_test_opens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let watched = ConnectionsSpec::parse("m", Some(&[port as i64]), &[]).unwrap();
        let r = run(&watched, Path::new("/proc")).unwrap();
        assert!(
            r.unexpected.iter().any(|c| c.remote.port() == port),
            "{r:#?}"
        );
        let allowed =
            ConnectionsSpec::parse("m", Some(&[port as i64]), &["127.0.0.0/8".into()]).unwrap();
        let r = run(&allowed, Path::new("/proc")).unwrap();
        assert!(r.unexpected.iter().all(|c| c.remote.port() != port));
        assert!(r.allowed >= 1);
        assert!(run(&watched, Path::new("/nonexistent")).is_err());
    }
}
