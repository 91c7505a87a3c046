//! `config check` and `serve` accept and refuse exactly the same settings. Each bad setting
//! below, given once through the environment and once through the TOML file where it has a
//! TOML key, makes `config check`, `serve --http 127.0.0.1:0` and stdio `serve` fail with the
//! same exit code and the same error line, which names the setting; a good configuration
//! passes all three. Runs the real binary with a clean environment and its own state
//! directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_secops-mcp");
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One bad setting. `{dir}` in values stands for the case's scratch directory.
struct Bad {
    what: &'static str,
    /// Environment variables (none: the setting is TOML-only).
    env: &'static [(&'static str, &'static str)],
    /// The same setting in the TOML file (none: environment-only).
    toml: Option<&'static str>,
    /// The error line must contain this (the setting's name).
    names: &'static str,
    /// Only the HTTP transport reads the setting (stdio `serve` ignores it).
    http_only: bool,
}

const BAD: &[Bad] = &[
    Bad {
        what: "unknown channel kind",
        env: &[],
        toml: Some("[[channels]]\nname = \"ops\"\nkind = \"pager\"\n"),
        names: "channels[0].kind",
        http_only: false,
    },
    Bad {
        what: "routing to a channel that does not exist",
        env: &[],
        toml: Some("[routing]\ncritical = [\"slack\"]\n"),
        names: "routing.critical",
        http_only: false,
    },
    Bad {
        what: "webhook without its URL",
        env: &[],
        toml: Some(
            "[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"SECOPS_TEST_UNSET_URL\"\n",
        ),
        names: "channels[0].url_env",
        http_only: false,
    },
    Bad {
        what: "origin with a non-numeric port",
        env: &[("SECOPS_ALLOWED_ORIGINS", "http://h:abc")],
        toml: Some("[http]\nallowed_origins = [\"http://h:abc\"]\n"),
        names: "http.allowed_origins",
        http_only: false,
    },
    Bad {
        what: "scope prefix length too long",
        env: &[("SECOPS_SCAN_ALLOW", "10.0.0.0/33")],
        toml: Some("[scan]\nallow = [\"10.0.0.0/33\"]\n"),
        names: "scan.allow",
        http_only: false,
    },
    Bad {
        what: "scope host that is no hostname",
        env: &[("SECOPS_SCAN_ALLOW", "exa mple")],
        toml: Some("[scan]\nallow = [\"exa mple\"]\n"),
        names: "scan.allow",
        http_only: false,
    },
    Bad {
        what: "check_cert allow entry",
        env: &[("SECOPS_CERT_ALLOW", "10.0.0.0/33")],
        toml: Some("[check_cert]\nallow = [\"not a host!\"]\n"),
        names: "check_cert.allow",
        http_only: false,
    },
    Bad {
        what: "relative file root",
        env: &[("SECOPS_CERT_FILE_ROOTS", "certs")],
        toml: Some("[check_cert]\nfile_roots = [\"/etc/ssl/../..\"]\n"),
        names: "check_cert.file_roots",
        http_only: false,
    },
    Bad {
        what: "number that is no number",
        env: &[("SECOPS_SCAN_RATE_PER_MINUTE", "abc")],
        toml: Some("[scan]\nrate_per_minute = \"abc\"\n"),
        names: "scan.rate_per_minute",
        http_only: false,
    },
    Bad {
        what: "number out of range",
        env: &[("SECOPS_INCIDENTS_MIN_LEVEL", "17")],
        toml: Some("[incidents]\nmin_level = 0\n"),
        names: "incidents.min_level",
        http_only: false,
    },
    Bad {
        what: "bool that is no bool",
        env: &[("SECOPS_TLS_INSECURE", "maybe")],
        toml: Some("[tls]\ninsecure = \"maybe\"\n"),
        names: "tls.insecure",
        http_only: false,
    },
    Bad {
        what: "remediation switch",
        env: &[("SECOPS_REMEDIATION", "yes please")],
        toml: Some("[remediation]\nenabled = \"yes please\"\n"),
        names: "remediation.enabled",
        http_only: false,
    },
    Bad {
        what: "unknown TOML key",
        env: &[],
        toml: Some("[http]\ntokenz_file = \"x\"\n"),
        names: "tokenz_file",
        http_only: false,
    },
    Bad {
        what: "confirmation policy",
        env: &[],
        toml: Some("[remediation.confirmation]\nhttp = \"trust_me\"\n"),
        names: "remediation.confirmation.http",
        http_only: false,
    },
    Bad {
        what: "missing Wazuh CA file",
        env: &[
            ("SECOPS_WAZUH_URL", "https://127.0.0.1:9"),
            ("SECOPS_WAZUH_CA_FILE", "{dir}/missing.pem"),
        ],
        toml: Some("[wazuh]\nurl = \"https://127.0.0.1:9\"\nca_file = \"{dir}/missing.pem\"\n"),
        names: "wazuh.ca_file",
        http_only: false,
    },
    Bad {
        what: "Wazuh CA file that holds no certificate",
        env: &[
            ("SECOPS_WAZUH_URL", "https://127.0.0.1:9"),
            ("SECOPS_WAZUH_CA_FILE", "{dir}/junk.pem"),
        ],
        toml: Some("[wazuh]\nurl = \"https://127.0.0.1:9\"\nca_file = \"{dir}/junk.pem\"\n"),
        names: "wazuh.ca_file",
        http_only: false,
    },
    Bad {
        what: "missing extra CA file",
        env: &[("SECOPS_EXTRA_CA_FILE", "{dir}/missing.pem")],
        toml: Some("[tls]\nextra_ca_file = \"{dir}/missing.pem\"\n"),
        names: "tls.extra_ca_file",
        http_only: false,
    },
    Bad {
        what: "extra CA file that holds no certificate",
        env: &[("SECOPS_EXTRA_CA_FILE", "{dir}/junk.pem")],
        toml: None,
        names: "tls.extra_ca_file",
        http_only: false,
    },
    Bad {
        what: "HTTP body limit",
        env: &[("SECOPS_HTTP_MAX_BODY_BYTES", "10")],
        toml: Some("[http]\nmax_body_bytes = 10\n"),
        names: "http.max_body_bytes",
        http_only: false,
    },
    Bad {
        what: "HTTP connection limit",
        env: &[],
        toml: Some("[http]\nmax_connections = 0\n"),
        names: "http.max_connections",
        http_only: false,
    },
    Bad {
        what: "HTTP session timeout",
        env: &[],
        toml: Some("[http]\nsession_idle_secs = 100000\n"),
        names: "http.session_idle_secs",
        http_only: false,
    },
    Bad {
        what: "state directory that is a file",
        env: &[("SECOPS_STATE_DIR", "{dir}/junk.pem")],
        // The harness always sets SECOPS_STATE_DIR, which wins over the file.
        toml: None,
        names: "state_dir",
        http_only: false,
    },
    Bad {
        what: "missing tokens file",
        env: &[("SECOPS_HTTP_TOKENS_FILE", "{dir}/missing-tokens")],
        toml: Some("[http]\ntokens_file = \"{dir}/missing-tokens\"\n"),
        names: "http.tokens_file",
        http_only: true,
    },
    Bad {
        what: "monitor of an unknown kind",
        env: &[],
        toml: Some("[[monitors]]\nname = \"m\"\nkind = \"nope\"\n"),
        names: "monitors[0].kind",
        http_only: false,
    },
    Bad {
        what: "monitor with a bad cron schedule",
        env: &[],
        toml: Some("[[monitors]]\nname = \"m\"\nkind = \"host\"\nschedule = \"0 2 * *\"\n"),
        names: "monitors[0].schedule",
        http_only: false,
    },
    Bad {
        what: "uptime monitor with a bad URL",
        env: &[],
        toml: Some("[[monitors]]\nname = \"m\"\nkind = \"uptime\"\nurl = \"not a url\"\n"),
        names: "monitors[0].url",
        http_only: false,
    },
    Bad {
        what: "monitor `for` without a unit",
        env: &[],
        toml: Some("[[monitors]]\nname = \"m\"\nkind = \"host\"\nfor = \"15\"\n"),
        names: "monitors[0].for",
        http_only: false,
    },
    Bad {
        what: "monitor with an unknown key",
        env: &[],
        toml: Some("[[monitors]]\nname = \"m\"\nkind = \"host\"\nbogus = 1\n"),
        names: "monitors[0].bogus",
        http_only: false,
    },
    Bad {
        what: "monitor routing an unknown level",
        env: &[],
        toml: Some("[[monitors]]\nname = \"m\"\nkind = \"host\"\nroutes = { loud = [\"log\"] }\n"),
        names: "monitors[0].routes.loud",
        http_only: false,
    },
    Bad {
        what: "monitor routing to an unknown channel",
        env: &[],
        toml: Some(
            "[[monitors]]\nname = \"m\"\nkind = \"host\"\nroutes = { critical = [\"pager\"] }\n",
        ),
        names: "monitors[0].routes.critical",
        http_only: false,
    },
    Bad {
        what: "monitor with an unknown time zone",
        env: &[],
        toml: Some(
            "[[monitors]]\nname = \"m\"\nkind = \"host\"\nschedule = \"0 2 * * *\"\ntimezone = \"Europe/Berln\"\n",
        ),
        names: "monitors[0].timezone",
        http_only: false,
    },
    Bad {
        what: "monitor with a time zone on an interval",
        env: &[],
        toml: Some(
            "[[monitors]]\nname = \"m\"\nkind = \"host\"\nevery = \"60s\"\ntimezone = \"Europe/Berlin\"\n",
        ),
        names: "monitors[0].timezone",
        http_only: false,
    },
    Bad {
        what: "security_events monitor with an unknown incident severity",
        env: &[],
        toml: Some(
            "[[monitors]]\nname = \"m\"\nkind = \"security_events\"\nincident_severity = \"urgent\"\n",
        ),
        names: "monitors[0].incident_severity",
        http_only: false,
    },
    Bad {
        what: "scan monitor outside the scan scope",
        env: &[],
        toml: Some("[[monitors]]\nname = \"m\"\nkind = \"scan\"\ntargets = [\"192.0.2.1\"]\n"),
        names: "monitors[0].targets[0]",
        http_only: false,
    },
];

