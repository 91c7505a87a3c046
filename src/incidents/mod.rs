//! Incidents: our correlation of Wazuh alerts. Ingestion from the indexer, correlation,
//! severity buckets, SLA timers and escalation, the `incident_status` views and the
//! `incident_update` lifecycle. It writes (the store), so it is not under `checks/`; no MCP
//! types; time is always passed in, except by the `run` entry points.

pub mod correlate;
pub mod ingest;
pub mod model;
pub mod sla;
pub mod status;
pub mod update;

pub use correlate::absorb;
pub use ingest::{
    IngestStatus, MAX_PAGES_PER_RUN, ParsedAlert, ingest, ingest_if_idle, ingest_locked,
    ingest_page, parse_ts_ms,
};
pub use model::{
    Action, IncidentSeverity, Phase, Resolution, Status, incident_id, parse_incident_id,
};
pub use sla::{Escalation, Sla, respond_by};
pub use status::{
    AgentView, AlertView, Counts, IncidentDetail, IncidentView, NoteView, OldestOpen, PAGE_SIZE,
    RelatedAlerts, StatusArgs, StatusCounts, StatusReport, TimelineEntry, detail, status, view,
};
pub use update::{UpdateArgs, UpdateReport, update};

use crate::checks::ArgError;
use crate::config::IncidentsConfig;
use crate::store::{Store, StoreError};
use crate::wazuh::IndexerClient;

/// Why an incident call failed: a bad argument (named), or the store.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    InvalidArgument(#[from] ArgError),
    #[error("incident store error: {0}")]
    Store(#[from] StoreError),
}

/// What ingestion, incident_status and incident_update need, borrowed from the context.
pub struct IncidentDeps<'a> {
    /// The Wazuh indexer, when configured (without it, answers come from the store).
    pub indexer: Option<&'a IndexerClient>,
    pub store: &'a Store,
    pub settings: &'a IncidentsConfig,
    /// One ingest or update at a time: both read-modify-write incident rows.
    pub lock: &'a tokio::sync::Mutex<()>,
}
