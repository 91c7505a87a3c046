//! The peers' setup: find a peer's binary, installing its Debian package with apt-get when
//! it is missing (as root); start it as a child process that is killed when dropped; wait
//! until it answers over HTTP; pick free loopback ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `binary`, installing `package` first when it is not on PATH.
pub fn ensure(binary: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(p) = on_path(binary) {
        return Ok(p);
    }
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        return Err(format!(
            "`{binary}` is not on PATH; install it with `apt-get install -y {package}` (as root)"
        ));
    }
    println!("setup: `{binary}` is missing; apt-get install -y {package}");
    if !apt(&["install", "-y", "-q", package]) {
        // A fresh machine may have no package lists yet.
        let _ = apt(&["update", "-q"]);
        apt(&["install", "-y", "-q", package]);
    }
    on_path(binary).ok_or_else(|| {
        format!("`apt-get install -y {package}` did not provide `{binary}`; see apt's output above")
    })
}

fn apt(args: &[&str]) -> bool {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(binary))
        .find(|p| p.is_file())
}

/// The version line a binary prints for `--version` (on stdout or stderr).
pub fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// A free TCP port on 127.0.0.1 (bound and released; a peer binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A child process, killed and reaped when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Start `cmd` with stdout discarded and stderr to `log` (kept for failures).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc, String> {
        let err = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait (up to `timeout`) until `url` answers 2xx; false when it never did or `proc` died.
pub async fn wait_ready(url: &str, proc: &mut Proc, timeout: Duration) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if !proc.alive() {
            return false;
        }
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The last lines of a peer's log, for a failure message.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n    ")
}
