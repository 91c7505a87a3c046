//! The command line as a person meets it: every usage error of every subcommand exits 64
//! (EX_USAGE, never clap's 2, which monitoring plugins read as "critical"), `--help` exits 0,
//! and `--demo` reaches the same state directory as `serve --demo` for every subcommand that
//! reads state (audit, approve). A `--no-default-features` build has no simulator inside
//! (checked on its dependency tree) and refuses `--demo` and `sim` with 69. The example
//! monitoring configurations (examples/monitoring-*.toml) pass `config check` with the
//! variables and files they name, show the guide's settings, and never a secret.

use std::time::Duration;

use crate::common::*;
#[cfg(feature = "demo")]
use serde_json::json;

fn run(scratch: &Scratch, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
    cmd.args(args)
        .env_clear()
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .stdin(std::process::Stdio::null());
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.output().expect("run secops-mcp")
}

#[test]
fn every_usage_error_exits_64_with_a_message() {
    let scratch = Scratch::new();
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["--log-format", "xml", "config", "check"],
        &["serve", "--bogus"],
        &["serve", "--http", "not-an-address"],
        &["check"],
        &["check", "cert"],
        &["check", "cert", "example.com", "--warning-days", "abc"],
        &["check", "cert", "example.com", "--warning-days", "-5"],
        &["check", "cert", "example.com", "--starttls", "gopher"],
        &["check", "health", "--include", "kernel"],
        &["check", "health", "--since", "yesterday"],
        &["check", "health", "--verbose"],
        &["check", "scan"],
        &["check", "scan", "127.0.0.1", "--ports", "abc"],
        &["check", "scan", "127.0.0.1", "--ports", ""],
        &["check", "scan", "127.0.0.1", "--timeout-ms", "0"],
        &["config"],
        &["config", "check", "--bogus"],
        #[cfg(feature = "demo")]
        &["sim", "--port", "abc"],
        &["approve"],
        &["approve", "not-a-token"],
        &["audit"],
        &["audit", "tail", "-n", "abc"],
        &["audit", "verify", "extra"],
    ];
    for args in cases {
        let out = run(&scratch, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: stdout {} stderr {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!stderr.trim().is_empty(), "{args:?}: says nothing");
    }
    for args in [
        &["--help"][..],
        &["--version"],
        &["check", "cert", "--help"],
    ] {
        let out = run(&scratch, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

#[cfg(feature = "demo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_and_approve_reach_the_demo_state_with_demo() {
    let scratch = Scratch::new();
    let client = stdio_client_args(&scratch.env(), &["serve", "--demo"], Era::Legacy).await;
    // The demo ingests the simulator's seeded day: incidents to acknowledge (audited).
    let r = call(&client, "incident_status", json!({})).await;
    let report = r.structured_content.expect("incident report");
    let id = report["incidents"][0]["id"]
        .as_str()
        .expect("the seeded day has incidents")
        .to_string();
    let r = call(
        &client,
        "incident_update",
        json!({ "incident_id": id, "action": "acknowledge" }),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let out = run(&scratch, &["audit", "verify", "--demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("audit chain OK"), "{stdout}");
    assert!(!stdout.contains(" 0 rows"), "{stdout}");
    let out = run(&scratch, &["audit", "tail", "--demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("incident_update"), "{stdout}");
    assert!(stdout.contains(&id), "{stdout}");
    // `--demo` also works before the subcommand.
    let out = run(&scratch, &["--demo", "audit", "tail"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("incident_update"));
    // Without --demo: the real state directory, which the demo never touched.
    let out = run(&scratch, &["audit", "tail"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("incident_update"),
        "demo state leaked into the real state directory"
    );
    // approve --demo looks the token up in the demo store: an unknown token is refused
    // there (exit 1, not a usage error).
    let out = run(
        &scratch,
        &["approve", "--demo", "sct1_0000000000000000_1_AAAA"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(feature = "demo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_writes_its_ca_under_the_state_directory_and_says_where() {
    let scratch = Scratch::new();
    let cwd = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"))
        .args(["sim", "--port", "0", "--indexer-port", "0"])
        .current_dir(cwd.path())
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the simulator starts")
        .unwrap()
        .unwrap();
    let ca = scratch.state_dir().join("sim-ca.pem");
    assert!(first.contains(&ca.display().to_string()), "{first}");
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "no stray file in the working directory"
    );
    child.kill().await.unwrap();
}

#[cfg(feature = "demo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_start_line_tells_the_truth_about_state_and_remediation() {
    let scratch = Scratch::new();
    let log = scratch.path().join("serve.log");
    let mut env = scratch.env();
    env.insert("SECOPS_REMEDIATION".into(), "enabled".into());
    let file = std::fs::File::create(&log).unwrap();
    let (transport, _) =
        rmcp::transport::TokioChildProcess::builder(server_command(&env, &["serve", "--demo"]))
            .stderr(std::process::Stdio::from(file))
            .spawn()
            .unwrap();
    let client = connect(transport, Era::Legacy).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(
        tools.iter().any(|t| t.name == "block_ip"),
        "remediation is enabled"
    );
    client.cancel().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("remediation enabled"), "{text}");
    assert!(!text.contains("remediation stays disabled"), "{text}");
    let demo_dir = scratch.state_dir().join("demo");
    assert!(text.contains(&demo_dir.display().to_string()), "{text}");
    assert!(demo_dir.join("demo-simulator-ca.pem").is_file());
}

#[test]
fn check_cert_cli_reads_any_regular_file_but_no_special_file_or_metadata_endpoint() {
    let scratch = Scratch::new();
    // Outside the tool's file roots: an operator on the host may read it.
    let pem = self_signed_pem(&scratch, "anywhere.pem", &["svc.example.test"]);
    let started = std::time::Instant::now();
    let out = run(
        &scratch,
        &[
            "check",
            "cert",
            &format!("file:{}", pem.display()),
            "file:/dev/zero",
            "file:/dev/stdin",
            "169.254.169.254",
            "--json",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let results = report["results"].as_array().unwrap();
    assert_eq!(
        results[0]["chain"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    for r in &results[1..3] {
        let e = r["verification_error"].as_str().unwrap_or_default();
        assert!(e.contains("not a regular file"), "{report:#}");
    }
    let e = results[3]["verification_error"]
        .as_str()
        .unwrap_or_default();
    assert!(e.contains("`metadata`"), "{e}");
    assert_eq!(out.status.code(), Some(2));
}

/// `cargo tree` of the product's normal dependencies (no dev-dependencies), offline and
/// against the committed lock file.
fn product_tree(features: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "secops-mcp",
            "-e",
            "normal",
        ])
        .args(features)
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn a_no_default_features_build_has_no_simulator_inside() {
    let names = |tree: &str| -> std::collections::BTreeSet<String> {
        tree.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let production = names(&product_tree(&["--no-default-features"]));
    assert!(production.contains("secops-mcp"), "{production:?}");
    for sim_only in ["wazuh-sim", "rcgen", "jsonwebtoken"] {
        assert!(
            !production.contains(sim_only),
            "{sim_only} is in the --no-default-features build"
        );
    }
    let default = names(&product_tree(&[]));
    assert!(default.contains("wazuh-sim"), "{default:?}");
}

/// Only in a `--no-default-features` test run: `--demo` and `sim` say that demo support
/// was not compiled in, and exit 69 (EX_UNAVAILABLE).
#[cfg(not(feature = "demo"))]
#[test]
fn without_the_demo_feature_demo_and_sim_are_refused_with_69() {
    let scratch = Scratch::new();
    for args in [
        &["serve", "--demo"][..],
        &["check", "health", "--demo"],
        &["--demo", "audit", "tail"],
        &["sim", "--port", "0"],
    ] {
        let out = run(&scratch, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{args:?}: {stderr}");
        assert!(
            stderr.contains("demo support was not compiled in")
                && stderr.contains("--no-default-features"),
            "{args:?}: {stderr}"
        );
    }
}

/// `secops-mcp config check --config examples/monitoring-<env>.toml`, with every secret
/// the example expects given as a dummy (files in a scratch directory, variables), in a
/// clean environment: exit 0, no warning, and none of the secrets in stdout or stderr.
/// The effective settings it prints are returned (JSON).
fn check_example(env: &str) -> serde_json::Value {
    const PASSWORD: &str = "dummy-Wazuh-pa55word-71c3";
    const WEBHOOK_URL: &str = "https://hooks.example.test/services/T0k3n-in-the-path-4d1e";
    const HMAC: &str = "dummy-hmac-S3cret-9b2f";
    const STAGING_URL: &str = "https://staging-hooks.example.test/T0k3n-staging-88aa";
    const SMTP: &str = "dummy-smtp-Pa55-0c1d";
    const SLACK: &str = "https://hooks.slack.com/services/T000/B000/sl4ck-S3cret-x9";
    const TWILIO: &str = "dummy-twilio-T0ken-77ee";
    const PD: &str = "dummyPagerDutyRoutingKey0123456";
    const PD_LEAD: &str = "dummyPagerDutyLeadKey0123456789";
    let scratch = Scratch::new();
    let password = scratch.write("wazuh-password", &format!("{PASSWORD}\n"));
    let ca = self_signed_pem(&scratch, "wazuh-root-ca.pem", &["wazuh-manager.internal"]);
    let example = format!(
        "{}/examples/monitoring-{env}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
    cmd.args(["--config", &example, "config", "check"])
        .env_clear()
        .env("HOME", scratch.path())
        .env("SECOPS_STATE_DIR", scratch.state_dir())
        .env("SECOPS_WAZUH_PASSWORD_FILE", &password)
        .env("SECOPS_INDEXER_PASSWORD_FILE", &password)
        .env("SECOPS_WAZUH_CA_FILE", &ca)
        .env("SECOPS_INDEXER_CA_FILE", &ca)
        .env("SECOPS_ALERT_WEBHOOK_URL", WEBHOOK_URL)
        .env("SECOPS_ALERT_WEBHOOK_HMAC", HMAC)
        .env("SECOPS_STAGING_WEBHOOK_URL", STAGING_URL)
        .env("SECOPS_SMTP_PASSWORD", SMTP)
        .env("SECOPS_SLACK_WEBHOOK_URL", SLACK)
        .env("SECOPS_TWILIO_AUTH_TOKEN", TWILIO)
        .env("SECOPS_PAGERDUTY_ROUTING_KEY", PD)
        .env("SECOPS_PAGERDUTY_KEY_SECURITY_LEAD", PD_LEAD)
        .stdin(std::process::Stdio::null());
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    let out = cmd.output().expect("run secops-mcp");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(out.status.code(), Some(0), "{env}: {stderr}");
    assert!(stderr.contains("configuration OK"), "{env}: {stderr}");
    assert!(!stderr.contains("warning:"), "{env}: {stderr}");
    for secret in [
        PASSWORD,
        WEBHOOK_URL,
        "T0k3n",
        HMAC,
        STAGING_URL,
        SMTP,
        SLACK,
        "sl4ck-S3cret",
        TWILIO,
        PD,
        PD_LEAD,
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{env}: `{secret}` shown: {stdout}{stderr}"
        );
    }
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{env}: {e}: {stdout}"))
}

/// The monitors of a `config check` output by name.
fn monitors(v: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    v["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m.clone()))
        .collect()
}

#[test]
fn the_production_monitoring_example_passes_config_check_with_the_guides_settings() {
    let v = check_example("production");
    let m = monitors(&v);
    // The people of the escalation matrix: every default step is live and reaches one.
    assert_eq!(v["contacts"].as_array().unwrap().len(), 4);
    let rules = v["escalation"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    for (rule, who) in rules
        .iter()
        .zip(["Alice Martin", "Bob Chen", "Carol Diaz", "Dan Okafor"])
    {
        assert_eq!(rule["live"], true, "{rule}");
        assert_eq!(rule["reaches"], serde_json::json!([who]), "{rule}");
    }
    assert_eq!(v["escalation"]["business_time"], "09:00 Europe/Berlin");
    assert_eq!(v["maintenance"][0]["name"], "sunday-patching");
    let events = &m["security-events"]["settings"];
    assert_eq!(events["spec"]["per_minute"], 10.0);
    assert_eq!(events["incidents"]["min_severity"], "high");
    assert_eq!(events["incidents"]["sla"], true);
    let host = &m["host"]["settings"];
    assert_eq!(
        (&host["cpu_percent"], &host["cpu_for"]),
        (&80.0.into(), &"15m".into())
    );
    assert_eq!(
        (&host["memory_percent"], &host["memory_for"]),
        (&85.0.into(), &"10m".into())
    );
    assert_eq!(host["disk_percent"], 90.0);
    for name in ["www", "api"] {
        assert_eq!(m[name]["settings"]["max_response_ms"], 2000, "{name}");
        assert!(
            m[name]["settings"]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://"),
            "{name}: TLS verified"
        );
    }
    assert_eq!(m["www"]["schedule"], "every 30s");
    assert_eq!(m["api"]["schedule"], "every 1m");
    let certs = &m["certificates"]["settings"];
    assert_eq!(
        (&certs["warning_days"], &certs["critical_days"]),
        (&30.into(), &7.into())
    );
    assert!(
        certs["targets"].as_array().unwrap().len() >= 3,
        "several domains"
    );
    assert_eq!(m["nightly-scan"]["schedule"], "cron \"0 2 * * *\" UTC");
    assert_eq!(m["nightly-scan"]["settings"]["targets"][0], "10.20.0.0/24");
    assert_eq!(v["scan"]["allow"][0], "10.20.0.0/24");
    assert_eq!(v["monitoring"]["retention_days"], 30);
    // The guide's routing: info Slack; warning email and Slack; critical also SMS;
    // emergency also PagerDuty (plus the webhook and file copies).
    let routing = &v["routing"];
    let has = |level: &str, chans: &[&str]| {
        let got = routing[level].as_array().unwrap();
        for c in chans {
            assert!(got.iter().any(|g| g == c), "{level} lacks {c}: {got:?}");
        }
    };
    has("info", &["ops-slack"]);
    has("warning", &["ops-mail", "ops-slack", "ops-webhook"]);
    has(
        "critical",
        &["ops-mail", "ops-slack", "oncall-sms", "ops-webhook"],
    );
    has(
        "emergency",
        &[
            "ops-mail",
            "ops-slack",
            "oncall-sms",
            "pagerduty",
            "ops-webhook",
        ],
    );
    assert!(
        !routing["critical"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "pagerduty"),
        "only emergencies page"
    );
    let hook = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ops-webhook")
        .unwrap();
    assert_eq!(hook["url"], "***");
    assert_eq!(hook["hmac_secret"], "***");
    assert_eq!(hook["url_source"]["env"], "SECOPS_ALERT_WEBHOOK_URL");
}

#[test]
fn the_staging_monitoring_example_passes_config_check_with_productions_thresholds() {
    let staging = check_example("staging");
    let production = check_example("production");
    let (s, p) = (monitors(&staging), monitors(&production));
    let mut compared = 0;
    for name in [
        "security-events",
        "host",
        "www",
        "certificates",
        "nightly-scan",
    ] {
        let (ss, ps) = (&s[name]["settings"], &p[name]["settings"]);
        for key in [
            "spec",
            "cpu_percent",
            "cpu_for",
            "memory_percent",
            "memory_for",
            "disk_percent",
            "disk_for",
            "max_response_ms",
            "warning_days",
            "critical_days",
        ] {
            assert_eq!(ss.get(key), ps.get(key), "{name}.{key}");
            compared += usize::from(ss.get(key).is_some());
        }
    }
    assert_eq!(
        compared, 10,
        "spec, six host settings, the response time, 30 / 7 days"
    );
    assert_eq!(s["nightly-scan"]["schedule"], p["nightly-scan"]["schedule"]);
    let hook = &staging["channels"][0];
    assert_eq!(hook["name"], "staging-webhook");
    assert_eq!(hook["url_source"]["env"], "SECOPS_STAGING_WEBHOOK_URL");
    assert_eq!(staging["routing"]["warning"][0], "staging-webhook");
    // Production's Slack and email, pointed at staging; nobody is paged for staging.
    let kinds: Vec<&str> = staging["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"slack") && kinds.contains(&"email"),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&"sms") && !kinds.contains(&"pagerduty"),
        "{kinds:?}"
    );
    assert_eq!(
        staging["routing"]["critical"],
        serde_json::json!(["staging-webhook", "staging-slack", "staging-mail", "log"])
    );
    let text = staging.to_string();
    assert!(!text.contains("sl4ck-S3cret") && !text.contains("dummy-smtp-Pa55"));
}

#[test]
fn the_development_monitoring_example_passes_config_check_with_the_log_and_a_local_mail_catcher() {
    let v = check_example("development");
    let m = monitors(&v);
    assert!(
        v["wazuh"].is_null() && v["indexer"].is_null(),
        "no Wazuh needed"
    );
    let mail = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "dev-mail")
        .expect("dev-mail channel");
    assert_eq!(
        (&mail["kind"], &mail["host"], &mail["port"], &mail["tls"]),
        (
            &"email".into(),
            &"127.0.0.1".into(),
            &1025.into(),
            &"none".into()
        ),
        "cleartext only to a loopback mail catcher"
    );
    assert_eq!(mail["rate_limit"], "60/h", "the email default");
    assert_eq!(v["routing"]["info"], serde_json::json!(["log"]));
    for level in ["warning", "critical", "emergency"] {
        assert_eq!(
            v["routing"][level],
            serde_json::json!(["log", "dev-mail"]),
            "{level}"
        );
    }
    assert_eq!(m["local-app"]["schedule"], "every 1m");
    assert!(
        m["local-app"]["settings"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "localhost"
    );
    let certs = &m["local-certificate"]["settings"];
    assert_eq!(
        (&certs["warning_days"], &certs["critical_days"]),
        (&30.into(), &7.into())
    );
    assert_eq!(m["workstation"]["schedule"], "every 5m");
}
