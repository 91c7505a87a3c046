//! Per-channel rate limits and digests end to end: channels and their limits parsed from a
//! `[[channels]]` configuration as `serve` parses it, alerts raised by the real lifecycle,
//! the real outbox on a ManualClock, and the Slack and Twilio fakes of
//! tests/common/providers.rs checking each request's shape. A burst over the Slack limit
//! reaches the receiver as exactly two requests: the first alert, then one digest listing
//! every other one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secops_mcp::alerts::lifecycle::{MonitorPolicy, evaluate};
use secops_mcp::alerts::outbox::{Outbox, OutboxSettings};
use secops_mcp::alerts::{Level, Observation};
use secops_mcp::clock::{Clock, ManualClock};
use secops_mcp::config::Config;
use secops_mcp::store::{NotificationState, Store};

use crate::common::Scratch;
use crate::common::providers::{Provider, Providers, TWILIO_SID, TWILIO_TOKEN, form_pairs};

const T0: i64 = 1_800_000_000_000;

fn down(i: usize) -> Observation {
    Observation {
        code: "endpoint_down".into(),
        subject: BTreeMap::from([("url".to_string(), format!("https://shop{i}.example/"))]),
        level: Some(Level::Critical),
        title: format!("shop{i}.example is down"),
        summary: "It answered 503 three times.".into(),
        value: Some("HTTP 503".into()),
    }
}

struct Rig {
    scratch: Scratch,
    config: Config,
    store: Store,
    clock: ManualClock,
}

fn rig(toml: &str, vars: &[(&str, String)]) -> Rig {
    let scratch = Scratch::new();
    let mut env = scratch.env();
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let config = Config::from_toml_str(toml, &env).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let store = Store::open(&scratch.state_dir()).unwrap();
    Rig {
        scratch,
        config,
        store,
        clock: ManualClock::at(T0),
    }
}

impl Rig {
    /// The outbox `monitor::start` builds: the configured channels and their limits.
    fn outbox(&self) -> Outbox {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        Outbox::new(
            self.store.clone(),
            self.config.notify.build().unwrap(),
            clock,
            OutboxSettings {
                worker: "w".into(),
                ..Default::default()
            },
        )
        .with_rate_limits(&self.config.notify.rate_limits())
    }

    /// `n` alerts of monitor `web` turning firing at once, each its own notification.
    fn burst(&self, channel: &str, n: usize) -> Vec<i64> {
        let mut policy = MonitorPolicy::new("web").route(Level::Critical, &[channel]);
        policy.group_wait = Duration::ZERO;
        let obs: Vec<Observation> = (1..=n).map(down).collect();
        evaluate(&self.store, &self.clock, &policy, &obs)
            .unwrap()
            .fired
    }
}

#[tokio::test]
async fn a_burst_over_the_slack_limit_is_one_message_then_one_digest_of_all_the_others() {
    let p = Providers::start().await;
    // No rate_limit written: Slack's default, 1 per second. The template shapes single
    // notifications; the digest has the default digest text.
    let r = rig(
        "[[channels]]\nname = \"chat\"\nkind = \"slack\"\nurl_env = \"CHAT_URL\"\n\
         template = \"{{ alert.id }} templated: {{ alert.title }}\"\n",
        &[("CHAT_URL", p.slack_url())],
    );
    let shown = r.config.masked().to_string();
    assert!(shown.contains(r#""rate_limit":"1/s""#), "{shown}");
    let outbox = r.outbox();
    let fired = r.burst("chat", 10);
    assert_eq!(fired.len(), 10);

    let round = outbox.deliver_due().await.unwrap();
    assert_eq!((round.delivered, round.digested), (1, 9), "{round:?}");
    assert_eq!(p.received(Provider::Slack).len(), 1);
    // Within the second, nothing more goes out.
    r.clock.advance(Duration::from_millis(500));
    outbox.deliver_due().await.unwrap();
    assert_eq!(p.received(Provider::Slack).len(), 1);
    r.clock.advance(Duration::from_millis(500));
    let round = outbox.deliver_due().await.unwrap();
    assert_eq!(round.delivered, 1, "{round:?}");
    r.clock.advance(Duration::from_secs(10));
    assert_eq!(outbox.deliver_due().await.unwrap().claimed, 0);

    let got = p.received(Provider::Slack);
    assert_eq!(got.len(), 2, "exactly two requests");
    assert_eq!(p.violations(), Vec::<String>::new());
    let first = got[0].json();
    let ids: Vec<String> = fired.iter().map(|s| format!("ALR-{s}")).collect();
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} templated: ", ids[0])),
        "{first}"
    );
    let digest = got[1].json();
    let text = digest["text"].as_str().unwrap();
    assert!(
        text.starts_with("DIGEST: 9 notifications (9 alerts, loudest CRITICAL)"),
        "{text}"
    );
    assert!(!text.contains("templated"), "{text}");
    let blocks = digest["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    assert_eq!(
        blocks[0]["text"]["text"],
        "DIGEST: 9 notifications (9 alerts, loudest CRITICAL)"
    );
    // Every other alert is listed, in the text and in one section each.
    for (i, id) in ids.iter().enumerate().skip(1) {
        assert!(
            text.contains(&format!("{id} [CRITICAL] firing:")),
            "{id}: {text}"
        );
        let section = blocks[i]["text"]["text"].as_str().unwrap();
        assert!(section.contains(id.as_str()), "{id}: {section}");
        assert!(section.contains("FIRING web"), "{section}");
    }
    assert!(!text.contains(&format!("{} [", ids[0])), "{text}");

    // In the store: nine rows digested into the delivered digest; each alert's timeline
    // shows the digest's attempt.
    let rows = r.store.outbox_list(Some("chat"), 100).unwrap();
    let digest_row = rows.iter().find(|n| n.kind == "digest").unwrap();
    assert_eq!(digest_row.state, NotificationState::Delivered);
    let carried = r.store.outbox_digested(digest_row.id).unwrap();
    assert_eq!(carried.len(), 9);
    assert!(
        carried
            .iter()
            .all(|c| c.state == NotificationState::Digested)
    );
    let timeline = r.store.outbox_attempts_for_alert(fired[5]).unwrap();
    assert_eq!(
        timeline
            .iter()
            .map(|a| (a.kind.as_str(), a.outcome.as_str()))
            .collect::<Vec<_>>(),
        [("digest", "delivered")]
    );
    let health = outbox.health().await.unwrap();
    let chat = health.iter().find(|h| h.channel == "chat").unwrap();
    assert_eq!((chat.delivered, chat.digested, chat.pending), (2, 9, 0));
    let _ = &r.scratch;
}

