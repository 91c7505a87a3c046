//! The Wazuh client: the manager API (JWT login cached and refreshed, one re-login on an
//! invalid token, bounded 429 backoff under a client-side rate limit, per-request timeout)
//! and the indexer (OpenSearch `_cluster/health` and `_search`). Everything that speaks HTTP
//! to Wazuh lives here, with typed calls (users and password change in `security.rs`, active
//! response in `active_response.rs`); types are tolerant because real deployments differ
//! across 4.x.

mod active_response;
mod error;
mod indexer;
mod manager;
mod security;
mod tls;
pub mod types;

pub use active_response::ActiveResponseResult;
pub use error::WazuhError;
pub use indexer::{ALERTS_INDEX, AlertQuery, IndexerClient, MAX_PAGE, SearchResponse};
pub use manager::{ManagerClient, ManagerOptions};
pub use security::{ApiUser, PasswordChange};