#[derive(Clone, Copy, Debug)]
enum Mode {
    ConfigCheck,
    ServeHttp,
    ServeStdio,
}

impl Mode {
    fn args(self) -> &'static [&'static str] {
        match self {
            Mode::ConfigCheck => &["config", "check"],
            Mode::ServeHttp => &["serve", "--http", "127.0.0.1:0"],
            Mode::ServeStdio => &["serve"],
        }
    }
}

/// A scratch directory with a CA file that holds no certificate, and the clean environment
/// of one run.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.pem"), "no certificate here\n").unwrap();
        Self { dir }
    }

    fn fill(&self, s: &str) -> String {
        s.replace("{dir}", &self.dir.path().display().to_string())
    }

    fn command(&self, mode: Mode, env: &[(&str, &str)], toml: Option<&str>) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(mode.args())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("SECOPS_STATE_DIR", self.dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        if let Some(toml) = toml {
            let file = self.dir.path().join("secops-mcp.toml");
            std::fs::write(&file, self.fill(toml)).unwrap();
            cmd.env("SECOPS_CONFIG", file);
        }
        for (k, v) in env {
            cmd.env(k, self.fill(v));
        }
        cmd
    }
}

/// What one run said before it ended (or was stopped once it listened).
struct Run {
    status: Option<ExitStatus>,
    stderr: String,
    listened: bool,
}

