//! Container health against a real Docker engine, not a mock: a private `dockerd` on its own
//! socket (tests/docker/dockerd.sh), containers in each state the check knows (running, healthy,
//! unhealthy, exited non-zero, exited zero, health-checked and exited zero, created,
//! crash-looping, given up after its restarts, OOM-killed where the kernel enforces memory
//! limits) plus one whose name does not match the filter, then
//! `checks::containers::check` directly and the real binary's `container_status` and
//! `wazuh_health` tools over MCP stdio.
//!
//! The engine:
//! - by default the test runs `tests/docker/dockerd.sh start DIR` itself (root, Debian's
//!   `docker.io` and `busybox-static`; nothing is installed) and stops it at the end;
//! - with `SECOPS_TEST_DOCKER_HOST=unix:///DIR/docker.sock` it uses an engine already started
//!   by that script (it must hold the `secops-busybox:test` image) and leaves it running,
//!   removing only its own containers.
//!
//! It prints `SKIP: <reason>` and passes only when `dockerd.sh check` finds a prerequisite
//! missing (not root, docker.io or busybox-static not installed) and `SECOPS_REQUIRE_DOCKER`
//! is unset. With the prerequisites present, an engine that does not come up fails the test
//! with the dockerd log.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;
use secops_mcp::checks::containers::{ContainerInfo, ContainersReport};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/docker/dockerd.sh");
const IMAGE: &str = "secops-busybox:test";

/// The engine under test; stops it (when this test started it) on drop, even after a failed
/// assertion. The temporary directory is removed after the engine has stopped.
struct Engine {
    host: String,
    cli: String,
    dir: Option<tempfile::TempDir>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let t = Instant::now();
            let out = Command::new("bash")
                .arg(SCRIPT)
                .arg("stop")
                .arg(dir.path())
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    eprintln!("engine stopped in {} ms", t.elapsed().as_millis())
                }
                Ok(o) => eprintln!(
                    "dockerd.sh stop failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => eprintln!("cannot run dockerd.sh stop: {e}"),
            }
        }
    }
}

