//! The `secops-mcp` command line: the clap definitions of every subcommand (each flag in one
//! place), the exit-code policy they all follow, logging setup and the signal handler; one
//! file per subcommand runs it.

pub mod alerts;
mod alerts_silence;
pub mod approve;
pub mod audit;
pub mod channels;
pub mod check;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod monitor;
pub mod render;
pub mod serve;
#[cfg(feature = "demo")]
pub mod sim;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secops_mcp::checks::cert::CertReport;
use secops_mcp::checks::scan::ScanReport;
use secops_mcp::checks::wazuh_health::{HealthReport, Verdict};

const EXAMPLES: &str = "\
Examples:
  secops-mcp serve --demo                      stdio MCP server with demo defaults (Claude Desktop)
  secops-mcp serve --http 127.0.0.1:8765       streamable HTTP on loopback
  SECOPS_HTTP_TOKENS_FILE=/etc/secops/tokens secops-mcp serve --http 0.0.0.0:8765
  secops-mcp check cert example.com mail.example.com:25 --starttls smtp
  secops-mcp check cert file:/etc/wazuh-indexer/certs/indexer.pem
  secops-mcp check health --include manager --include agents
  secops-mcp check scan 127.0.0.1 --ports all  TCP ports, services and changes since the last scan
  secops-mcp check health --demo               the health report against the built-in simulator
  secops-mcp sim --port 55000 --indexer-port 9200   run the Wazuh simulator alone
  secops-mcp config check                      validate configuration, print it with secrets masked
  secops-mcp approve sct1_...                  approve a planned destructive change (out of band)
  secops-mcp audit verify                      check the audit log's hash chain (exit 1 if broken)
  secops-mcp audit tail -n 50                  print recent audit entries
  secops-mcp monitor                           run the [[monitors]] and deliver alerts (no MCP)
  secops-mcp monitor --once                    every monitor once: a table, exit 0/1/2/3
  secops-mcp alerts list                       firing, pending and recently resolved alerts
  secops-mcp alerts ack ALR-12 --note 'on it'  acknowledge: repeated notifications stop
  secops-mcp channels test ops-webhook         send one test notification, print the answer

Configuration: a TOML file (--config or SECOPS_CONFIG) plus SECOPS_* environment variables;
see README.md for the full reference.";

#[derive(Parser)]
#[command(name = "secops-mcp", version, about = "MCP server to operate and defend a Wazuh-monitored estate", after_help = EXAMPLES)]
pub struct Cli {
    /// TOML configuration file (default: $SECOPS_CONFIG, else none).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Demo mode, for every subcommand: state in the `demo` subfolder of the state
    /// directory (the same one `serve --demo` uses, whatever SECOPS_STATE_DIR says), and
    /// the built-in Wazuh simulator where a Wazuh is needed and none is configured.
    #[arg(long, global = true)]
    #[cfg_attr(
        not(feature = "demo"),
        arg(help = "Demo mode: not in this binary (built with --no-default-features)")
    )]
    pub demo: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve MCP over stdio (default) or streamable HTTP.
    Serve(ServeArgs),
    /// Run one check from a shell and print a readable report.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the built-in Wazuh simulator (manager API + indexer subset over HTTPS) alone.
    #[cfg(feature = "demo")]
    Sim(wazuh_sim::cli::SimArgs),
    /// The Wazuh simulator: not in this binary (built with --no-default-features).
    #[cfg(not(feature = "demo"))]
    Sim(NoSim),
    /// Approve a planned destructive change out of band (a human, in a terminal).
    Approve {
        /// The confirmation_token the plan returned.
        token: String,
    },
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Notification channels: list them, or send one test notification.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// Run the [[monitors]] and deliver their notifications, without MCP (for systemd or a
    /// container); `--once`: every monitor once, as a table, exit 0/1/2/3 like a
    /// monitoring plugin.
    Monitor(MonitorArgs),
    /// Our alerts (from the monitors): list, show one with its timeline, acknowledge.
    #[command(subcommand)]
    Alerts(AlertsCommand),
}

