//! Observing the simulator: a client that records every response with the operation it
//! exercises, and the one scenario that drives each operation secops-mcp uses through its
//! statuses.

use super::*;

pub(crate) struct Observed {
    pub(crate) method: &'static str,
    pub(crate) template: &'static str,
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
    pub(crate) label: &'static str,
}

pub(crate) struct Client {
    pub(crate) sim: Simulator,
    pub(crate) http: reqwest::Client,
    pub(crate) seen: Vec<Observed>,
}

impl Client {
    /// One request, recorded with the operation it exercises and why.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        method: &'static str,
        template: &'static str,
        url_path: &str,
        token: Option<&str>,
        basic: Option<(&str, &str)>,
        body: Option<(&str, String)>,
        label: &'static str,
    ) -> (u16, Value) {
        let url = format!("{}{url_path}", self.sim.manager_url());
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r.text().await.unwrap();
        let parsed = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.seen.push(Observed {
            method,
            template,
            status,
            content_type,
            body: text,
            label,
        });
        (status, parsed)
    }

    async fn get(
        &mut self,
        template: &'static str,
        path: &str,
        token: &str,
        label: &'static str,
    ) -> (u16, Value) {
        self.call("GET", template, path, Some(token), None, None, label)
            .await
    }

    async fn put(
        &mut self,
        template: &'static str,
        path: &str,
        token: &str,
        body: Value,
        label: &'static str,
    ) -> (u16, Value) {
        self.call(
            "PUT",
            template,
            path,
            Some(token),
            None,
            Some(("application/json", body.to_string())),
            label,
        )
        .await
    }
}

pub(crate) const LOGIN: &str = "/security/user/authenticate";

pub(crate) async fn exercise(c: &mut Client) {
    let (_, v) = c
        .call(
            "POST",
            LOGIN,
            LOGIN,
            None,
            Some((USER, PASS)),
            None,
            "json token",
        )
        .await;
    let t = v["data"]["token"].as_str().unwrap().to_string();
    let t = t.as_str();
    c.call(
        "POST",
        LOGIN,
        &format!("{LOGIN}?raw=true"),
        None,
        Some((USER, PASS)),
        None,
        "raw token",
    )
    .await;
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, "Wrong-Pass-1!")),
        None,
        "bad password",
    )
    .await;
    c.call(
        "POST",
        LOGIN,
        &format!("{LOGIN}?bogus=1"),
        None,
        Some((USER, PASS)),
        None,
        "extra parameter",
    )
    .await;

    c.get("/", "/", t, "api info").await;
    c.call("GET", "/", "/", None, None, None, "no token").await;
    c.get("/manager/status", "/manager/status", t, "daemons")
        .await;
    c.get(
        "/manager/status",
        "/manager/status?limit=1",
        t,
        "extra parameter",
    )
    .await;
    c.call(
        "GET",
        "/manager/status",
        "/manager/status",
        Some("not-a-jwt"),
        None,
        None,
        "invalid token",
    )
    .await;
    c.call(
        "PATCH",
        "/manager/status",
        "/manager/status",
        Some(t),
        None,
        None,
        "wrong method",
    )
    .await;
    c.get("/manager/info", "/manager/info", t, "manager info")
        .await;
    c.get(
        "/manager/configuration/validation",
        "/manager/configuration/validation",
        t,
        "valid",
    )
    .await;
    c.sim.faults().config_invalid(true);
    c.get(
        "/manager/configuration/validation",
        "/manager/configuration/validation",
        t,
        "invalid ossec.conf",
    )
    .await;
    c.sim.faults().config_invalid(false);
    c.get("/cluster/status", "/cluster/status", t, "cluster status")
        .await;
    c.get(
        "/cluster/healthcheck",
        "/cluster/healthcheck",
        t,
        "healthcheck",
    )
    .await;
    c.sim.faults().cluster_enabled(false);
    c.get(
        "/cluster/healthcheck",
        "/cluster/healthcheck",
        t,
        "cluster disabled",
    )
    .await;
    c.sim.faults().cluster_enabled(true);
    c.get("/agents", "/agents", t, "all agents").await;
    c.get(
        "/agents",
        "/agents?status=disconnected,never_connected,pending&sort=-id",
        t,
        "status filter",
    )
    .await;
    c.get(
        "/agents",
        "/agents?select=name,os.platform,lastKeepAlive&limit=5&offset=3",
        t,
        "select + page",
    )
    .await;
    c.get("/agents", "/agents?agents_list=001,999", t, "unknown agent")
        .await;
    c.get("/agents", "/agents?limit=0", t, "bad limit").await;
    c.sim.faults().fail_next(1);
    c.get("/agents", "/agents", t, "injected 500").await;
    c.get(
        "/agents/summary/status",
        "/agents/summary/status",
        t,
        "summary",
    )
    .await;
    c.get("/manager/logs", "/manager/logs?limit=20", t, "logs")
        .await;
    c.get(
        "/manager/logs",
        "/manager/logs?level=error&tag=indexer-connector",
        t,
        "filtered logs",
    )
    .await;
    c.get(
        "/manager/logs",
        "/manager/logs?limit=501",
        t,
        "limit over 500",
    )
    .await;
    c.get(
        "/manager/logs/summary",
        "/manager/logs/summary",
        t,
        "logs summary",
    )
    .await;
    c.get("/security/users", "/security/users", t, "users")
        .await;
    c.get(
        "/security/users",
        "/security/users?user_ids=1,77",
        t,
        "unknown user",
    )
    .await;
    c.get("/security/users/me", "/security/users/me", t, "me")
        .await;
    c.get("/security/config", "/security/config", t, "security config")
        .await;
    c.put(
        "/security/users/{user_id}",
        "/security/users/2",
        t,
        json!({"password": "weakpassword"}),
        "weak password",
    )
    .await;
    c.put(
        "/security/users/{user_id}",
        "/security/users/999",
        t,
        json!({"password": "Strong-Pass-9!"}),
        "unknown user",
    )
    .await;
    c.call(
        "PUT",
        "/security/users/{user_id}",
        "/security/users/2",
        Some(t),
        None,
        Some(("text/plain", "x".into())),
        "wrong content type",
    )
    .await;
    c.put(
        "/security/users/{user_id}",
        "/security/users/2",
        t,
        json!({"password": "Strong-Pass-9!"}),
        "password changed",
    )
    .await;
    c.put(
        "/active-response",
        "/active-response?agents_list=001,004",
        t,
        json!({"command": "firewall-drop", "arguments": ["-"]}),
        "partly sent",
    )
    .await;
    c.put(
        "/active-response",
        "/active-response",
        t,
        json!({"arguments": ["-"]}),
        "no command",
    )
    .await;
    c.get("<undeclared path>", "/no/such/path", t, "unknown path")
        .await;
    c.call("DELETE", LOGIN, LOGIN, Some(t), None, None, "logout")
        .await;

    // Rate limit, then brute-force blocking (each needs its own budget).
    c.sim.faults().set_rate_limit(1);
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, PASS)),
        None,
        "warm window",
    )
    .await;
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, PASS)),
        None,
        "rate limited",
    )
    .await;
    c.sim.faults().set_rate_limit(0);
    for _ in 0..50 {
        c.call(
            "POST",
            LOGIN,
            LOGIN,
            None,
            Some((USER, "Wrong-Pass-1!")),
            None,
            "failure",
        )
        .await;
    }
    c.call(
        "POST",
        LOGIN,
        LOGIN,
        None,
        Some((USER, PASS)),
        None,
        "blocked ip",
    )
    .await;
}
