//! `secops-mcp approve TOKEN`: a human approves a planned destructive change out of band,
//! in a terminal (exit 0 approved, 1 refused, 64 not a token).

use std::process::ExitCode;

use secops_mcp::config::Config;

use super::usage;

pub fn run(config: Config, token: &str) -> anyhow::Result<ExitCode> {
    if !token.trim().starts_with("sct1_") {
        return Ok(usage(format_args!(
            "`{}` is not a confirmation token; give the `confirmation_token` a plan returned \
             (it starts with sct1_)",
            secops_mcp::util::sanitize_untrusted(token.as_bytes(), 40)
        )));
    }
    let store = secops_mcp::store::Store::open(&config.state_dir)?;
    match secops_mcp::remediation::gate::approve_out_of_band(&store, &config.state_dir, token) {
        Ok(what) => {
            println!("{what}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("secops-mcp: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