#[tokio::test]
async fn sms_at_its_configured_limit_sends_a_digest_of_ids_through_twilio() {
    let p = Providers::start().await;
    let r = rig(
        &format!(
            "[[channels]]\nname = \"phones\"\nkind = \"sms\"\naccount_sid = \"{TWILIO_SID}\"\n\
             auth_token_env = \"TW_TOKEN\"\nfrom = \"+15005550006\"\nto = [\"+15005550001\"]\n\
             base_url = \"{}\"\nrate_limit = \"2/m\"\n",
            p.base()
        ),
        &[("TW_TOKEN", TWILIO_TOKEN.to_string())],
    );
    assert_eq!(r.config.notify.rate_limits()["phones"].to_string(), "2/m");
    let outbox = r.outbox();
    let fired = r.burst("phones", 6);
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 2);
    r.clock.advance(Duration::from_secs(30));
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 1);
    let got = p.received(Provider::Twilio);
    assert_eq!(got.len(), 3);
    assert_eq!(p.violations(), Vec::<String>::new());
    let pairs = form_pairs(&got[2].body);
    let body = &pairs.iter().find(|(k, _)| k == "Body").unwrap().1;
    let rest: Vec<String> = fired[2..].iter().map(|s| format!("ALR-{s}")).collect();
    assert_eq!(
        body,
        &format!(
            "DIGEST 4 notifications (4 alerts, loudest CRITICAL): {}",
            rest.join(", ")
        )
    );
}

#[test]
fn bad_rate_limits_are_refused_at_load_naming_the_key() {
    for (toml, key, says) in [
        (
            "[[channels]]\nname = \"x\"\nkind = \"log\"\nrate_limit = \"fast\"\n",
            "channels[0].rate_limit",
            "`N/s`",
        ),
        (
            "[[channels]]\nname = \"x\"\nkind = \"log\"\nrate_limit = \"0/s\"\n",
            "channels[0].rate_limit",
            "allows nothing",
        ),
        (
            "[[channels]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key_env = \"PD\"\n\
             rate_limit = \"10/m\"\n",
            "channels[0].rate_limit",
            "must be `none` for a pagerduty channel",
        ),
    ] {
        let scratch = Scratch::new();
        let mut env = scratch.env();
        env.insert("PD".into(), "k".repeat(32));
        let e = Config::from_toml_str(toml, &env).unwrap_err();
        assert_eq!(e.key, key, "{toml}: {e}");
        assert!(e.to_string().contains(says), "{e}");
    }
    // The defaults and `none`, as `config show` shows them.
    let scratch = Scratch::new();
    let c = Config::from_toml_str(
        "[[channels]]\nname = \"hook\"\nkind = \"file\"\npath = \"/tmp/secops-rate.jsonl\"\n\
         [[channels]]\nname = \"quiet\"\nkind = \"file\"\npath = \"/tmp/secops-rate2.jsonl\"\n\
         rate_limit = \"30/h\"\n",
        &scratch.env(),
    )
    .unwrap();
    let limits = c.notify.rate_limits();
    assert_eq!(limits["hook"].to_string(), "none");
    assert_eq!(limits["quiet"].to_string(), "30/h");
    assert_eq!(limits["log"].to_string(), "none");
}
