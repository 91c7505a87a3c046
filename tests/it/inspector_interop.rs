//! Interop with a real third-party MCP client: the MCP Inspector's CLI (pinned in
//! `tests/interop/package-lock.json`) drives the shipped `secops-mcp` binary over stdio and
//! over streamable HTTP with bearer auth, the way a user's own tooling would.
//!
//! Needs `node` and `npm`; installs the Inspector with `npm ci` on first use. Without node the
//! tests print SKIP and pass, except under CI (`CI` set), where a missing node is a failure.
//! Every child runs in its own process group and is killed on drop; every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest any single inspector run or server start may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// `npm ci` of the pinned Inspector (about 15 s on a warm npm cache).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(180);
const TOKEN: &str = "interop-token-0123456789abcdef";

// ---------------------------------------------------------------------------------------
// stdio

#[test]
fn inspector_lists_check_cert_with_annotations_over_stdio() {
    let Some(inspector) = Inspector::get() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let out = inspector.run_stdio(state.path(), &["--method", "tools/list"]);
    assert_eq!(out.code, Some(0), "tools/list over stdio failed\n{out}");
    assert_check_cert_listed(&out);
}

#[test]
fn inspector_calls_check_cert_on_a_pem_file_over_stdio() {
    let Some(inspector) = Inspector::get() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    // The state directory is one of check_cert's default file roots.
    let target = pem_target(state.path());
    // `--tool-arg key=value` parses the value as JSON when it can: arrays go in as JSON.
    let targets = serde_json::to_string(&[&target]).unwrap();
    let out = inspector.run_stdio(
        state.path(),
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "check_cert",
            "--tool-arg",
            &format!("targets={targets}"),
        ],
    );
    assert_cert_report(&out, &target);
}

// ---------------------------------------------------------------------------------------
// streamable HTTP

#[test]
fn inspector_with_bearer_token_lists_and_calls_check_cert_over_http() {
    let Some(inspector) = Inspector::get() else {
        return;
    };
    let server = HttpServer::start();
    let auth = format!("Authorization: Bearer {TOKEN}");

    let out = inspector.run_http(&server.url, &["--header", &auth, "--method", "tools/list"]);
    assert_eq!(
        out.code,
        Some(0),
        "tools/list over HTTP failed\n{out}\n{server}"
    );
    assert_check_cert_listed(&out);

    // The stateless 2026-07-28 era (server/discover instead of initialize).
    let out = inspector.run_http(
        &server.url,
        &[
            "--protocol-era",
            "modern",
            "--header",
            &auth,
            "--method",
            "tools/list",
        ],
    );
    assert_eq!(
        out.code,
        Some(0),
        "modern-era tools/list failed\n{out}\n{server}"
    );
    assert_check_cert_listed(&out);

    let target = pem_target(&server.state);
    let args = serde_json::json!({ "targets": [target], "warning_days": 30 }).to_string();
    let out = inspector.run_http(
        &server.url,
        &[
            "--header",
            &auth,
            "--method",
            "tools/call",
            "--tool-name",
            "check_cert",
            "--tool-args-json",
            &args,
        ],
    );
    assert_cert_report(&out, &target);
}

