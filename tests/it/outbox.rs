//! The durable outbox and its first channels against a real local receiver
//! (tests/common/sinks.rs): the retry schedule and `Retry-After`, dead letters and
//! `channel_failing` on the other channel, the same dedup key on every redelivery, the HMAC
//! signature, Alertmanager's v4 payload schema, timeouts, a crashed sender's expired lease,
//! and secrets that never surface. Time moves only through a ManualClock; each test calls
//! `deliver_due` itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secops_mcp::alerts::outbox::{CHANNEL_FAILING, Outbox, OutboxSettings};
use secops_mcp::alerts::{AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind};
use secops_mcp::clock::{Clock, ManualClock};
use secops_mcp::config::Secret;
use secops_mcp::notify::webhook::{DEDUP_HEADER, signature};
use secops_mcp::notify::{
    Channel, FileChannel, FileSettings, SIGNATURE_HEADER, WebhookChannel, WebhookSettings,
};
use secops_mcp::store::{NewNotification, NotificationState, Store};

use crate::common::Scratch;
use crate::common::sinks::{Answer, Sink};

const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

fn snapshot(i: i64, state: AlertState) -> AlertSnapshot {
    AlertSnapshot {
        id: format!("ALR-{i}"),
        fingerprint: format!("{i:016x}"),
        episode: format!("{i:016x}-1"),
        monitor: "certs".into(),
        code: "cert_expiring".into(),
        level: Level::Warning,
        state,
        title: format!("Certificate of host{i}.example expires in 5 days"),
        summary: "Renew it before it expires.".into(),
        labels: BTreeMap::from([("target".into(), format!("host{i}.example:443"))]),
        value: Some("5 days".into()),
        started_at: "2027-01-15T08:00:00Z".into(),
        resolved_at: (state == AlertState::Resolved).then(|| "2027-01-16T08:00:00Z".into()),
        runbook: Some("https://runbooks.example/certs".into()),
    }
}

fn body(kind: NotificationKind, alerts: Vec<AlertSnapshot>) -> NotificationBody {
    NotificationBody {
        kind,
        group_key: "certs".into(),
        group_labels: BTreeMap::from([("monitor".into(), "certs".into())]),
        escalation: None,
        dedup_key: alerts[0].episode.clone(),
        alerts,
        digest: vec![],
    }
}

fn firing() -> NotificationBody {
    body(
        NotificationKind::Firing,
        vec![snapshot(1, AlertState::Firing)],
    )
}

fn hook(name: &str, url: String, hmac: Option<&str>, timeout_ms: u64) -> Arc<dyn Channel> {
    Arc::new(
        WebhookChannel::new(
            name,
            WebhookSettings {
                url: Secret::new(url),
                headers: BTreeMap::from([("X-Team".into(), Secret::new("secops"))]),
                hmac_secret: hmac.map(Secret::new),
                timeout_ms,
            },
        )
        .unwrap(),
    )
}

struct Rig {
    _scratch: Scratch,
    store: Store,
    clock: ManualClock,
}

impl Rig {
    fn new() -> Rig {
        let scratch = Scratch::new();
        let store = Store::open(&scratch.state_dir()).unwrap();
        Rig {
            _scratch: scratch,
            store,
            clock: ManualClock::at(T0),
        }
    }

    fn outbox(&self, worker: &str, channels: Vec<Arc<dyn Channel>>) -> Outbox {
        let channels = channels
            .into_iter()
            .map(|c| (c.name().to_string(), c))
            .collect();
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        Outbox::new(
            self.store.clone(),
            channels,
            clock,
            OutboxSettings {
                worker: worker.into(),
                max_attempts: 6,
                min_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(60),
                lease: Duration::from_secs(30),
                ..Default::default()
            },
        )
    }

    fn enqueue(&self, channel: &str, b: &NotificationBody) -> i64 {
        self.store
            .outbox_enqueue(
                &NewNotification {
                    channel,
                    body: b,
                    alerts: &[],
                    deadline_ms: self.clock.now_ms() + 24 * HOUR,
                },
                self.clock.now_ms(),
            )
            .unwrap()
    }

