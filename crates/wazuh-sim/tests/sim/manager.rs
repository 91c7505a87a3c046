//! The manager API's endpoints: the documented envelope everywhere, agents' paging and
//! filters, logs, password changes and active response.

use super::*;

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
