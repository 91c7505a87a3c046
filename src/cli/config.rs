//! `secops-mcp config check`: validate the configuration and print the effective settings
//! with secrets masked (a configuration that does not load never gets here: exit 78).

use std::process::ExitCode;

use secops_mcp::config::Config;
use secops_mcp::context::AppContext;

pub fn check(config: Config, demo: bool) -> anyhow::Result<ExitCode> {
    for w in config.warnings() {
        eprintln!("warning: {w}");
    }
    // What `serve` builds before it binds or serves, so `config check` refuses exactly what
    // `serve` would (an unreadable CA file, a bad tokens file, an unusable state directory).
    AppContext::new(config.clone(), demo)?;
    secops_mcp::server::http::load_tokens(&config.http)?;
    println!("{}", serde_json::to_string_pretty(&config.masked())?);
    eprintln!("configuration OK");
    Ok(ExitCode::SUCCESS)
}
