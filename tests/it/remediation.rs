//! Gated remediation end to end: the real binary over stdio, driven by rmcp clients that do
//! or do not implement elicitation (in both protocol eras), against the Wazuh simulator.
//! Tokens, human approval (elicitation, decline, out-of-band `approve`), rollback, crash
//! recovery at every rotation step, the audit chain, block_ip refusals, and secret hygiene.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, Implementation, ProtocolVersion,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient};
use serde_json::{Value, json};
use wazuh_sim::{SimConfig, Simulator};

const OLD_WUI: &str = "Wazuh-Wui-Pass1!";

/// A client standing in for the human: `None` cannot elicit at all.
#[derive(Clone)]
struct Human(Option<ElicitationAction>);

impl ClientHandler for Human {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        if self.0.is_some() {
            caps.elicitation = Some(ElicitationCapability::default());
        }
        ClientConfig::new(caps, Implementation::new("test-human", "0.0.1"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        assert!(message.contains("Approve"), "{message}");
        Ok(match self.0.clone().unwrap_or(ElicitationAction::Decline) {
            ElicitationAction::Accept => {
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": true}))
            }
            other => ElicitResult::new(other),
        })
    }
}

type HumanClient = RunningService<RoleClient, Human>;

struct World {
    sim: Simulator,
    scratch: Scratch,
    env: BTreeMap<String, String>,
    secret_file: PathBuf,
}

/// A simulator, a private secret file holding wazuh-wui's password, and a config with
/// remediation enabled plus `remediation` lines (TOML inside `[remediation]`).
async fn world(remediation: &str) -> World {
    world_with(remediation, "").await
}

/// Like [`world`], with `block_ip` lines inside `[remediation.block_ip]`.
async fn world_with(remediation: &str, block_ip: &str) -> World {
    let s = SimEnv::start(SimConfig::default()).await;
    let scratch = &s.scratch;
    let secrets = scratch.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let secret_file = secrets.join("wazuh-wui");
    std::fs::write(&secret_file, format!("{OLD_WUI}\n")).unwrap();
    set_mode(&secret_file, 0o600);
    let toml = format!(
        "[remediation]\nenabled = true\n{remediation}\n\n[remediation.block_ip]\n\
         protected_cidrs = [\"198.51.100.0/24\"]\n{block_ip}\n\n[[credentials]]\n\
         id = \"wazuh-wui\"\nkind = \"wazuh_api_user\"\nuser = \"wazuh-wui\"\n\
         secret_file = \"{}\"\n",
        secret_file.display()
    );
    let config = scratch.write("secops.toml", &toml);
    let config = config.to_string_lossy().to_string();
    let env = s.child_env(
        &s.manager_vars(),
        &[("SECOPS_CONFIG", config.as_str()), ("SECOPS_LOG", "debug")],
    );
    let SimEnv { sim, scratch, .. } = s;
    World {
        sim,
        scratch,
        env,
        secret_file,
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn file_secret(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim_end().to_string()
}

fn side(p: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", p.display()))
}

impl World {
    fn command(&self, extra: &[(&str, &str)]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
        cmd.arg("serve").env_clear();
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd
    }

    /// The server over stdio with its log in `log_name`, and a client that is `human`.
    async fn client_with(
        &self,
        human: Human,
        era: Era,
        log_name: &str,
        extra: &[(&str, &str)],
    ) -> HumanClient {
        let log = std::fs::File::create(self.scratch.path().join(log_name)).unwrap();
        let (transport, _) = TokioChildProcess::builder(self.command(extra))
            .stderr(std::process::Stdio::from(log))
            .spawn()
            .expect("spawn secops-mcp");
        connect_with(human, transport, era).await
    }

    async fn client(&self, human: Human, era: Era, log_name: &str) -> HumanClient {
        self.client_with(human, era, log_name, &[]).await
    }

    /// Run the binary with `args` (e.g. `approve TOKEN`); exit code and stdout+stderr.
    async fn cli(&self, args: &[&str]) -> (i32, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
        cmd.args(args).env_clear();
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for e in std::fs::read_dir(self.scratch.path()).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "log") {
                all.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
        all
    }
}

async fn call_h(client: &HumanClient, tool: &str, arguments: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args(arguments));
    tokio::time::timeout(Duration::from_secs(30), client.call_tool(params))
        .await
        .expect("tool call timed out")
        .expect("tool call failed at the protocol level")
}

fn sc(r: &CallToolResult) -> Value {
    r.structured_content.clone().unwrap_or(Value::Null)
}

fn rotate_args(mode: &str, token: Option<&str>) -> Value {
    let mut v = json!({"credential": "wazuh-wui", "reason": "suspected exposure", "mode": mode});
    if let Some(t) = token {
        v["confirmation_token"] = json!(t);
    }
    v
}

async fn plan_rotation(client: &HumanClient) -> String {
    let r = call_h(client, "rotate_credentials", rotate_args("plan", None)).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let out = sc(&r);
    assert_eq!(out["credential"], "wazuh-wui");
    assert!(out["steps"].as_array().unwrap().len() >= 5, "{out}");
    assert!(out["expires_at"].is_string());
    out["confirmation_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_tools_are_not_listed_and_refused_when_disabled() {
    let w = world("").await;
    let client = w
        .client_with(
            Human(None),
            Era::Legacy,
            "disabled.log",
            &[("SECOPS_REMEDIATION", "disabled")],
        )
        .await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "check_cert"));
    assert!(
        !tools.iter().any(
            |t| ["rotate_credentials", "block_ip", "approve_change"].contains(&t.name.as_ref())
        ),
        "{tools:?}"
    );
    for tool in ["rotate_credentials", "block_ip", "approve_change"] {
        let r = call_h(
            &client,
            tool,
            json!({"credential": "wazuh-wui", "reason": "x"}),
        )
        .await;
        assert_eq!(r.is_error, Some(true));
        assert!(text_of(&r).contains("disabled"), "{}", text_of(&r));
    }
    assert_eq!(w.sim.user_password("wazuh-wui").unwrap(), OLD_WUI);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_tools_are_listed_as_destructive() {
    let w = world("").await;
    let client = w.client(Human(None), Era::Legacy, "list.log").await;
    let tools = client.list_all_tools().await.unwrap();
    for name in ["rotate_credentials", "block_ip"] {
        let t = tools.iter().find(|t| t.name == name).expect(name);
        let a = t.annotations.as_ref().unwrap();
        assert_eq!(a.read_only_hint, Some(false));
        assert_eq!(a.destructive_hint, Some(true));
        assert_eq!(a.idempotent_hint, Some(false));
        assert_eq!(a.open_world_hint, Some(true));
        assert!(t.description.as_deref().unwrap().contains("plan"));
    }
    // The destructive surface is a reviewed interface, like the read-only one.
    assert_tool_surface(
        "remediation__destructive_tools_list",
        &tools,
        Some(&["rotate_credentials", "block_ip", "approve_change"]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_reasons() {
    let w = world("token_ttl_secs = 2").await;
    let client = w
        .client(
            Human(Some(ElicitationAction::Accept)),
            Era::Legacy,
            "tokens.log",
        )
        .await;
    let block = |ip: &str, mode: &str, token: Option<&str>| {
        let mut v = json!({"ip": ip, "agents": ["001"], "reason": "brute force", "mode": mode});
        if let Some(t) = token {
            v["confirmation_token"] = json!(t);
        }
        v
    };
    let plan_a = call_h(&client, "block_ip", block("203.0.113.10", "plan", None)).await;
    assert_ne!(plan_a.is_error, Some(true), "{}", text_of(&plan_a));
    let token_a = sc(&plan_a)["confirmation_token"]
        .as_str()
        .unwrap()
        .to_string();
    let plan_b = call_h(&client, "block_ip", block("203.0.113.11", "plan", None)).await;
    let token_b = sc(&plan_b)["confirmation_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(token_a, token_b);

    let refused = |r: &CallToolResult, needle: &str| {
        assert_eq!(r.is_error, Some(true), "{}", text_of(r));
        assert!(
            text_of(r).contains(needle),
            "want `{needle}` in: {}",
            text_of(r)
        );
    };
    // No token.
    let r = call_h(&client, "block_ip", block("203.0.113.10", "apply", None)).await;
    refused(&r, "is required for mode `apply`");
    // Another call's token.
    let r = call_h(
        &client,
        "block_ip",
        block("203.0.113.10", "apply", Some(&token_b)),
    )
    .await;
    refused(&r, "different arguments");
    // The right token with changed arguments.
    let mut changed = block("203.0.113.10", "apply", Some(&token_a));
    changed["agents"] = json!(["001", "002"]);
    let r = call_h(&client, "block_ip", changed).await;
    refused(&r, "different arguments");
    // A token for another tool.
    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token_a)),
    )
    .await;
    refused(&r, "issued for tool `block_ip`");
    // A tampered token.
    let tampered = format!("{}0", &token_a[..token_a.len() - 1]);
    let tampered = if tampered == token_a {
        format!("{}1", &token_a[..token_a.len() - 1])
    } else {
        tampered
    };
    let r = call_h(
        &client,
        "block_ip",
        block("203.0.113.10", "apply", Some(&tampered)),
    )
    .await;
    refused(&r, "unknown or altered");
    assert!(w.sim.active_responses().is_empty(), "nothing may be sent");

    // Correct apply works once (the human accepts), then the token is spent.
    let r = call_h(
        &client,
        "block_ip",
        block("203.0.113.10", "apply", Some(&token_a)),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(sc(&r)["outcome"], "blocked", "{}", text_of(&r));
    let r = call_h(
        &client,
        "block_ip",
        block("203.0.113.10", "apply", Some(&token_a)),
    )
    .await;
    refused(&r, "already used");
    assert_eq!(w.sim.active_responses().len(), 1);

    // Expired.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = call_h(
        &client,
        "block_ip",
        block("203.0.113.11", "apply", Some(&token_b)),
    )
    .await;
    refused(&r, "expired");
    assert_eq!(w.sim.active_responses().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_elicitation_rotates_in_both_eras_and_the_secret_never_leaks() {
    for era in ERAS {
        let w = world("").await;
        let client = w
            .client(Human(Some(ElicitationAction::Accept)), era, "accept.log")
            .await;
        let token = plan_rotation(&client).await;
        let r = call_h(
            &client,
            "rotate_credentials",
            rotate_args("apply", Some(&token)),
        )
        .await;
        assert_ne!(r.is_error, Some(true), "{era:?}: {}", text_of(&r));
        let out = sc(&r);
        assert_eq!(out["outcome"], "rotated", "{era:?}: {out}");
        assert_eq!(out["verified"], true);
        assert!(out["version"].as_str().unwrap().starts_with('v'));
        assert!(out["previous_version"].is_string());
        assert_eq!(out["fingerprint"].as_str().unwrap().len(), 16);
        assert!(out["audit_id"].as_i64().unwrap() > 0);
        assert_eq!(
            out["stored_at"].as_str().unwrap(),
            w.secret_file.to_str().unwrap()
        );

        let new = w.sim.user_password("wazuh-wui").unwrap();
        assert_ne!(
            new, OLD_WUI,
            "{era:?}: the target's password did not change"
        );
        assert_eq!(new.len(), 32);
        assert_eq!(file_secret(&w.secret_file), new, "file and target disagree");
        assert_eq!(mode_of(&w.secret_file), 0o600);
        let previous = side(&w.secret_file, ".previous");
        assert_eq!(file_secret(&previous), OLD_WUI);
        assert_eq!(mode_of(&previous), 0o600);
        assert!(!side(&w.secret_file, ".pending").exists());

        // The audit resource shows the steps, linked to the incident, without the secret.
        let res = client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "secops://audit/recent",
            ))
            .await
            .unwrap();
        let audit = serde_json::to_string(&res).unwrap();
        for action in ["plan", "approve", "apply", "set", "success"] {
            assert!(
                audit.contains(&format!("\\\"action\\\": \\\"{action}\\\"")),
                "{era:?}: no `{action}` in {audit}"
            );
        }
        let seen = format!("{}{audit}", serde_json::to_string(&r).unwrap());
        client.cancel().await.ok();
        tokio::time::sleep(Duration::from_millis(200)).await;

        // The secret is nowhere: output, resources, logs, database.
        let db = std::fs::read(w.scratch.state_dir().join("secops.db")).unwrap();
        let mut dbs = String::from_utf8_lossy(&db).to_string();
        for suffix in ["-wal", "-shm"] {
            if let Ok(b) = std::fs::read(w.scratch.state_dir().join(format!("secops.db{suffix}"))) {
                dbs.push_str(&String::from_utf8_lossy(&b));
            }
        }
        for (what, text) in [("output", seen), ("log", w.logs()), ("database", dbs)] {
            assert!(
                !text.contains(&new),
                "{era:?}: the new secret leaked into the {what}"
            );
            assert!(
                !text.contains(OLD_WUI),
                "{era:?}: the old secret leaked into the {what}"
            );
        }
        let (code, text) = w.cli(&["audit", "verify"]).await;
        assert_eq!(code, 0, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_elicitation_refuses_and_changes_nothing() {
    for era in ERAS {
        let w = world("").await;
        let client = w
            .client(Human(Some(ElicitationAction::Decline)), era, "decline.log")
            .await;
        let token = plan_rotation(&client).await;
        let r = call_h(
            &client,
            "rotate_credentials",
            rotate_args("apply", Some(&token)),
        )
        .await;
        assert_eq!(r.is_error, Some(true), "{era:?}: {}", text_of(&r));
        assert!(text_of(&r).contains("declined"), "{}", text_of(&r));
        assert_eq!(w.sim.user_password("wazuh-wui").unwrap(), OLD_WUI);
        assert_eq!(file_secret(&w.secret_file), OLD_WUI);
        assert!(!side(&w.secret_file, ".pending").exists());
        // A declined token is spent.
        let r = call_h(
            &client,
            "rotate_credentials",
            rotate_args("apply", Some(&token)),
        )
        .await;
        assert!(text_of(&r).contains("already used"), "{}", text_of(&r));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_elicitation_is_told_to_approve_out_of_band() {
    let w = world("").await;
    let client = w.client(Human(None), Era::Legacy, "noelicit.log").await;
    let token = plan_rotation(&client).await;
    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(
        text.contains(&format!("secops-mcp approve {token}")),
        "{text}"
    );
    assert_eq!(w.sim.user_password("wazuh-wui").unwrap(), OLD_WUI);

    let (code, out) = w.cli(&["approve", &token]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("approved"), "{out}");
    assert!(
        out.contains("rotate credential `wazuh-wui`") && out.contains("suspected exposure"),
        "the operator must see what they approve: {out}"
    );
    let (code, _) = w.cli(&["approve", "sct1_bogus"]).await;
    assert_ne!(code, 0);

    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(sc(&r)["outcome"], "rotated");
    assert_eq!(
        file_secret(&w.secret_file),
        w.sim.user_password("wazuh-wui").unwrap()
    );
    let (code, tail) = w.cli(&["audit", "tail", "-n", "50"]).await;
    assert_eq!(code, 0);
    assert!(tail.contains("cli") && tail.contains("approve"), "{tail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_drops_the_new_password_is_rolled_back() {
    let w = world("require_human = false").await;
    let client = w.client(Human(None), Era::Legacy, "rollback.log").await;
    let token = plan_rotation(&client).await;
    w.sim.faults().ignore_next_password_changes(1);
    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    let out = sc(&r);
    assert_eq!(out["outcome"], "rolled_back", "{}", text_of(&r));
    assert_eq!(out["verified"], false);
    assert_eq!(w.sim.user_password("wazuh-wui").unwrap(), OLD_WUI);
    assert_eq!(file_secret(&w.secret_file), OLD_WUI);
    assert!(!side(&w.secret_file, ".pending").exists());
    // The lock is released: the next rotation goes through.
    let token = plan_rotation(&client).await;
    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_eq!(sc(&r)["outcome"], "rotated", "{}", text_of(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_rotation_step_is_reconciled_at_restart() {
    let w = world("require_human = false").await;
    for step in ["stage", "set", "test", "promote"] {
        let before = file_secret(&w.secret_file);
        let client = w
            .client_with(
                Human(None),
                Era::Legacy,
                &format!("crash-{step}.log"),
                &[("SECOPS_TEST_CRASH_AT", step)],
            )
            .await;
        let token = plan_rotation(&client).await;
        let params = CallToolRequestParams::new("rotate_credentials")
            .with_arguments(args(rotate_args("apply", Some(&token))));
        let res = tokio::time::timeout(Duration::from_secs(30), client.call_tool(params)).await;
        assert!(
            !matches!(res, Ok(Ok(_))),
            "{step}: the server should have died mid-rotation"
        );
        drop(client);
        let target = w.sim.user_password("wazuh-wui").unwrap();
        if step == "stage" {
            assert_eq!(target, before, "stage crashes before the set");
        } else {
            assert_ne!(target, before, "{step} crashes after the set");
        }

        // Restart: reconciliation makes file and target agree before serving.
        let client = w
            .client(Human(None), Era::Legacy, &format!("restart-{step}.log"))
            .await;
        client.list_all_tools().await.unwrap();
        assert_eq!(
            file_secret(&w.secret_file),
            w.sim.user_password("wazuh-wui").unwrap(),
            "{step}: target and secret_file disagree after restart"
        );
        assert!(!side(&w.secret_file, ".pending").exists(), "{step}");
        assert_eq!(mode_of(&w.secret_file), 0o600);
        client.cancel().await.ok();
    }
    // After all that, rotation still works (no stale lock).
    let client = w.client(Human(None), Era::Legacy, "final.log").await;
    let token = plan_rotation(&client).await;
    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_eq!(sc(&r)["outcome"], "rotated", "{}", text_of(&r));
    let (code, text) = w.cli(&["audit", "verify"]).await;
    assert_eq!(code, 0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_an_edited_row() {
    let w = world("").await;
    let client = w.client(Human(None), Era::Legacy, "audit.log").await;
    plan_rotation(&client).await;
    plan_rotation(&client).await;
    plan_rotation(&client).await;
    client.cancel().await.ok();
    let (code, text) = w.cli(&["audit", "verify"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("3 rows"), "{text}");
    let db = rusqlite::Connection::open(w.scratch.state_dir().join("secops.db")).unwrap();
    db.execute(
        "UPDATE audit SET detail = 'nothing to see' WHERE id = 2",
        [],
    )
    .unwrap();
    drop(db);
    let (code, text) = w.cli(&["audit", "verify"]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("row 2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_ip_refuses_unsafe_targets_and_reports_failed_agents() {
    let w = world("require_human = false\nrate_limit_per_minute = 100").await;
    let client = w.client(Human(None), Era::Legacy, "block.log").await;
    let plan = |ip: &str, agents: Value| json!({"ip": ip, "agents": agents, "reason": "scanning"});
    for (ip, agents, needle) in [
        ("127.0.0.1", json!(["001"]), "loopback"),
        ("::1", json!(["001"]), "loopback"),
        ("0.0.0.0", json!(["001"]), "unspecified"),
        ("224.0.0.1", json!(["001"]), "multicast"),
        (
            "198.51.100.20",
            json!(["001"]),
            "protected range 198.51.100.0/24",
        ),
        ("10.0.0.300", json!(["001"]), "invalid argument `ip`"),
        ("203.0.113.5/32", json!(["001"]), "no CIDR"),
        ("203.0.113.5", json!([]), "invalid argument `agents`"),
        ("203.0.113.5", json!(["abc"]), "not an agent id"),
    ] {
        let r = call_h(&client, "block_ip", plan(ip, agents)).await;
        assert_eq!(r.is_error, Some(true), "{ip}: {}", text_of(&r));
        assert!(
            text_of(&r).contains(needle),
            "{ip}: want `{needle}` in {}",
            text_of(&r)
        );
    }
    let mut all = plan("203.0.113.5", json!([]));
    all["all_agents"] = json!(true);
    let r = call_h(&client, "block_ip", all).await;
    assert!(
        text_of(&r).contains("not allowed by policy"),
        "{}",
        text_of(&r)
    );

    let r = call_h(
        &client,
        "block_ip",
        plan("203.0.113.5", json!(["001", "999"])),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let token = sc(&r)["confirmation_token"].as_str().unwrap().to_string();
    let mut apply = plan("203.0.113.5", json!(["001", "999"]));
    apply["mode"] = json!("apply");
    apply["confirmation_token"] = json!(token);
    let r = call_h(&client, "block_ip", apply).await;
    let out = sc(&r);
    assert_eq!(out["outcome"], "partial", "{}", text_of(&r));
    let results = out["results"].as_array().unwrap();
    let missing = results.iter().find(|a| a["agent"] == "999").unwrap();
    assert_eq!(missing["status"], "failed");
    assert_eq!(missing["code"], 1701);
    let ok = results.iter().find(|a| a["agent"] == "001").unwrap();
    assert_eq!(ok["status"], "sent");
    assert!(
        text_of(&r).contains("NOT blocked on: 999"),
        "{}",
        text_of(&r)
    );
    let sent = w.sim.active_responses();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].command, "firewall-drop");
    assert_eq!(sent[0].agents, ["001"]);
    assert_eq!(
        sent[0].alert.as_ref().unwrap()["data"]["srcip"],
        "203.0.113.5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_our_own_login_switches_the_live_client() {
    // The credential is the very user secops-mcp logs in with (`wazuh`, the admin).
    let w = world("require_human = false").await;
    let own = w.scratch.path().join("secrets").join("wazuh");
    std::fs::write(&own, "Wazuh-Sim-Pass1!\n").unwrap();
    set_mode(&own, 0o600);
    let toml = std::fs::read_to_string(&w.env["SECOPS_CONFIG"]).unwrap()
        + &format!(
            "\n[[credentials]]\nid = \"self\"\nkind = \"wazuh_api_user\"\nuser = \"wazuh\"\n\
             secret_file = \"{}\"\n",
            own.display()
        );
    std::fs::write(&w.env["SECOPS_CONFIG"], toml).unwrap();
    let client = w.client(Human(None), Era::Legacy, "own.log").await;
    let rotate = |mode: &str, token: Option<&str>| {
        let mut v = json!({"credential": "self", "reason": "yearly", "mode": mode});
        if let Some(t) = token {
            v["confirmation_token"] = json!(t);
        }
        v
    };
    for round in 0..2 {
        let r = call_h(&client, "rotate_credentials", rotate("plan", None)).await;
        let token = sc(&r)["confirmation_token"].as_str().unwrap().to_string();
        let steps = sc(&r)["steps"].to_string();
        assert!(steps.contains("own Wazuh login"), "{steps}");
        let r = call_h(&client, "rotate_credentials", rotate("apply", Some(&token))).await;
        assert_eq!(
            sc(&r)["outcome"],
            "rotated",
            "round {round}: {}",
            text_of(&r)
        );
        assert_eq!(file_secret(&own), w.sim.user_password("wazuh").unwrap());
    }
    // The second round's preflight and set went through the live client with the first
    // round's secret; a read-only check still works without a restart.
    let r = call_h(&client, "wazuh_health", json!({"include": ["manager"]})).await;
    assert_eq!(sc(&r)["manager"]["reachable"], true, "{}", text_of(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_bound_to_the_caller_that_planned() {
    // alice's client may ask her: her policy says so (HTTP principals default to
    // out_of_band).
    let w = world("[remediation.confirmation]\nprincipals = { alice = \"elicitation\" }").await;
    let toml = std::fs::read_to_string(&w.env["SECOPS_CONFIG"]).unwrap();
    let env: Vec<(&str, &str)> = w
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("SECOPS_WAZUH"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // alice plans over HTTP ...
    let http = HttpHarness::start(&w.scratch, &toml, &env).await;
    let alice = http.client(Era::Legacy).await;
    let r = call(&alice, "rotate_credentials", rotate_args("plan", None)).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let token = sc(&r)["confirmation_token"].as_str().unwrap().to_string();
    // ... and a stdio caller cannot apply her plan.
    let other = w
        .client(
            Human(Some(ElicitationAction::Accept)),
            Era::Legacy,
            "caller.log",
        )
        .await;
    let r = call_h(
        &other,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("another caller"), "{}", text_of(&r));
    assert_eq!(w.sim.user_password("wazuh-wui").unwrap(), OLD_WUI);

    // alice herself, over stateless (2026-07-28) HTTP with a client that can ask her:
    // the input-required round trip carries the question and the sealed state.
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            http.url(),
        )
        .auth_header(TEST_TOKEN),
    );
    let alice_human = Human(Some(ElicitationAction::Accept))
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover");
    let r = call_h(
        &alice_human,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_eq!(sc(&r)["outcome"], "rotated", "{}", text_of(&r));
    assert_eq!(
        file_secret(&w.secret_file),
        w.sim.user_password("wazuh-wui").unwrap()
    );
    http.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_refuses_a_credential_whose_current_secret_does_not_work() {
    let w = world("").await;
    std::fs::write(&w.secret_file, "Not-The-Pass-9!\n").unwrap();
    let client = w.client(Human(None), Era::Legacy, "preflight.log").await;
    let r = call_h(&client, "rotate_credentials", rotate_args("plan", None)).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("does not log in as `wazuh-wui`"),
        "{}",
        text_of(&r)
    );
    assert!(!text_of(&r).contains("Not-The-Pass-9!"));
    let r = call_h(
        &client,
        "rotate_credentials",
        json!({"credential": "nope", "reason": "x"}),
    )
    .await;
    assert!(
        text_of(&r).contains("invalid argument `credential`") && text_of(&r).contains("wazuh-wui"),
        "{}",
        text_of(&r)
    );
    assert_eq!(w.sim.user_password("wazuh-wui").unwrap(), OLD_WUI);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollback_is_orphaned_with_instructions_and_reconciled_later() {
    let w = world("require_human = false").await;
    let client = w.client(Human(None), Era::Legacy, "orphan.log").await;
    let token = plan_rotation(&client).await;
    // The manager dies right after accepting the new password: test and rollback fail.
    w.sim.faults().fail_after_next_password_change();
    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let out = sc(&r);
    assert_eq!(out["outcome"], "failed", "{}", text_of(&r));
    let detail = out["detail"].as_str().unwrap();
    assert!(detail.contains("ORPHANED"), "{detail}");
    assert!(
        detail.contains("set the password of API user `wazuh-wui`"),
        "{detail}"
    );
    let new = w.sim.user_password("wazuh-wui").unwrap();
    assert!(
        !text_of(&r).contains(&new),
        "the secret leaked into the instructions"
    );
    assert!(
        side(&w.secret_file, ".pending").exists(),
        "the staged secret must be kept"
    );
    client.cancel().await.ok();

    // The manager comes back; the next start makes file and target agree.
    w.sim.faults().fail_next(0);
    let client = w
        .client(Human(None), Era::Legacy, "orphan-restart.log")
        .await;
    client.list_all_tools().await.unwrap();
    assert_eq!(file_secret(&w.secret_file), new);
    assert!(!side(&w.secret_file, ".pending").exists());
    let token = plan_rotation(&client).await;
    let r = call_h(
        &client,
        "rotate_credentials",
        rotate_args("apply", Some(&token)),
    )
    .await;
    assert_eq!(sc(&r)["outcome"], "rotated", "{}", text_of(&r));
}

const BOB_TOKEN: &str = "bob-token-0123456789abcdef";
const CAROL_TOKEN: &str = "carol-token-0123456789abcdef";

/// An HTTP server on `w`'s simulator and state with `toml`, whose tokens file names alice
/// (TEST_TOKEN), bob and carol.
async fn http_world(w: &World, toml: &str) -> HttpHarness {
    let tokens = w.scratch.write(
        "tokens-abc",
        &format!("{TEST_TOKEN} alice\n{BOB_TOKEN} bob\n{CAROL_TOKEN} carol\n"),
    );
    let tokens = tokens.to_string_lossy().to_string();
    let mut env: Vec<(&str, &str)> = w
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("SECOPS_WAZUH"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.push(("SECOPS_HTTP_TOKENS_FILE", &tokens));
    HttpHarness::start(&w.scratch, toml, &env).await
}

/// A client over HTTP with bearer `token` that is `human`, in `era`.
async fn http_human(http: &HttpHarness, token: &str, human: Human, era: Era) -> HumanClient {
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            http.url(),
        )
        .auth_header(token),
    );
    connect_with(human, transport, era).await
}

fn block_args(ip: &str, mode: &str, token: Option<&str>) -> Value {
    let mut v = json!({"ip": ip, "agents": ["001"], "reason": "brute force", "mode": mode});
    if let Some(t) = token {
        v["confirmation_token"] = json!(t);
    }
    v
}

async fn audit_rows(client: &HumanClient) -> (usize, Value) {
    let res = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "secops://audit/recent",
        ))
        .await
        .unwrap();
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &res.contents[0] else {
        panic!("the audit resource is text");
    };
    (text.len(), serde_json::from_str(text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_principal_saying_yes_through_its_own_client_is_refused_in_both_eras() {
    let w = world("").await;
    let toml = std::fs::read_to_string(&w.env["SECOPS_CONFIG"]).unwrap();
    let http = http_world(&w, &toml).await;
    for (i, era) in ERAS.into_iter().enumerate() {
        // alice holds a token and a client that answers every approval prompt with yes.
        let alice = http_human(
            &http,
            TEST_TOKEN,
            Human(Some(ElicitationAction::Accept)),
            era,
        )
        .await;
        let ip = format!("203.0.113.{}", 30 + i);
        let sent = w.sim.active_responses().len();
        let r = call_h(&alice, "block_ip", block_args(&ip, "plan", None)).await;
        assert_ne!(r.is_error, Some(true), "{era:?}: {}", text_of(&r));
        let token = sc(&r)["confirmation_token"].as_str().unwrap().to_string();
        let r = call_h(&alice, "block_ip", block_args(&ip, "apply", Some(&token))).await;
        assert_eq!(r.is_error, Some(true), "{era:?}: {}", text_of(&r));
        let text = text_of(&r);
        assert!(text.contains("`out_of_band`"), "{era:?}: {text}");
        assert!(
            text.contains(&format!("secops-mcp approve {token}")),
            "{era:?}: {text}"
        );
        assert_eq!(
            w.sim.active_responses().len(),
            sent,
            "{era:?}: nothing is sent"
        );
        let (_, audit) = audit_rows(&alice).await;
        assert!(
            !audit["audit"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == "approve" && r["caller"] == "alice"),
            "{era:?}: the client's yes is no approval: {audit}"
        );
        // The operator at the server approves; then the same apply runs.
        let (code, out) = w.cli(&["approve", &token]).await;
        assert_eq!(code, 0, "{out}");
        let r = call_h(&alice, "block_ip", block_args(&ip, "apply", Some(&token))).await;
        assert_eq!(sc(&r)["outcome"], "blocked", "{era:?}: {}", text_of(&r));
        assert_eq!(w.sim.active_responses().len(), sent + 1);
        let (_, audit) = audit_rows(&alice).await;
        let apply = audit["audit"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "apply")
            .unwrap()
            .clone();
        assert!(
            apply["detail"]
                .as_str()
                .unwrap()
                .contains("approved by cli"),
            "{apply}"
        );
        alice.cancel().await.ok();
    }
    http.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_principal_needs_another_approver_and_the_audit_names_it() {
    let w = world(
        "approvers = [\"alice\", \"bob\"]\n[remediation.confirmation]\n\
         principals = { alice = \"second_principal\" }",
    )
    .await;
    let toml = std::fs::read_to_string(&w.env["SECOPS_CONFIG"]).unwrap();
    let http = http_world(&w, &toml).await;
    let alice = http_human(
        &http,
        TEST_TOKEN,
        Human(Some(ElicitationAction::Accept)),
        Era::Legacy,
    )
    .await;
    let bob = http_human(&http, BOB_TOKEN, Human(None), Era::Stateless).await;
    let carol = http_human(&http, CAROL_TOKEN, Human(None), Era::Legacy).await;

    // approve_change is listed with remediation, not read-only, not destructive.
    let tools = bob.list_all_tools().await.unwrap();
    let t = tools.iter().find(|t| t.name == "approve_change").unwrap();
    let a = t.annotations.as_ref().unwrap();
    assert_eq!(a.read_only_hint, Some(false));
    assert_eq!(a.destructive_hint, Some(false));
    assert_eq!(a.idempotent_hint, Some(false));
    assert_eq!(a.open_world_hint, Some(false));

    let ip = "203.0.113.40";
    let r = call_h(&alice, "block_ip", block_args(ip, "plan", None)).await;
    let token = sc(&r)["confirmation_token"].as_str().unwrap().to_string();
    // Her own client's yes does not count.
    let r = call_h(&alice, "block_ip", block_args(ip, "apply", Some(&token))).await;
    assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(
        text_of(&r).contains("`second_principal`") && text_of(&r).contains("approve_change"),
        "{}",
        text_of(&r)
    );
    let approve = |token: &str| json!({"confirmation_token": token, "comment": "checked the logs"});
    let refused = |r: &CallToolResult, needle: &str| {
        assert_eq!(r.is_error, Some(true), "{}", text_of(r));
        assert!(
            text_of(r).contains(needle),
            "want `{needle}` in {}",
            text_of(r)
        );
    };
    // The requester cannot approve its own token, even as an approver.
    let r = call_h(&alice, "approve_change", approve(&token)).await;
    refused(&r, "issued to you (`alice`)");
    // A principal without the approver right cannot.
    let r = call_h(&carol, "approve_change", approve(&token)).await;
    refused(&r, "caller `carol` is not an approver");
    // Bad arguments name the argument.
    let r = call_h(&bob, "approve_change", approve("sct1_bogus")).await;
    refused(&r, "invalid argument `confirmation_token`");
    let r = call_h(
        &bob,
        "approve_change",
        json!({"confirmation_token": token, "comment": "x".repeat(600)}),
    )
    .await;
    refused(&r, "invalid argument `comment`");
    assert!(w.sim.active_responses().is_empty());

    // An approver can; the audit row names him.
    let r = call_h(&bob, "approve_change", approve(&token)).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let out = sc(&r);
    assert_eq!(out["approved"], true);
    assert_eq!(out["requester"], "alice");
    assert_eq!(out["approved_by"], "bob");
    assert_eq!(out["tool"], "block_ip");
    let r = call_h(&bob, "approve_change", approve(&token)).await;
    refused(&r, "already approved (principal `bob`)");

    // Then the requester's apply runs.
    let r = call_h(&alice, "block_ip", block_args(ip, "apply", Some(&token))).await;
    assert_eq!(sc(&r)["outcome"], "blocked", "{}", text_of(&r));
    assert_eq!(w.sim.active_responses().len(), 1);
    let r = call_h(&bob, "approve_change", approve(&token)).await;
    refused(&r, "already used");

    let (_, audit) = audit_rows(&alice).await;
    let rows = audit["audit"].as_array().unwrap();
    let approved = rows
        .iter()
        .find(|r| r["action"] == "approve")
        .expect("an approve row");
    assert_eq!(approved["caller"], "bob", "{approved}");
    assert_eq!(approved["tool"], "block_ip");
    let detail = approved["detail"].as_str().unwrap();
    assert!(
        detail.contains("for caller `alice`") && detail.contains("checked the logs"),
        "{detail}"
    );
    let apply = rows.iter().find(|r| r["action"] == "apply").unwrap();
    assert!(
        apply["detail"]
            .as_str()
            .unwrap()
            .contains("approved by principal `bob`"),
        "{apply}"
    );
    for who in ["alice", "carol", "bob"] {
        assert!(
            rows.iter().any(|r| r["tool"] == "approve_change"
                && r["caller"] == who
                && r["action"] == "refuse"),
            "the refusal of {who} is audited"
        );
    }
    assert!(!audit.to_string().contains(&token), "no token in the audit");
    let (code, text) = w.cli(&["audit", "verify"]).await;
    assert_eq!(code, 0, "{text}");
    http.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_arguments_are_cut_in_the_audit_and_the_resource_stays_small() {
    let w = world("rate_limit_per_minute = 1000").await;
    let client = w.client(Human(None), Era::Legacy, "huge.log").await;
    let huge = "1".repeat(250_000);
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(huge.as_bytes()))
    };
    for i in 0..30 {
        let r = if i % 2 == 0 {
            call_h(
                &client,
                "block_ip",
                json!({"ip": huge, "agents": ["001"], "reason": "scanning"}),
            )
            .await
        } else {
            call_h(
                &client,
                "rotate_credentials",
                json!({"credential": huge, "reason": "exposed"}),
            )
            .await
        };
        assert_eq!(r.is_error, Some(true));
        let text = text_of(&r);
        let arg = if i % 2 == 0 { "`ip`" } else { "`credential`" };
        assert!(
            text.contains(&format!("invalid argument {arg}")),
            "{text:.300}"
        );
        assert!(
            text.len() < 1000,
            "the error echoes {} characters",
            text.len()
        );
        assert!(text.contains(&digest), "{text}");
    }
    let (size, audit) = audit_rows(&client).await;
    let rows = audit["audit"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["tool"] == "block_ip" && r["action"] == "refuse")
        .unwrap();
    let detail = row["detail"].as_str().unwrap();
    eprintln!(
        "refusal row detail: {} characters; audit resource: {size} bytes for {} rows",
        detail.chars().count(),
        rows.len()
    );
    assert!(detail.chars().count() <= 1000, "{}", detail.len());
    assert!(detail.contains(&format!("sha256:{digest}")), "{detail}");
    assert!(size <= 256 * 1024, "the audit resource is {size} bytes");
    assert_eq!(audit["rows_left_out"], 0);
    client.cancel().await.ok();
    let (code, text) = w.cli(&["audit", "verify"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("30 rows"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_ip_sees_through_embedded_ipv4_and_caps_agent_lists() {
    let w = world("require_human = false\nrate_limit_per_minute = 100").await;
    let client = w.client(Human(None), Era::Legacy, "embedded.log").await;
    let plan = |ip: &str, agents: Value| json!({"ip": ip, "agents": agents, "reason": "scanning"});
    for (ip, needle) in [
        (
            "64:ff9b::7f00:1",
            "embeds IPv4 127.0.0.1 (NAT64 64:ff9b::/96), which is a loopback",
        ),
        (
            "64:ff9b::c633:6414",
            "embeds IPv4 198.51.100.20 (NAT64 64:ff9b::/96), which is inside protected range \
             198.51.100.0/24",
        ),
        ("64:ff9b::e000:1", "embeds IPv4 224.0.0.1"),
        ("::7f00:1", "embeds IPv4 127.0.0.1 (IPv4-compatible ::/96)"),
        ("::ffff:198.51.100.20", "protected range 198.51.100.0/24"),
        ("::", "unspecified"),
        (" 203.0.113.7", "surrounding spaces"),
    ] {
        let r = call_h(&client, "block_ip", plan(ip, json!(["001"]))).await;
        assert_eq!(r.is_error, Some(true), "{ip}: {}", text_of(&r));
        assert!(
            text_of(&r).contains("invalid argument `ip`") && text_of(&r).contains(needle),
            "{ip}: want `{needle}` in {}",
            text_of(&r)
        );
    }
    // A NAT64 address of an ordinary host is blocked as given.
    let r = call_h(
        &client,
        "block_ip",
        plan("64:ff9b::cb00:7105", json!(["001"])),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(sc(&r)["ip"], "64:ff9b::cb00:7105");

    // At most max_agents (default 20) per call: 21 ids, or 1,000.
    let ids = |n: usize| json!((0..n).map(|i| format!("{i:03}")).collect::<Vec<_>>());
    for n in [21, 1000] {
        let r = call_h(&client, "block_ip", plan("203.0.113.5", ids(n))).await;
        assert_eq!(r.is_error, Some(true), "{n}: {}", text_of(&r));
        assert!(
            text_of(&r).contains("invalid argument `agents`")
                && text_of(&r).contains("at most 20 per call"),
            "{n}: {}",
            text_of(&r)
        );
    }
    // Every agent of the manager, listed by id within the cap, is all_agents.
    let mut real: Vec<String> = (1..=18).map(|i| format!("{i:03}")).collect();
    real.push("1001".into());
    for with_manager in [false, true] {
        let mut list = real.clone();
        if with_manager {
            list.insert(0, "000".into());
        }
        let r = call_h(&client, "block_ip", plan("203.0.113.5", json!(list))).await;
        assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
        assert!(
            text_of(&r).contains("names every agent of the manager (19)")
                && text_of(&r).contains("same as all_agents"),
            "{}",
            text_of(&r)
        );
    }
    assert!(w.sim.active_responses().is_empty());
    client.cancel().await.ok();

    // With a higher cap, a list naming every agent of the manager is all_agents.
    let w = world_with(
        "require_human = false\nrate_limit_per_minute = 100",
        "max_agents = 2000",
    )
    .await;
    let client = w.client(Human(None), Era::Legacy, "every.log").await;
    // The simulator's agents are 000 (the manager), 001..018 and 1001.
    let mut every = ids(1000);
    every.as_array_mut().unwrap().push(json!("1001"));
    let r = call_h(&client, "block_ip", plan("203.0.113.5", every)).await;
    assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(
        text_of(&r).contains("names every agent of the manager")
            && text_of(&r).contains("allow_all_agents = false"),
        "{}",
        text_of(&r)
    );
    // A short list is still a list.
    let r = call_h(
        &client,
        "block_ip",
        plan("203.0.113.5", json!(["001", "002"])),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
}
