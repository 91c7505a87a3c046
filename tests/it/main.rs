//! The integration suite: one test binary (linked once) with a module per subject. Each
//! module drives the real surfaces (the binary over stdio, the HTTP server, the simulator,
//! TLS servers, Docker, network namespaces); shared helpers are in tests/common/.

#[path = "../common/mod.rs"]
mod common;

mod cert_check;
mod channels_providers;
mod cli;
mod config_parity;
mod contact_routes;
mod containers_docker;
mod email;
mod escalation;
mod http_security;
mod incidents;
mod inspector_interop;
mod mcp_e2e;
mod monitor_cli;
mod monitor_kinds;
mod monitoring;
mod outbox;
mod rate_limits;
mod readme;
mod remediation;
mod scan;
mod secrets;
mod secrets_channels;
mod security_events;
mod self_monitor;
mod silences;
mod uptime;
mod wazuh_client;
mod wazuh_health;
