//! scan_host: a scope-gated TCP scanner (issue 4, in progress). So far: the scope rules that
//! decide, before any packet, which addresses a scan may touch, and the port specifications.

pub mod engine;
pub mod ports;
pub mod scope;