#[derive(Args)]
pub struct MonitorArgs {
    /// Observe every enabled monitor once, print a table and exit 0 ok, 1 warning,
    /// 2 critical, 3 a monitor could not run; changes no alert and sends nothing.
    #[arg(long)]
    pub once: bool,
    /// With --once: print JSON instead of the table.
    #[arg(long, requires = "once")]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Firing and pending alerts (most severe first), recently resolved ones, the monitors
    /// with their last and next run, and delivery per channel.
    List {
        /// How far back "recently resolved" reaches: 30m, 24h (default), 7d, or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Print JSON (alert_status's overview).
        #[arg(long)]
        json: bool,
    },
    /// One alert with its timeline (pending, firing, notifications, repeats, notes).
    Show {
        /// The alert's id, e.g. ALR-12.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert: its repeated notifications stop (audited as cli:<user>).
    Ack {
        /// The alert's id, e.g. ALR-12.
        id: String,
        /// A note to add with the acknowledgement.
        #[arg(long)]
        note: Option<String>,
    },
    /// Silence the alerts some matchers select (or one alert) for a while, with a comment:
    /// they are still evaluated, their notifications are held (audited as cli:<user>).
    Silence(alerts::SilenceFlags),
    /// End a silence now (SIL-3); the history is kept.
    Unsilence {
        /// The silence's id, e.g. SIL-3.
        id: String,
    },
    /// Silences in force or starting later (--all: also ended ones).
    Silences {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ChannelsCommand {
    /// The configured channels and the levels routed to each (never a URL or secret).
    List,
    /// Send one test notification through a channel and print what the receiver answered
    /// (exit 0 delivered, 1 not).
    Test {
        /// The channel's name, as in [[channels]] (or `log`).
        name: String,
    },
}

/// `sim` in a build without the simulator: takes anything, runs nothing (see [`unavailable`]).
#[cfg(not(feature = "demo"))]
#[derive(Args)]
pub struct NoSim {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain: exit 0 when intact, 1 naming the first broken row.
    Verify,
    /// Print the most recent entries, oldest first.
    Tail {
        /// How many entries.
        #[arg(short = 'n', long, default_value_t = 20)]
        n: usize,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Serve streamable HTTP on this address (e.g. 127.0.0.1:8765) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
}

#[derive(Subcommand)]
pub enum CheckCommand {
    /// Check TLS certificates of endpoints or PEM files.
    Cert(CertCli),
    /// Check the health of the Wazuh platform (same report as the wazuh_health tool).
    Health(HealthCli),
    /// Scan an in-scope host's TCP ports (same report as the scan_host tool).
    Scan(ScanCli),
}

#[derive(Args)]
pub struct ScanCli {
    /// Hostname, IP address, or CIDR of at most 256 addresses (inside SECOPS_SCAN_ALLOW).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// top100, top1000, all, or ports and ranges like 22,80,8000-8100.
    #[arg(long, short = 'p', default_value = "top100")]
    pub ports: String,
    /// Skip banners, service names and TLS details.
    #[arg(long)]
    pub no_services: bool,
    /// Fixed per-connection timeout in milliseconds (default: adaptive).
    #[arg(long, allow_negative_numbers = true)]
    pub timeout_ms: Option<i64>,
    /// Print the JSON report instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct HealthCli {
    /// Components to check (repeatable; default all): manager, cluster, agents, indexer,
    /// logs, certificates, host, containers.
    #[arg(long = "include", value_name = "COMPONENT")]
    pub include: Vec<String>,
    /// Window of the logs component: 30m, 24h (default), 7d, or an RFC 3339 time.
    #[arg(long, value_name = "WINDOW")]
    pub since: Option<String>,
    /// Print the JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CertCli {
    /// host, host:port, https://host[:port]/..., or file:/path/cert.pem (1 to 100).
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Server name to send and verify instead of the target's host.
    #[arg(long)]
    pub sni: Option<String>,
    /// Upgrade a plaintext protocol first: smtp, imap, pop3, ftp, postgres.
    #[arg(long)]
    pub starttls: Option<String>,
    /// Warn when a certificate expires within this many days.
    #[arg(long, allow_negative_numbers = true)]
    pub warning_days: Option<i64>,
    /// Critical when a certificate expires within this many days.
    #[arg(long, allow_negative_numbers = true)]
    pub critical_days: Option<i64>,
    /// Per-target timeout in milliseconds.
    #[arg(long, allow_negative_numbers = true)]
    pub timeout_ms: Option<i64>,
    /// For a CA bundle file, list every certificate (default: counts and the problems).
    #[arg(long)]
    pub details: bool,
    /// Print the JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective settings (secrets masked).
    Check,
}

/// The demo simulator's CA certificate, in the demo state directory: `serve --demo` writes
/// it, `check cert --demo` trusts it.
pub const DEMO_CA_FILE: &str = "demo-simulator-ca.pem";

/// Exit codes, one policy for every subcommand (BSD sysexits where one fits). A check's
/// verdict is a [`CheckExit`]; `audit verify` and `approve` document their own 1 and 2.
pub mod exit {
    /// Bad command-line arguments (EX_USAGE), for every subcommand; never clap's 2, which
    /// monitoring plugins read as "critical".
    pub const USAGE: u8 = 64;
    /// A capability this binary was built without (EX_UNAVAILABLE): `--demo` and `sim`
    /// without the `demo` feature.
    #[cfg_attr(feature = "demo", allow(dead_code))]
    pub const UNAVAILABLE: u8 = 69;
    /// A target outside the configured scope (EX_NOPERM).
    pub const NOPERM: u8 = 77;
    /// The configuration does not load (EX_CONFIG).
    pub const CONFIG: u8 = 78;
}

/// A check's verdict as monitoring plugins read an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckExit {
    /// 0: all ok.
    Ok = 0,
    /// 1: some warning.
    Warning = 1,
    /// 2: some critical or error.
    Critical = 2,
    /// 3: the check could not decide (incomplete, or not configured).
    Unknown = 3,
}

impl CheckExit {
    pub fn of_cert(report: &CertReport) -> Self {
        if report.summary.critical + report.summary.error > 0 {
            Self::Critical
        } else if report.summary.warning > 0 {
            Self::Warning
        } else {
            Self::Ok
        }
    }

    pub fn of_scan(report: &ScanReport) -> Self {
        use secops_mcp::checks::Severity;
        let any = |s: Severity| report.findings.iter().any(|f| f.severity == s);
        if !report.complete {
            Self::Unknown
        } else if any(Severity::Critical) {
            Self::Critical
        } else if any(Severity::Warning) {
            Self::Warning
        } else {
            Self::Ok
        }
    }

    pub fn of_health(report: &HealthReport) -> Self {
        match report.status {
            Verdict::Healthy => Self::Ok,
            Verdict::Degraded => Self::Warning,
            Verdict::Critical | Verdict::Unreachable => Self::Critical,
            Verdict::NotConfigured => Self::Unknown,
        }
    }
}

impl From<CheckExit> for ExitCode {
    fn from(c: CheckExit) -> Self {
        ExitCode::from(c as u8)
    }
}

/// A usage error found after parsing (a bad target, component or window): say it, exit 64.
pub fn usage(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("secops-mcp: {e}");
    ExitCode::from(exit::USAGE)
}

/// `--demo` or `sim` in a build without the `demo` feature: say so and exit 69.
#[cfg(not(feature = "demo"))]
pub fn unavailable(what: &str) -> ExitCode {
    eprintln!(
        "secops-mcp: demo support was not compiled in: this binary was built with \
         --no-default-features; build with default features (cargo build --release) to use {what}"
    );
    ExitCode::from(exit::UNAVAILABLE)
}

/// What of the demo support a command line asks for, if any (`--demo`, `sim`).
#[cfg(not(feature = "demo"))]
pub fn wants_demo(cli: &Cli) -> Option<&'static str> {
    if matches!(cli.command, Command::Sim(_)) {
        Some("sim")
    } else {
        cli.demo.then_some("--demo")
    }
}

pub fn init_logging(level: &str, format: LogFormat) {
    // rmcp logs whole JSON-RPC messages (tool arguments and results) at debug/trace level;
    // keep it at info unless the operator asked for rmcp by name.
    let level = if level.contains("rmcp") {
        level.to_string()
    } else {
        format!("{level},rmcp=info")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // stderr only: stdout is the stdio transport.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
