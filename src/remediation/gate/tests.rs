//! Unit tests of the gate: token binding and single use, expiry, sealed request state,
//! confirmation policy per principal, approvals, fail-closed audit, rate limit.

use super::*;
use serde_json::json;

fn gate(toml: &str) -> (tempfile::TempDir, Gate) {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = std::collections::BTreeMap::new();
    env.insert(
        "SECOPS_STATE_DIR".to_string(),
        tmp.path().to_string_lossy().to_string(),
    );
    let config = Config::from_toml_str(toml, &env).unwrap();
    let store = Store::open(&config.state_dir).unwrap();
    let g = Gate::new(&config, store);
    (tmp, g)
}

const ON: &str = "[remediation]\nenabled = true\n";

fn call(caller: &str, ip: &str) -> Call {
    Call::new(
        "block_ip",
        caller,
        &json!({"ip": ip, "agents": ["001"], "mode": "apply"}),
    )
}

#[test]
fn hmac_matches_rfc4231() {
    assert_eq!(
        hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn disabled_by_default_and_per_tool() {
    let (_t, g) = gate("");
    assert!(matches!(
        g.tool_enabled("block_ip"),
        Err(GateError::Disabled { .. })
    ));
    let (_t, g) = gate("[remediation]\nenabled = true\n[remediation.block_ip]\nenabled = false\n");
    assert!(g.tool_enabled("rotate_credentials").is_ok());
    assert!(g.tool_enabled("block_ip").is_err());
}

#[test]
fn token_is_bound_single_use_and_mode_independent() {
    let (tmp, g) = gate(ON);
    let plan = Call::new(
        "block_ip",
        "alice",
        &json!({"ip": "192.0.2.1", "agents": ["001"]}),
    );
    let issued = g.issue(&plan, "plan").unwrap();
    // Mode and token are not part of the binding.
    let apply = call("alice", "192.0.2.1");
    assert_eq!(plan.args_digest, apply.args_digest);
    let r = g.redeem(&apply, Some(&issued.token)).unwrap();
    assert!(r.needs_human && !r.approved);
    assert!(matches!(
        g.redeem(&call("bob", "192.0.2.1"), Some(&issued.token)),
        Err(GateError::WrongCaller)
    ));
    assert!(matches!(
        g.redeem(&call("alice", "192.0.2.2"), Some(&issued.token)),
        Err(GateError::WrongArguments)
    ));
    let mut other = apply.clone();
    other.tool = "rotate_credentials".into();
    assert!(matches!(
        g.redeem(&other, Some(&issued.token)),
        Err(GateError::WrongTool { .. })
    ));
    assert!(matches!(
        g.redeem(&apply, None),
        Err(GateError::MissingToken)
    ));
    // Tampering with any character makes it unknown.
    let mut forged = issued.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert!(matches!(
        g.redeem(&apply, Some(&forged)),
        Err(GateError::UnknownToken)
    ));
    // Out-of-band approval, then single use.
    approve_out_of_band(&g.store, tmp.path(), &issued.token).unwrap();
    let r = g.redeem(&apply, Some(&issued.token)).unwrap();
    assert!(r.approved && !r.needs_human);
    g.consume(&apply, &r, "apply").unwrap();
    assert!(matches!(
        g.redeem(&apply, Some(&issued.token)),
        Err(GateError::Replayed)
    ));
    // Every step is in the audit chain, which verifies, and no token is in it.
    let rows = g.store.audit_recent(100).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.action == "approve" && r.caller == "cli")
    );
    assert!(rows.iter().any(|r| r.action == "refuse"));
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains(&issued.token));
    assert!(g.store.audit_verify().unwrap().ok());
    // The key file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn an_unwritable_audit_log_refuses_before_anything_happens() {
    let (_t, g) = gate(ON);
    let c = call("stdio", "192.0.2.1");
    let issued = g.issue(&c, "plan").unwrap();
    let r = g.redeem(&c, Some(&issued.token)).unwrap();
    g.store
        .conn()
        .execute_batch(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
    assert!(matches!(g.issue(&c, "plan"), Err(GateError::Audit(_))));
    assert!(matches!(
        g.consume(&c, &r, "apply"),
        Err(GateError::Audit(_))
    ));
}

