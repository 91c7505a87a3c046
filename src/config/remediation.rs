//! The `[remediation]` section and `[[credentials]]`: what the remediation gate allows once
//! remediation is enabled (token lifetime, rate, per-action switches, protected addresses,
//! who confirms and who may approve). Only `remediation/gate.rs` decides with it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use super::ConfigError;
use super::env::{Key, Layers, within};
use super::file::FileRemediation;

/// One credential `rotate_credentials` may touch (TOML only).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub id: String,
    pub kind: String,
    pub user: String,
    pub secret_file: PathBuf,
}

/// How a principal's destructive change is confirmed before it applies
/// (`[remediation.confirmation]`). Only `gate.rs` decides with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// The client is asked (elicitation): proves that the client said yes.
    Elicitation,
    /// Only `secops-mcp approve TOKEN` on the server: proves someone with shell access
    /// on the server said yes.
    OutOfBand,
    /// Another principal listed in `[remediation] approvers` approves (`approve_change`),
    /// or the operator on the server (`secops-mcp approve`).
    SecondPrincipal,
}

impl Confirmation {
    pub const ALLOWED: &'static str = "elicitation, out_of_band, second_principal";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation",
            Self::OutOfBand => "out_of_band",
            Self::SecondPrincipal => "second_principal",
        }
    }

    fn parse(key: &str, v: &str) -> Result<Self, ConfigError> {
        match v {
            "elicitation" => Ok(Self::Elicitation),
            "out_of_band" => Ok(Self::OutOfBand),
            "second_principal" => Ok(Self::SecondPrincipal),
            other => Err(ConfigError::new(
                key,
                format!(
                    "`{}` is not a confirmation policy; allowed: {}",
                    crate::util::sanitize_untrusted(other.as_bytes(), 40),
                    Self::ALLOWED
                ),
            )),
        }
    }
}

/// Policy of the remediation gate (`[remediation]` in TOML). Only `gate.rs` decides with it.
/// A `/` in a serialised name places the field in that sub-table of `[remediation]`, as in
/// the TOML file.
#[derive(Debug, Clone, Serialize)]
pub struct RemediationPolicy {
    /// Lifetime of a confirmation token (default 300 s).
    pub token_ttl_secs: u64,
    /// Apply needs a human (elicitation or `secops-mcp approve`); default true.
    pub require_human: bool,
    /// Destructive calls (plan or apply) per caller per minute.
    pub rate_limit_per_minute: u32,
    #[serde(rename = "rotate_credentials/enabled")]
    pub rotate_credentials_enabled: bool,
    /// Credential ids `rotate_credentials` may touch; `None` means every configured one.
    #[serde(rename = "rotate_credentials/allow")]
    pub rotate_allow: Option<Vec<String>>,
    #[serde(rename = "block_ip/enabled")]
    pub block_ip_enabled: bool,
    /// Addresses `block_ip` never blocks (besides loopback and the manager itself).
    #[serde(rename = "block_ip/protected_cidrs", serialize_with = "display_all")]
    pub protected_cidrs: Vec<ipnet::IpNet>,
    /// Whether `block_ip` may target every agent (`all_agents: true`).
    #[serde(rename = "block_ip/allow_all_agents")]
    pub allow_all_agents: bool,
    /// Most agent ids one `block_ip` call may list.
    #[serde(rename = "block_ip/max_agents")]
    pub block_ip_max_agents: usize,
    /// Confirmation policy of the stdio caller (default `elicitation`).
    #[serde(rename = "confirmation/stdio")]
    pub confirm_stdio: Confirmation,
    /// Confirmation policy of every HTTP principal, the anonymous one included (default
    /// `out_of_band`).
    #[serde(rename = "confirmation/http")]
    pub confirm_http: Confirmation,
    /// Per-principal overrides.
    #[serde(rename = "confirmation/principals")]
    pub confirm_principals: BTreeMap<String, Confirmation>,
    /// Principals that may approve another principal's change (`approve_change`).
    pub approvers: Vec<String>,
}

impl Default for RemediationPolicy {
    fn default() -> Self {
        Self {
            token_ttl_secs: 300,
            require_human: true,
            rate_limit_per_minute: 10,
            rotate_credentials_enabled: true,
            rotate_allow: None,
            block_ip_enabled: true,
            protected_cidrs: Vec::new(),
            allow_all_agents: false,
            block_ip_max_agents: 20,
            confirm_stdio: Confirmation::Elicitation,
            confirm_http: Confirmation::OutOfBand,
            confirm_principals: BTreeMap::new(),
            approvers: Vec::new(),
        }
    }
}

