//! Logins and tokens: the JWT and its claims, the official 401 bodies, expiry, brute-force
//! blocking and the global rate limit.

use super::*;

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
