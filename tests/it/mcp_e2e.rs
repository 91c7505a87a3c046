//! End-to-end through rmcp's own client: the real binary over stdio and the real HTTP
//! transport, in both protocol eras (2025-11-25 sessions, 2026-07-28 stateless): handshake,
//! tools/list, prompts, resources and check_cert calls, including bad input and what
//! check_cert may not reach (files outside `check_cert.file_roots`, special files, cloud
//! metadata endpoints, hosts outside `check_cert.allow`, banners of non-TLS services).

use std::time::{Duration, Instant};

use crate::common::*;
use rmcp::model::{
    CallToolResult, GetPromptRequestParams, ReadResourceRequestParams, ResourceContents,
};
use serde_json::{Value, json};

async fn exercise(client: &Client, scratch: &Scratch, era: Era) {
    // tools/list: check_cert with honest annotations and an output schema.
    let tools = client.list_all_tools().await.expect("tools/list");
    let cert = tools
        .iter()
        .find(|t| t.name == "check_cert")
        .unwrap_or_else(|| panic!("{era:?}: check_cert missing from {tools:?}"));
    let ann = cert.annotations.as_ref().expect("annotations");
    assert_eq!(ann.read_only_hint, Some(true));
    assert_eq!(ann.destructive_hint, Some(false));
    assert_eq!(ann.open_world_hint, Some(true));
    assert!(cert.output_schema.is_some(), "{era:?}: no outputSchema");
    assert!(
        cert.description
            .as_deref()
            .unwrap_or_default()
            .contains("file:/path/to/cert.pem"),
        "description must come from tools/check_cert.md"
    );

    // prompts/list and prompts/get.
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert!(prompts.iter().any(|p| p.name == "daily_health_check"));
    let mut pargs = serde_json::Map::new();
    pargs.insert("since".into(), json!("12h"));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("daily_health_check").with_arguments(pargs))
        .await
        .expect("prompts/get");
    let text = serde_json::to_string(&prompt.messages).unwrap();
    assert!(text.contains("wazuh_health") && text.contains("check_cert") && text.contains("12h"));

    // A real check_cert call on a certificate file.
    // In the state directory, one of check_cert's default file roots.
    let pem = self_signed_pem(
        scratch,
        &format!("state/leaf-{era:?}.pem"),
        &["svc.example.test"],
    );
    let target = format!("file:{}", pem.display());
    let r = call(client, "check_cert", json!({ "targets": [target] })).await;
    assert_ne!(r.is_error, Some(true), "{era:?}: {}", text_of(&r));
    let sc = r.structured_content.clone().expect("structured content");
    assert_eq!(sc["results"][0]["target"], json!(target));
    let chain = sc["results"][0]["chain"].as_array().expect("chain");
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0]["sans"], json!(["svc.example.test"]));
    assert_eq!(chain[0]["self_signed"], json!(true));
    assert!(sc["summary"].is_object());
    // Text content: a readable summary first.
    assert!(text_of(&r).contains("1 target"), "{}", text_of(&r));

    // Bad input is an isError result naming the argument, not a protocol error.
    let r = call(client, "check_cert", json!({ "targets": [] })).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("`targets`"), "{}", text_of(&r));

    // resources: the effective config.
    let res = client
        .read_resource(ReadResourceRequestParams::new("secops://config"))
        .await
        .expect("resources/read");
    let ResourceContents::TextResourceContents { text, .. } = &res.contents[0] else {
        panic!("text resource expected");
    };
    let cfg: Value = serde_json::from_str(text).unwrap();
    assert_eq!(cfg["remediation"]["enabled"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_tools_prompts_resources_in_both_eras() {
    for era in ERAS {
        let scratch = Scratch::new();
        let client = stdio_client(&scratch.env(), era).await;
        let info = client.peer_info().expect("server info");
        let server_info = info.server_info.as_ref().expect("serverInfo");
        assert_eq!(server_info.name, "secops-mcp", "{era:?}");
        assert_eq!(server_info.version, env!("CARGO_PKG_VERSION"));
        assert!(
            info.instructions
                .as_deref()
                .unwrap_or("")
                .contains("check_cert"),
            "{era:?}: instructions"
        );
        exercise(&client, &scratch, era).await;
        client.cancel().await.expect("cancel");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_serves_tools_prompts_resources_in_both_eras() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    for era in ERAS {
        let client = server.client(era).await;
        exercise(&client, &scratch, era).await;
        client.cancel().await.expect("cancel");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_tool_errors_naming_the_argument() {
    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    let many: Vec<String> = (0..101).map(|i| format!("host{i}.example:443")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "targets": [] }), "targets"),
        (json!({ "targets": many }), "targets"),
        (json!({ "targets": ["exa mple.com"] }), "targets"),
        (json!({ "targets": [""] }), "targets"),
        (json!({ "targets": ["example.com:0"] }), "targets"),
        (json!({ "targets": ["example.com:70000"] }), "targets"),
        (json!({ "targets": ["https://"] }), "targets"),
        (
            json!({ "targets": ["example.com"], "starttls": "gopher" }),
            "starttls",
        ),
        (
            json!({ "targets": ["example.com"], "warning_days": -1 }),
            "warning_days",
        ),
        (
            json!({ "targets": ["example.com"], "critical_days": -5 }),
            "critical_days",
        ),
        (
            json!({ "targets": ["example.com"], "timeout_ms": 0 }),
            "timeout_ms",
        ),
        (
            json!({ "targets": ["example.com"], "timeout_ms": "soon" }),
            "timeout_ms",
        ),
        (json!({ "targets": "example.com" }), "targets"),
        (
            json!({ "targets": ["example.com"], "colour": "red" }),
            "colour",
        ),
        (json!({}), "targets"),
    ];
    for (arguments, argument) in cases {
        let r = call(&client, "check_cert", arguments.clone()).await;
        let text = text_of(&r);
        assert_eq!(
            r.is_error,
            Some(true),
            "{arguments}: expected isError, got {text}"
        );
        assert!(
            text.contains(&format!("`{argument}`")),
            "{arguments}: message must name `{argument}`: {text}"
        );
    }
    // The server is still healthy after all of that.
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty());
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_surface_matches_the_snapshot() {
    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_tool_surface("mcp_e2e__tools_list", &tools, None);
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_logged_with_caller_and_no_arguments() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    for era in ERAS {
        let client = server.client(era).await;
        let secret_looking = "file:/nonexistent/hunter2-password.pem";
        let r = call(
            &client,
            "check_cert",
            json!({ "targets": [secret_looking] }),
        )
        .await;
        assert!(r.structured_content.is_some() || r.is_error == Some(true));
        let res = client
            .read_resource(ReadResourceRequestParams::new("secops://tool-calls/recent"))
            .await
            .expect("resources/read");
        let ResourceContents::TextResourceContents { text, .. } = &res.contents[0] else {
            panic!("text resource expected");
        };
        let log: Value = serde_json::from_str(text).unwrap();
        let first = &log["tool_calls"][0];
        assert_eq!(first["tool"], json!("check_cert"), "{era:?}");
        assert_eq!(first["caller"], json!("alice"), "{era:?}: HTTP principal");
        assert_eq!(first["detail"], json!("targets=1"));
        assert!(
            !text.contains("hunter2"),
            "arguments must not be logged: {text}"
        );
        assert!(!text.contains(TEST_TOKEN));
        client.cancel().await.expect("cancel");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_resource_never_shows_secrets() {
    let scratch = Scratch::new();
    let mut env = scratch.env();
    env.insert(
        "SECOPS_WAZUH_URL".into(),
        "https://wazuh.example:55000".into(),
    );
    env.insert("SECOPS_WAZUH_PASSWORD".into(), "Sup3r-Secret-Pass!".into());
    let client = stdio_client(&env, Era::Legacy).await;
    let res = client
        .read_resource(ReadResourceRequestParams::new("secops://config"))
        .await
        .expect("resources/read");
    let text = serde_json::to_string(&res).unwrap();
    assert!(
        text.contains("SECOPS_WAZUH_PASSWORD"),
        "source is shown: {text}"
    );
    assert!(
        !text.contains("Sup3r-Secret-Pass!"),
        "secret leaked: {text}"
    );
    client.cancel().await.expect("cancel");
}

// JSON Schema 2020-12's format vocabulary: nothing else may appear in a tool schema.
use secops_mcp::server::schema::STANDARD_FORMATS;

fn formats_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(f)) = o.get("format") {
                out.push(f.clone());
            }
            o.values().for_each(|c| formats_in(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| formats_in(c, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_schemas_are_standard_json_schema() {
    let scratch = Scratch::new();
    let mut env = scratch.env();
    env.insert("SECOPS_REMEDIATION".into(), "enabled".into());
    let client = stdio_client(&env, Era::Legacy).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "block_ip"));
    for t in &tools {
        let mut formats = Vec::new();
        formats_in(&Value::Object((*t.input_schema).clone()), &mut formats);
        if let Some(o) = &t.output_schema {
            formats_in(&Value::Object((**o).clone()), &mut formats);
        }
        for f in formats {
            assert!(
                STANDARD_FORMATS.contains(&f.as_str()),
                "{}: format `{f}`",
                t.name
            );
        }
    }
    // Integer ranges are stated as bounds instead.
    let scan = tools.iter().find(|t| t.name == "scan_host").unwrap();
    let timeout = &scan.input_schema["properties"]["timeout_ms"];
    assert_eq!(timeout["minimum"], json!(1), "{timeout}");
    assert_eq!(timeout["maximum"], json!(30000), "{timeout}");
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_host_takes_port_numbers_and_lists_and_errors_read_plainly() {
    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let scan = tools.iter().find(|t| t.name == "scan_host").unwrap();
    let ports = serde_json::to_string(&scan.input_schema["properties"]["ports"]).unwrap();
    assert!(
        ports.contains("\"integer\"") && ports.contains("\"array\""),
        "{ports}"
    );
    for (ports, n) in [
        (json!(22), 1),
        (json!([22, 80]), 2),
        (json!([22, "8000-8001"]), 3),
        (json!("22,80"), 2),
    ] {
        let r = call(
            &client,
            "scan_host",
            json!({ "target": "127.0.0.1", "ports": ports, "detect_services": false }),
        )
        .await;
        assert_ne!(r.is_error, Some(true), "{ports}: {}", text_of(&r));
        let sc = r.structured_content.unwrap();
        assert_eq!(sc["ports_scanned"], json!(n), "{ports}: {sc}");
    }
    for (ports, what) in [
        (json!("abc"), "not a port"),
        (json!(""), "empty"),
        (json!(" "), "empty"),
        (json!(0), "out of range"),
        (json!([]), "empty list"),
        (json!(true), "expected a string, a number or a list"),
    ] {
        let r = call(
            &client,
            "scan_host",
            json!({ "target": "127.0.0.1", "ports": ports }),
        )
        .await;
        let text = text_of(&r);
        assert_eq!(r.is_error, Some(true), "{ports}: {text}");
        assert!(
            text.contains("`ports`") && text.contains(what),
            "{ports}: {text}"
        );
        assert_eq!(
            text.matches("allowed").count(),
            1,
            "{ports}: said twice: {text}"
        );
    }
    let r = call(&client, "host_metrics", json!({ "verbose": true })).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true));
    assert_eq!(
        text,
        "invalid argument `verbose`: unknown argument: this tool takes no arguments"
    );
    let r = call(
        &client,
        "wazuh_health",
        json!({ "include": ["manager"], "verbose": 1 }),
    )
    .await;
    let text = text_of(&r);
    assert!(text.contains("allowed: `include` or `since`"), "{text}");
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_demo_check_cert_and_wazuh_health_agree_about_the_simulator() {
    let scratch = Scratch::new();
    let client = stdio_client_args(&scratch.env(), &["serve", "--demo"], Era::Legacy).await;
    let r = call(
        &client,
        "wazuh_health",
        json!({ "include": ["certificates"] }),
    )
    .await;
    let health = r.structured_content.expect("report");
    let certs = health["certificates"]["certificates"].as_array().unwrap();
    assert!(!certs.is_empty(), "{health:#}");
    for c in certs {
        assert_eq!(c["status"], json!("ok"), "{c}");
        assert!(
            c["trust_anchors"]
                .as_str()
                .unwrap()
                .contains("demo-simulator-ca.pem"),
            "{c}"
        );
        let url = c["target"].as_str().unwrap();
        let r = call(&client, "check_cert", json!({ "targets": [url] })).await;
        let report = r.structured_content.expect("cert report");
        let res = &report["results"][0];
        assert_eq!(res["status"], json!("ok"), "{url}: {report:#}");
        assert_eq!(res["chain_valid"], json!(true), "{report:#}");
        assert!(
            report["trust_anchors"]
                .as_str()
                .unwrap()
                .contains("demo-simulator-ca.pem"),
            "{report:#}"
        );
    }
    client.cancel().await.expect("cancel");
}

/// Raw stdio: every line gets a JSON-RPC answer, the malformed ones included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stdio_line_gets_an_answer_even_malformed_ones() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let scratch = Scratch::new();
    let mut child = server_command(&scratch.env(), &["serve"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |raw: &[u8]| {
        stdin.write_all(raw).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    };
    send(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
    send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let cases: Vec<(Vec<u8>, i64, Value)> = vec![
        (b"{oops".to_vec(), -32700, Value::Null),
        (b"\xff\xfe{\"a\":1}".to_vec(), -32700, Value::Null),
        (br#"{"jsonrpc":"2.0","id":3,"method":"tools/list""#.to_vec(), -32700, Value::Null),
        (deep.into_bytes(), -32700, Value::Null),
        (br#"[{"jsonrpc":"2.0","id":4,"method":"ping"}]"#.to_vec(), -32600, Value::Null),
        (br#"{"jsonrpc":"1.0","id":5,"method":"ping"}"#.to_vec(), -32600, json!(5)),
        (
            br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"host_metrics","arguments":"x"}}"#.to_vec(),
            -32602,
            json!(6),
        ),
    ];
    let mut expected: Vec<(i64, Value)> = Vec::new();
    for (raw, code, id) in cases {
        send(&raw).await;
        expected.push((code, id));
    }
    send(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).await;
    let mut answers: Vec<Value> = Vec::new();
    let deadline = std::time::Duration::from_secs(20);
    // The tools/call (id 6) runs concurrently and may answer after the tools/list (id 7).
    while !(answers.iter().any(|a| a["id"] == json!(7))
        && answers.iter().any(|a| a["id"] == json!(6)))
    {
        let line = tokio::time::timeout(deadline, lines.next_line())
            .await
            .expect("an answer within the deadline")
            .unwrap()
            .expect("stdout open");
        answers.push(serde_json::from_str(&line).unwrap());
    }
    let errors: Vec<(i64, Value)> = answers
        .iter()
        .filter(|a| a.get("error").is_some())
        .map(|a| (a["error"]["code"].as_i64().unwrap(), a["id"].clone()))
        .collect();
    assert_eq!(errors, expected, "{answers:#?}");
    let list = answers.iter().find(|a| a["id"] == json!(7)).unwrap();
    assert!(list["result"]["tools"].as_array().unwrap().len() >= 5);
    drop(stdin);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
}

/// One rule for every argument: keywords are exact (lower case), no value has surrounding
/// spaces, an empty value is an error; a near miss is named in the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argument_values_are_exact_everywhere() {
    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "wazuh_health",
            json!({ "include": ["MANAGER"] }),
            "`include`",
            "write `manager`",
        ),
        (
            "wazuh_health",
            json!({ "include": ["manager "] }),
            "`include`",
            "write `manager`",
        ),
        (
            "wazuh_health",
            json!({ "include": [""] }),
            "`include`",
            "empty",
        ),
        (
            "scan_host",
            json!({ "target": "127.0.0.1", "ports": " 22" }),
            "`ports`",
            "surrounding spaces",
        ),
        (
            "scan_host",
            json!({ "target": "127.0.0.1", "ports": "TOP100" }),
            "`ports`",
            "not a port",
        ),
        (
            "scan_host",
            json!({ "target": " 127.0.0.1" }),
            "`target`",
            "surrounding spaces",
        ),
        ("scan_host", json!({ "target": "  " }), "`target`", "empty"),
        (
            "check_cert",
            json!({ "targets": ["localhost"], "starttls": "SMTP" }),
            "`starttls`",
            "write `smtp`",
        ),
        (
            "check_cert",
            json!({ "targets": ["localhost"], "starttls": "smtp " }),
            "`starttls`",
            "write `smtp`",
        ),
    ];
    for (tool, arguments, argument, why) in cases {
        let r = call(&client, tool, arguments.clone()).await;
        let text = text_of(&r);
        assert_eq!(r.is_error, Some(true), "{tool} {arguments}: {text}");
        assert!(
            text.contains(argument) && text.contains(why),
            "{tool} {arguments}: {text}"
        );
    }
    client.cancel().await.expect("cancel");
}
// ---------------------------------------------------------------------------------------
// what check_cert may reach

/// `verification_error` of the one result of a check_cert call.
fn verification_error(r: &CallToolResult) -> String {
    let sc = r
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no report: {}", text_of(r)));
    sc["results"][0]["verification_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// One check_cert call that must answer within `limit`.
async fn check_within(client: &Client, limit: Duration, arguments: Value) -> CallToolResult {
    let started = Instant::now();
    let r = call(client, "check_cert", arguments.clone()).await;
    assert!(
        started.elapsed() < limit,
        "{arguments}: answered after {:?}",
        started.elapsed()
    );
    r
}

/// Resident memory of this process (the in-process HTTP server's), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_targets_outside_the_roots_get_one_refusal_and_the_server_keeps_answering() {
    let scratch = Scratch::new();
    let client = stdio_client(&scratch.env(), Era::Legacy).await;
    // Ordered so that a reader without roots fails on the differing text before it reaches
    // /dev/stdin (which would swallow this very MCP stream) or /dev/zero (unbounded).
    let targets = [
        "file:/nonexistent/hunter2.pem".to_string(),
        "file:/etc/shadow".to_string(),
        "file:/etc/ssl/../shadow".to_string(),
        "file:/proc/self/environ".to_string(),
        format!("file:{}", scratch.path().display()),
        "file:/dev/stdin".to_string(),
        "file:/dev/zero".to_string(),
        "file:/dev/urandom".to_string(),
    ];
    let mut first: Option<String> = None;
    for target in &targets {
        let r = check_within(
            &client,
            Duration::from_secs(5),
            json!({ "targets": [target] }),
        )
        .await;
        let e = verification_error(&r);
        assert!(e.contains("`check_cert.file_roots`"), "{target}: {e}");
        match &first {
            None => first = Some(e),
            Some(f) => assert_eq!(&e, f, "{target}: not the same refusal"),
        }
    }
    let refusal = first.unwrap();
    for leak in [
        "root:",
        "PATH=",
        "directory",
        "not found",
        "bytes is larger",
    ] {
        assert!(!refusal.contains(leak), "{refusal}");
    }

    // The stream is intact: the next 40 ordinary requests are all answered.
    let pem = self_signed_pem(&scratch, "state/ok.pem", &["svc.example.test"]);
    let target = format!("file:{}", pem.display());
    let requests = (0..40).map(|i| {
        let client = &client;
        let target = target.clone();
        async move {
            if i % 2 == 0 {
                client
                    .list_all_tools()
                    .await
                    .map(|t| !t.is_empty())
                    .unwrap_or(false)
            } else {
                let r = call(client, "check_cert", json!({ "targets": [target] })).await;
                r.structured_content.is_some_and(|sc| {
                    sc["results"][0]["chain"]
                        .as_array()
                        .is_some_and(|c| c.len() == 1)
                })
            }
        }
    });
    let answered =
        tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(requests))
            .await
            .expect("the 40 follow-up requests did not all finish");
    assert_eq!(
        answered.iter().filter(|ok| **ok).count(),
        40,
        "{answered:?}"
    );
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_the_roots_special_and_oversized_files_answer_promptly_and_links_cannot_leave() {
    let scratch = Scratch::new();
    let root = scratch.path().join("certs");
    std::fs::create_dir(&root).unwrap();
    let outside = self_signed_pem(&scratch, "outside.pem", &["outside.example.test"]);
    let good = self_signed_pem(&scratch, "certs/good.pem", &["svc.example.test"]);
    let pipe = root.join("pipe.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let big = root.join("big.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(secops_mcp::checks::cert::MAX_CERT_FILE_BYTES + 1)
        .unwrap();
    let link = root.join("link.pem");
    std::os::unix::fs::symlink(&outside, &link).unwrap();

    let toml = format!(
        "[check_cert]\nfile_roots = [{}]\n",
        json!(root.display().to_string())
    );
    let server = HttpHarness::start(&scratch, &toml, &[]).await;
    let client = server.client(Era::Legacy).await;
    let file = |p: &std::path::Path| format!("file:{}", p.display());

    let r = check_within(
        &client,
        Duration::from_secs(5),
        json!({ "targets": [file(&pipe)] }),
    )
    .await;
    let e = verification_error(&r);
    assert!(e.contains("not a regular file"), "{e}");

    let e =
        verification_error(&call(&client, "check_cert", json!({ "targets": [file(&big)] })).await);
    assert!(e.contains("larger than"), "{e}");

    let out = verification_error(
        &call(
            &client,
            "check_cert",
            json!({ "targets": [file(&outside)] }),
        )
        .await,
    );
    assert!(out.contains("`check_cert.file_roots`"), "{out}");
    let e =
        verification_error(&call(&client, "check_cert", json!({ "targets": [file(&link)] })).await);
    assert_eq!(
        e, out,
        "a symlink in the root pointing outside is refused like outside"
    );
    let dotdot = root.join("..").join("outside.pem");
    let e = verification_error(
        &call(&client, "check_cert", json!({ "targets": [file(&dotdot)] })).await,
    );
    assert_eq!(e, out);

    let r = call(&client, "check_cert", json!({ "targets": [file(&good)] })).await;
    let sc = r.structured_content.expect("report");
    assert_ne!(sc["results"][0]["status"], json!("error"), "{sc:#}");
    assert_eq!(
        sc["results"][0]["chain"][0]["sans"],
        json!(["svc.example.test"])
    );
    client.cancel().await.expect("cancel");
    server.stop().await;

    // Even with /dev as a root, a device is refused at once and nothing is read from it.
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "[check_cert]\nfile_roots = [\"/dev\"]\n", &[]).await;
    let client = server.client(Era::Legacy).await;
    let before = rss_kib();
    for dev in ["file:/dev/zero", "file:/dev/urandom"] {
        let r = check_within(
            &client,
            Duration::from_secs(5),
            json!({ "targets": [dev, dev, dev, dev] }),
        )
        .await;
        let e = verification_error(&r);
        assert!(e.contains("not a regular file"), "{dev}: {e}");
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
    client.cancel().await.expect("cancel");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_service_gets_only_a_short_labelled_excerpt_of_its_banner() {
    const BANNER: &[u8] =
        b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5 build-host=db-prod-07.internal \
                            key=SECRET-TAIL-0123456789\r\n";
    let service = crate::common::tls::serve_plaintext(BANNER).await;
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let client = server.client(Era::Legacy).await;

    let r = check_within(
        &client,
        Duration::from_secs(10),
        json!({ "targets": [service.target()], "starttls": "smtp", "timeout_ms": 3000 }),
    )
    .await;
    let e = verification_error(&r);
    assert!(e.contains("excerpt: `"), "{e}");
    let excerpt = e
        .split("excerpt: `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_default();
    assert!(excerpt.starts_with("SSH-2.0-"), "{e}");
    assert!(
        excerpt.chars().count() <= 41,
        "excerpt too long: {excerpt:?}"
    );
    let everything = format!("{e}\n{}", text_of(&r));
    for tail in ["db-prod-07", "SECRET-TAIL", "build-host"] {
        assert!(!everything.contains(tail), "banner leaked: {everything}");
    }

    // Direct TLS to the same port: not TLS, and nothing of the banner.
    let r = call(
        &client,
        "check_cert",
        json!({ "targets": [service.target()] }),
    )
    .await;
    let e = verification_error(&r);
    assert!(e.contains("not TLS") && !e.contains("OpenSSH"), "{e}");
    client.cancel().await.expect("cancel");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_metadata_endpoints_are_refused_before_connecting() {
    let scratch = Scratch::new();
    let server = HttpHarness::start(&scratch, "", &[]).await;
    let client = server.client(Era::Legacy).await;
    let targets = [
        "169.254.169.254",
        "https://169.254.169.254/latest/meta-data/",
        "[fd00:ec2::254]:443",
        "100.100.100.200:80",
        "[::ffff:169.254.169.254]",
    ];
    let r = check_within(
        &client,
        Duration::from_secs(2),
        json!({ "targets": targets, "starttls": null, "timeout_ms": 20000 }),
    )
    .await;
    let sc = r.structured_content.expect("report");
    for (i, t) in targets.iter().enumerate() {
        let res = &sc["results"][i];
        let e = res["verification_error"].as_str().unwrap_or_default();
        assert!(
            e.contains("refused by rule `metadata`") && e.contains("check_cert.allow"),
            "{t}: {e}"
        );
        assert_eq!(res["address"], Value::Null, "{t}: no connection was made");
    }
    client.cancel().await.expect("cancel");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_cert_allow_confines_the_hosts_checked() {
    let pki = crate::common::tls::TlsFixture::new();
    let leaf = pki.leaf(&crate::common::tls::LeafSpec::new(&["127.0.0.2"]));
    let allowed = crate::common::tls::serve_chain_on(
        "127.0.0.2".parse().unwrap(),
        leaf.full_chain(),
        leaf.key.clone(),
    )
    .await;
    // Something listening on 127.0.0.1, to see that nothing ever connects to it.
    let watch = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let watched = watch.local_addr().unwrap().port();

    let scratch = Scratch::new();
    let server =
        HttpHarness::start(&scratch, "[check_cert]\nallow = [\"127.0.0.2/32\"]\n", &[]).await;
    let client = server.client(Era::Legacy).await;
    let targets = [
        format!("127.0.0.1:{watched}"),
        format!("localhost:{watched}"),
        allowed.target(),
    ];
    let r = check_within(
        &client,
        Duration::from_secs(10),
        json!({ "targets": targets, "timeout_ms": 3000 }),
    )
    .await;
    let sc = r.structured_content.expect("report");
    for i in 0..2 {
        let res = &sc["results"][i];
        let e = res["verification_error"].as_str().unwrap_or_default();
        assert!(
            e.contains("refused by `check_cert.allow`") && e.contains("127.0.0.2/32"),
            "{}: {e}",
            targets[i]
        );
        assert_eq!(res["address"], Value::Null);
    }
    let ok = &sc["results"][2];
    assert_eq!(ok["address"], json!(allowed.target()), "{sc:#}");
    assert_eq!(ok["chain"].as_array().map(Vec::len), Some(2), "{sc:#}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.accept())
            .await
            .is_err(),
        "a refused target was connected to"
    );
    client.cancel().await.expect("cancel");
    server.stop().await;
}
