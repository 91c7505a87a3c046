//! The `file` channel: appends one JSON line per notification to a file (JSONL, e.g. for
//! Wazuh's own log collection with `<log_format>json</log_format>`). The file is created
//! 0600; a line is bounded (alerts beyond what fits are dropped and counted in
//! `truncated_alerts`) and written with one append, so concurrent writers never interleave.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{Channel, ChannelError, Delivery};
use crate::alerts::NotificationBody;

/// The default bound of one line (bytes, newline included).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// A file channel's settings.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub path: PathBuf,
    /// At most this many bytes per line (at least 1024).
    pub max_line_bytes: usize,
}

/// One configured file channel.
#[derive(Debug, Clone)]
pub struct FileChannel {
    name: String,
    path: PathBuf,
    max_line: usize,
    lock: Arc<Mutex<()>>,
}

impl FileChannel {
    /// Validate the settings (an absolute path to a file in an existing directory).
    pub fn new(name: &str, s: FileSettings) -> Result<Self, ChannelError> {
        let err = |r: String| ChannelError::new(name, r);
        if !s.path.is_absolute() {
            return Err(err(format!("path {} is not absolute", s.path.display())));
        }
        if s.path.is_dir() {
            return Err(err(format!("path {} is a directory", s.path.display())));
        }
        if s.max_line_bytes < 1024 {
            return Err(err(format!(
                "max_line_bytes must be at least 1024, not {}",
                s.max_line_bytes
            )));
        }
        Ok(Self {
            name: name.to_string(),
            path: s.path,
            max_line: s.max_line_bytes,
            lock: Arc::new(Mutex::new(())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The bounded line of one notification (newline included), or None when even a line
/// without alerts does not fit.
pub fn bounded_line(channel: &str, body: &NotificationBody, max: usize) -> Option<Vec<u8>> {
    let mut shown = body.clone();
    loop {
        let mut v = super::log::json_line(channel, &shown);
        v["ts"] = crate::util::now_rfc3339().into();
        v["truncated_alerts"] = (body.alerts.len() - shown.alerts.len()).into();
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        if line.len() <= max {
            return Some(line);
        }
        if shown.alerts.pop().is_none() {
            shown.digest.pop()?;
        }
    }
}

fn append(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(line)?;
    f.flush()
}

impl Channel for FileChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn send<'a>(&'a self, body: &'a NotificationBody) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let Some(line) = bounded_line(&self.name, body, self.max_line) else {
                return Delivery::Failed {
                    status: None,
                    reason: format!("a line would exceed max_line_bytes ({})", self.max_line),
                };
            };
            let (path, lock) = (self.path.clone(), self.lock.clone());
            let written = tokio::task::spawn_blocking(move || {
                let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
                append(&path, &line).map(|_| line.len())
            })
            .await;
            match written {
                Ok(Ok(n)) => Delivery::Delivered {
                    status: None,
                    answer: format!("appended {n} bytes"),
                },
                Ok(Err(e)) => {
                    let reason = format!("cannot append to {}: {}", self.path.display(), e.kind());
                    match e.kind() {
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                            Delivery::Failed {
                                status: None,
                                reason,
                            }
                        }
                        _ => Delivery::Retry {
                            status: None,
                            reason,
                            after: None,
                        },
                    }
                }
                Err(_) => Delivery::Retry {
                    status: None,
                    reason: "the file writer stopped".into(),
                    after: None,
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alerts::{AlertSnapshot, AlertState, Level, NotificationKind};

    fn snapshot(i: usize) -> AlertSnapshot {
        AlertSnapshot {
            id: format!("ALR-{i}"),
            fingerprint: "fp".into(),
            episode: "fp-1".into(),
            monitor: "certs".into(),
            code: "cert_expiring".into(),
            level: Level::Warning,
            state: AlertState::Firing,
            title: "t".repeat(300),
            summary: "s".into(),
            labels: BTreeMap::new(),
            value: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            resolved_at: None,
            runbook: None,
        }
    }

    fn body(n: usize) -> NotificationBody {
        NotificationBody {
            kind: NotificationKind::Firing,
            group_key: "certs".into(),
            group_labels: BTreeMap::new(),
            escalation: None,
            dedup_key: "fp-1".into(),
            alerts: (1..=n).map(snapshot).collect(),
            digest: vec![],
        }
    }

    #[tokio::test]
    async fn appends_bounded_lines_to_a_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("alerts.jsonl");
        let ch = FileChannel::new(
            "jsonl",
            FileSettings {
                path: path.clone(),
                max_line_bytes: 2048,
            },
        )
        .unwrap();
        assert!(matches!(
            ch.send(&body(1)).await,
            Delivery::Delivered { .. }
        ));
        assert!(matches!(
            ch.send(&body(20)).await,
            Delivery::Delivered { .. }
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["truncated_alerts"], 0);
        assert_eq!(lines[0]["alerts"][0]["id"], "ALR-1");
        let kept = lines[1]["alerts"].as_array().unwrap().len();
        assert!(kept > 0 && kept < 20, "{kept}");
        assert_eq!(lines[1]["truncated_alerts"], 20 - kept);
        assert!(text.lines().all(|l| l.len() < 2048));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let e = FileChannel::new(
            "jsonl",
            FileSettings {
                path: "relative.jsonl".into(),
                max_line_bytes: DEFAULT_MAX_LINE,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "channel jsonl: path relative.jsonl is not absolute"
        );
        let e = FileChannel::new(
            "jsonl",
            FileSettings {
                path: "/tmp/x.jsonl".into(),
                max_line_bytes: 10,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("max_line_bytes"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_directory_fails_for_good() {
        let ch = FileChannel::new(
            "jsonl",
            FileSettings {
                path: "/nonexistent-dir-secops/x.jsonl".into(),
                max_line_bytes: DEFAULT_MAX_LINE,
            },
        )
        .unwrap();
        assert!(matches!(ch.send(&body(1)).await, Delivery::Failed { .. }));
    }
}
