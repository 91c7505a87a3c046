//! How clients connect: loopback HTTPS URLs, the CA a client must trust, the same agents
//! for the same seed.

use super::*;

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

/// The `wazuh-sim` binary writes its CA as `sim-ca.pem` in secops-mcp's state directory
/// (SECOPS_STATE_DIR, created private) and prints settings a client can use as they are.
#[tokio::test]
async fn the_binary_prints_settings_that_connect() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wazuh-sim"))
        .args(["--port", "0", "--indexer-port", "0"])
        .env("SECOPS_STATE_DIR", &state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut settings = std::collections::HashMap::new();
    while !settings.contains_key("SECOPS_INDEXER_CA_FILE") {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the simulator prints its settings")
            .unwrap()
            .expect("more output");
        if let Some((k, v)) = line.trim().split_once('=') {
            let v = v.split_whitespace().next().unwrap_or_default();
            settings.insert(k.to_string(), v.to_string());
        }
    }
    let ca_file = state.join("sim-ca.pem");
    assert_eq!(
        settings["SECOPS_WAZUH_CA_FILE"],
        ca_file.display().to_string()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let manager = settings["SECOPS_WAZUH_URL"].clone();
    let indexer = settings["SECOPS_INDEXER_URL"].clone();
    for (request, who) in [
        (
            http.post(format!("{manager}/security/user/authenticate")),
            "WAZUH",
        ),
        (http.get(format!("{indexer}/_cluster/health")), "INDEXER"),
    ] {
        let user = &settings[&format!("SECOPS_{who}_USER")];
        let password = &settings[&format!("SECOPS_{who}_PASSWORD")];
        let r = request
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{who}");
    }
    child.kill().await.unwrap();
}