impl Engine {
    fn docker(&self, args: &[&str]) -> Output {
        Command::new(&self.cli)
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.cli))
    }

    /// Run a docker command that must succeed; its trimmed stdout.
    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// `.State` and `.RestartCount` of a container, as the engine reports them.
    fn inspect(&self, name: &str) -> Value {
        let out = self.docker_ok(&["inspect", name]);
        let v: Value = serde_json::from_str(&out).expect("docker inspect JSON");
        v[0].clone()
    }

    fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let log = std::fs::read_to_string(dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Containers this test made; removed on drop (before the engine stops).
struct Made<'a> {
    engine: &'a Engine,
    names: Vec<String>,
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(self.names.iter().map(String::as_str));
        let o = self.engine.docker(&args);
        if !o.status.success() {
            eprintln!(
                "removing test containers failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

impl Made<'_> {
    /// `docker <verb> --name NAME --network none OPTS IMAGE CMD...`, remembered for cleanup.
    fn make(&mut self, verb: &str, name: &str, opts: &[&str], cmd: &[&str]) {
        self.names.push(name.to_string());
        let mut args = vec![verb];
        if verb == "run" {
            args.push("-d");
        }
        args.extend(["--name", name, "--network", "none"]);
        args.extend(opts);
        args.push(IMAGE);
        args.extend(cmd);
        self.engine.docker_ok(&args);
    }
}

fn docker_cli() -> String {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker".into()
    } else {
        "docker".into()
    }
}

/// The engine to test against, or `None` (after printing `SKIP:`) when this machine lacks
/// the prerequisites and nobody asked for the test to be required.
fn engine() -> Option<Engine> {
    if let Ok(host) = std::env::var("SECOPS_TEST_DOCKER_HOST") {
        return Some(Engine {
            host,
            cli: docker_cli(),
            dir: None,
        });
    }
    let check = Command::new("bash")
        .arg(SCRIPT)
        .arg("check")
        .output()
        .expect("run dockerd.sh check");
    match check.status.code() {
        Some(0) => {}
        Some(2) => {
            let reason = String::from_utf8_lossy(&check.stdout).trim().to_string();
            if std::env::var_os("SECOPS_REQUIRE_DOCKER").is_some() {
                panic!("SECOPS_REQUIRE_DOCKER is set but the Docker test cannot run: {reason}");
            }
            // Straight to stderr, past the test harness's capture, so that it shows.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
            return None;
        }
        _ => panic!(
            "dockerd.sh check failed: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        ),
    }
    // Short path: the engine's and containerd's unix sockets live under it.
    let dir = tempfile::Builder::new()
        .prefix("secops-dk")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let t = Instant::now();
    let out = Command::new("bash")
        .arg(SCRIPT)
        .arg("start")
        .arg(dir.path())
        .output()
        .expect("run dockerd.sh start");
    let engine = Engine {
        host: format!("unix://{}/docker.sock", dir.path().display()),
        cli: docker_cli(),
        dir: Some(dir),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // dockerd.sh prints the log's errors and tail itself when the engine fails.
        let log = if stderr.contains("dockerd.log") {
            String::new()
        } else {
            format!(
                "\n---- dockerd.log (last lines) ----\n{}",
                engine.log_tail()
            )
        };
        panic!(
            "the prerequisites are installed but the Docker engine did not start:\n{stderr}{log}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("DOCKER_HOST={}", engine.host)),
        "unexpected dockerd.sh output: {stdout}"
    );
    eprintln!(
        "engine started and image imported in {} ms",
        t.elapsed().as_millis()
    );
    Some(engine)
}

/// Poll `docker inspect NAME` until `ready` holds, for at most `within`.
fn wait_for(
    engine: &Engine,
    name: &str,
    within: Duration,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let v = engine.inspect(name);
        if ready(&v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not {what} within {within:?}: state {}, restarts {}",
            v["State"],
            v["RestartCount"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn health_is(want: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["State"]["Health"]["Status"] == want
}

/// Finding codes whose message names `name` (messages read "container NAME ...").
fn codes_for(findings: &[(String, String)], name: &str) -> Vec<String> {
    let needle = format!("container {name} ");
    let mut c: Vec<String> = findings
        .iter()
        .filter(|(_, msg)| msg.contains(&needle))
        .map(|(code, _)| code.clone())
        .collect();
    c.sort();
    c
}

fn codes(list: &[&str]) -> Vec<String> {
    let mut c: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    c.sort();
    c
}

/// What the test expects of one container.
struct Want {
    state: &'static str,
    health: Option<&'static str>,
    exit_code: i64,
    oom: bool,
    restarts: i64,
    codes: Vec<String>,
}

/// Check one report (from the library or decoded from MCP) against the expectations.
fn assert_report(
    label: &str,
    containers: &[ContainerInfo],
    findings: &[(String, String)],
    want: &BTreeMap<String, Want>,
    restarting: &str,
    min_restarts: i64,
    other: &str,
) {
    let by_name: BTreeMap<&str, &ContainerInfo> =
        containers.iter().map(|c| (c.name.as_str(), c)).collect();
    assert!(
        !by_name.contains_key(other),
        "{label}: {other} does not match the filter but is listed"
    );
    for (name, w) in want {
        let c = by_name
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{label}: {name} missing from {:?}", by_name.keys()));
        assert_eq!(c.state, w.state, "{label}: state of {name}");
        assert_eq!(c.health.as_deref(), w.health, "{label}: health of {name}");
        assert_eq!(
            c.exit_code,
            Some(w.exit_code),
            "{label}: exit code of {name}"
        );
        assert_eq!(c.oom_killed, w.oom, "{label}: OOM flag of {name}");
        assert_eq!(
            c.restart_count, w.restarts,
            "{label}: restart count of {name}"
        );
        assert_eq!(c.image.as_deref(), Some(IMAGE), "{label}: image of {name}");
        assert_eq!(
            codes_for(findings, name),
            w.codes,
            "{label}: findings of {name}"
        );
    }
    // The crash loop: between two starts the engine says `restarting`; for the few
    // milliseconds its command runs it says `running`. Either way the count is reported.
    let r = by_name
        .get(restarting)
        .unwrap_or_else(|| panic!("{label}: {restarting} missing"));
    assert!(
        r.restart_count >= min_restarts,
        "{label}: restart count {} of {restarting} below {min_restarts} seen before",
        r.restart_count
    );
    let expected = match r.state.as_str() {
        "restarting" => codes(&["container_restarting"]),
        "running" => codes(&["container_restarted"]),
        other => panic!("{label}: {restarting} in state {other}"),
    };
    assert_eq!(
        codes_for(findings, restarting),
        expected,
        "{label}: findings of {restarting} in state {}",
        r.state
    );
}

fn pairs(findings: &[secops_mcp::checks::Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .map(|f| (f.code.clone(), f.message.clone()))
        .collect()
}

fn json_pairs(findings: &Value) -> Vec<(String, String)> {
    findings
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["code"].as_str().unwrap_or_default().to_string(),
                        f["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_health_against_a_real_engine() {
    let started = Instant::now();
    let Some(engine) = engine() else {
        return;
    };
    let server_api = engine.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    let memory_limits = engine.docker_ok(&["info", "--format", "{{.MemoryLimit}}"]) == "true";
    assert_eq!(
        engine.docker_ok(&["image", "inspect", "--format", "ok", IMAGE]),
        "ok",
        "image {IMAGE} missing from the engine"
    );

    // Unique names, so that an engine shared with other runs cannot confuse the test.
    let tag = std::process::id();
    let n = |s: &str| format!("wazuh-{s}-{tag}");
    let other = format!("secops-other-{tag}");
    let sleep = ["sleep", "300"];
    let mut made = Made {
        engine: &engine,
        names: Vec::new(),
    };
    made.make("run", &n("running"), &[], &sleep);
    made.make(
        "run",
        &n("healthy"),
        &["--health-cmd", "true", "--health-interval", "1s"],
        &sleep,
    );
    made.make(
        "run",
        &n("unhealthy"),
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &sleep,
    );
    made.make("run", &n("exited"), &[], &["sh", "-c", "exit 3"]);
    made.make("run", &n("done"), &[], &["true"]);
    // Docker marks the health of any container that stops `unhealthy`: a clean exit of a
    // health-checked container is no failing health check.
    made.make(
        "run",
        &n("stopped"),
        &["--health-cmd", "true", "--health-interval", "1s"],
        &["sh", "-c", "sleep 1.5"],
    );
    made.make("create", &n("created"), &[], &sleep);
    made.make(
        "run",
        &n("restarting"),
        &[
            "--restart",
            "always",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
        ],
        &["sh", "-c", "exit 1"],
    );
    made.make(
        "run",
        &n("gaveup"),
        &["--restart", "on-failure:3"],
        &["sh", "-c", "exit 1"],
    );
    if memory_limits {
        // Bounded even where the limit were not enforced: tail holds at most 200 MB. The
        // shell waits two seconds before allocating, so the engine is listening for the
        // container's OOM events (on cgroup v1 it registers after the start; a kill in the
        // first milliseconds went unrecorded and `OOMKilled` stayed false), and outlives
        // the killed `tail` by three seconds, exiting with its status (137), so the event is
        // recorded before the exit.
        made.make(
            "run",
            &n("oom"),
            &["--memory", "16m", "--memory-swap", "16m"],
            &[
                "sh",
                "-c",
                "sleep 2; head -c 200m /dev/zero | tail; s=$?; sleep 3; exit $s",
            ],
        );
    } else {
        eprintln!("this kernel does not enforce memory limits: no OOM container");
    }
    made.make("run", &other, &[], &sleep);

    let within = Duration::from_secs(20);
    wait_for(
        &engine,
        &n("healthy"),
        within,
        "healthy",
        health_is("healthy"),
    );
    wait_for(
        &engine,
        &n("unhealthy"),
        within,
        "unhealthy",
        health_is("unhealthy"),
    );
    let exited = |v: &Value| v["State"]["Status"] == "exited";
    wait_for(&engine, &n("exited"), within, "exited", exited);
    wait_for(&engine, &n("done"), within, "exited", exited);
    wait_for(&engine, &n("stopped"), within, "exited", exited);
    wait_for(
        &engine,
        &n("gaveup"),
        within,
        "given up after 3 restarts",
        |v| v["State"]["Status"] == "exited" && v["RestartCount"] == 3,
    );
    if memory_limits {
        wait_for(&engine, &n("oom"), within, "OOM-killed", |v| {
            v["State"]["Status"] == "exited" && v["State"]["OOMKilled"] == true
        });
    }
    wait_for(
        &engine,
        &n("restarting"),
        within,
        "restarted 3 times",
        |v| v["RestartCount"].as_i64().unwrap_or(0) >= 3,
    );
    let seen_restarts = engine.inspect(&n("restarting"))["RestartCount"]
        .as_i64()
        .unwrap();

    let mut want: BTreeMap<String, Want> = BTreeMap::new();
    let mut w = |name: String, state, health, exit_code, oom, c: &[&str]| {
        want.insert(
            name,
            Want {
                state,
                health,
                exit_code,
                oom,
                restarts: 0,
                codes: codes(c),
            },
        );
    };
    w(n("running"), "running", None, 0, false, &[]);
    w(n("healthy"), "running", Some("healthy"), 0, false, &[]);
    w(
        n("unhealthy"),
        "running",
        Some("unhealthy"),
        0,
        false,
        &["container_unhealthy"],
    );
    w(n("exited"), "exited", None, 3, false, &["container_exited"]);
    w(n("done"), "exited", None, 0, false, &[]);
    w(n("stopped"), "exited", None, 0, false, &[]);
    w(n("created"), "created", None, 0, false, &[]);
    if memory_limits {
        w(
            n("oom"),
            "exited",
            None,
            137,
            true,
            &["container_oom_killed", "container_exited"],
        );
    }

    // Restarted three times, then the engine gave up: it has stopped restarting.
    want.insert(
        n("gaveup"),
        Want {
            state: "exited",
            health: None,
            exit_code: 1,
            oom: false,
            restarts: 3,
            codes: codes(&["container_exited", "container_restarted"]),
        },
    );

    // 1. The library against the engine.
    let report: ContainersReport =
        secops_mcp::checks::containers::check(Some(&engine.host), "wazuh", Duration::from_secs(10))
            .await;
    assert!(report.available, "not available: {:?}", report.reason);
    for c in &report.containers {
        eprintln!(
            "  {}: {} health={:?} exit={:?} oom={} restarts={}",
            c.name, c.state, c.health, c.exit_code, c.oom_killed, c.restart_count
        );
    }
    for f in &report.findings {
        eprintln!("  finding {}: {}", f.code, f.message);
    }
    assert_eq!(report.reason, None);
    assert_eq!(report.name_filter, "wazuh");
    // bollard starts at its own newest API version and negotiates down to the engine's.
    let negotiated =
        if api_tuple(&server_api) < api_tuple(&bollard::API_DEFAULT_VERSION.to_string()) {
            server_api.clone()
        } else {
            bollard::API_DEFAULT_VERSION.to_string()
        };
    assert_eq!(
        report.engine_api_version.as_deref(),
        Some(negotiated.as_str()),
        "engine speaks API {server_api}"
    );
    assert_report(
        "check()",
        &report.containers,
        &pairs(&report.findings),
        &want,
        &n("restarting"),
        seen_restarts,
        &other,
    );
    let first_restarts = restarts_of(&report, &n("restarting"));

    // The restart count follows the engine's: it grows while the loop goes on.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = secops_mcp::checks::containers::check(
            Some(&engine.host),
            "wazuh",
            Duration::from_secs(10),
        )
        .await;
        if restarts_of(&r, &n("restarting")) > first_restarts {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restart count of {} stuck at {first_restarts}",
            n("restarting")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // An empty filter lists everything, the other container included.
    let all =
        secops_mcp::checks::containers::check(Some(&engine.host), "", Duration::from_secs(10))
            .await;
    assert!(all.containers.iter().any(|c| c.name == other));

    // 2. End to end: the real binary over MCP stdio, configured by DOCKER_HOST.
    let scratch = Scratch::new();
    let mut env = scratch.env();
    env.insert("DOCKER_HOST".into(), engine.host.clone());
    let client = stdio_client(&env, Era::Legacy).await;

    let r = call(&client, "container_status", json!({})).await;
    assert_ne!(r.is_error, Some(true), "container_status: {}", text_of(&r));
    let text = text_of(&r);
    assert!(text.contains("matching `wazuh`"), "summary: {text}");
    let sc = r.structured_content.clone().expect("structured content");
    let report: ContainersReport =
        serde_json::from_value(sc.clone()).expect("container_status matches its output schema");
    assert!(report.available, "MCP: {:?}", report.reason);
    assert_eq!(
        report.engine_api_version.as_deref(),
        Some(negotiated.as_str())
    );
    assert_report(
        "container_status",
        &report.containers,
        &json_pairs(&sc["findings"]),
        &want,
        &n("restarting"),
        first_restarts,
        &other,
    );

    let r = call(&client, "wazuh_health", json!({"include": ["containers"]})).await;
    assert_ne!(r.is_error, Some(true), "wazuh_health: {}", text_of(&r));
    let h = r.structured_content.clone().expect("structured content");
    assert_eq!(h["status"], "critical", "health: {h:#}");
    let section = &h["containers"];
    assert_eq!(
        section["check"], "critical",
        "containers section: {section:#}"
    );
    assert_eq!(section["available"], true);
    assert_eq!(section["engine_api_version"], negotiated.as_str());
    let listed: Vec<ContainerInfo> =
        serde_json::from_value(section["containers"].clone()).expect("containers list");
    // The section's findings are lifted into the report's own list.
    assert_report(
        "wazuh_health",
        &listed,
        &json_pairs(&h["findings"]),
        &want,
        &n("restarting"),
        first_restarts,
        &other,
    );
    for absent in ["manager", "agents", "indexer", "host"] {
        assert!(h.get(absent).is_none(), "{absent} was not asked for");
    }
    client.cancel().await.ok();

    drop(made);
    eprintln!(
        "containers test body took {} ms",
        started.elapsed().as_millis()
    );
}

fn restarts_of(r: &ContainersReport, name: &str) -> i64 {
    r.containers
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.restart_count)
        .unwrap_or_else(|| panic!("{name} not listed"))
}

fn api_tuple(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}