#[test]
fn inspector_without_valid_token_is_refused_over_http() {
    let Some(inspector) = Inspector::get() else {
        return;
    };
    let server = HttpServer::start();
    // `--stored-auth-only`: fail with auth_required instead of starting interactive OAuth.
    let no_token = inspector.run_http(
        &server.url,
        &["--stored-auth-only", "--method", "tools/list"],
    );
    let wrong = format!("Authorization: Bearer wrong-{TOKEN}");
    let wrong_token = inspector.run_http(
        &server.url,
        &[
            "--stored-auth-only",
            "--header",
            &wrong,
            "--method",
            "tools/list",
        ],
    );
    for (what, out) in [("no token", no_token), ("a wrong token", wrong_token)] {
        assert_ne!(out.code, Some(0), "{what} was accepted\n{out}\n{server}");
        assert!(
            !out.stdout.contains("check_cert"),
            "{what} still listed tools\n{out}"
        );
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains("auth_required") || all.contains("unauthorized"),
            "{what}: expected an authentication error\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// assertions

fn json_result(out: &RunOutput) -> Value {
    let v: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("inspector stdout is not one JSON object ({e})\n{out}"));
    v.get("result")
        .cloned()
        .unwrap_or_else(|| panic!("no `result` in inspector output\n{out}"))
}

fn assert_check_cert_listed(out: &RunOutput) {
    let result = json_result(out);
    let tools = result["tools"].as_array().expect("tools array");
    let tool = tools
        .iter()
        .find(|t| t["name"] == "check_cert")
        .unwrap_or_else(|| panic!("check_cert not listed\n{out}"));
    let a = &tool["annotations"];
    assert_eq!(a["readOnlyHint"], true, "{a}");
    assert_eq!(a["destructiveHint"], false, "{a}");
    assert_eq!(a["idempotentHint"], true, "{a}");
    assert_eq!(a["openWorldHint"], true, "{a}");
    assert!(
        tool["inputSchema"]["properties"]["targets"].is_object(),
        "{tool}"
    );
    assert!(
        tool["outputSchema"]["properties"]["summary"].is_object(),
        "{tool}"
    );
}

/// The report for the one `file:` target made by [`pem_target`] (valid for 90 more days).
fn assert_cert_report(out: &RunOutput, target: &str) {
    assert!(
        out.code == Some(0) && !out.stdout.contains("\"isError\":true"),
        "check_cert through the inspector did not return a report (exit code 5 with \
         `isError: true` is what the stub cert module gives)\n{out}"
    );
    assert!(out.stdout.contains("\"summary\""), "{out}");
    assert!(out.stdout.contains("\"status\""), "{out}");
    let result = json_result(out);
    let report = &result["structuredContent"];
    let r = &report["results"][0];
    assert_eq!(r["target"], target, "{report}");
    let status = r["status"].as_str().unwrap_or_default();
    assert!(
        ["ok", "warning", "critical", "error"].contains(&status),
        "{report}"
    );
    let days = r["days_left"].as_i64().unwrap_or(-1);
    assert!((88..=90).contains(&days), "days_left {days}\n{report}");
    assert!(
        r["chain"][0]["sans"].to_string().contains("localhost"),
        "{report}"
    );
    let s = &report["summary"];
    let total: u64 = ["ok", "warning", "critical", "error"]
        .iter()
        .map(|k| s[k].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 1, "{report}");
}

/// A self-signed certificate for `localhost`, valid from yesterday for 90 more days, written
/// into `dir` (the server's state directory, one of check_cert's default file roots), as a
/// `file:` target.
fn pem_target(dir: &Path) -> String {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(90) + time::Duration::hours(1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("interop-cert.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    format!("file:{}", path.display())
}

// ---------------------------------------------------------------------------------------
// the inspector

struct Inspector {
    /// `node_modules/.bin/mcp-inspector` of `tests/interop`.
    bin: PathBuf,
    /// HOME for the inspector, so it never reads or writes the user's ~/.mcp-inspector.
    home: PathBuf,
}

static INSPECTOR: OnceLock<Result<Inspector, String>> = OnceLock::new();

impl Inspector {
    /// The installed inspector, or None (after printing SKIP) when node/npm are missing.
    fn get() -> Option<&'static Inspector> {
        match INSPECTOR.get_or_init(Self::install) {
            Ok(i) => Some(i),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("inspector interop cannot run under CI: {why}")
            }
            Err(why) => {
                // Once, and straight to stderr: libtest's capture hides a passing test's
                // eprintln!.
                static NOTICE: Once = Once::new();
                NOTICE.call_once(|| {
                    let _ = writeln!(std::io::stderr(), "SKIP inspector_interop: {why}");
                });
                None
            }
        }
    }

    fn install() -> Result<Inspector, String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
        for tool in ["node", "npm"] {
            let probe = Command::new(tool)
                .arg("--version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !probe.is_ok_and(|s| s.success()) {
                return Err(format!(
                    "`{tool}` is not installed; install Node.js and npm \
                     (Debian: `apt-get install nodejs npm`) to run these tests"
                ));
            }
        }
        let bin = dir.join("node_modules/.bin/mcp-inspector");
        if !bin.exists() {
            eprintln!("installing the MCP Inspector: npm ci in {}", dir.display());
            let out = run(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir),
                INSTALL_TIMEOUT,
            );
            // A failed install is a real failure (the lock file or the registry), not a skip.
            assert_eq!(
                out.code,
                Some(0),
                "npm ci failed in {}\n{out}",
                dir.display()
            );
        }
        let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspector-home");
        std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("cannot create {home:?}: {e}"));
        Ok(Inspector { bin, home })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(&self.bin)
            .args(["--cli", "--format", "json"])
            .env("HOME", &self.home)
            .env_remove("MCP_CATALOG_PATH")
            .env("NO_COLOR", "1");
        cmd
    }

    /// The inspector launches `secops-mcp serve` itself. `--` separates the server command
    /// from the inspector's options; `-e` is the only way to give the server environment.
    fn run_stdio(&self, state_dir: &Path, args: &[&str]) -> RunOutput {
        let mut cmd = self.command();
        cmd.arg("-e")
            .arg(format!("SECOPS_STATE_DIR={}", state_dir.display()))
            .args(args)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_secops-mcp"))
            .arg("serve");
        run(&mut cmd, STEP_TIMEOUT)
    }

    fn run_http(&self, url: &str, args: &[&str]) -> RunOutput {
        let mut cmd = self.command();
        cmd.args(["--transport", "http"])
            .args(args)
            .arg("--")
            .arg(url);
        run(&mut cmd, STEP_TIMEOUT)
    }
}

