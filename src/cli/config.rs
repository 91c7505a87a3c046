//! `secops-mcp config check`: validate the configuration and print the effective settings
//! with secrets masked (a configuration that does not load never gets here: exit 78).

use std::process::ExitCode;

use secops_mcp::config::Config;

pub fn check(config: Config) -> anyhow::Result<ExitCode> {
    for w in config.warnings() {
        eprintln!("warning: {w}");
    }
    println!("{}", serde_json::to_string_pretty(&config.masked())?);
    eprintln!("configuration OK");
    Ok(ExitCode::SUCCESS)
}
