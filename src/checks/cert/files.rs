//! Reading `file:` targets without trusting the path: resolved first (symlinks and `..`
//! cannot leave `check_cert.file_roots`), only regular files (checked before opening and
//! again with fstat on the opened handle), opened without blocking and without becoming a
//! controlling terminal, read through a bounded reader, on a blocking thread under the
//! target's timeout. Outside the roots every failure is the same sentence, so a caller
//! learns nothing about files it may not read; inside them errors are specific. No error
//! ever quotes the file's content.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::trust::io_reason;

/// Largest certificate file read for a `file:` target.
pub const MAX_CERT_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The one answer for any path outside the roots (or that cannot be resolved at all).
fn refusal(roots: &[PathBuf]) -> String {
    let listed = if roots.is_empty() {
        "none are configured, so no file can be read".to_string()
    } else {
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "refused by `check_cert.file_roots`: check_cert reads only existing regular \
         certificate files (at most {MAX_CERT_FILE_BYTES} bytes) under its file roots \
         ({listed}); this path is not one of them"
    )
}

/// Reads and parses a PEM (or single DER) certificate file. `Err` is the reason.
pub(crate) async fn read_cert_file(
    path: &Path,
    roots: Option<&[PathBuf]>,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let owned = path.to_path_buf();
    let owned_roots = roots.map(<[PathBuf]>::to_vec);
    let job = tokio::task::spawn_blocking(move || read_bounded(&owned, owned_roots.as_deref()));
    let bytes = match tokio::time::timeout(timeout, job).await {
        Ok(Ok(result)) => result?,
        Ok(Err(_)) => return Err("reading the file failed unexpectedly".into()),
        Err(_) => {
            return Err(format!(
                "timed out after {} ms while reading the file",
                timeout.as_millis()
            ));
        }
    };
    parse_cert_bytes(&path.display().to_string(), bytes)
}

/// The bounded, non-blocking read (runs on a blocking thread).
fn read_bounded(path: &Path, roots: Option<&[PathBuf]>) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let (open_path, follow) = match roots {
        Some(roots) => {
            // Resolve `..` and every symlink, then compare with the resolved roots.
            let Ok(resolved) = std::fs::canonicalize(path) else {
                return Err(refusal(roots));
            };
            if !inside(&resolved, roots) {
                return Err(refusal(roots));
            }
            (resolved, false)
        }
        None => (path.to_path_buf(), true),
    };
    // Look before opening: opening a device can have effects of its own.
    let meta = std::fs::metadata(&open_path)
        .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    check_kind(&shown.to_string(), &meta)?;
    let file = open_nonblocking(&open_path, follow)
        .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    // What was opened is what counts (the path may have changed since).
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    check_kind(&shown.to_string(), &meta)?;
    if let Some(roots) = roots
        && let Some(opened) = opened_path(&file)
        && !inside(&opened, roots)
    {
        return Err(refusal(roots));
    }
    let mut bytes =
        Vec::with_capacity(usize::try_from(meta.len().min(MAX_CERT_FILE_BYTES)).unwrap_or(0));
    file.take(MAX_CERT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    if bytes.len() as u64 > MAX_CERT_FILE_BYTES {
        return Err(too_large(&shown.to_string()));
    }
    Ok(bytes)
}

fn too_large(shown: &str) -> String {
    format!(
        "cannot read {shown}: it is larger than the {MAX_CERT_FILE_BYTES} bytes accepted for a \
         certificate file"
    )
}

fn check_kind(shown: &str, meta: &std::fs::Metadata) -> Result<(), String> {
    if meta.is_dir() {
        return Err(format!(
            "cannot read {shown}: it is a directory, not a certificate file"
        ));
    }
    if !meta.is_file() {
        return Err(format!(
            "cannot read {shown}: not a regular file (a device, pipe or socket); check_cert \
             reads only regular certificate files"
        ));
    }
    if meta.len() > MAX_CERT_FILE_BYTES {
        return Err(too_large(shown));
    }
    Ok(())
}

/// `path` (resolved) lies under one of the roots (resolved now, so a root that appears
/// after start counts, and a root that is a symlink is compared by its target).
fn inside(path: &Path, roots: &[PathBuf]) -> bool {
    roots
        .iter()
        .any(|root| std::fs::canonicalize(root).is_ok_and(|root| path.starts_with(&root)))
}

#[cfg(unix)]
fn open_nonblocking(path: &Path, follow: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path, _follow: bool) -> std::io::Result<File> {
    File::open(path)
}