impl Run {
    /// The error line main prints for a failure.
    fn error_line(&self) -> Option<&str> {
        self.stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("secops-mcp: "))
    }
}

/// Run until exit; an HTTP server that gets to listen is stopped there.
fn run(mut cmd: Command) -> Run {
    let mut child: Child = cmd.spawn().expect("spawn secops-mcp");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut lines = Vec::new();
    let mut listened = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                listened |= line.starts_with("secops-mcp listening on ");
                lines.push(line);
                if listened {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        assert!(
            Instant::now() < deadline,
            "no exit and no listening line: {lines:#?}"
        );
    }
    if listened {
        let _ = child.kill();
    }
    let status = wait(&mut child);
    let _ = reader.join();
    lines.extend(rx.try_iter());
    Run {
        status: (!listened).then_some(status),
        stderr: lines.join("\n"),
        listened,
    }
}

fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_refused_alike(what: &str, via: &str, scratch: &Scratch, bad: &Bad, toml: Option<&str>) {
    let env = if via == "env" { bad.env } else { &[] };
    let modes: &[Mode] = if bad.http_only {
        &[Mode::ConfigCheck, Mode::ServeHttp]
    } else {
        &[Mode::ConfigCheck, Mode::ServeHttp, Mode::ServeStdio]
    };
    let runs: Vec<(Mode, Run)> = modes
        .iter()
        .map(|&m| (m, run(scratch.command(m, env, toml))))
        .collect();
    let (_, check) = &runs[0];
    let line = check.error_line().unwrap_or_else(|| {
        panic!(
            "{what} via {via}: config check said no error: {}",
            check.stderr
        )
    });
    assert!(
        line.contains(bad.names),
        "{what} via {via}: `{line}` does not name {}",
        bad.names
    );
    let code = check.status.and_then(|s| s.code());
    assert!(
        code.is_some_and(|c| c != 0),
        "{what} via {via}: config check exit {code:?}"
    );
    for (mode, r) in &runs[1..] {
        assert!(
            !r.listened,
            "{what} via {via}: {mode:?} served: {}",
            r.stderr
        );
        assert_eq!(
            r.error_line(),
            Some(line),
            "{what} via {via}: {mode:?} said otherwise: {}",
            r.stderr
        );
        assert_eq!(
            r.status.and_then(|s| s.code()),
            code,
            "{what} via {via}: {mode:?} exit code"
        );
    }
}

