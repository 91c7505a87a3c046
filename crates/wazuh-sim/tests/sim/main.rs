//! The Wazuh simulator over real HTTPS with certificate verification on: login and tokens,
//! brute-force blocking, the global rate limit, every endpoint's envelope and filters,
//! password changes, active response, each fault knob, and the indexer's search subset.
//! This file holds the harness; one module per part of the API.

mod auth;
mod connect;
mod faults;
mod indexer;
mod manager;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wazuh_sim::{SimConfig, Simulator};

const USER: &str = "wazuh";
const PASS: &str = "Wazuh-Sim-Pass1!";

struct Harness {
    sim: Simulator,
    http: reqwest::Client,
}

fn client_for(sim: &Simulator, timeout: Duration) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(timeout)
        .build()
        .expect("client")
}

impl Harness {
    async fn start(cfg: SimConfig) -> Self {
        let sim = Simulator::start(cfg).await.expect("simulator starts");
        let http = client_for(&sim, Duration::from_secs(10));
        Self { sim, http }
    }

    async fn default() -> Self {
        Self::start(SimConfig::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.manager_url())
    }

    fn idx(&self, path: &str) -> String {
        format!("{}{path}", self.sim.indexer_url())
    }

    async fn login_as(&self, user: &str, pass: &str) -> reqwest::Response {
        self.http
            .post(self.url("/security/user/authenticate"))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .expect("login request")
    }

    async fn token(&self) -> String {
        let r = self.login_as(USER, PASS).await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        v["data"]["token"].as_str().unwrap().to_string()
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn put_json(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn search(&self, index: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.idx(&format!("/{index}/_search")))
            .basic_auth("admin", Some("Indexer-Sim-Pass1!"))
            .json(&body)
            .send()
            .await
            .expect("search");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&raw).expect("claims JSON")
}

fn assert_envelope(v: &Value) {
    let d = &v["data"];
    assert!(d["affected_items"].is_array(), "{v}");
    assert!(d["failed_items"].is_array(), "{v}");
    assert!(d["total_affected_items"].is_u64(), "{v}");
    assert!(d["total_failed_items"].is_u64(), "{v}");
    assert!(v["message"].is_string(), "{v}");
    assert!(v["error"].is_u64(), "{v}");
}
