//! Shared helpers for integration tests, benchmarks and end-to-end suites: include with
//! `mod support;`. `tls` builds test PKIs with rcgen and runs real local TLS (and
//! STARTTLS) servers on 127.0.0.1 for `check_cert` and anything else that speaks TLS.
#![allow(dead_code)]

pub mod netns;
pub mod tls;