/// `[remediation]`: ranges, protected addresses, approvers and confirmation policies
/// checked; `rotate_credentials.allow` must name `[[credentials]]` ids.
pub(super) fn policy(
    fr: FileRemediation,
    credentials: &[CredentialConfig],
) -> Result<RemediationPolicy, ConfigError> {
    let d = RemediationPolicy::default();
    let token_ttl_secs = within(
        Key::file("remediation.token_ttl_secs"),
        fr.token_ttl_secs.unwrap_or(d.token_ttl_secs),
        1..=86_400,
    )?;
    let rate_limit_per_minute = fr.rate_limit_per_minute.unwrap_or(d.rate_limit_per_minute);
    if rate_limit_per_minute == 0 {
        return Err(ConfigError::new(
            "remediation.rate_limit_per_minute",
            "must be at least 1",
        ));
    }
    let rot = fr.rotate_credentials.unwrap_or_default();
    if let Some(allow) = &rot.allow {
        for id in allow {
            if !credentials.iter().any(|c| &c.id == id) {
                return Err(ConfigError::new(
                    "remediation.rotate_credentials.allow",
                    format!("`{id}` is not the id of a [[credentials]] entry"),
                ));
            }
        }
    }
    let bi = fr.block_ip.unwrap_or_default();
    let mut protected_cidrs = Vec::new();
    for c in bi.protected_cidrs.unwrap_or_default() {
        let net = c
            .parse::<ipnet::IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                ConfigError::new(
                    "remediation.block_ip.protected_cidrs",
                    format!("`{c}` is not an IP address or CIDR (e.g. 10.0.0.0/8)"),
                )
            })?;
        protected_cidrs.push(net);
    }
    let block_ip_max_agents = within(
        Key::file("remediation.block_ip.max_agents"),
        bi.max_agents.unwrap_or(d.block_ip_max_agents),
        1..=10_000,
    )?;
    let principal_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c))
    };
    let mut approvers = Vec::new();
    for a in fr.approvers.unwrap_or_default() {
        if !principal_ok(&a) {
            return Err(ConfigError::new(
                "remediation.approvers",
                format!(
                    "`{}` is not a principal name (letters, digits and -_.@, at most 64)",
                    crate::util::sanitize_untrusted(a.as_bytes(), 64)
                ),
            ));
        }
        if matches!(a.as_str(), "cli" | "system" | "http:anonymous") {
            return Err(ConfigError::new(
                "remediation.approvers",
                format!(
                    "`{a}` is not a principal that can approve (`cli` is the operator's \
                     `secops-mcp approve`, which needs no listing; `http:anonymous` is any \
                     local process)"
                ),
            ));
        }
        if !approvers.contains(&a) {
            approvers.push(a);
        }
    }
    let fconf = fr.confirmation.unwrap_or_default();
    let confirm_stdio = match &fconf.stdio {
        Some(v) => Confirmation::parse("remediation.confirmation.stdio", v)?,
        None => d.confirm_stdio,
    };
    let confirm_http = match &fconf.http {
        Some(v) => Confirmation::parse("remediation.confirmation.http", v)?,
        None => d.confirm_http,
    };
    let mut confirm_principals = BTreeMap::new();
    for (name, v) in fconf.principals.unwrap_or_default() {
        let key = format!("remediation.confirmation.principals.{name}");
        if !principal_ok(&name) || matches!(name.as_str(), "cli" | "system") {
            return Err(ConfigError::new(
                "remediation.confirmation.principals",
                format!(
                    "`{}` is not a principal name (letters, digits and -_.@, at most 64; not \
                     `cli` or `system`)",
                    crate::util::sanitize_untrusted(name.as_bytes(), 64)
                ),
            ));
        }
        confirm_principals.insert(name, Confirmation::parse(&key, &v)?);
    }
    let second_principal = confirm_stdio == Confirmation::SecondPrincipal
        || confirm_http == Confirmation::SecondPrincipal
        || confirm_principals
            .values()
            .any(|c| *c == Confirmation::SecondPrincipal);
    if second_principal && approvers.is_empty() {
        return Err(ConfigError::new(
            "remediation.approvers",
            "is empty, but a confirmation policy is `second_principal`; list the principals \
             who may approve another's change (e.g. approvers = [\"bob\"])",
        ));
    }
    Ok(RemediationPolicy {
        token_ttl_secs,
        require_human: fr.require_human.unwrap_or(d.require_human),
        rate_limit_per_minute,
        rotate_credentials_enabled: rot.enabled.unwrap_or(d.rotate_credentials_enabled),
        rotate_allow: rot.allow,
        block_ip_enabled: bi.enabled.unwrap_or(d.block_ip_enabled),
        protected_cidrs,
        allow_all_agents: bi.allow_all_agents.unwrap_or(d.allow_all_agents),
        block_ip_max_agents,
        confirm_stdio,
        confirm_http,
        confirm_principals,
        approvers,
    })
}

/// `[[credentials]]`: ids unique and non-empty, a known kind, an absolute secret file.
pub(super) fn credentials(
    list: Vec<CredentialConfig>,
) -> Result<Vec<CredentialConfig>, ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let key = format!("credentials[{i}]");
        if c.id.trim().is_empty() {
            return Err(ConfigError::new(format!("{key}.id"), "must not be empty"));
        }
        if !seen.insert(c.id.clone()) {
            return Err(ConfigError::new(
                format!("{key}.id"),
                format!("duplicate credential id `{}`", c.id),
            ));
        }
        if c.kind != "wazuh_api_user" {
            return Err(ConfigError::new(
                format!("{key}.kind"),
                format!("unknown kind `{}`; allowed: wazuh_api_user", c.kind),
            ));
        }
        if !c.secret_file.is_absolute() {
            return Err(ConfigError::new(
                format!("{key}.secret_file"),
                "must be an absolute path",
            ));
        }
    }
    Ok(list)
}