    /// Move the clock to the row's next attempt.
    fn to_next_attempt(&self, id: i64) -> i64 {
        let next = self.store.outbox_get(id).unwrap().unwrap().next_attempt_ms;
        let delay = next - self.clock.now_ms();
        self.clock.set(next);
        delay
    }
}

#[tokio::test]
async fn outbox_retry_schedule_grows_and_honours_retry_after() {
    let rig = Rig::new();
    let sink = Sink::start(vec![
        Answer::status(500),
        Answer::status(503),
        Answer::TooMany("120".into()),
        Answer::ok(),
    ])
    .await;
    let outbox = rig.outbox("a", vec![hook("ops", sink.url("/hook"), None, 2_000)]);
    let id = rig.enqueue("ops", &firing());

    let r = outbox.deliver_due().await.unwrap();
    assert_eq!((r.claimed, r.retried), (1, 1));
    let d1 = rig.to_next_attempt(id);
    assert!((1_000..2_000).contains(&d1), "first retry after {d1} ms");
    // Not due a millisecond early.
    rig.clock.set(rig.clock.now_ms() - 1);
    assert_eq!(outbox.deliver_due().await.unwrap().claimed, 0);
    rig.clock.advance(Duration::from_millis(1));
    assert_eq!(outbox.deliver_due().await.unwrap().retried, 1);
    let d2 = rig.to_next_attempt(id);
    assert!(
        (2_000..4_000).contains(&d2) && d2 > d1,
        "second retry after {d2} ms"
    );
    assert_eq!(outbox.deliver_due().await.unwrap().retried, 1);
    // 429 Retry-After: 120 wins over the 4-8 s backoff.
    let d3 = rig.to_next_attempt(id);
    assert_eq!(d3, 120_000, "Retry-After honoured");
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!((r.delivered, r.dead), (1, 0));

    let row = rig.store.outbox_get(id).unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Delivered);
    assert_eq!(row.attempts, 4);
    let attempts = rig.store.outbox_attempts(id).unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.outcome.as_str(), a.status))
            .collect::<Vec<_>>(),
        vec![
            ("retry", Some(500)),
            ("retry", Some(503)),
            ("retry", Some(429)),
            ("delivered", Some(200)),
        ]
    );
    assert!(
        attempts[2]
            .detail
            .as_deref()
            .unwrap()
            .contains("Retry-After 120 s"),
        "{attempts:?}"
    );
    // Every redelivery: the same dedup key, the same bytes.
    let got = sink.received();
    assert_eq!(got.len(), 4);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header(DEDUP_HEADER), Some("0000000000000001-1"));
        assert_eq!(r.header("x-team"), Some("secops"));
        assert_eq!(r.body, got[0].body);
    }
    assert_eq!(outbox.deliver_due().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn outbox_gives_up_after_max_attempts_and_says_so() {
    let rig = Rig::new();
    let sink = Sink::start(vec![]).await;
    sink.set_default(Answer::status(502));
    let outbox = rig.outbox("a", vec![hook("ops", sink.url("/hook"), None, 2_000)]);
    let id = rig.enqueue("ops", &firing());
    for _ in 0..5 {
        assert_eq!(outbox.deliver_due().await.unwrap().retried, 1);
        rig.to_next_attempt(id);
    }
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!(r.dead, 1);
    assert!(r.failing_raised.is_empty(), "no other channel to tell");
    let row = rig.store.outbox_get(id).unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (NotificationState::Dead, 6));
    let err = row.last_error.unwrap();
    assert!(
        err.starts_with("gave up after 6 attempts (max_attempts): HTTP 502"),
        "{err}"
    );
    assert_eq!(sink.received().len(), 6);
}

