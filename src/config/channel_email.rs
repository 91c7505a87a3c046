//! The keys of a `kind = "email"` channel: `host`, `port` (default by `tls`: 587 / 465 / 25),
//! `tls` (`starttls` default, `implicit`, `none` only to a loopback host), `username` with
//! `password_env` or `password_file` (never inline), `from`, `to` (1 to 50 addresses, each
//! checked), `timeout_ms` (default 10000), `ca_file`, `subject_template` and `template` /
//! `template_file` (notify::template; plain text only). Errors name the key
//! (`channels[2].to[1]`); the channel itself is built by notify::email.

use super::ConfigError;
use super::channels::{ChannelKind, FileChannelEntry, secret};
use super::env::Layers;
use crate::notify::email::{MAX_RECIPIENTS, TlsMode, is_loopback_host, parse_address};

pub(super) fn email(
    l: &Layers,
    i: usize,
    e: &FileChannelEntry,
) -> Result<ChannelKind, ConfigError> {
    let at = |k: &str| format!("channels[{i}].{k}");
    let host = e
        .host
        .clone()
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                at("host"),
                "an email channel needs `host` (the SMTP server)",
            )
        })?;
    let tls = match e.tls.as_deref() {
        None => TlsMode::Starttls,
        Some(t) => TlsMode::parse(t).ok_or_else(|| {
            ConfigError::new(
                at("tls"),
                format!(
                    "`{}` is not a TLS mode; allowed: `starttls` (default), `implicit`, `none`",
                    crate::util::sanitize_untrusted(t.as_bytes(), 40)
                ),
            )
        })?,
    };
    if tls == TlsMode::None && !is_loopback_host(&host) {
        return Err(ConfigError::new(
            at("tls"),
            format!(
                "`none` sends mail (and any password) in cleartext, so it is only allowed to a \
                 loopback host (localhost, 127.0.0.1, ::1), not `{}`; use `starttls` or `implicit`",
                crate::util::sanitize_untrusted(host.as_bytes(), 80)
            ),
        ));
    }
    if e.port == Some(0) {
        return Err(ConfigError::new(at("port"), "must be between 1 and 65535"));
    }
    let password = secret(
        l,
        &at("password_env"),
        &at("password_file"),
        e.password_env.as_deref(),
        e.password_file.as_ref(),
    )?;
    match (&e.username, &password) {
        (Some(_), None) => {
            return Err(ConfigError::new(
                at("password_env"),
                "`username` is set: the password comes from `password_env` or `password_file` \
                 (never inline)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                at("username"),
                "a password is configured but no `username`",
            ));
        }
        _ => {}
    }
    let from = e.from.clone().ok_or_else(|| {
        ConfigError::new(at("from"), "an email channel needs `from` (the sender)")
    })?;
    parse_address(&from).map_err(|p| ConfigError::new(at("from"), p))?;
    let to = e.to.clone().unwrap_or_default();
    if to.is_empty() || to.len() > MAX_RECIPIENTS {
        return Err(ConfigError::new(
            at("to"),
            format!(
                "must list 1 to {MAX_RECIPIENTS} addresses, not {}",
                to.len()
            ),
        ));
    }
    for (j, t) in to.iter().enumerate() {
        parse_address(t).map_err(|p| ConfigError::new(format!("channels[{i}].to[{j}]"), p))?;
    }
    let timeout_ms = e.timeout_ms.unwrap_or(10_000);
    if !(1..=300_000).contains(&timeout_ms) {
        return Err(ConfigError::new(
            at("timeout_ms"),
            format!("must be between 1 and 300000, not {timeout_ms}"),
        ));
    }
    if let Some(f) = &e.ca_file
        && !f.is_file()
    {
        return Err(ConfigError::new(
            at("ca_file"),
            format!("{} is not a readable file", f.display()),
        ));
    }
    let (password, password_source) = match password {
        Some((s, src)) => (Some(s), Some(src)),
        None => (None, None),
    };
    Ok(ChannelKind::Email {
        port: e.port.unwrap_or(tls.default_port()),
        host,
        tls,
        username: e.username.clone(),
        password,
        password_source,
        from,
        to,
        timeout_ms,
        ca_file: e.ca_file.clone(),
        subject_template: e
            .subject_template
            .as_deref()
            .map(|s| super::channels_providers::compile(&at("subject_template"), s))
            .transpose()?,
        template: super::channels_providers::template(i, e)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{Config, ConfigError};

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([(
                "SECOPS_STATE_DIR".to_string(),
                "/tmp/secops-test-state".to_string(),
            )])
            .collect();
        Config::from_toml_str(toml, &env)
    }

    const BASE: &str = "[[channels]]\nname = \"log2\"\nkind = \"log\"\n\
                        [[channels]]\nname = \"mail\"\nkind = \"email\"\n";

    #[test]
    fn an_email_channel_defaults_to_starttls_on_587_and_hides_its_password() {
        let c = load(
            &format!(
                "{BASE}host = \"smtp.example.org\"\nusername = \"alerts\"\n\
                 password_env = \"MAIL_PW\"\nfrom = \"Secops <alerts@example.org>\"\n\
                 to = [\"ops@example.org\", \"Lead <lead@example.org>\"]\n\
                 [routing]\nwarning = [\"mail\"]\n"
            ),
            &[("MAIL_PW", "Sm7p-s3cret")],
        )
        .unwrap();
        let mail = c.notify.channels.iter().find(|c| c.name == "mail").unwrap();
        match &mail.kind {
            super::ChannelKind::Email {
                port,
                tls,
                timeout_ms,
                ..
            } => {
                assert_eq!(
                    (*port, *tls, *timeout_ms),
                    (587, super::TlsMode::Starttls, 10_000)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(mail.kind.name(), "email");
        let shown = c.masked().to_string() + &format!("{c:?}");
        assert!(!shown.contains("Sm7p-s3cret"), "{shown}");
        assert!(shown.contains("MAIL_PW"), "{shown}");
        let implicit = load(
            &format!(
                "{BASE}host = \"smtp.example.org\"\ntls = \"implicit\"\n\
                 from = \"a@example.org\"\nto = [\"b@example.org\"]\n"
            ),
            &[],
        )
        .unwrap();
        assert!(format!("{:?}", implicit.notify.channels).contains("port: 465"));
    }

    #[test]
    fn bad_email_settings_name_the_key() {
        let ok = "host = \"smtp.example.org\"\nfrom = \"a@example.org\"\n";
        let cases: &[(&str, &str)] = &[
            (
                "from = \"a@example.org\"\nto = [\"b@example.org\"]\n",
                "channels[1].host",
            ),
            (
                "host = \"smtp.example.org\"\ntls = \"none\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n",
                "channels[1].tls",
            ),
            (
                "host = \"smtp.example.org\"\ntls = \"ssl\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n",
                "channels[1].tls",
            ),
            (
                &format!("{ok}to = [\"b@example.org\", \"not an address\"]\n"),
                "channels[1].to[1]",
            ),
            (&format!("{ok}to = []\n"), "channels[1].to"),
            (
                "host = \"smtp.example.org\"\nfrom = \"nobody\"\nto = [\"b@example.org\"]\n",
                "channels[1].from",
            ),
            (
                &format!("{ok}to = [\"b@example.org\"]\nusername = \"u\"\n"),
                "channels[1].password_env",
            ),
            (
                &format!(
                    "{ok}to = [\"b@example.org\"]\nusername = \"u\"\npassword_env = \"NOPE\"\n"
                ),
                "channels[1].password_env",
            ),
            (
                &format!("{ok}to = [\"b@example.org\"]\npath = \"/tmp/x\"\n"),
                "channels[1].path",
            ),
            (
                &format!("{ok}to = [\"b@example.org\"]\ntimeout_ms = 0\n"),
                "channels[1].timeout_ms",
            ),
            (
                &format!("{ok}to = [\"b@example.org\"]\nca_file = \"/nonexistent/ca.pem\"\n"),
                "channels[1].ca_file",
            ),
        ];
        for (keys, key) in cases {
            let e = load(&format!("{BASE}{keys}"), &[]).unwrap_err();
            assert_eq!(e.key, *key, "{keys}: {e}");
        }
        let too_many: Vec<String> = (0..51).map(|n| format!("\"u{n}@example.org\"")).collect();
        let e = load(&format!("{BASE}{ok}to = [{}]\n", too_many.join(", ")), &[]).unwrap_err();
        assert_eq!(e.key, "channels[1].to", "{e}");
        // `none` to a loopback relay is fine.
        load(
            &format!(
                "{BASE}host = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n"
            ),
            &[],
        )
        .unwrap();
    }

    #[test]
    fn email_templates_are_checked_at_load() {
        let ok = format!(
            "{BASE}host = \"smtp.example.org\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n"
        );
        load(
            &format!("{ok}subject_template = \"[{{{{ alert.level }}}}] {{{{ alert.title }}}}\"\n"),
            &[],
        )
        .unwrap();
        for (keys, key) in [
            (
                "subject_template = \"{{ alert.titel }}\"\n",
                "channels[1].subject_template",
            ),
            ("template = \"{% for %}\"\n", "channels[1].template"),
        ] {
            let e = load(&format!("{ok}{keys}"), &[]).unwrap_err();
            assert_eq!(e.key, key, "{keys}: {e}");
            assert!(e.to_string().contains("line 1: "), "{e}");
        }
    }
}