#[test]
fn expired_tokens_are_refused() {
    let (_t, g) = gate("[remediation]\nenabled = true\ntoken_ttl_secs = 1\n");
    let c = call("stdio", "192.0.2.1");
    let issued = g.issue(&c, "plan").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(matches!(
        g.redeem(&c, Some(&issued.token)),
        Err(GateError::Expired { .. })
    ));
}

#[test]
fn request_state_is_sealed_to_the_call() {
    let (_t, g) = gate(ON);
    let c = call("stdio", "192.0.2.1");
    let issued = g.issue(&c, "plan").unwrap();
    let r = g.redeem(&c, Some(&issued.token)).unwrap();
    let sealed = g.seal_state(&c, &r).unwrap();
    g.open_state(&c, &r, &sealed).unwrap();
    assert!(
        g.open_state(&call("eve", "192.0.2.1"), &r, &sealed)
            .is_err()
    );
    assert!(g.open_state(&c, &r, "rs_99999999999_00").is_err());
}

const POLICY: &str = "[remediation]\nenabled = true\napprovers = [\"alice\", \"bob\"]\n\
                      [remediation.confirmation]\n\
                      principals = { alice = \"second_principal\", carol = \"elicitation\" }\n";

#[test]
fn confirmation_policy_is_per_principal_with_transport_defaults() {
    let (_t, g) = gate(ON);
    let p = g.policy();
    assert_eq!(confirmation_for(p, "stdio"), Confirmation::Elicitation);
    assert_eq!(confirmation_for(p, "alice"), Confirmation::OutOfBand);
    assert_eq!(
        confirmation_for(p, "http:anonymous"),
        Confirmation::OutOfBand
    );
    let (_t, g) = gate(POLICY);
    let p = g.policy();
    assert_eq!(confirmation_for(p, "alice"), Confirmation::SecondPrincipal);
    assert_eq!(confirmation_for(p, "carol"), Confirmation::Elicitation);
    assert_eq!(confirmation_for(p, "dave"), Confirmation::OutOfBand);
    assert_eq!(confirmation_for(p, "stdio"), Confirmation::Elicitation);
}

#[test]
fn which_approvals_satisfy_which_policy() {
    use Confirmation::*;
    for policy in [Elicitation, OutOfBand, SecondPrincipal] {
        assert!(approval_satisfies(policy, "alice", "cli"), "{policy:?}");
        assert!(!approval_satisfies(policy, "alice", "elicitation"));
        assert!(!approval_satisfies(policy, "alice", "principal:alice"));
    }
    assert!(approval_satisfies(
        SecondPrincipal,
        "alice",
        "principal:bob"
    ));
    assert!(!approval_satisfies(OutOfBand, "alice", "principal:bob"));
    assert!(!approval_satisfies(Elicitation, "alice", "principal:bob"));
    assert!(!approval_satisfies(SecondPrincipal, "alice", "bob"));
    assert!(!approval_satisfies(SecondPrincipal, "alice", "principal:"));
}

#[test]
fn who_may_approve_whom() {
    let (_t, g) = gate(POLICY);
    let p = g.policy();
    assert!(check_approval_of(p, "bob", "alice").is_ok());
    assert!(matches!(
        check_approval_of(p, "alice", "alice"),
        Err(GateError::SelfApproval { .. })
    ));
    assert!(matches!(
        check_approval_of(p, "carol", "alice"),
        Err(GateError::NotApprover { .. })
    ));
    // Another principal's approval does not count for out_of_band or elicitation.
    for requester in ["dave", "carol", "stdio"] {
        assert!(matches!(
            check_approval_of(p, "bob", requester),
            Err(GateError::ApprovalNotAccepted { .. })
        ));
    }
}