#[test]
fn config_check_and_serve_refuse_the_same_settings_with_the_same_error() {
    for bad in BAD {
        if !bad.env.is_empty() {
            assert_refused_alike(bad.what, "env", &Scratch::new(), bad, None);
        }
        if let Some(toml) = bad.toml {
            assert_refused_alike(bad.what, "toml", &Scratch::new(), bad, Some(toml));
        }
    }
}

#[test]
fn a_good_config_passes_config_check_and_serve() {
    let scratch = Scratch::new();
    let toml = "[scan]\nallow = [\"127.0.0.0/8\", \"localhost\"]\n\
                [http]\nallowed_origins = [\"http://localhost:*\", \"https://app.example\"]\n\
                [check_cert]\nfile_roots = [\"{dir}\"]\nallow = [\"127.0.0.2/32\"]\n";
    let check = run(scratch.command(Mode::ConfigCheck, &[], Some(toml)));
    assert!(
        check.status.is_some_and(|s| s.success()) && check.stderr.contains("configuration OK"),
        "{}",
        check.stderr
    );
    let http = run(scratch.command(Mode::ServeHttp, &[], Some(toml)));
    assert!(
        http.listened,
        "serve --http did not listen: {}",
        http.stderr
    );
    // stdio with stdin at end of file: gets past start-up to serving, then ends because no
    // client ever sends `initialize` (that is the only complaint).
    let stdio = run(scratch.command(Mode::ServeStdio, &[], Some(toml)));
    assert!(
        stdio.stderr.contains("serving MCP over stdio"),
        "{}",
        stdio.stderr
    );
    assert!(
        stdio
            .error_line()
            .is_none_or(|l| l.contains("connection closed")),
        "{}",
        stdio.stderr
    );
}
