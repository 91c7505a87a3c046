//! Test hosts in network namespaces: `ip netns` + a veth pair give each host its own
//! address, so a scan crosses a real (virtual) link. A host either answers closed ports with
//! RST, or drops everything but a few ports with nft inside its namespace. Listeners are
//! bound inside the namespace from a helper thread that joins it (`setns`), then served
//! from the test's own runtime. Needs root and iproute2 (nftables for the dropping host).

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Why namespace tests cannot run here, or `None` when they can. With
/// `SECOPS_REQUIRE_NETNS=1` (CI) a missing capability is a failure, not a skip.
pub fn unavailable(need_nft: bool) -> Option<String> {
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("not running as root".to_string())
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("`ip` (iproute2) is not installed".to_string())
    } else if need_nft && Command::new("nft").arg("--version").output().is_err() {
        Some("`nft` (nftables) is not installed".to_string())
    } else {
        None
    };
    if let Some(r) = &reason {
        assert!(
            std::env::var("SECOPS_REQUIRE_NETNS").as_deref() != Ok("1"),
            "SECOPS_REQUIRE_NETNS=1 but namespace tests cannot run: {r}"
        );
        eprintln!("SKIP: network-namespace test: {r}");
    }
    reason
}

/// A host in its own network namespace, reachable at `addr` from the test.
pub struct NetnsHost {
    pub name: String,
    pub addr: Ipv4Addr,
    veth: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetnsHost {
    /// A host whose closed ports answer RST.
    pub fn rst() -> Self {
        Self::create(None)
    }

    /// A host whose firewall drops every TCP packet except to `open_ports`.
    pub fn dropping(open_ports: &[u16]) -> Self {
        Self::create(Some(open_ports))
    }

    fn create(firewall: Option<&[u16]>) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("secops-{pid}-{n}");
        let veth = format!("vs{}x{n}", pid % 100_000);
        let peer = format!("{veth}p");
        let (a, b) = (100 + (pid % 100) as u8, (n % 250) as u8);
        let host_ip = format!("10.{a}.{b}.1/24");
        let addr = Ipv4Addr::new(10, a, b, 2);
        let host = NetnsHost {
            name: name.clone(),
            addr,
            veth: veth.clone(),
        };
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &name],
            vec![
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
            ],
            vec!["ip", "link", "set", &peer, "netns", &name],
            vec!["ip", "addr", "add", &host_ip, "dev", &veth],
            vec!["ip", "link", "set", &veth, "up"],
            vec!["ip", "-n", &name, "link", "set", "lo", "up"],
            vec!["ip", "-n", &name, "link", "set", &peer, "up"],
        ];
        let ns_addr = format!("{addr}/24");
        for step in steps {
            run(&step).unwrap_or_else(|e| panic!("creating test namespace: {e}"));
        }
        run(&["ip", "-n", &name, "addr", "add", &ns_addr, "dev", &peer])
            .unwrap_or_else(|e| panic!("creating test namespace: {e}"));
        if let Some(open) = firewall {
            let ports: Vec<String> = open.iter().map(|p| p.to_string()).collect();
            let rules = format!(
                "table inet secops_test {{\n  chain input {{\n    type filter hook input priority 0; policy drop;\n    iif lo accept\n    ct state established,related accept\n    tcp dport {{ {} }} accept\n  }}\n}}\n",
                ports.join(", ")
            );
            let mut child = Command::new("ip")
                .args(["netns", "exec", &name, "nft", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("spawn nft");
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(rules.as_bytes())
                .expect("write nft rules");
            assert!(child.wait().expect("nft").success(), "nft rules failed");
        }
        host
    }

    /// Bind a TCP listener on `port` inside the namespace (0: any free port).
    pub fn listen(&self, port: u16) -> TcpListener {
        let path = format!("/var/run/netns/{}", self.name);
        let addr = self.addr;
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path).expect("open netns");
            // This thread alone moves into the namespace; the socket stays there.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            TcpListener::bind((addr, port)).expect("bind inside the namespace")
        })
        .join()
        .expect("listener thread")
    }
}

impl Drop for NetnsHost {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
        let _ = run(&["ip", "link", "del", &self.veth]);
    }
}

/// Serve `listener` from the current tokio runtime: write `greeting` (if any) on accept,
/// answer an HTTP request with `http_reply` (if any), then hold the connection briefly.
pub fn serve(
    listener: TcpListener,
    greeting: &'static [u8],
    http_reply: Option<&'static [u8]>,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    listener.set_nonblocking(true).expect("nonblocking");
    let l = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if !greeting.is_empty() {
                    let _ = s.write_all(greeting).await;
                }
                if let Some(reply) = http_reply {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(reply).await;
                }
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            });
        }
    })
}