#[tokio::test]
async fn outbox_dead_letters_a_400_after_one_try_and_raises_channel_failing_on_the_file_channel() {
    let rig = Rig::new();
    let sink = Sink::start(vec![]).await;
    sink.set_default(Answer::Status(400, "unknown receiver".into()));
    let jsonl = rig._scratch.path().join("alerts.jsonl");
    let file: Arc<dyn Channel> = Arc::new(
        FileChannel::new(
            "jsonl",
            FileSettings {
                path: jsonl.clone(),
                max_line_bytes: 64 * 1024,
            },
        )
        .unwrap(),
    );
    let url = sink.url("/hooks/T0K3N-in-the-path");
    let outbox = rig.outbox("a", vec![hook("ops", url.clone(), None, 2_000), file]);
    let id = rig.enqueue("ops", &firing());

    let r = outbox.deliver_due().await.unwrap();
    assert_eq!((r.dead, r.retried), (1, 0));
    assert_eq!(r.failing_raised, vec!["ops".to_string()]);
    assert_eq!(sink.received().len(), 1, "one try only");
    let row = rig.store.outbox_get(id).unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Dead);
    assert_eq!(
        row.last_error.as_deref(),
        Some("HTTP 400: unknown receiver")
    );

    // The file channel gets channel_failing on the next round.
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!((r.claimed, r.delivered), (1, 1));
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let alert = &lines[0]["alerts"][0];
    assert_eq!(alert["code"], CHANNEL_FAILING);
    assert_eq!(alert["level"], "critical");
    assert_eq!(alert["labels"]["channel"], "ops");
    assert_eq!(alert["labels"]["channel_kind"], "webhook");
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .contains("HTTP 400: unknown receiver")
    );
    assert!(!text.contains("T0K3N") && !text.contains(&url), "{text}");

    // A second dead letter within the hour: no second channel_failing.
    rig.clock.advance(Duration::from_secs(600));
    rig.enqueue("ops", &firing());
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!(r.dead, 1);
    assert!(r.failing_raised.is_empty());
    assert_eq!(outbox.deliver_due().await.unwrap().claimed, 0);
    // An hour after the first: raised again.
    rig.clock.advance(Duration::from_secs(3_000));
    rig.enqueue("ops", &firing());
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!(r.failing_raised, vec!["ops".to_string()]);
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 1);
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 2);

    let health = outbox.health().await.unwrap();
    let ops = health.iter().find(|h| h.channel == "ops").unwrap();
    assert_eq!((ops.pending, ops.dead), (0, 3));
    let file = health.iter().find(|h| h.channel == "jsonl").unwrap();
    assert_eq!((file.pending, file.delivered), (0, 2));
}

#[tokio::test]
async fn webhook_signs_the_exact_body_with_hmac_sha256() {
    let rig = Rig::new();
    let sink = Sink::start(vec![]).await;
    let secret = "hmac-S3CRET-value";
    let outbox = rig.outbox("a", vec![hook("ops", sink.url("/h"), Some(secret), 2_000)]);
    rig.enqueue("ops", &firing());
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 1);
    let got = sink.received();
    let sig = got[0].header(SIGNATURE_HEADER).expect("signature header");
    assert_eq!(sig, signature(secret.as_bytes(), &got[0].body));
    // Verified independently: HMAC-SHA256 over the bytes as received.
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&got[0].body);
    let hex_sig = sig.strip_prefix("sha256=").unwrap();
    mac.verify_slice(&hex::decode(hex_sig).unwrap())
        .expect("the signature verifies");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    // Unsigned without a secret.
    let plain = Sink::start(vec![]).await;
    let outbox = rig.outbox("b", vec![hook("plain", plain.url("/h"), None, 2_000)]);
    rig.enqueue("plain", &firing());
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 1);
    assert_eq!(plain.received()[0].header(SIGNATURE_HEADER), None);
}

