//! Anything that changes the world, always through [`gate`]: credential rotation and
//! blocking an IP. Also the small file helpers they share (private, durable writes) and the
//! crash hook the crash-safety tests use.

pub mod block_ip;
pub mod credentials;
pub mod gate;

use std::io::Write;
use std::path::Path;

pub use gate::{Call, Gate, GateError, Mode};

/// Create `path` (it must not exist) with mode 0600, write `bytes` and fsync.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replace `path` with `bytes` (0600), durably: write a fresh file, fsync, then overwrite.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    write_private_new(path, bytes)
}

/// fsync a directory so renames in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Test hook: when `SECOPS_TEST_CRASH_AT` names `step`, the process aborts right there (as
/// a kill -9 would), so tests can prove recovery from every step.
pub fn crash_point(step: &str) {
    if std::env::var("SECOPS_TEST_CRASH_AT").is_ok_and(|v| v == step) {
        eprintln!("secops-mcp: SECOPS_TEST_CRASH_AT={step}: aborting");
        std::process::abort();
    }
}
