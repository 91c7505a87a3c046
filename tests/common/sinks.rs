//! Notification receivers for the tests: [`Sink`], a real HTTP server on 127.0.0.1:0 (axum)
//! that records every request (method, path, headers, exact body bytes) and answers each
//! from a script ([`Answer`]: 200, any status, 429 with `Retry-After`, or hang), then from
//! a default answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// How the sink answers one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// This status with this body.
    Status(u16, String),
    /// 429 with this `Retry-After` header value (seconds or an HTTP date).
    TooMany(String),
    /// Never answer (until the test ends).
    Hang,
}

impl Answer {
    pub fn ok() -> Self {
        Answer::Status(200, "ok".into())
    }
    pub fn status(s: u16) -> Self {
        Answer::Status(s, format!("answer {s}"))
    }
}

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased; the last value of a repeated header.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    default: Option<Answer>,
    received: Vec<Received>,
}

/// A recording HTTP receiver; stops when dropped.
pub struct Sink {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// Start a receiver answering `script` in order, then 200.
    pub async fn start(script: Vec<Answer>) -> Sink {
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the sink");
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { answer(st, method, uri, headers, body).await }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink { addr, state, task }
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A URL on this sink with `path` (e.g. `/hooks/T0K3N`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Queue more answers.
    pub fn push(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// The answer once the script is used up (200 unless set).
    pub fn set_default(&self, a: Answer) {
        self.state.lock().unwrap().default = Some(a);
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Wait (up to `timeout`) until at least `n` requests arrived; all of them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    st: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = {
        let mut s = st.lock().unwrap();
        s.received.push(Received {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        s.script
            .pop_front()
            .or_else(|| s.default.clone())
            .unwrap_or_else(Answer::ok)
    };
    match next {
        Answer::Status(code, text) => {
            (StatusCode::from_u16(code).expect("a valid status"), text).into_response()
        }
        Answer::TooMany(after) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", after)],
            "slow down",
        )
            .into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}
