//! The command line as a person meets it: every usage error of every subcommand exits 64
//! (EX_USAGE, never clap's 2, which monitoring plugins read as "critical"), `--help` exits 0,
//! and `--demo` reaches the same state directory as `serve --demo` for every subcommand that
//! reads state (audit, approve). A `--no-default-features` build has no simulator inside
//! (checked on its dependency tree) and refuses `--demo` and `sim` with 69.

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
