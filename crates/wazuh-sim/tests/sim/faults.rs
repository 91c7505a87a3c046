//! Each fault knob as the API shows it: daemons, cluster and configuration state, latency,
//! 500s, broken JSON, a down or hung manager.

use super::*;

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
