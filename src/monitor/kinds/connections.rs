//! The `connections` monitor kind: ESTABLISHED TCP connections to watched remote ports
//! (default 22, 23, 3389, 5900) from /proc/net/tcp and tcp6, minus the `allow` list of
//! expected peers (CIDRs); one observation listing them (bounded, sanitised).

use std::path::PathBuf;

use serde::Serialize;

use super::{KeyError, KindKeys, KindRun};
use crate::checks::connections::{self, ConnectionsSpec};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionsSettings {
    pub ports: Vec<u16>,
    /// As written (CIDRs or addresses).
    pub allow: Vec<String>,
    #[serde(skip)]
    pub spec: ConnectionsSpec,
    /// Where the TCP tables are read (`/proc`; tests point elsewhere).
    #[serde(skip)]
    pub proc_root: PathBuf,
}

impl ConnectionsSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let ports = k.integers("ports")?;
        let allow = k.strings("allow")?.unwrap_or_default();
        let spec = ConnectionsSpec::parse(k.prefix(), ports.as_deref(), &allow)?;
        Ok(ConnectionsSettings {
            ports: spec.ports.iter().copied().collect(),
            allow,
            spec,
            proc_root: PathBuf::from("/proc"),
        })
    }
}

pub async fn observe(s: &ConnectionsSettings) -> Result<KindRun, String> {
    let spec = s.spec.clone();
    let root = s.proc_root.clone();
    let report = tokio::task::spawn_blocking(move || connections::run(&spec, &root))
        .await
        .map_err(|e| format!("connections: {e}"))?
        .map_err(|e| format!("cannot read the TCP tables: {e}"))?;
    Ok(KindRun {
        observations: report.observations(),
        complete: true,
    })
}
