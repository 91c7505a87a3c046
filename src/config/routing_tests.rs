//! Routes that name contacts (`contact:<name or role>`): resolved at load, refused with
//! the key when nobody answers to the name.

use std::collections::BTreeMap;

use super::*;
use crate::config::Config;

const CHANNELS: &str = "\
[[channels]]
name = \"mail\"
kind = \"email\"
host = \"smtp.example\"
from = \"alerts@example.org\"
to = [\"ops@example.org\"]
[[channels]]
name = \"text\"
kind = \"sms\"
account_sid = \"AC0123456789abcdef0123456789abcdef\"
auth_token_env = \"TW_TOKEN\"
from = \"+15005550006\"
to = [\"+15551230009\"]
[[channels]]
name = \"pager\"
kind = \"pagerduty\"
routing_key_env = \"PD_KEY\"
[[channels]]
name = \"chat\"
kind = \"log\"
[[contacts]]
name = \"Alice Martin\"
role = \"security lead\"
email = \"alice@example.org\"
phone = \"+15551230001\"
pagerduty_routing_key_env = \"ALICE_PD\"
[[contacts]]
name = \"Bob\"
role = \"DevOps engineer\"
phone = \"+15551230002\"
channels = [\"text\"]
";

const WEB: &str =
    "[[monitors]]\nname = \"web\"\nkind = \"uptime\"\nurl = \"http://127.0.0.1:8080/health\"\n";

fn load(toml: &str) -> Result<Config, ConfigError> {
    let env: BTreeMap<String, String> = [
        ("SECOPS_STATE_DIR", "/tmp/secops-test-state"),
        ("TW_TOKEN", "tw-t0ken"),
        ("PD_KEY", "ServiceKey0123456789abcdef012345"),
        ("ALICE_PD", "AliceS3cretKey0123456789abcdef01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Config::from_toml_str(&format!("{CHANNELS}{toml}"), &env)
}

fn alice(channels: &[&str]) -> Vec<Target> {
    channels
        .iter()
        .map(|c| Target::contact(*c, "Alice Martin"))
        .collect()
}

#[test]
fn contact_ref_takes_the_prefix_in_any_case() {
    assert_eq!(contact_ref("contact:security lead"), Some("security lead"));
    assert_eq!(contact_ref("Contact: Alice Martin "), Some("Alice Martin"));
    assert_eq!(contact_ref("contact:"), Some(""));
    assert_eq!(contact_ref("chat"), None);
    assert_eq!(contact_ref("contacts"), None);
}

#[test]
fn a_routing_level_naming_a_role_tells_that_contact_on_each_of_their_channels() {
    let c = load(&format!(
        "[routing]\ncritical = [\"chat\", \"contact:security lead\"]\n{WEB}"
    ))
    .unwrap();
    // Kept as written (what `config check` shows).
    assert_eq!(
        c.notify.route(Level::Critical),
        ["chat", "contact:security lead"]
    );
    let shown = c.masked().to_string();
    assert!(shown.contains("contact:security lead"), "{shown}");
    assert!(!shown.contains("AliceS3cretKey"), "{shown}");
    // The monitor inherits it: the channel stays a channel, the role becomes Alice's
    // channels, each addressed to her.
    let p = c.monitors[0].policy();
    assert_eq!(p.routes[&Level::Critical], ["chat"]);
    assert_eq!(
        p.contact_routes[&Level::Critical],
        alice(&["mail", "text", "pager"])
    );
    assert!(!p.contact_routes.contains_key(&Level::Warning));
}

#[test]
fn a_monitor_route_names_a_contact_by_name_case_insensitively() {
    let c = load(&format!(
        "{WEB}routes = {{ critical = [\"contact:alice martin\", \"contact:Bob\", \
         \"contact:security lead\"], warning = [\"contact:devops ENGINEER\"] }}\n"
    ))
    .unwrap();
    let p = c.monitors[0].policy();
    assert!(p.routes[&Level::Critical].is_empty());
    let mut want = alice(&["mail", "text", "pager"]);
    want.push(Target::contact("text", "Bob"));
    // Alice named twice (by name and role) is told once per channel.
    assert_eq!(p.contact_routes[&Level::Critical], want);
    assert_eq!(
        p.contact_routes[&Level::Warning],
        [Target::contact("text", "Bob")]
    );
    // A level the monitor does not route follows [routing] (the guide's default here).
    assert!(!p.contact_routes.contains_key(&Level::Emergency));
    assert!(p.routes[&Level::Emergency].contains(&"pager".to_string()));
}

#[test]
fn an_unknown_contact_in_routing_names_the_entry_and_lists_the_contacts() {
    let e = load("[routing]\ncritical = [\"chat\", \"mail\", \"contact:on-call\"]\n").unwrap_err();
    assert_eq!(e.key, "routing.critical[2]");
    assert!(e.problem.contains("`on-call`"), "{}", e.problem);
    assert!(
        e.problem
            .contains("`Alice Martin` (security lead), `Bob` (DevOps engineer)"),
        "{}",
        e.problem
    );
}

#[test]
fn an_unknown_contact_in_a_monitor_route_names_the_monitor_key() {
    let e = load(&format!(
        "{WEB}[[monitors]]\nname = \"db\"\nkind = \"uptime\"\nurl = \"http://127.0.0.1:9/\"\n\
         routes = {{ critical = [\"chat\", \"contact:Carol\"] }}\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "monitors[1].routes.critical");
    assert!(
        e.problem
            .contains("no contact has the name or role `Carol`"),
        "{}",
        e.problem
    );
    assert!(
        e.problem.contains("`Bob` (DevOps engineer)"),
        "{}",
        e.problem
    );
}

#[test]
fn an_empty_contact_and_a_contact_without_contacts_are_refused() {
    let e = load("[routing]\nwarning = [\"contact: \"]\n").unwrap_err();
    assert_eq!(e.key, "routing.warning[0]");
    assert!(e.problem.contains("name or role"), "{}", e.problem);
    let e = load(&format!("{WEB}routes = {{ info = [\"contact:\"] }}\n")).unwrap_err();
    assert_eq!(e.key, "monitors[0].routes.info");
    // A typo'd channel still says what a contact route looks like.
    let e = load("[routing]\ninfo = [\"alice\"]\n").unwrap_err();
    assert_eq!(e.key, "routing.info");
    assert!(
        e.problem.contains("contact:<name or role>"),
        "{}",
        e.problem
    );
}
