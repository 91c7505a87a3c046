//! The Wazuh simulator over real HTTPS with certificate verification on: login and tokens,
//! brute-force blocking, the global rate limit, every endpoint's envelope and filters,
//! password changes, active response, each fault knob, and the indexer's search subset.

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

#[tokio::test]
async fn login_issues_a_jwt_with_wazuh_claims_and_raw_mode_returns_text() {
    let h = Harness::default().await;
    let r = h.login_as(USER, PASS).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], 0);
    let c = claims(v["data"]["token"].as_str().unwrap());
    assert_eq!(c["iss"], "wazuh");
    assert_eq!(c["aud"], "Wazuh API REST");
    assert_eq!(c["sub"], "wazuh");
    assert_eq!(c["run_as"], false);
    assert_eq!(c["rbac_roles"], json!([1]));
    assert_eq!(c["rbac_mode"], "white");
    assert_eq!(c["exp"].as_i64().unwrap() - c["nbf"].as_i64().unwrap(), 900);

    let r = h
        .http
        .post(h.url("/security/user/authenticate?raw=true"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let token = r.text().await.unwrap();
    assert_eq!(token.split('.').count(), 3);
    let (s, v) = h.get(&token, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["api_version"], "4.14.7");
    assert_eq!(v["data"]["title"], "Wazuh API REST");
}

#[tokio::test]
async fn wrong_credentials_and_bad_tokens_get_the_official_401_bodies() {
    let h = Harness::default().await;
    let r = h.login_as(USER, "Not-The-Pass1!").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"title": "Unauthorized", "detail": "Invalid credentials"})
    );
    let r = h.login_as("nobody", PASS).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let no_token = h.http.get(h.url("/agents")).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    let v: Value = no_token.json().await.unwrap();
    assert_eq!(
        v,
        json!({"title": "Unauthorized", "detail": "No authorization token provided"})
    );
    for bad in [
        "garbage",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3YXp1aCJ9.c2lnbmF0dXJl",
    ] {
        let (s, v) = h.get(bad, "/manager/status").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v["title"], "Unauthorized");
    }
    // A token signed by another simulator instance is refused too.
    let other = Harness::default().await;
    let foreign = other.token().await;
    let (s, _) = h.get(&foreign, "/").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_expire_after_the_ttl_and_on_expire_tokens() {
    let h = Harness::start(SimConfig {
        token_ttl_secs: 2,
        ..SimConfig::default()
    })
    .await;
    let t = h.token().await;
    let c = claims(&t);
    assert_eq!(c["exp"].as_i64().unwrap() - c["nbf"].as_i64().unwrap(), 2);
    assert_eq!(h.get(&t, "/agents?limit=1").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, v) = h.get(&t, "/agents?limit=1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");

    let t2 = h.token().await;
    assert_eq!(h.get(&t2, "/").await.0, StatusCode::OK);
    h.sim.faults().expire_tokens();
    assert_eq!(h.get(&t2, "/").await.0, StatusCode::UNAUTHORIZED);
    let t3 = h.token().await;
    assert_eq!(h.get(&t3, "/").await.0, StatusCode::OK);
}

