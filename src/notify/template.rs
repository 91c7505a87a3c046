//! Message templates: a channel's text overridden in config (`template`, `template_file`,
//! `subject_template`) with a `minijinja` template over documented fields, compiled and
//! test-rendered against a sample notification at config load (strict undefined: a
//! misspelt field or an unknown filter is a load error), rendered at send time, then cut to
//! the provider's limit by the channel. Plain text only: auto-escaping is off, alert text
//! is data (never parsed as a template), and each channel escapes what its receiver needs.
//!
//! Fields: `kind` (firing, repeat, resolved, acknowledged, test, escalation), `count`,
//! `monitor`, `group`, `alerts` (a list), `alert` (the first), `escalation` (an
//! escalation's "ESCALATED to <role> (<name>): ..." line, else empty). Each alert has `id`, `level`, `state`,
//! `code`, `title`, `summary`, `labels` (a map), `started_at`, `resolved_at`, `value`,
//! `runbook`, `link`; a field without a value is the empty string. A digest (what a rate
//! limit held back) is never rendered through a template: it always has the default
//! digest text of notify/digest.rs, which lists every carried notification.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::alerts::{AlertSnapshot, AlertState, Level, NotificationBody, NotificationKind};

/// The name the one template has inside its environment.
const NAME: &str = "message";
/// The longest template source accepted (characters).
pub const SOURCE_MAX: usize = 16_384;
/// The work one render may do (minijinja fuel): a loop over a huge range fails, not hangs.
const FUEL: u64 = 200_000;

/// One compiled template.
#[derive(Clone)]
pub struct MessageTemplate {
    env: Arc<Environment<'static>>,
    source: String,
}

impl std::fmt::Debug for MessageTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MessageTemplate")
            .field(&self.source)
            .finish()
    }
}

/// Shown (config show, debug) as its source: a template is not a secret.
impl Serialize for MessageTemplate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl PartialEq for MessageTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// A minijinja error as one line: `line 1: unknown filter: ...`.
fn describe(e: &minijinja::Error) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match e.line() {
        Some(l) => format!("line {l}: {what}"),
        None => what,
    }
}

impl MessageTemplate {
    /// Compile `source` and render it once against a sample notification, so a syntax
    /// error, an unknown filter or a misspelt field is found now. The error says what is
    /// wrong and where (`line 1: unknown filter: ...`); the caller names the key.
    pub fn compile(source: &str) -> Result<Self, String> {
        if source.trim().is_empty() {
            return Err("is empty".into());
        }
        if source.chars().count() > SOURCE_MAX {
            return Err(format!("is longer than {SOURCE_MAX} characters"));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_recursion_limit(32);
        env.set_fuel(Some(FUEL));
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| describe(&e))?;
        let t = Self {
            env: Arc::new(env),
            source: source.to_string(),
        };
        let out = t.render(&sample())?;
        if out.trim().is_empty() {
            return Err("renders to nothing for a sample notification".into());
        }
        Ok(t)
    }

    /// Render over the notification's fields (see the module doc).
    pub fn render(&self, body: &NotificationBody) -> Result<String, String> {
        let t = self.env.get_template(NAME).map_err(|e| describe(&e))?;
        t.render(minijinja::value::Serde(Context::of(body)))
            .map_err(|e| describe(&e))
    }

    /// Render, or else the channel's default text, with a warning (the notification is
    /// never lost to a template).
    pub fn render_or(&self, channel: &str, body: &NotificationBody, default: String) -> String {
        match self.render(body) {
            Ok(s) if !s.trim().is_empty() => s,
            Ok(_) => {
                tracing::warn!(
                    channel,
                    "message template rendered nothing; sent the default text"
                );
                default
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "message template failed; sent the default text");
                default
            }
        }
    }
}

/// One line of at most `max` characters: CR, LF and other control characters become
/// spaces (a subject is a mail header: no header injection), runs of spaces are folded.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    super::slack::cut(out.trim_end(), max)
}

#[derive(Serialize)]
struct Context {
    kind: &'static str,
    count: usize,
    monitor: String,
    group: String,
    alerts: Vec<AlertContext>,
    alert: AlertContext,
    /// An escalation's line ("ESCALATED to security lead (Alice): ..."), else empty.
    escalation: String,
}

#[derive(Serialize, Clone, Default)]
struct AlertContext {
    id: String,
    level: String,
    state: String,
    code: String,
    title: String,
    summary: String,
    labels: BTreeMap<String, String>,
    started_at: String,
    resolved_at: String,
    value: String,
    runbook: String,
    link: String,
}

impl Context {
    fn of(body: &NotificationBody) -> Self {
        let alerts: Vec<AlertContext> = body.alerts.iter().map(AlertContext::of).collect();
        Self {
            kind: body.kind.as_str(),
            count: alerts.len(),
            monitor: body
                .alerts
                .first()
                .map(|a| a.monitor.clone())
                .unwrap_or_default(),
            group: body.group_key.clone(),
            alert: alerts.first().cloned().unwrap_or_default(),
            alerts,
            escalation: super::escalation_line(body).unwrap_or_default(),
        }
    }
}

impl AlertContext {
    fn of(a: &AlertSnapshot) -> Self {
        Self {
            id: a.id.clone(),
            level: a.level.as_str().to_string(),
            state: a.state.as_str().to_string(),
            code: a.code.clone(),
            title: a.title.clone(),
            summary: a.summary.clone(),
            labels: a.labels.clone(),
            started_at: a.started_at.clone(),
            resolved_at: a.resolved_at.clone().unwrap_or_default(),
            value: a.value.clone().unwrap_or_default(),
            runbook: a.runbook.clone().unwrap_or_default(),
            link: String::new(),
        }
    }
}

/// The notification templates are checked against at load.
pub fn sample() -> NotificationBody {
    NotificationBody {
        kind: NotificationKind::Firing,
        group_key: "sample-monitor".into(),
        group_labels: BTreeMap::new(),
        escalation: None,
        dedup_key: "0000000000000000-0".into(),
        alerts: vec![AlertSnapshot {
            id: "ALR-1".into(),
            fingerprint: "0000000000000000".into(),
            episode: "0000000000000000-0".into(),
            monitor: "sample-monitor".into(),
            code: "sample".into(),
            level: Level::Critical,
            state: AlertState::Firing,
            title: "Sample alert".into(),
            summary: "what a real alert's summary says".into(),
            labels: BTreeMap::from([("agent".to_string(), "web-01".to_string())]),
            value: Some("42".into()),
            started_at: "2026-01-01T00:00:00Z".into(),
            resolved_at: None,
            runbook: Some("https://runbooks.example/sample".into()),
        }],
        digest: vec![],
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
