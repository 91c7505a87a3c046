//! The `secops-mcp` command line: parse it, load the configuration, dispatch to the
//! subcommand's file in `cli/` (`serve`, `monitor`, `alerts`, `check`, `config check`, `approve`, `audit`, `channels`, `sim`).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{
    AlertsCommand, AuditCommand, ChannelsCommand, CheckCommand, Cli, Command, ConfigCommand, exit,
};
use secops_mcp::config::Config;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // --help and --version go to stdout and succeed; every usage error is 64.
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    #[cfg(not(feature = "demo"))]
    if let Some(what) = cli::wants_demo(&cli) {
        return cli::unavailable(what);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("secops-mcp: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    cli::init_logging(&config.log_level, cli.log_format);
    let demo = cli.demo;
    #[cfg(feature = "demo")]
    let config = if demo {
        cli::demo::with_defaults(config)
    } else {
        config
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secops-mcp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cli::serve::run(config, args, demo).await,
            Command::Check(CheckCommand::Cert(args)) => cli::check::cert(config, args, demo).await,
            Command::Check(CheckCommand::Health(args)) => {
                cli::check::health(config, args, demo).await
            }
            Command::Check(CheckCommand::Scan(args)) => cli::check::scan(config, args).await,
            Command::Config(ConfigCommand::Check) => cli::config::check(config, demo),
            #[cfg(feature = "demo")]
            Command::Sim(args) => cli::sim::run(config, args).await,
            // Refused above, before the configuration loads.
            #[cfg(not(feature = "demo"))]
            Command::Sim(_) => Ok(cli::unavailable("sim")),
            Command::Approve { token } => cli::approve::run(config, &token),
            Command::Audit(AuditCommand::Verify) => cli::audit::verify(config),
            Command::Audit(AuditCommand::Tail { n }) => cli::audit::tail(config, n),
            Command::Channels(ChannelsCommand::List) => cli::channels::list(config),
            Command::Channels(ChannelsCommand::Test { name }) => {
                cli::channels::test(config, &name).await
            }
            Command::Monitor(args) => cli::monitor::run(config, args, demo).await,
            Command::Alerts(AlertsCommand::List { since, json }) => {
                cli::alerts::list(config, since, json)
            }
            Command::Alerts(AlertsCommand::Show { id, json }) => {
                cli::alerts::show(config, &id, json)
            }
            Command::Alerts(AlertsCommand::Ack { id, note }) => cli::alerts::ack(config, &id, note),
            Command::Alerts(AlertsCommand::Silence(flags)) => cli::alerts::silence(config, flags),
            Command::Alerts(AlertsCommand::Unsilence { id }) => cli::alerts::unsilence(config, &id),
            Command::Alerts(AlertsCommand::Silences { all, json }) => {
                cli::alerts::silences(config, all, json)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("secops-mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
