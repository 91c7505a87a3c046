//! Shared helpers of the integration suite (tests/it/) and the benches: which file is what.
//! - `mcp`: start the real server (a child process over stdio, or in-process over HTTP) and
//!   connect rmcp's own client in either protocol era; call tools; record notifications.
//! - `sim`: the built-in Wazuh simulator wired to a server through `SECOPS_*` (`SimEnv`).
//! - `tls`: test PKIs (rcgen) and real local TLS / STARTTLS / plaintext servers on loopback.
//! - `netns`: network namespaces with veth pairs and nftables, for scans of other hosts.
//! - `sinks`: a recording HTTP receiver for notification channels, answering from a script.
//! - `smtp`: a real SMTP server (aiosmtpd, tests/smtp/server.py) with a test CA and AUTH.
//! - `providers`: fakes of Slack's, Twilio's and PagerDuty's APIs that check request shapes.
//! - this file: `Scratch`, a temporary state directory and scratch space per test.
#![allow(dead_code)]

pub mod mcp;
pub mod netns;
pub mod providers;
pub mod sim;
pub mod sinks;
pub mod smtp;
pub mod tls;

#[allow(unused_imports)]
pub use mcp::*;
#[allow(unused_imports)]
pub use sim::SimEnv;
#[allow(unused_imports)]
pub use tls::self_signed_pem;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A temporary state directory (and scratch space) that lives as long as the test.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write scratch file");
        p
    }
    /// Base environment for a server using this scratch space.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(
            "SECOPS_STATE_DIR".to_string(),
            self.state_dir().to_string_lossy().to_string(),
        );
        m
    }
}
