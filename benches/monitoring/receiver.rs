//! The webhook receiver both senders post to: a real HTTP server on 127.0.0.1 (axum) that
//! reads Alertmanager's v4 payloads (ours and Alertmanager's own) at `POST /{side}` and
//! records, per side, when each distinct `alertname` first arrived. It runs on its own
//! thread and single-threaded runtime, so both senders meet the same receiver and ours
//! does not share its runtime with it. Waiters wake on every request (a watch channel),
//! never by polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tokio::sync::watch;

#[derive(Default)]
struct Side {
    /// alertname -> when a payload first carried it.
    first: HashMap<String, Instant>,
    posts: usize,
    /// Instant of the latest first arrival.
    last_new: Option<Instant>,
}

#[derive(Clone)]
struct Shared {
    sides: Arc<Mutex<HashMap<String, Side>>>,
    changed: Arc<watch::Sender<u64>>,
}

pub struct Receiver {
    addr: std::net::SocketAddr,
    shared: Shared,
    /// Ends the receiver's thread (dropped with the receiver).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let shared = Shared {
            sides: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        };
        let app = axum::Router::new()
            .route("/{side}", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("receiver address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the receiver's runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("the receiver's listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Receiver {
            addr,
            shared,
            _stop: stop,
        }
    }

    /// The webhook URL of `side`.
    pub fn url(&self, side: &str) -> String {
        format!("http://{}/{side}", self.addr)
    }

    /// Distinct alert names and payloads `side` has received.
    pub fn counts(&self, side: &str) -> (usize, usize) {
        let sides = self.shared.sides.lock().unwrap();
        sides.get(side).map_or((0, 0), |s| (s.first.len(), s.posts))
    }

    /// When `name` first arrived at `side`, waiting up to `timeout`.
    pub async fn wait_name(&self, side: &str, name: &str, timeout: Duration) -> Option<Instant> {
        self.wait(side, timeout, |s| s.first.get(name).copied())
            .await
    }

    /// When `side` had `n` distinct alert names (the arrival of the n-th), waiting up to
    /// `timeout`.
    pub async fn wait_count(&self, side: &str, n: usize, timeout: Duration) -> Option<Instant> {
        self.wait(side, timeout, |s| {
            (s.first.len() >= n).then_some(s.last_new).flatten()
        })
        .await
    }

    async fn wait(
        &self,
        side: &str,
        timeout: Duration,
        found: impl Fn(&Side) -> Option<Instant>,
    ) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before looking, so a request in between still wakes us.
        let mut rx = self.shared.changed.subscribe();
        loop {
            if let Some(at) = self.shared.sides.lock().unwrap().get(side).and_then(&found) {
                return Some(at);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }
}

async fn receive(
    State(shared): State<Shared>,
    Path(side): Path<String>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let names: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("alerts").and_then(|a| a.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.pointer("/labels/alertname")?.as_str().map(str::to_string))
        .collect();
    {
        let mut sides = shared.sides.lock().unwrap();
        let s = sides.entry(side).or_default();
        s.posts += 1;
        for name in names {
            if let std::collections::hash_map::Entry::Vacant(e) = s.first.entry(name) {
                e.insert(at);
                s.last_new = Some(at);
            }
        }
    }
    shared.changed.send_modify(|g| *g += 1);
    StatusCode::OK
}