// ---------------------------------------------------------------------------------------
// the HTTP server under test

struct HttpServer {
    url: String,
    /// The server's state directory.
    state: PathBuf,
    log: Arc<Mutex<String>>,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl HttpServer {
    /// `secops-mcp serve --http 127.0.0.1:0` with one bearer token; the URL comes from the
    /// `secops-mcp listening on` line on stderr.
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, format!("{TOKEN} interop\n")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SECOPS_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["serve", "--http", "127.0.0.1:0"])
            .env("SECOPS_STATE_DIR", dir.path().join("state"))
            .env("SECOPS_HTTP_TOKENS_FILE", &tokens)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = ChildGuard(cmd.spawn().expect("spawn secops-mcp"));
        let stderr = child.0.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        // Keep draining stderr for the server's whole life, or its log writes would block.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("secops-mcp listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = rx.recv_timeout(STEP_TIMEOUT).unwrap_or_else(|_| {
            panic!(
                "secops-mcp did not report its address within {STEP_TIMEOUT:?}\n{}",
                log.lock().unwrap()
            )
        });
        HttpServer {
            url,
            state: dir.path().join("state"),
            log,
            _child: child,
            _dir: dir,
        }
    }
}

impl std::fmt::Display for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- server stderr ---\n{}", self.log.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------------------
// processes with bounded waits

/// Kills the child's whole process group (the inspector's stdio server included) on drop.
struct ChildGuard(Child);

impl ChildGuard {
    fn kill_group(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(Some(_))) {
            self.kill_group();
        }
    }
}

struct RunOutput {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    command: String,
}

impl std::fmt::Display for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- command ---\n{}\n--- exit code: {:?} ---\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// Run to completion with stdin closed; kill the process group and fail after `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> RunOutput {
    let command = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = ChildGuard(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}")),
    );
    let stdout = reader(child.0.stdout.take().unwrap());
    let stderr = reader(child.0.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill_group();
            let out = |rx: mpsc::Receiver<String>| {
                rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default()
            };
            panic!(
                "timed out after {timeout:?}: {command}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out(stdout),
                out(stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A grandchild that outlived its parent could hold the pipes open: bound these waits too.
    let grace = Duration::from_secs(5);
    let stdout = stdout.recv_timeout(grace).unwrap_or_default();
    let stderr = stderr.recv_timeout(grace).unwrap_or_default();
    RunOutput {
        code: status.code(),
        stdout,
        stderr,
        command,
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}