/// Where the opened file really is (Linux: `/proc/self/fd/N`).
#[cfg(target_os = "linux")]
fn opened_path(file: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

#[cfg(not(target_os = "linux"))]
fn opened_path(_file: &File) -> Option<PathBuf> {
    None
}

/// PEM blocks (or one DER certificate) from the bytes read. Errors never quote the bytes.
fn parse_cert_bytes(shown: &str, bytes: Vec<u8>) -> Result<Vec<CertificateDer<'static>>, String> {
    if bytes.is_empty() {
        return Err(format!("{shown} is empty; expected a PEM certificate"));
    }
    let looks_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    if !looks_pem {
        // A single DER certificate is accepted too.
        if bytes.first() == Some(&0x30)
            && matches!(
                x509_parser::parse_x509_certificate(&bytes),
                Ok((rest, _)) if rest.is_empty()
            )
        {
            return Ok(vec![CertificateDer::from(bytes)]);
        }
        return Err(format!(
            "{shown} is not a PEM certificate file (no `-----BEGIN CERTIFICATE-----` block, and \
             not a DER certificate either)"
        ));
    }
    let mut chain = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        match item {
            Ok(cert) => chain.push(cert),
            Err(e) => return Err(format!("{shown} is not valid PEM: {}", pem_reason(&e))),
        }
    }
    if chain.is_empty() {
        return Err(format!(
            "{shown} holds no certificate (PEM blocks found, but none is `CERTIFICATE`; a \
             private key or CSR alone cannot be checked)"
        ));
    }
    Ok(chain)
}

/// The PEM parser's error without the file's text (some variants carry a line of it).
fn pem_reason(e: &rustls_pki_types::pem::Error) -> &'static str {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a block has no `-----END ...-----` line",
        Error::IllegalSectionStart { .. } => "a `-----BEGIN` line is malformed",
        Error::Base64Decode(_) => "a block is not valid base64",
        Error::SectionTooLarge => "a block is too large",
        _ => "unreadable PEM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn root_of(dir: &tempfile::TempDir) -> Vec<PathBuf> {
        vec![dir.path().to_path_buf()]
    }

    #[tokio::test]
    async fn outside_the_roots_every_failure_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let roots = root_of(&dir);
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.pem");
        std::fs::write(&secret, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("link.pem")).unwrap();
        let expected = refusal(&roots);
        for p in [
            PathBuf::from("/dev/zero"),
            PathBuf::from("/dev/stdin"),
            PathBuf::from("/proc/self/environ"),
            PathBuf::from("/etc/shadow"),
            PathBuf::from("/nonexistent/x.pem"),
            outside.path().to_path_buf(),
            secret.clone(),
            dir.path().join("link.pem"),
            dir.path()
                .join("../")
                .join(outside.path().file_name().unwrap())
                .join("secret.pem"),
            dir.path().join("missing.pem"),
        ] {
            let e = read_cert_file(&p, Some(&roots), T).await.unwrap_err();
            assert_eq!(e, expected, "{}", p.display());
        }
    }

    #[tokio::test]
    async fn inside_the_roots_errors_are_specific_and_quote_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let roots = root_of(&dir);
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let started = std::time::Instant::now();
        let e = read_cert_file(&fifo, Some(&roots), T).await.unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let big = dir.path().join("big.pem");
        let f = File::create(&big).unwrap();
        f.set_len(MAX_CERT_FILE_BYTES + 1).unwrap();
        let e = read_cert_file(&big, Some(&roots), T).await.unwrap_err();
        assert!(e.contains("larger than"), "{e}");

        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nSECRET-LINE!!\n").unwrap();
        let e = read_cert_file(&bad, Some(&roots), T).await.unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        let bad = dir.path().join("start.pem");
        std::fs::write(&bad, "-----BEGIN SECRET-START-LINE\n").unwrap();
        let e = read_cert_file(&bad, Some(&roots), T).await.unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");

        let e = read_cert_file(dir.path(), Some(&roots), T)
            .await
            .unwrap_err();
        assert!(e.contains("directory"), "{e}");
    }

    #[tokio::test]
    async fn special_files_are_refused_promptly_without_roots_too() {
        for p in ["/dev/zero", "/dev/urandom", "/dev/null"] {
            let started = std::time::Instant::now();
            let e = read_cert_file(Path::new(p), None, T).await.unwrap_err();
            assert!(e.contains("not a regular file"), "{p}: {e}");
            assert!(started.elapsed() < Duration::from_secs(2), "{p}");
        }
        // /proc files claim size 0 and are regular: read, but bounded.
        let e = read_cert_file(Path::new("/proc/self/environ"), None, T)
            .await
            .unwrap_err();
        assert!(e.contains("not a PEM") || e.contains("empty"), "{e}");
        let e = read_cert_file(Path::new("/dev/zero"), Some(&["/dev".into()]), T)
            .await
            .unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn no_roots_configured_says_so() {
        assert!(refusal(&[]).contains("none are configured"));
    }
}