/// Alertmanager's webhook payload, version 4, as its documentation describes it.
fn alertmanager_v4_schema() -> serde_json::Value {
    let labels = serde_json::json!({
        "type": "object", "additionalProperties": { "type": "string" }
    });
    let time = serde_json::json!({
        "type": "string",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
    });
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["version", "groupKey", "truncatedAlerts", "status", "receiver",
            "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"],
        "properties": {
            "version": { "const": "4" },
            "groupKey": { "type": "string" },
            "truncatedAlerts": { "type": "integer", "minimum": 0 },
            "status": { "enum": ["firing", "resolved"] },
            "receiver": { "type": "string" },
            "groupLabels": labels,
            "commonLabels": labels,
            "commonAnnotations": labels,
            "externalURL": { "type": "string" },
            "alerts": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["status", "labels", "annotations", "startsAt", "endsAt",
                        "generatorURL", "fingerprint"],
                    "properties": {
                        "status": { "enum": ["firing", "resolved"] },
                        "labels": {
                            "allOf": [labels, { "required": ["alertname"] }]
                        },
                        "annotations": {
                            "allOf": [labels, { "required": ["summary", "description"] }]
                        },
                        "startsAt": time,
                        "endsAt": time,
                        "generatorURL": { "type": "string" },
                        "fingerprint": { "type": "string", "minLength": 1 }
                    }
                }
            }
        }
    })
}

#[tokio::test]
async fn webhook_body_validates_against_alertmanager_v4_schema() {
    let rig = Rig::new();
    let sink = Sink::start(vec![]).await;
    let ch: Arc<dyn Channel> = Arc::new(
        WebhookChannel::new(
            "ops",
            WebhookSettings {
                url: Secret::new(sink.url("/am")),
                headers: BTreeMap::new(),
                hmac_secret: None,
                timeout_ms: 2_000,
            },
        )
        .unwrap()
        .with_external_url("https://secops.example/"),
    );
    let outbox = rig.outbox("a", vec![ch]);
    rig.enqueue(
        "ops",
        &body(
            NotificationKind::Firing,
            vec![
                snapshot(1, AlertState::Firing),
                snapshot(2, AlertState::Firing),
            ],
        ),
    );
    rig.enqueue(
        "ops",
        &body(
            NotificationKind::Resolved,
            vec![snapshot(1, AlertState::Resolved)],
        ),
    );
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 2);
    let schema = alertmanager_v4_schema();
    let got = sink.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        let v = r.json();
        if let Err(e) = jsonschema::validate(&schema, &v) {
            panic!("not an Alertmanager v4 payload: {e}\n{v:#}");
        }
    }
    let firing = got[0].json();
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "ops");
    assert_eq!(firing["externalURL"], "https://secops.example");
    assert_eq!(firing["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(firing["alerts"][0]["labels"]["alertname"], "cert_expiring");
    assert_eq!(firing["alerts"][0]["labels"]["severity"], "warning");
    assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        firing["alerts"][1]["generatorURL"],
        "https://secops.example/alerts/ALR-2"
    );
    // Shared labels are common; per-target ones are not.
    assert_eq!(firing["commonLabels"]["monitor"], "certs");
    assert!(firing["commonLabels"].get("target").is_none());
    let resolved = got[1].json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["endsAt"], "2027-01-16T08:00:00Z");
    // The negative case: the schema does reject a payload that is not v4.
    let mut bad = firing.clone();
    bad["version"] = "3".into();
    assert!(jsonschema::validate(&schema, &bad).is_err());
}

#[tokio::test]
async fn outbox_retries_a_hanging_receiver_after_its_timeout() {
    let rig = Rig::new();
    let sink = Sink::start(vec![Answer::Hang, Answer::ok()]).await;
    let outbox = rig.outbox("a", vec![hook("ops", sink.url("/h"), None, 300)]);
    let id = rig.enqueue("ops", &firing());
    let started = std::time::Instant::now();
    let r = outbox.deliver_due().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.retried, 1);
    let row = rig.store.outbox_get(id).unwrap().unwrap();
    assert_eq!(row.last_error.as_deref(), Some("timed out after 300 ms"));
    rig.to_next_attempt(id);
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 1);
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header(DEDUP_HEADER), got[1].header(DEDUP_HEADER));
}

