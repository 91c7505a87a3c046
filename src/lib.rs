//! secops-mcp: a Model Context Protocol server that lets AI agents check and defend an
//! estate monitored by Wazuh. The binary (`src/main.rs`, one file per subcommand in
//! `src/cli/`) is a thin CLI over this library, so tests, benches and examples reuse exactly
//! the code that ships. The Wazuh simulator is its own crate (`crates/wazuh-sim`), linked
//! into the binary only with the default `demo` feature.

pub mod alerts;
pub mod calllog;
pub mod checks;
pub mod clock;
pub mod config;
pub mod context;
pub mod incidents;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod remediation;
pub mod selfwatch;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod util;
pub mod wazuh;