#[tokio::test]
async fn fifty_failed_logins_block_the_ip_with_error_6000() {
    let h = Harness::default().await;
    for i in 1..=50 {
        let r = h.login_as(USER, "Wrong-Pass-1!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = h.login_as(USER, PASS).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], 6000);
    assert_eq!(v["title"], "Permission Denied");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("Limit of login attempts reached")
    );
}

#[tokio::test]
async fn a_blocked_ip_is_released_after_block_time() {
    let h = Harness::start(SimConfig {
        max_login_attempts: 3,
        block_time_secs: 1,
        ..SimConfig::default()
    })
    .await;
    for _ in 0..3 {
        h.login_as(USER, "Wrong-Pass-1!").await;
    }
    assert_eq!(h.login_as(USER, PASS).await.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.login_as(USER, PASS).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_global_rate_limit_answers_429_with_error_6001() {
    let h = Harness::default().await;
    let t = h.token().await;
    h.sim.faults().set_rate_limit(5);
    let before = h.sim.request_count();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(h.get(&t, "/").await.0);
    }
    // The login above was request 1 of the window.
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 4);
    let r = h.http.get(h.url("/")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], 6001);
    assert_eq!(v["title"], "Too Many Requests");
    assert_eq!(v["detail"], "Maximum number of requests per minute reached");
    assert!(v["remediation"].as_str().unwrap().contains("api.yaml"));
    assert_eq!(h.sim.request_count() - before, 7);
    h.sim.faults().set_rate_limit(0);
    assert_eq!(h.get(&t, "/").await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_manager_endpoint_answers_the_documented_envelope() {
    let h = Harness::default().await;
    let t = h.token().await;

    let (s, v) = h.get(&t, "/manager/status").await;
    assert_eq!(s, StatusCode::OK);
    assert_envelope(&v);
    let daemons = v["data"]["affected_items"][0].as_object().unwrap();
    assert_eq!(daemons.len(), 16);
    for d in [
        "wazuh-maild",
        "wazuh-reportd",
        "wazuh-csyslogd",
        "wazuh-agentlessd",
        "wazuh-integratord",
    ] {
        assert_eq!(daemons[d], "stopped", "{d}");
    }
    assert_eq!(daemons["wazuh-analysisd"], "running");

    let (_, v) = h.get(&t, "/manager/info").await;
    assert_envelope(&v);
    assert_eq!(v["data"]["affected_items"][0]["version"], "v4.14.7");
    assert_eq!(v["data"]["affected_items"][0]["type"], "server");

    let (_, v) = h.get(&t, "/manager/configuration/validation").await;
    assert_envelope(&v);
    assert_eq!(v["data"]["affected_items"][0]["status"], "OK");

    let (_, v) = h.get(&t, "/cluster/status").await;
    assert_eq!(v["data"], json!({"enabled": "yes", "running": "yes"}));

    let (_, v) = h.get(&t, "/cluster/healthcheck").await;
    assert_envelope(&v);
    let nodes = v["data"]["affected_items"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["info"]["type"], "master");
    assert_eq!(nodes[1]["info"]["type"], "worker");
    assert_eq!(nodes[1]["status"]["sync_integrity_free"], true);

    let (_, v) = h.get(&t, "/agents/summary/status").await;
    let c = &v["data"]["connection"];
    assert_eq!(c["total"], 20);
    assert_eq!(
        c["active"].as_u64().unwrap()
            + c["disconnected"].as_u64().unwrap()
            + c["never_connected"].as_u64().unwrap()
            + c["pending"].as_u64().unwrap(),
        20
    );
    assert_eq!(
        v["data"]["configuration"]["synced"].as_u64().unwrap()
            + v["data"]["configuration"]["not_synced"].as_u64().unwrap(),
        20
    );

    let (_, v) = h.get(&t, "/manager/logs?limit=3").await;
    assert_envelope(&v);
    assert_eq!(v["data"]["affected_items"].as_array().unwrap().len(), 3);
    let (_, v) = h.get(&t, "/manager/logs/summary").await;
    assert_envelope(&v);

    let (_, v) = h.get(&t, "/security/users").await;
    assert_envelope(&v);
    let names: Vec<&str> = v["data"]["affected_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["wazuh", "wazuh-wui"]);
    let (_, v) = h.get(&t, "/security/users/me").await;
    assert_envelope(&v);
    assert_eq!(v["data"]["affected_items"][0]["username"], "wazuh");
    assert_eq!(
        v["data"]["affected_items"][0]["roles"][0]["name"],
        "administrator"
    );

    // Unknown paths and methods; extra and invalid parameters.
    let (s, v) = h.get(&t, "/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["title"], "Not Found");
    let r = h
        .http
        .patch(h.url("/agents"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (s, v) = h.get(&t, "/manager/status?bogus=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["detail"], "Extra query parameter(s) bogus not in spec");
    let (s, _) = h
        .get(&t, "/manager/status?pretty=true&wait_for_complete=true")
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = h
        .http
        .get(h.url("/manager/info?pretty=true"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("\n   \"data\""));
}

#[tokio::test]
async fn agents_paginate_filter_sort_and_select() {
    let h = Harness::default().await;
    let t = h.token().await;
    let (_, all) = h.get(&t, "/agents").await;
    assert_envelope(&all);
    assert_eq!(all["data"]["total_affected_items"], 20);
    let items = all["data"]["affected_items"].as_array().unwrap();
    assert_eq!(items[0]["id"], "000");
    assert!(items.iter().any(|a| a["id"] == "1001"));
    let states: HashSet<&str> = items
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        HashSet::from(["active", "disconnected", "never_connected", "pending"])
    );

    let mut seen = Vec::new();
    for offset in (0..20).step_by(6) {
        let (s, v) = h
            .get(&t, &format!("/agents?limit=6&offset={offset}&sort=+id"))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["data"]["total_affected_items"], 20);
        for a in v["data"]["affected_items"].as_array().unwrap() {
            seen.push(a["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen.len(), 20);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 20);
    assert_eq!(seen.last().unwrap(), "1001");

    let (_, v) = h.get(&t, "/agents?sort=-id&limit=1").await;
    assert_eq!(v["data"]["affected_items"][0]["id"], "1001");

    let (_, v) = h.get(&t, "/agents?status=disconnected,pending").await;
    let got = v["data"]["affected_items"].as_array().unwrap();
    assert_eq!(got.len(), 4);
    assert!(
        got.iter()
            .all(|a| a["status"] == "disconnected" || a["status"] == "pending")
    );
    for a in got.iter().filter(|a| a["status"] == "disconnected") {
        assert!(a["lastKeepAlive"].is_string());
    }

    let (_, v) = h.get(&t, "/agents?status=never_connected").await;
    for a in v["data"]["affected_items"].as_array().unwrap() {
        assert!(a.get("lastKeepAlive").is_none() && a.get("os").is_none());
    }

    let (_, v) = h.get(&t, "/agents?select=name,os.platform&limit=2").await;
    let a = &v["data"]["affected_items"][1];
    assert_eq!(
        a.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "name", "os"]
    );
    assert!(a["os"]["platform"].is_string() && a["os"].get("name").is_none());

    let (_, v) = h
        .get(&t, "/agents?q=status=active;os.platform=windows")
        .await;
    assert_eq!(v["data"]["total_affected_items"], 2);

    let (_, v) = h.get(&t, "/agents?agents_list=001,999").await;
    assert_eq!(v["error"], 2);
    assert_eq!(v["data"]["failed_items"][0]["error"]["code"], 1701);
    assert_eq!(v["data"]["failed_items"][0]["id"], json!(["999"]));

    for (path, detail) in [
        (
            "/agents?limit=0",
            "0 is less than the minimum of 1 - 'limit'",
        ),
        (
            "/agents?limit=100001",
            "100001 is greater than the maximum of 100000 - 'limit'",
        ),
        ("/agents?status=sleeping", ""),
        (
            "/agents?foo=bar",
            "Extra query parameter(s) foo not in spec",
        ),
    ] {
        let (s, v) = h.get(&t, path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(v["title"], "Bad Request");
        if !detail.is_empty() {
            assert_eq!(v["detail"], detail);
        }
    }
    let (s, v) = h.get(&t, "/agents?sort=+nope").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], 1403);
}

#[tokio::test]
async fn logs_filter_by_level_and_the_summary_adds_up() {
    let h = Harness::default().await;
    let t = h.token().await;
    let (_, v) = h.get(&t, "/manager/logs?level=error").await;
    let errors = v["data"]["affected_items"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|l| l["level"] == "error"));
    let (_, v) = h.get(&t, "/manager/logs?limit=2").await;
    let newest = &v["data"]["affected_items"];
    assert!(newest[0]["timestamp"].as_str() >= newest[1]["timestamp"].as_str());
    let (s, _) = h.get(&t, "/manager/logs?limit=501").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = h.get(&t, "/manager/logs?level=loud").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (_, all) = h.get(&t, "/manager/logs?limit=500").await;
    let total = all["data"]["total_affected_items"].as_u64().unwrap();
    let (_, sum) = h.get(&t, "/manager/logs/summary").await;
    let mut all_count = 0;
    let mut error_count = 0;
    for item in sum["data"]["affected_items"].as_array().unwrap() {
        let (_, c) = item.as_object().unwrap().iter().next().unwrap();
        all_count += c["all"].as_u64().unwrap();
        error_count += c["error"].as_u64().unwrap();
    }
    assert_eq!(all_count, total);
    assert_eq!(error_count, errors.len() as u64);

    let (_, v) = h
        .get(&t, "/manager/logs?tag=wazuh-analysisd&level=critical")
        .await;
    assert_eq!(v["data"]["total_affected_items"], 1);
}

#[tokio::test]
async fn password_changes_follow_the_policy_and_revoke_tokens() {
    let h = Harness::default().await;
    let t = h.token().await;
    let (s, v) = h
        .put_json(
            &t,
            "/security/users/1",
            json!({"password": "alllowercase1!"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], 5007);
    let (s, v) = h
        .put_json(&t, "/security/users/1", json!({"password": "Sh0rt!"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], 5009);
    let r = h
        .http
        .put(h.url("/security/users/1"))
        .bearer_auth(&t)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        h.get(&t, "/").await.0,
        StatusCode::OK,
        "failed changes revoke nothing"
    );

    let (s, v) = h
        .put_json(
            &t,
            "/security/users/999",
            json!({"password": "Another-Pass2!"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["error"], 1);
    assert_eq!(v["data"]["failed_items"][0]["error"]["code"], 5001);

    let (s, v) = h
        .put_json(
            &t,
            "/security/users/1",
            json!({"password": "Rotated-Pass2!"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_envelope(&v);
    assert_eq!(v["data"]["affected_items"][0]["username"], "wazuh");
    assert_eq!(h.get(&t, "/").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.login_as(USER, PASS).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = h.login_as(USER, "Rotated-Pass2!").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        h.sim.user_password("wazuh").as_deref(),
        Some("Rotated-Pass2!")
    );
}

#[tokio::test]
async fn active_response_is_recorded_per_agent() {
    let h = Harness::default().await;
    let t = h.token().await;
    let (s, v) = h
        .put_json(
            &t,
            "/active-response?agents_list=001,004,999",
            json!({"command": "firewall-drop", "arguments": ["-"], "alert": {"data": {"srcip": "203.0.113.45"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_envelope(&v);
    assert_eq!(v["error"], 2);
    assert_eq!(v["data"]["affected_items"], json!(["001"]));
    let codes: Vec<u64> = v["data"]["failed_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"]["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [1707, 1701]);
    let recorded = h.sim.active_responses();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].command, "firewall-drop");
    assert_eq!(recorded[0].agents, ["001"]);
    assert_eq!(
        recorded[0].alert.as_ref().unwrap()["data"]["srcip"],
        "203.0.113.45"
    );
    assert_eq!(recorded[0].user, "wazuh");

    let (s, v) = h
        .put_json(&t, "/active-response", json!({"arguments": []}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["title"], "Bad Request");
}

#[tokio::test]
async fn daemon_cluster_and_configuration_knobs_show_in_the_api() {
    let h = Harness::default().await;
    let t = h.token().await;
    let f = h.sim.faults();
    assert!(f.stop_daemon("wazuh-analysisd"));
    assert!(f.start_daemon("maild"));
    let (_, v) = h.get(&t, "/manager/status").await;
    assert_eq!(v["data"]["affected_items"][0]["wazuh-analysisd"], "stopped");
    assert_eq!(v["data"]["affected_items"][0]["wazuh-maild"], "running");

    f.cluster_enabled(false);
    let (_, v) = h.get(&t, "/cluster/status").await;
    assert_eq!(v["data"], json!({"enabled": "no", "running": "no"}));
    let (s, v) = h.get(&t, "/cluster/healthcheck").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], 3013);
    let (_, v) = h.get(&t, "/manager/status").await;
    assert_eq!(v["data"]["affected_items"][0]["wazuh-clusterd"], "stopped");
    f.cluster_enabled(true);
    f.stop_daemon("clusterd");
    let (_, v) = h.get(&t, "/cluster/status").await;
    assert_eq!(v["data"], json!({"enabled": "yes", "running": "no"}));

    f.config_invalid(true);
    let (s, v) = h.get(&t, "/manager/configuration/validation").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["error"], 1);
    assert_eq!(v["data"]["failed_items"][0]["error"]["code"], 1908);
}

#[tokio::test]
async fn latency_500s_and_broken_json_faults() {
    let h = Harness::default().await;
    let t = h.token().await;
    let f = h.sim.faults();

    f.set_latency(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(h.get(&t, "/").await.0, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(300));
    f.set_latency(Duration::ZERO);

    f.fail_next(2);
    for _ in 0..2 {
        let r = h
            .http
            .get(h.url("/agents"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], 1000);
        assert_eq!(v["title"], "Wazuh Internal Error");
        assert!(v["dapi_errors"]["master-node"]["error"].is_string());
    }
    assert_eq!(h.get(&t, "/agents").await.0, StatusCode::OK);

    f.invalid_json_next(1);
    let r = h
        .http
        .get(h.url("/agents"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(h.get(&t, "/agents").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_down_manager_closes_connections_and_a_hung_one_never_answers() {
    let h = Harness::default().await;
    let t = h.token().await;
    let f = h.sim.faults();
    f.manager_down(true);
    let err = h
        .http
        .get(h.url("/"))
        .bearer_auth(&t)
        .send()
        .await
        .expect_err("the API is down");
    assert!(!err.is_timeout(), "{err}");
    f.manager_down(false);
    assert_eq!(h.get(&t, "/").await.0, StatusCode::OK);

    f.manager_hang(true);
    let quick = client_for(&h.sim, Duration::from_millis(400));
    let err = quick
        .get(h.url("/"))
        .bearer_auth(&t)
        .send()
        .await
        .expect_err("the API hangs");
    assert!(err.is_timeout(), "{err}");
    f.manager_hang(false);
    assert_eq!(h.get(&t, "/").await.0, StatusCode::OK);
}

#[tokio::test]
async fn indexer_requires_basic_auth_and_reports_health_colours() {
    let h = Harness::default().await;
    let r = h.http.get(h.idx("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = h
        .http
        .get(h.idx("/_cluster/health"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let get = |path: &'static str| {
        h.http
            .get(h.idx(path))
            .basic_auth("admin", Some("Indexer-Sim-Pass1!"))
            .send()
    };
    let v: Value = get("/").await.unwrap().json().await.unwrap();
    assert_eq!(v["version"]["distribution"], "opensearch");
    for (colour, unassigned) in [("green", false), ("yellow", true), ("red", true)] {
        h.sim.faults().set_indexer_status(colour).unwrap();
        let v: Value = get("/_cluster/health").await.unwrap().json().await.unwrap();
        assert_eq!(v["status"], colour);
        assert_eq!(v["unassigned_shards"].as_u64().unwrap() > 0, unassigned);
        assert_eq!(v["cluster_name"], "wazuh-cluster");
        assert!(v["active_shards_percent_as_number"].is_f64());
        if colour == "green" {
            assert_eq!(v["active_shards_percent_as_number"], 100.0);
        }
    }
    assert!(h.sim.faults().set_indexer_status("blue").is_err());

    h.sim
        .faults()
        .set_indexer_latency(Duration::from_millis(200));
    let start = Instant::now();
    get("/").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    h.sim.faults().set_indexer_latency(Duration::ZERO);

    h.sim.faults().indexer_down(true);
    assert!(get("/").await.is_err());
    h.sim.faults().indexer_down(false);
    assert!(get("/").await.unwrap().status().is_success());
}

#[tokio::test]
async fn search_after_pages_return_every_matching_alert_exactly_once() {
    let h = Harness::default().await;
    let now = time::OffsetDateTime::now_utc();
    let mut g = h.sim.alerts();
    let injected = g.ssh_brute_force(
        "203.0.113.200",
        &["001", "002", "1001"],
        45,
        now - time::Duration::minutes(30),
    );
    let n = injected.len();
    assert_eq!(h.sim.inject_alerts(injected), n);

    let mut seen = Vec::new();
    let mut after: Option<Value> = None;
    let mut last_ts = 0i64;
    loop {
        let mut body = json!({
            "size": 7,
            "query": {"bool": {"filter": [
                {"range": {"timestamp": {"gte": "now-24h", "lte": "now"}}},
                {"terms": {"data.srcip": ["203.0.113.200"]}},
                {"range": {"rule.level": {"gte": 5}}},
            ]}},
            "sort": [{"timestamp": {"order": "asc"}}, {"_id": "asc"}],
        });
        if let Some(a) = &after {
            body["search_after"] = a.clone();
        }
        let (s, v) = h.search("wazuh-alerts-*", body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["hits"]["total"]["value"].as_u64().unwrap() as usize, n);
        let hits = v["hits"]["hits"].as_array().unwrap();
        if hits.is_empty() {
            break;
        }
        for hit in hits {
            assert!(
                hit["_index"]
                    .as_str()
                    .unwrap()
                    .starts_with("wazuh-alerts-4.x-")
            );
            let ts = hit["sort"][0].as_i64().unwrap();
            assert!(ts >= last_ts);
            last_ts = ts;
            seen.push(hit["_id"].as_str().unwrap().to_string());
        }
        after = Some(hits.last().unwrap()["sort"].clone());
    }
    assert_eq!(seen.len(), n);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), n);
}

#[tokio::test]
async fn the_whole_seeded_day_pages_out_exactly_once_newest_first() {
    let h = Harness::default().await;
    let total = h.sim.alert_count();
    assert!((200..1000).contains(&total), "{total}");
    let mut seen = HashSet::new();
    let mut after: Option<Value> = None;
    loop {
        let mut body = json!({
            "size": 100,
            "query": {"range": {"timestamp": {"gte": "now-25h"}}},
            "sort": [{"timestamp": "desc"}, {"_id": "desc"}],
            "_source": ["rule.level", "agent.id"],
        });
        if let Some(a) = &after {
            body["search_after"] = a.clone();
        }
        let (_, v) = h.search("wazuh-alerts-4.x-*", body).await;
        let hits = v["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            break;
        }
        for hit in &hits {
            assert!(seen.insert(hit["_id"].as_str().unwrap().to_string()));
            assert!(hit["_source"].get("full_log").is_none());
        }
        after = Some(hits.last().unwrap()["sort"].clone());
    }
    assert_eq!(seen.len(), total);

    // The seeded day has a level-15 alert, brute-force correlations and FIM events.
    let (_, v) = h
        .search(
            "wazuh-alerts-*",
            json!({"size": 0, "query": {"range": {"rule.level": {"gte": 15}}}}),
        )
        .await;
    assert!(v["hits"]["total"]["value"].as_u64().unwrap() >= 1);
    let (_, v) = h
        .search(
            "wazuh-alerts-*",
            json!({"size": 0, "query": {"term": {"rule.groups": "authentication_failures"}}}),
        )
        .await;
    assert!(v["hits"]["total"]["value"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn aggregations_count_what_was_injected() {
    let h = Harness::start(SimConfig {
        seed_alerts: false,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(h.sim.alert_count(), 0);
    let now = time::OffsetDateTime::now_utc();
    let mut g = h.sim.alerts();
    let mut alerts =
        g.ssh_brute_force("198.51.100.7", &["001"], 16, now - time::Duration::hours(1));
    alerts.extend(g.level15_attack("192.0.2.9", "002", now - time::Duration::minutes(5)));
    alerts.extend(g.fim_trickle(
        &["003"],
        3,
        now - time::Duration::hours(2),
        time::Duration::minutes(10),
    ));
    alerts.extend(g.noise(&["001", "007"], 10, now - time::Duration::hours(3), now));
    let n = h.sim.inject_alerts(alerts);
    assert_eq!(n, 16 + 2 + 2 + 3 + 10);

    let (s, v) = h
        .search(
            "wazuh-alerts-*",
            json!({
                "size": 0,
                "query": {"range": {"timestamp": {"gte": "now-24h"}}},
                "aggs": {
                    "by_level": {"terms": {"field": "rule.level", "size": 20}},
                    "by_srcip": {"terms": {"field": "data.srcip"}, "aggs": {"agents": {"terms": {"field": "agent.id"}}}},
                    "count": {"value_count": {"field": "timestamp"}},
                    "first": {"min": {"field": "timestamp"}},
                    "last": {"max": {"field": "timestamp"}},
                },
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let aggs = &v["aggregations"];
    assert_eq!(aggs["count"]["value"], n);
    let levels: std::collections::BTreeMap<i64, u64> = aggs["by_level"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["key"].as_i64().unwrap(), b["doc_count"].as_u64().unwrap()))
        .collect();
    assert_eq!(levels[&5], 16);
    assert_eq!(levels[&10], 2);
    assert_eq!(levels[&15], 1);
    assert_eq!(levels[&7], 3);
    assert_eq!(levels.values().sum::<u64>() as usize, n);
    let top = &aggs["by_srcip"]["buckets"][0];
    assert_eq!(top["key"], "198.51.100.7");
    assert_eq!(top["doc_count"], 18);
    assert_eq!(
        top["agents"]["buckets"][0],
        json!({"key": "001", "doc_count": 18})
    );
    assert!(aggs["first"]["value"].as_f64().unwrap() <= aggs["last"]["value"].as_f64().unwrap());
    assert!(
        aggs["last"]["value_as_string"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let (_, v) = h
        .search(
            "wazuh-alerts-*",
            json!({"query": {"bool": {"must": [{"term": {"agent.id": "002"}}, {"range": {"rule.level": {"gte": 12}}}]}}}),
        )
        .await;
    assert_eq!(v["hits"]["total"]["value"], 1);
    assert_eq!(
        v["hits"]["hits"][0]["_source"]["rule"]["mitre"]["id"],
        json!(["T1068", "T1190"])
    );
}

#[tokio::test]
async fn unsupported_search_constructs_are_refused_with_opensearch_errors() {
    let h = Harness::default().await;
    for body in [
        json!({"query": {"match": {"full_log": "sshd"}}}),
        json!({"query": {"query_string": {"query": "rule.level:>5"}}}),
        json!({"aggs": {"t": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h"}}}}),
        json!({"size": 10001}),
        json!({"sort": [{"timestamp": "asc"}], "search_after": [1, 2]}),
        json!({"highlight": {"fields": {"full_log": {}}}}),
    ] {
        let (s, v) = h.search("wazuh-alerts-*", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(v["status"], 400);
        assert!(v["error"]["root_cause"][0]["type"].is_string(), "{v}");
        assert!(v["error"]["reason"].is_string());
    }
    let (s, v) = h.search("no-such-index", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["type"], "index_not_found_exception");
    let (s, v) = h.search("wazuh-archives-*", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["hits"]["total"]["value"], 0);
}

#[tokio::test]
async fn the_ca_can_be_written_and_urls_are_loopback_https() {
    let h = Harness::default().await;
    assert!(h.sim.manager_url().starts_with("https://127.0.0.1:"));
    assert!(h.sim.indexer_url().starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    h.sim.write_ca(&path).unwrap();
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // A client that does not trust the CA is refused by TLS verification.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()
        .unwrap();
    assert!(untrusting.get(h.url("/")).send().await.is_err());
    // The same seed gives the same agents.
    let other = Harness::default().await;
    let (_, a) = h.get(&h.token().await, "/agents?select=name,ip").await;
    let (_, b) = other
        .get(&other.token().await, "/agents?select=name,ip")
        .await;
    assert_eq!(a["data"], b["data"]);
    h.sim.stop().await;
}
