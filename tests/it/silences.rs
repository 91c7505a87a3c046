//! Silences, maintenance windows and inhibition through the real surfaces: alert_update
//! `silence` / `unsilence` over MCP (HTTP, the caller from the bearer token) and the
//! `secops-mcp alerts silence|unsilence|silences` commands, both audited with the caller;
//! a silenced alert fires without a notification and alert_status says why; ending the
//! silence sends the held firing notification at the next evaluation; `config check`
//! refuses a bad `[[maintenance]]` or `[[inhibit]]` naming the key; and the default
//! inhibition against the simulator: a manager that does not answer mutes the repeat of a
//! stopped daemon's alert until it answers again.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{Era, HttpHarness, Scratch, call, server_command, text_of};
use secops_mcp::alerts::lifecycle::{MonitorPolicy, evaluate};
use secops_mcp::alerts::{Level, Observation, parse_alert_id};
use secops_mcp::clock::SystemClock;
use secops_mcp::store::Store;
use serde_json::json;

fn expiring(target: &str) -> Observation {
    Observation {
        code: "cert_expiring".into(),
        subject: BTreeMap::from([("target".into(), target.into())]),
        level: Some(Level::Critical),
        title: format!("Certificate of {target} expires in 3 days"),
        summary: "Renew it.".into(),
        value: Some("3 days".into()),
    }
}

fn policy(name: &str) -> MonitorPolicy {
    let mut p = MonitorPolicy::new(name).route(Level::Critical, &["log"]);
    p.group_wait = Duration::ZERO;
    p
}

/// The notifications kinds of one alert.
fn notified(store: &Store, id: &str) -> Vec<String> {
    let seq = parse_alert_id(id).unwrap();
    store
        .alert_detail(seq)
        .unwrap()
        .unwrap()
        .notifications
        .into_iter()
        .map(|n| n.kind)
        .collect()
}