/// Values shown by their `Display` (addresses and networks).
fn display_all<T: std::fmt::Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| x.to_string()))
}

/// `remediation.enabled` (`SECOPS_REMEDIATION=enabled|disabled`): destructive tools are not
/// even listed until it is on.
pub(super) fn enabled(l: &Layers, fr: &FileRemediation) -> Result<bool, ConfigError> {
    let key = Key::env("remediation.enabled", "SECOPS_REMEDIATION");
    l.get(key, fr.enabled, false, |v| {
        match v.trim().to_ascii_lowercase().as_str() {
            "enabled" | "true" | "1" | "on" => Ok(true),
            "disabled" | "false" | "0" | "off" => Ok(false),
            other => Err(format!(
                "`{other}` is not allowed; use `enabled` or `disabled`"
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::env;

    #[test]
    fn credentials_are_validated() {
        let e = Config::from_toml_str(
            "[[credentials]]\nid = \"a\"\nkind = \"ssh_key\"\nuser = \"u\"\nsecret_file = \"/x\"\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "credentials[0].kind");
    }

    #[test]
    fn remediation_policy_defaults_and_validation() {
        let c = Config::from_toml_str("", &env(&[])).unwrap();
        assert_eq!(c.remediation.token_ttl_secs, 300);
        assert!(c.remediation.require_human && !c.remediation.allow_all_agents);
        let c = Config::from_toml_str(
            "[remediation]\ntoken_ttl_secs = 2\n[remediation.block_ip]\nprotected_cidrs = [\"192.0.2.7\", \"10.0.0.0/8\"]\n",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.remediation.token_ttl_secs, 2);
        assert_eq!(c.remediation.protected_cidrs.len(), 2);
        let e = Config::from_toml_str(
            "[remediation.block_ip]\nprotected_cidrs = [\"10.0.0.0/33\"]\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.block_ip.protected_cidrs");
        let e = Config::from_toml_str(
            "[remediation.rotate_credentials]\nallow = [\"nope\"]\n",
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.problem.contains("nope"), "{e}");
    }

    #[test]
    fn confirmation_policy_defaults_validation_and_masked_view() {
        let c = Config::from_toml_str("", &env(&[])).unwrap();
        assert_eq!(c.remediation.confirm_stdio, Confirmation::Elicitation);
        assert_eq!(c.remediation.confirm_http, Confirmation::OutOfBand);
        assert_eq!(c.remediation.block_ip_max_agents, 20);
        let c = Config::from_toml_str(
            "[remediation]\napprovers = [\"bob\"]\n[remediation.confirmation]\n\
             stdio = \"out_of_band\"\nhttp = \"elicitation\"\n\
             principals = { alice = \"second_principal\" }\n\
             [remediation.block_ip]\nmax_agents = 5\n",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.remediation.confirm_stdio, Confirmation::OutOfBand);
        assert_eq!(
            c.remediation.confirm_principals["alice"],
            Confirmation::SecondPrincipal
        );
        let m = c.masked();
        assert_eq!(
            m["remediation"]["confirmation"]["principals"]["alice"],
            "second_principal"
        );
        assert_eq!(m["remediation"]["confirmation"]["stdio"], "out_of_band");
        assert_eq!(m["remediation"]["approvers"][0], "bob");
        assert_eq!(m["remediation"]["block_ip"]["max_agents"], 5);
        // Unknown policy names list the allowed ones and name the key.
        let e = Config::from_toml_str(
            "[remediation.confirmation]\nhttp = \"trust_me\"\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.confirmation.http");
        assert!(e.problem.contains("trust_me"), "{e}");
        assert!(e.problem.contains(Confirmation::ALLOWED), "{e}");
        let e = Config::from_toml_str(
            "[remediation]\napprovers = [\"bob\"]\n\
             [remediation.confirmation]\nprincipals = { alice = \"yes\" }\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.confirmation.principals.alice");
        // second_principal needs approvers; approvers are real principals.
        let e = Config::from_toml_str(
            "[remediation.confirmation]\nhttp = \"second_principal\"\n",
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(e.key, "remediation.approvers");
        for bad in ["cli", "http:anonymous", "a b"] {
            let e = Config::from_toml_str(
                &format!("[remediation]\napprovers = [\"{bad}\"]\n"),
                &env(&[]),
            )
            .unwrap_err();
            assert_eq!(e.key, "remediation.approvers", "{bad}");
        }
        for bad in ["0", "10001"] {
            let e = Config::from_toml_str(
                &format!("[remediation.block_ip]\nmax_agents = {bad}\n"),
                &env(&[]),
            )
            .unwrap_err();
            assert_eq!(e.key, "remediation.block_ip.max_agents");
        }
    }
}