#[test]
fn an_elicitation_answer_never_satisfies_out_of_band_or_second_principal() {
    let (_t, g) = gate(POLICY);
    for caller in ["alice", "dave"] {
        let c = call(caller, "192.0.2.1");
        let issued = g.issue(&c, "plan").unwrap();
        let mut r = g.redeem(&c, Some(&issued.token)).unwrap();
        assert!(r.needs_human);
        assert!(g.human_step(&c, &r).is_err());
        assert!(g.seal_state(&c, &r).is_err());
        assert!(g.human_answer(&c, &mut r, Ok(())).is_err(), "{caller}");
        assert!(r.approved_by.is_none());
    }
    // The stdio caller's client is asked, and its yes is recorded.
    let c = call("stdio", "192.0.2.1");
    let issued = g.issue(&c, "plan").unwrap();
    let mut r = g.redeem(&c, Some(&issued.token)).unwrap();
    assert!(g.human_step(&c, &r).is_ok());
    g.human_answer(&c, &mut r, Ok(())).unwrap();
    g.consume(&c, &r, "apply").unwrap();
    let rows = g.store.audit_recent(1).unwrap();
    assert!(
        rows[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("approved by elicitation")
    );
}

#[test]
fn a_second_principal_approves_and_the_audit_names_it() {
    let (_t, g) = gate(POLICY);
    let c = call("alice", "192.0.2.1");
    let issued = g.issue(&c, "block 192.0.2.1").unwrap();
    let approve = |who: &str, token: &str| {
        let a = Call::new(APPROVE_TOOL, who, &json!({"confirmation_token": token}));
        g.approve_by_principal(
            &a,
            &ApproveArgs {
                confirmation_token: token.to_string(),
                comment: Some("seen the brute force".into()),
            },
        )
    };
    assert!(matches!(
        approve("alice", &issued.token),
        Err(GateError::SelfApproval { .. })
    ));
    assert!(matches!(
        approve("carol", &issued.token),
        Err(GateError::NotApprover { .. })
    ));
    assert!(matches!(
        approve("bob", "sct1_nope"),
        Err(GateError::UnknownToken)
    ));
    let out = approve("bob", &issued.token).unwrap();
    assert_eq!(
        (out.requester.as_str(), out.approved_by.as_str()),
        ("alice", "bob")
    );
    assert!(matches!(
        approve("bob", &issued.token),
        Err(GateError::AlreadyApproved { .. })
    ));
    let r = g.redeem(&c, Some(&issued.token)).unwrap();
    assert!(r.approved && !r.needs_human);
    g.consume(&c, &r, "apply").unwrap();
    assert!(matches!(
        approve("bob", &issued.token),
        Err(GateError::Replayed)
    ));
    let rows = g.store.audit_recent(100).unwrap();
    let approved = rows.iter().find(|r| r.action == "approve").unwrap();
    assert_eq!(approved.caller, "bob");
    assert_eq!(approved.tool, "block_ip");
    assert!(
        approved
            .detail
            .as_deref()
            .unwrap()
            .contains("seen the brute force")
    );
    let applied = rows.iter().find(|r| r.action == "apply").unwrap();
    assert!(
        applied
            .detail
            .as_deref()
            .unwrap()
            .contains("approved by principal `bob`")
    );
    let refusals = rows.iter().filter(|r| r.tool == APPROVE_TOOL).count();
    assert_eq!(refusals, 5, "every refused approval is audited");
    assert!(
        !serde_json::to_string(&rows)
            .unwrap()
            .contains(&issued.token)
    );
    assert!(g.store.audit_verify().unwrap().ok());
}

#[test]
fn rate_limit_is_per_caller() {
    let (_t, g) = gate("[remediation]\nenabled = true\nrate_limit_per_minute = 2\n");
    let a = call("alice", "192.0.2.1");
    assert!(g.admit(&a).is_ok() && g.admit(&a).is_ok());
    assert!(matches!(g.admit(&a), Err(GateError::RateLimited { .. })));
    assert!(g.admit(&call("bob", "192.0.2.1")).is_ok());
}