const WINDOW: &str = r#"
[[maintenance]]
name = "batch-always"
schedule = "* * * * *"
duration = "2m"
matchers = ["monitor=batch"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_update_silences_and_unsilences_over_mcp_and_alert_status_says_why() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, WINDOW, &[]).await;
    let store = server.ctx.store.clone();
    let client = server.client(Era::Legacy).await;

    // A silence by matchers, created by the caller of the token (alice).
    let r = call(
        &client,
        "alert_update",
        json!({
            "action": "silence",
            "matchers": ["monitor=certs", "target=~.*\\.example\\.com:443"],
            "comment": "renewal booked with the CA",
            "duration": "2h"
        }),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let sc = r.structured_content.clone().unwrap();
    assert_eq!(sc["silence"]["id"], "SIL-1", "{sc:#}");
    assert_eq!(sc["silence"]["author"], "alice", "{sc:#}");
    assert_eq!(sc["silence"]["state"], "active", "{sc:#}");
    assert!(text_of(&r).starts_with("Created SIL-1"), "{}", text_of(&r));

    // The alert still fires, without a notification, and shows as silenced.
    let certs = policy("certs");
    let e = evaluate(
        &store,
        &SystemClock,
        &certs,
        &[expiring("mail.example.com:443")],
    )
    .unwrap();
    assert_eq!(e.fired.len(), 1);
    let id = secops_mcp::alerts::alert_id(e.fired[0]);
    assert!(notified(&store, &id).is_empty());
    // A maintenance window from the configuration mutes the batch monitor's alert.
    let batch = policy("batch");
    let b = evaluate(
        &store,
        &SystemClock,
        &batch,
        &[expiring("batch.internal:443")],
    )
    .unwrap();
    let batch_id = secops_mcp::alerts::alert_id(b.fired[0]);
    let r = call(&client, "alert_status", json!({})).await;
    assert!(
        text_of(&r).starts_with("2 alert(s) firing (2 critical; 2 muted)"),
        "{}",
        text_of(&r)
    );
    let sc = r.structured_content.unwrap();
    let firing = sc["firing"]["critical"].as_array().unwrap();
    let view = |id: &str| firing.iter().find(|a| a["id"] == id).unwrap().clone();
    let m = &view(&id)["muted"];
    assert_eq!(m["kind"], "silence", "{sc:#}");
    assert_eq!(m["by"], "SIL-1", "{sc:#}");
    let reason = m["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("silenced by SIL-1 (alice, \"renewal booked with the CA\", until "),
        "{reason}"
    );
    // The batch monitor's alert (not in the configured monitors, still muted by the window).
    let w = &view(&batch_id)["muted"];
    assert_eq!(w["kind"], "maintenance", "{sc:#}");
    assert!(
        w["reason"]
            .as_str()
            .unwrap()
            .starts_with("in maintenance window batch-always until "),
        "{w}"
    );
    let d = call(&client, "alert_status", json!({"alert_id": id}))
        .await
        .structured_content
        .unwrap();
    assert_eq!(d["alert"]["alert"]["muted"]["by"], "SIL-1", "{d:#}");
    let timeline: Vec<&str> = d["alert"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(timeline.contains(&"silenced"), "{timeline:?}");

    // Bad arguments are refused naming the argument.
    for (args, named) in [
        (
            json!({"action": "silence", "matchers": ["monitor=certs"], "duration": "1h"}),
            "`comment`",
        ),
        (
            json!({"action": "silence", "matchers": ["monitor"], "comment": "x", "duration": "1h"}),
            "`matchers`",
        ),
        (
            json!({"action": "silence", "matchers": ["monitor=x"], "comment": "x", "duration": "100d"}),
            "`duration`",
        ),
        (
            json!({"action": "unsilence", "silence_id": "SIL-99"}),
            "`silence_id`",
        ),
        (json!({"action": "unsilence"}), "`silence_id`"),
    ] {
        let r = call(&client, "alert_update", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        assert!(text_of(&r).contains(named), "{args}: {}", text_of(&r));
    }

    // Unsilence: the held firing notification goes out at the next evaluation.
    let r = call(
        &client,
        "alert_update",
        json!({"action": "unsilence", "silence_id": "SIL-1"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let sc = r.structured_content.unwrap();
    assert_eq!(sc["silence"]["removed_by"], "alice", "{sc:#}");
    assert_eq!(sc["covered"], json!([id]), "{sc:#}");
    let e = evaluate(
        &store,
        &SystemClock,
        &certs,
        &[expiring("mail.example.com:443")],
    )
    .unwrap();
    assert_eq!(e.released, vec![parse_alert_id(&id).unwrap()]);
    assert_eq!(notified(&store, &id), vec!["firing".to_string()]);

    // Silencing one alert by its id, then both changes are in the audit log with alice.
    let r = call(
        &client,
        "alert_update",
        json!({"action": "silence", "alert_id": id, "comment": "noise", "duration": "30m"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let matchers = r.structured_content.unwrap()["silence"]["matchers"].clone();
    assert_eq!(matchers[0], "monitor=certs", "{matchers}");
    assert!(
        matchers[2].as_str().unwrap().starts_with("fingerprint="),
        "{matchers}"
    );
    let audit = store.audit_recent(10).unwrap();
    let mine: Vec<(&str, &str)> = audit
        .iter()
        .filter(|a| a.tool == "alert_update")
        .map(|a| (a.action.as_str(), a.caller.as_str()))
        .collect();
    assert_eq!(
        mine.iter().filter(|(_, c)| *c == "alice").count(),
        3,
        "{mine:?}"
    );
    assert!(mine.contains(&("silence", "alice")) && mine.contains(&("unsilence", "alice")));
    client.cancel().await.unwrap();
    server.stop().await;
}

async fn run(env: &BTreeMap<String, String>, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), server_command(env, args).output())
        .await
        .expect("the command must finish")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_silences_lists_and_unsilences_as_cli_user_and_names_bad_flags() {
    let scratch = Scratch::new();
    let mut env = scratch.env();
    env.insert("USER".into(), "ops".into());
    let (code, out, err) = run(
        &env,
        &[
            "alerts",
            "silence",
            "--match",
            "monitor=certs",
            "--match",
            r"target=~.*\.example",
            "--for",
            "2h",
            "--comment",
            "renewal in progress",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("Created SIL-1 (monitor=certs, target=~.*\\.example)"),
        "{out}"
    );

    let (code, out, _) = run(&env, &["alerts", "silences", "--json"]).await;
    assert_eq!(code, Some(0));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], "SIL-1", "{list:#}");
    assert_eq!(list[0]["author"], "cli:ops", "{list:#}");
    assert_eq!(list[0]["comment"], "renewal in progress", "{list:#}");
    let (_, table, _) = run(&env, &["alerts", "silences"]).await;
    assert!(
        table.contains("SIL-1") && table.contains("active"),
        "{table}"
    );

    // An alert that fires under the silence: `alerts list` and `alerts show` say why it is
    // quiet; silencing it by its id works too.
    {
        let store = Store::open(&scratch.state_dir()).unwrap();
        let e = evaluate(
            &store,
            &SystemClock,
            &policy("certs"),
            &[expiring("a.example")],
        )
        .unwrap();
        assert_eq!(e.held, e.fired);
    }
    let (code, list, _) = run(&env, &["alerts", "list"]).await;
    assert_eq!(code, Some(0), "{list}");
    assert!(
        list.contains("[silenced by SIL-1 (cli:ops, \"renewal in progress\", until "),
        "{list}"
    );
    let (_, show, _) = run(&env, &["alerts", "show", "ALR-1", "--json"]).await;
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(show["alert"]["muted"]["by"], "SIL-1", "{show:#}");
    let (code, out, err) = run(
        &env,
        &[
            "alerts",
            "silence",
            "ALR-1",
            "--for",
            "1h",
            "--comment",
            "this one",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("Created SIL-2 (monitor=certs, code=cert_expiring, fingerprint="),
        "{out}"
    );
    assert!(out.contains("it covers ALR-1"), "{out}");
    let (_, out, _) = run(&env, &["alerts", "unsilence", "SIL-2"]).await;
    assert!(out.starts_with("Ended SIL-2"), "{out}");

    for (args, named) in [
        (
            vec!["alerts", "silence", "--for", "2h", "--comment", "x"],
            "--match",
        ),
        (
            vec!["alerts", "silence", "--match", "monitor=x", "--for", "2h"],
            "--comment",
        ),
        (
            vec![
                "alerts",
                "silence",
                "--match",
                "monitor=x",
                "--for",
                "100d",
                "--comment",
                "x",
            ],
            "--for",
        ),
        (
            vec![
                "alerts",
                "silence",
                "--match",
                "monitor",
                "--for",
                "1h",
                "--comment",
                "x",
            ],
            "--match",
        ),
        (
            vec![
                "alerts",
                "silence",
                "ALR-77",
                "--for",
                "1h",
                "--comment",
                "x",
            ],
            "no alert ALR-77",
        ),
        (vec!["alerts", "unsilence", "nope"], "ID"),
        (vec!["alerts", "unsilence", "SIL-9"], "no silence SIL-9"),
    ] {
        let (code, _, err) = run(&env, &args).await;
        assert_eq!(code, Some(64), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }

    let (code, out, err) = run(&env, &["alerts", "unsilence", "SIL-1"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("Ended SIL-1"), "{out}");
    let (code, _, err) = run(&env, &["alerts", "unsilence", "SIL-1"]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("already ended") && err.contains("cli:ops"),
        "{err}"
    );
    let (_, out, _) = run(&env, &["alerts", "silences", "--json"]).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        json!([])
    );
    let (_, out, _) = run(&env, &["alerts", "silences", "--all", "--json"]).await;
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all[0]["state"], "ended", "{all:#}");
    assert_eq!(all[0]["removed_by"], "cli:ops", "{all:#}");

    let store = Store::open(&scratch.state_dir()).unwrap();
    let audit = store.audit_recent(10).unwrap();
    let rows: Vec<(&str, &str)> = audit
        .iter()
        .filter(|a| a.tool == "alert_update")
        .map(|a| (a.action.as_str(), a.caller.as_str()))
        .collect();
    assert!(
        rows.contains(&("silence", "cli:ops")) && rows.contains(&("unsilence", "cli:ops")),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_takes_maintenance_and_inhibit_and_names_a_bad_key() {
    let scratch = Scratch::new();
    let mut env = scratch.env();
    let good = scratch.write(
        "good.toml",
        r#"
[[maintenance]]
name = "sunday-patching"
schedule = "0 2 * * 0"
timezone = "Europe/Berlin"
duration = "2h"
matchers = ["monitor=~wazuh|uptime", "env=prod"]

[[inhibit]]
source = ["code=endpoint_down", "monitor=edge"]
target = ["monitor=certs"]
equal = ["site"]
"#,
    );
    env.insert("SECOPS_CONFIG".into(), good.to_string_lossy().to_string());
    let (code, out, err) = run(&env, &["config", "check"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("sunday-patching") && out.contains("Europe/Berlin"),
        "{out}"
    );
    for (text, key) in [
        (
            "[[maintenance]]\nname = \"w\"\nschedule = \"0 2 * *\"\nduration = \"2h\"\nmatchers = [\"env=prod\"]\n",
            "maintenance[0].schedule",
        ),
        (
            "[[maintenance]]\nname = \"w\"\nschedule = \"0 2 * * *\"\nduration = \"2h\"\nmatchers = [\"env~prod\"]\n",
            "maintenance[0].matchers[0]",
        ),
        (
            "[[inhibit]]\nsource = [\"code=x\"]\ntarget = [\"monitor=~(\"]\n",
            "inhibit[0].target[0]",
        ),
        (
            "[[inhibit]]\nsource = [\"code=x\"]\ntarget = [\"a=b\"]\nwhen = 1\n",
            "when",
        ),
    ] {
        let bad = scratch.write("bad.toml", text);
        env.insert("SECOPS_CONFIG".into(), bad.to_string_lossy().to_string());
        let (code, _, err) = run(&env, &["config", "check"]).await;
        assert_eq!(code, Some(78), "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_simulated_manager_mutes_the_rest_of_its_alerts_by_default() {
    use crate::common::SimEnv;
    use secops_mcp::alerts::lifecycle::evaluate_complete;
    use secops_mcp::alerts::status::{self, StatusArgs};
    use secops_mcp::clock::{Clock, ManualClock};
    use secops_mcp::config::Config;
    use secops_mcp::context::AppContext;
    use wazuh_sim::SimConfig;

    let s = SimEnv::start(SimConfig::default()).await;
    let mut env = s.scratch.env();
    env.extend(s.vars());
    env.insert("SECOPS_HEALTH_TIMEOUT_MS".into(), "800".into());
    let toml = "[[monitors]]\nname = \"wazuh\"\nkind = \"wazuh\"\ninclude = [\"manager\"]\n\
                group_wait = \"0s\"\nrepeat_interval = \"10m\"\n";
    let config = Config::from_toml_str(toml, &env).unwrap();
    let ctx = AppContext::new(config.clone(), false).unwrap();
    let m = secops_mcp::monitor::kinds::engine_monitor(ctx.clone(), &ctx.config.monitors[0]);
    // The same monitor in a second context that has not logged in yet: it meets the
    // hanging manager at login, which is what `manager_unreachable` means.
    let fresh = AppContext::new(config, false).unwrap();
    let m2 = secops_mcp::monitor::kinds::engine_monitor(fresh.clone(), &fresh.config.monitors[0]);
    let manager = m.policy.labels["manager"].clone();
    assert!(manager.starts_with("127.0.0.1:"), "{manager}");
    let clock = ManualClock::at(1_790_000_000_000);
    let store = &ctx.store;
    let step = async |m: &secops_mcp::monitor::engine::Monitor, clock: &ManualClock| {
        let run = (m.observe)().await.unwrap();
        let e = if run.complete {
            evaluate_complete(store, clock, &m.policy, &run.observations)
        } else {
            evaluate(store, clock, &m.policy, &run.observations)
        }
        .unwrap();
        (run, e)
    };

    // A stopped daemon fires and is announced.
    assert!(s.sim.faults().stop_daemon("wazuh-analysisd"));
    let (_, e) = step(&m, &clock).await;
    assert_eq!(e.fired.len(), 1, "{e:?}");
    let daemon = secops_mcp::alerts::alert_id(e.fired[0]);
    assert_eq!(notified(store, &daemon), vec!["firing".to_string()]);

    // The manager stops answering: its alert is the one page; the daemon's repeat (due
    // after 10 minutes) is inhibited, and alert_status says by what.
    s.sim.faults().manager_hang(true);
    clock.advance(Duration::from_secs(11 * 60));
    let (run, e) = step(&m2, &clock).await;
    assert!(!run.complete, "{run:?}");
    let codes: Vec<&str> = run.observations.iter().map(|o| o.code.as_str()).collect();
    assert!(codes.contains(&"manager_unreachable"), "{codes:?}");
    assert!(e.repeated.is_empty(), "{e:?}");
    let down = e
        .fired
        .iter()
        .map(|s| secops_mcp::alerts::alert_id(*s))
        .find(|id| {
            let seq = parse_alert_id(id).unwrap();
            store.alert_get(seq).unwrap().unwrap().code == "manager_unreachable"
        })
        .expect("manager_unreachable fired");
    assert_eq!(notified(store, &down), vec!["firing".to_string()]);
    for id in e.fired.iter().map(|s| secops_mcp::alerts::alert_id(*s)) {
        if id != down {
            assert!(notified(store, &id).is_empty(), "{id} is muted");
        }
    }
    assert_eq!(
        notified(store, &daemon),
        vec!["firing".to_string()],
        "no repeat"
    );
    let report = status::run_muted(
        store,
        clock.now_ms(),
        &[],
        &StatusArgs {
            alert_id: Some(daemon.clone()),
            since: None,
        },
        &ctx.config.mute_rules(),
    )
    .unwrap();
    let muted = report.alert.unwrap().alert.muted.unwrap();
    assert_eq!(muted.by, down);
    assert!(
        muted.reason.starts_with(&format!("inhibited by {down}")),
        "{muted:?}"
    );

    // The manager is back (the daemon is still stopped): the manager's alert resolves and
    // the daemon is announced again at its next due repeat.
    s.sim.faults().manager_hang(false);
    clock.advance(Duration::from_secs(60));
    let (_, e) = step(&m, &clock).await;
    assert_eq!(e.resolved, vec![parse_alert_id(&down).unwrap()], "{e:?}");
    assert_eq!(e.repeated, vec![parse_alert_id(&daemon).unwrap()], "{e:?}");
    s.sim.stop().await;
}

/// The manager goes away after secops-mcp logged in (a cached token): the daemons cannot be
/// read, which is `manager_unreachable` too, the run is partial (the stopped daemon's alert
/// stays firing: nothing saw it start again), and the default inhibition holds its repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_lost_after_login_is_unreachable_and_resolves_nothing_it_could_not_read() {
    use crate::common::SimEnv;
    use secops_mcp::alerts::lifecycle::evaluate_complete;
    use secops_mcp::alerts::{AlertState, alert_id};
    use secops_mcp::clock::ManualClock;
    use secops_mcp::config::Config;
    use secops_mcp::context::AppContext;
    use wazuh_sim::SimConfig;

    let s = SimEnv::start(SimConfig::default()).await;
    let mut env = s.scratch.env();
    env.extend(s.vars());
    env.insert("SECOPS_HEALTH_TIMEOUT_MS".into(), "800".into());
    let toml = "[[monitors]]\nname = \"wazuh\"\nkind = \"wazuh\"\ninclude = [\"manager\"]\n\
                group_wait = \"0s\"\nrepeat_interval = \"10m\"\n";
    let config = Config::from_toml_str(toml, &env).unwrap();
    let ctx = AppContext::new(config, false).unwrap();
    let m = secops_mcp::monitor::kinds::engine_monitor(ctx.clone(), &ctx.config.monitors[0]);
    let clock = ManualClock::at(1_790_000_000_000);
    let store = &ctx.store;
    let step = async |clock: &ManualClock| {
        let run = (m.observe)().await.unwrap();
        let e = if run.complete {
            evaluate_complete(store, clock, &m.policy, &run.observations)
        } else {
            evaluate(store, clock, &m.policy, &run.observations)
        }
        .unwrap();
        (run, e)
    };

    assert!(s.sim.faults().stop_daemon("wazuh-analysisd"));
    let (run, e) = step(&clock).await;
    assert!(run.complete, "{run:?}");
    assert_eq!(e.fired.len(), 1, "{e:?}");
    let daemon = e.fired[0];

    s.sim.faults().manager_down(true);
    clock.advance(Duration::from_secs(11 * 60));
    let (run, e) = step(&clock).await;
    assert!(
        !run.complete,
        "a run that could not read the daemons: {run:?}"
    );
    let codes: Vec<&str> = run.observations.iter().map(|o| o.code.as_str()).collect();
    assert!(codes.contains(&"manager_unreachable"), "{codes:?}");
    assert!(
        e.resolved.is_empty(),
        "nothing it could not read resolves: {e:?}"
    );
    assert!(
        e.repeated.is_empty(),
        "the daemon's repeat is inhibited: {e:?}"
    );
    let row = store.alert_get(daemon).unwrap().unwrap();
    assert_eq!(row.state, AlertState::Firing);
    assert_eq!(
        notified(store, &alert_id(daemon)),
        vec!["firing".to_string()]
    );
    s.sim.faults().manager_down(false);
    s.sim.stop().await;
}
