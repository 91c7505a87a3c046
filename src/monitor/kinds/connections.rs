//! The `connections` monitor kind: ESTABLISHED TCP connections to watched remote ports
//! (default 22, 23, 3389, 5900) from /proc/net/tcp and tcp6, minus the `allow` list of
//! expected peers (CIDRs); one observation listing them (bounded, sanitised).

use std::path::PathBuf;

use serde::Serialize;

use super::{KeyError, KindKeys, KindRun};
use crate::checks::connections::{self, ConnectionsSpec};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionsSettings {
    /// The watched ports and the expected peers.
    #[serde(serialize_with = "ser_spec")]
    pub spec: ConnectionsSpec,
    /// Where the TCP tables are read (`/proc`; tests point elsewhere).
    pub proc_root: PathBuf,
}

fn ser_spec<S: serde::Serializer>(spec: &ConnectionsSpec, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let allow: Vec<String> = spec.allow.iter().map(ToString::to_string).collect();
    let mut m = s.serialize_struct("ConnectionsSpec", 2)?;
    m.serialize_field("ports", &spec.ports)?;
    m.serialize_field("allow", &allow)?;
    m.end()
}

impl ConnectionsSettings {
    pub fn parse(k: &mut KindKeys) -> Result<Self, KeyError> {
        let ports = k.integers("ports")?;
        let allow = k.strings("allow")?.unwrap_or_default();
        let spec = ConnectionsSpec::parse(k.prefix(), ports.as_deref(), &allow)?;
        Ok(ConnectionsSettings {
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
