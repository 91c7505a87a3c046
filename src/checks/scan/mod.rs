//! scan_host: a scope-gated TCP scanner (issue 4, in progress; not yet a tool). Built so
//! far: the scope rules that decide before any packet which addresses a scan may touch,
//! port specifications, the connect-scan engine and service detection.

pub mod engine;
pub mod ports;
pub mod scope;
pub mod service;