#[tokio::test]
async fn outbox_delivers_a_row_whose_lease_expired_after_a_crash() {
    let rig = Rig::new();
    let sink = Sink::start(vec![]).await;
    let id = rig.enqueue("ops", &firing());
    // A sender claimed it and was killed (-9) before recording anything.
    let claimed = rig
        .store
        .outbox_claim("killed-sender", rig.clock.now_ms(), 30_000, 10)
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let outbox = rig.outbox("restarted", vec![hook("ops", sink.url("/h"), None, 2_000)]);
    assert_eq!(
        outbox.deliver_due().await.unwrap().claimed,
        0,
        "lease holds"
    );
    rig.clock.advance(Duration::from_secs(30));
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!((r.claimed, r.delivered), (1, 1));
    let row = rig.store.outbox_get(id).unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Delivered);
    assert_eq!(row.claimed_by, None);
    assert_eq!(sink.received().len(), 1);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if CAPTURING.load(std::sync::atomic::Ordering::SeqCst) {
            self.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();

/// Every log line of the process at trace level (tracing and `log` records), from now
/// until the guard drops. A global subscriber: thread-local ones lose events to tracing's
/// callsite cache when tests run in parallel.
fn capture_logs() -> (Captured, impl Drop) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = CAPTURED
        .get_or_init(|| {
            let logs = Captured::default();
            let writer = logs.clone();
            let _ = tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(move || writer.clone()),
                )
                .with(tracing_subscriber::filter::LevelFilter::TRACE)
                .try_init();
            logs
        })
        .clone();
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            CAPTURING.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
    CAPTURING.store(true, std::sync::atomic::Ordering::SeqCst);
    (logs, Stop)
}

#[tokio::test]
async fn outbox_never_surfaces_the_webhook_url_or_hmac_secret() {
    let (logs, _capturing) = capture_logs();

    let rig = Rig::new();
    let token = "T0K3N-url-secret";
    let hmac_secret = "hmac-S3CRET-value";
    // The receiver echoes the token back in a 500, then refuses for good.
    let sink = Sink::start(vec![
        Answer::Status(500, format!("no such hook /hooks/{token}")),
        Answer::Status(404, format!("unknown /hooks/{token}")),
    ])
    .await;
    let url = sink.url(&format!("/hooks/{token}"));
    // A second webhook on a port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused_url = format!("http://127.0.0.1:{closed}/hooks/{token}");
    let outbox = rig.outbox(
        "a",
        vec![
            hook("ops", url.clone(), Some(hmac_secret), 2_000),
            hook("backup", refused_url.clone(), Some(hmac_secret), 2_000),
        ],
    );
    let ops = rig.enqueue("ops", &firing());
    let backup = rig.enqueue("backup", &firing());
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!(r.retried, 2);
    let e = rig
        .store
        .outbox_get(backup)
        .unwrap()
        .unwrap()
        .last_error
        .unwrap();
    assert!(e.starts_with("cannot connect"), "{e}");
    rig.to_next_attempt(ops);
    let r = outbox.deliver_due().await.unwrap();
    assert_eq!(r.dead, 1);
    // channel_failing about ops goes to backup (refused, retried).
    outbox.deliver_due().await.unwrap();

    let mut said = String::new();
    for id in [ops, backup] {
        let row = rig.store.outbox_get(id).unwrap().unwrap();
        said.push_str(&format!("{:?}\n", row.last_error));
        for a in rig.store.outbox_attempts(id).unwrap() {
            said.push_str(&format!("{a:?}\n"));
        }
    }
    for row in rig.store.outbox_list(None, 100).unwrap() {
        said.push_str(&format!("{row:?}\n"));
    }
    assert!(said.contains("HTTP 500: no such hook ***"), "{said}");
    assert!(said.contains("HTTP 404: unknown ***"), "{said}");
    assert!(said.contains("Connection refused"), "{said}");
    rig.store.flush();
    let mut db = std::fs::read(rig.store.path()).unwrap();
    if let Ok(wal) = std::fs::read(rig.store.path().with_extension("db-wal")) {
        db.extend(wal);
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("notification dead-lettered"), "logs captured");
    assert!(
        logs.contains("notification attempt"),
        "debug-level lines captured too"
    );
    for secret in [token, hmac_secret, url.as_str(), refused_url.as_str()] {
        assert!(!said.contains(secret), "{secret} in attempts:\n{said}");
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in the database"
        );
    }
}
