//! The `secops-mcp` command line: `serve` (MCP over stdio or streamable HTTP), `check`
//! (run one check from a shell with human-readable output), `config check`, `approve`
//! (out-of-band approval of a planned change) and `audit verify|tail`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use secops_mcp::checks::cert::{CertArgs, CertReport, CertStatus};
use secops_mcp::config::{Config, IndexerConfig, Login, Secret, SecretSource, WazuhConfig};
use secops_mcp::context::AppContext;
use secops_mcp::server::http::HttpServer;
use secops_mcp::server::{Caller, SecopsServer};
use secops_mcp::sim::{SimConfig, Simulator};

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

Configuration: a TOML file (--config or SECOPS_CONFIG) plus SECOPS_* environment variables;
see README.md for the full reference.";

#[derive(Parser)]
#[command(name = "secops-mcp", version, about = "MCP server to operate and defend a Wazuh-monitored estate", after_help = EXAMPLES)]
struct Cli {
    /// TOML configuration file (default: $SECOPS_CONFIG, else none).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Demo mode, for every subcommand: state in the `demo` subfolder of the state
    /// directory (the same one `serve --demo` uses, whatever SECOPS_STATE_DIR says), and
    /// the built-in Wazuh simulator where a Wazuh is needed and none is configured.
    #[arg(long, global = true)]
    demo: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (default) or streamable HTTP.
    Serve(ServeArgs),
    /// Run one check from a shell and print a readable report.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the built-in Wazuh simulator (manager API + indexer subset over HTTPS) alone.
    Sim(SimArgs),
    /// Approve a planned destructive change out of band (a human, in a terminal).
    Approve {
        /// The confirmation_token the plan returned.
        token: String,
    },
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
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
struct SimArgs {
    /// Manager API port (0 = any free port).
    #[arg(long, default_value_t = 55000)]
    port: u16,
    /// Indexer port (0 = any free port).
    #[arg(long, default_value_t = 9200)]
    indexer_port: u16,
    /// Seed for the simulated agents, logs and alerts.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write the simulator's CA certificate (PEM) for clients to trust (default:
    /// `sim-ca.pem` in the state directory).
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,
    /// Inject a scenario every SECS seconds (0 = never), cycling: SSH brute-force burst,
    /// level-15 exploit, file-integrity trickle, below-threshold noise.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    attack_every: u64,
}

#[derive(Args)]
struct ServeArgs {
    /// Serve streamable HTTP on this address (e.g. 127.0.0.1:8765) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Check TLS certificates of endpoints or PEM files.
    Cert(CertCli),
    /// Check the health of the Wazuh platform (same report as the wazuh_health tool).
    Health(HealthCli),
    /// Scan an in-scope host's TCP ports (same report as the scan_host tool).
    Scan(ScanCli),
}

#[derive(Args)]
struct ScanCli {
    /// Hostname, IP address, or CIDR of at most 256 addresses (inside SECOPS_SCAN_ALLOW).
    #[arg(value_name = "TARGET")]
    target: String,
    /// top100, top1000, all, or ports and ranges like 22,80,8000-8100.
    #[arg(long, short = 'p', default_value = "top100")]
    ports: String,
    /// Skip banners, service names and TLS details.
    #[arg(long)]
    no_services: bool,
    /// Fixed per-connection timeout in milliseconds (default: adaptive).
    #[arg(long, allow_negative_numbers = true)]
    timeout_ms: Option<i64>,
    /// Print the JSON report instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct HealthCli {
    /// Components to check (repeatable; default all): manager, cluster, agents, indexer,
    /// logs, certificates, host, containers.
    #[arg(long = "include", value_name = "COMPONENT")]
    include: Vec<String>,
    /// Window of the logs component: 30m, 24h (default), 7d, or an RFC 3339 time.
    #[arg(long, value_name = "WINDOW")]
    since: Option<String>,
    /// Print the JSON report instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CertCli {
    /// host, host:port, https://host[:port]/..., or file:/path/cert.pem (1 to 100).
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// Server name to send and verify instead of the target's host.
    #[arg(long)]
    sni: Option<String>,
    /// Upgrade a plaintext protocol first: smtp, imap, pop3, ftp, postgres.
    #[arg(long)]
    starttls: Option<String>,
    /// Warn when a certificate expires within this many days.
    #[arg(long, allow_negative_numbers = true)]
    warning_days: Option<i64>,
    /// Critical when a certificate expires within this many days.
    #[arg(long, allow_negative_numbers = true)]
    critical_days: Option<i64>,
    /// Per-target timeout in milliseconds.
    #[arg(long, allow_negative_numbers = true)]
    timeout_ms: Option<i64>,
    /// For a CA bundle file, list every certificate (default: counts and the problems).
    #[arg(long)]
    details: bool,
    /// Print the JSON report instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings (secrets masked).
    Check,
}

/// The demo simulator's CA certificate, in the demo state directory.
const DEMO_CA_FILE: &str = "demo-simulator-ca.pem";

/// Bad command-line arguments (BSD EX_USAGE), for every subcommand.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // --help and --version go to stdout and succeed; every usage error is 64 (not
            // clap's 2, which monitoring plugins read as "critical").
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("secops-mcp: {e}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    init_logging(&config.log_level, cli.log_format);
    let demo = cli.demo;
    if demo {
        apply_demo_defaults(&mut config);
    }
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
            Command::Serve(args) => serve(config, args, demo).await,
            Command::Check(CheckCommand::Cert(args)) => check_cert(config, args, demo).await,
            Command::Check(CheckCommand::Health(args)) => check_health(config, args, demo).await,
            Command::Check(CheckCommand::Scan(args)) => check_scan(config, args).await,
            Command::Config(ConfigCommand::Check) => config_check(config, demo),
            Command::Sim(args) => run_sim(config, args).await,
            Command::Approve { token } => approve(config, &token),
            Command::Audit(AuditCommand::Verify) => audit_verify(config),
            Command::Audit(AuditCommand::Tail { n }) => audit_tail(config, n),
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

fn init_logging(level: &str, format: LogFormat) {
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

async fn serve(mut config: Config, args: ServeArgs, demo: bool) -> anyhow::Result<ExitCode> {
    // Keeps the demo simulator alive as long as the server runs.
    let mut _demo_sim = None;
    if demo {
        _demo_sim = start_demo_simulator(&mut config).await?;
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let ctx = AppContext::new(config, demo)?;
    // Finish or undo any credential rotation a crash interrupted before serving.
    secops_mcp::remediation::credentials::ensure_reconciled(&ctx).await;
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let ingest = spawn_incident_ingest(ctx.clone(), shutdown.child_token());
    let result = serve_transport(ctx, args, shutdown).await;
    if let Some((stop, task)) = ingest {
        stop.cancel();
        let _ = task.await;
    }
    result
}

/// Ingest alerts into incidents every `incidents.ingest_interval_secs` until `stop`.
fn spawn_incident_ingest(
    ctx: Arc<AppContext>,
    stop: CancellationToken,
) -> Option<(CancellationToken, tokio::task::JoinHandle<()>)> {
    let secs = ctx.config.incidents.ingest_interval_secs;
    if secs == 0 || ctx.indexer.is_none() {
        return None;
    }
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let bootstrap = time::OffsetDateTime::now_utc() - time::Duration::hours(24);
            let st = tokio::select! {
                _ = stop.cancelled() => break,
                st = ctx.ingest_incidents(bootstrap) => st,
            };
            if st.status == "ok" {
                tracing::debug!(
                    new_alerts = st.new_alerts,
                    new_incidents = st.new_incidents,
                    "incident ingest"
                );
            } else {
                tracing::warn!(status = %st.status, error = st.error.as_deref().unwrap_or(""), "incident ingest");
            }
        }
    });
    Some((token, task))
}

async fn serve_transport(
    ctx: Arc<AppContext>,
    args: ServeArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    match args.http {
        Some(addr) => {
            let server = HttpServer::bind(ctx, addr).await?;
            let local = server.local_addr()?;
            tracing::info!(%local, "serving MCP over streamable HTTP at http://{local}/mcp");
            // Tests and scripts read this line to find the port when binding port 0.
            eprintln!("secops-mcp listening on http://{local}/mcp");
            server.run(shutdown).await?;
        }
        None => serve_stdio(ctx, shutdown).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve_stdio(ctx: Arc<AppContext>, shutdown: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(state_dir = %ctx.config.state_dir.display(), "serving MCP over stdio");
    // Every line gets an answer, even one rmcp cannot parse.
    let stdio = secops_mcp::server::stdio::filtered();
    let writer = stdio.writer;
    let service = SecopsServer::new(ctx.clone(), Caller("stdio".into()))
        .serve((stdio.read, stdio.write))
        .await?;
    let ct = service.cancellation_token();
    let drain_ctx = ctx.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        drain_ctx
            .inflight
            .wait_idle(secops_mcp::server::http::DRAIN_TIMEOUT)
            .await;
        ct.cancel();
    });
    service.waiting().await?;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    ctx.store.flush();
    Ok(())
}

fn apply_demo_defaults(config: &mut Config) {
    // Demo state always lives apart from real state: the `demo` subfolder of the state
    // directory (SECOPS_STATE_DIR, the config file's, or the default), for every subcommand.
    config.state_dir = config.state_dir.join("demo");
    let remediation = if config.remediation_enabled {
        "remediation enabled (SECOPS_REMEDIATION): destructive tools are listed"
    } else {
        "remediation disabled"
    };
    tracing::info!(
        state_dir = %config.state_dir.display(),
        "demo mode: state in the demo subfolder of the state directory; {remediation}"
    );
}

/// `serve --demo` without a configured Wazuh: start the simulator in-process and point the
/// server at it (its CA written into the demo state directory).
async fn start_demo_simulator(config: &mut Config) -> anyhow::Result<Option<Simulator>> {
    if config.wazuh.is_some() {
        tracing::info!("demo mode: Wazuh is configured, the simulator is not started");
        return Ok(None);
    }
    let sim = Simulator::start(SimConfig::default()).await?;
    secops_mcp::store::ensure_state_dir(&config.state_dir)?;
    let ca = config.state_dir.join(DEMO_CA_FILE);
    sim.write_ca(&ca)?;
    let sc = sim.config();
    config.wazuh = Some(WazuhConfig {
        url: sim.manager_url(),
        login: Login {
            user: sc.api_user.clone(),
            password: Some(Secret::new(sc.api_password.clone())),
            password_source: Some(SecretSource::Demo),
        },
        ca_file: Some(ca.clone()),
        requests_per_minute: 240,
    });
    if config.indexer.is_none() {
        config.indexer = Some(IndexerConfig {
            url: sim.indexer_url(),
            login: Login {
                user: sc.indexer_user.clone(),
                password: Some(Secret::new(sc.indexer_password.clone())),
                password_source: Some(SecretSource::Demo),
            },
            ca_file: Some(ca),
        });
    }
    tracing::info!(
        manager = %sim.manager_url(),
        indexer = %sim.indexer_url(),
        "demo mode: built-in Wazuh simulator started"
    );
    Ok(Some(sim))
}

async fn run_sim(config: Config, args: SimArgs) -> anyhow::Result<ExitCode> {
    let sim = Simulator::start(SimConfig {
        manager_port: args.port,
        indexer_port: args.indexer_port,
        seed: args.seed,
        ..SimConfig::default()
    })
    .await?;
    let ca_out = match args.ca_out {
        Some(p) => p,
        None => {
            secops_mcp::store::ensure_state_dir(&config.state_dir)?;
            config.state_dir.join("sim-ca.pem")
        }
    };
    sim.write_ca(&ca_out)
        .map_err(|e| anyhow::anyhow!("cannot write the CA to {}: {e}", ca_out.display()))?;
    let sc = sim.config();
    let ca = ca_out.display();
    println!("Wazuh simulator running (Ctrl-C to stop); its CA certificate is in {ca}.");
    println!("Point secops-mcp (or any client) at it:");
    println!("  SECOPS_WAZUH_URL={}", sim.manager_url());
    println!("  SECOPS_WAZUH_USER={}", sc.api_user);
    println!(
        "  SECOPS_WAZUH_PASSWORD={}   (the simulator's fixed demo password)",
        sc.api_password
    );
    println!("  SECOPS_WAZUH_CA_FILE={ca}");
    println!("  SECOPS_INDEXER_URL={}", sim.indexer_url());
    println!("  SECOPS_INDEXER_USER={}", sc.indexer_user);
    println!("  SECOPS_INDEXER_PASSWORD={}   (demo)", sc.indexer_password);
    println!("  SECOPS_INDEXER_CA_FILE={ca}");
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    if args.attack_every > 0 {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(args.attack_every));
        tick.tick().await;
        for n in 0.. {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (name, count) = sim.inject_scenario(n);
            println!("injected scenario {name}: {count} alert(s)");
        }
    }
    shutdown.cancelled().await;
    sim.stop().await;
    Ok(ExitCode::SUCCESS)
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    shutdown.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("signal received; shutting down");
        shutdown.cancel();
    });
}

async fn check_cert(config: Config, args: CertCli, demo: bool) -> anyhow::Result<ExitCode> {
    let mut cas: Vec<&std::path::Path> = config.extra_ca_file.iter().map(|p| p.as_path()).collect();
    // `--demo`: trust the CA of the simulator a running `serve --demo` wrote, like that
    // server's own check_cert does.
    let demo_ca = config.state_dir.join(DEMO_CA_FILE);
    if demo && demo_ca.is_file() {
        cas.push(&demo_ca);
    }
    // An operator on the host: any regular file (read bounded and without blocking, like
    // the tool), but hosts as check_cert.allow says and no metadata endpoint unless listed.
    let policy = secops_mcp::checks::cert::CertPolicy::operator(&config.cert.allow);
    let checker = secops_mcp::checks::cert::CertChecker::with_ca_files(&cas)?.with_policy(policy);
    let cert_args = CertArgs {
        targets: args.targets,
        sni: args.sni,
        // A person at a terminal may type `SMTP`; tool arguments are exact.
        starttls: args.starttls.map(|p| p.trim().to_ascii_lowercase()),
        warning_days: Some(args.warning_days.unwrap_or(config.cert.warning_days)),
        critical_days: Some(args.critical_days.unwrap_or(config.cert.critical_days)),
        timeout_ms: Some(args.timeout_ms.unwrap_or(config.cert.timeout_ms as i64)),
        details: Some(args.details),
    };
    let report = match checker.check(cert_args).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("secops-mcp: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_cert_report(&report));
    }
    Ok(exit_for(&report))
}

async fn check_scan(config: Config, args: ScanCli) -> anyhow::Result<ExitCode> {
    use secops_mcp::checks::scan::{self, ScanArgs, ScanDeps, ScanError};
    let store = secops_mcp::store::Store::open(&config.state_dir)?;
    let cert = secops_mcp::checks::cert::CertChecker::new(config.extra_ca_file.as_deref())?;
    let deps = ScanDeps {
        scope: &config.scan_allow,
        store: Some(&store),
        cert: &cert,
        budget: scan::connection_budget(),
    };
    let scan_args = ScanArgs {
        target: args.target,
        ports: Some(args.ports.into()),
        detect_services: Some(!args.no_services),
        timeout_ms: args.timeout_ms,
    };
    // Ctrl-C stops the scan and still prints what was found.
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} probes ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = {
        let bar = bar.clone();
        move |done: usize, total: usize| {
            if bar.length() != Some(total as u64) {
                bar.set_length(total as u64);
            }
            bar.set_position(done as u64);
        }
    };
    let result = scan::run(&deps, &scan_args, &cancel, &progress).await;
    bar.finish_and_clear();
    store.flush();
    let report = match result {
        Ok(r) => r,
        Err(ScanError::InvalidArgument(e)) => {
            eprintln!("secops-mcp: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(ScanError::Refused(r)) => {
            eprintln!("secops-mcp: {r}");
            return Ok(ExitCode::from(77)); // EX_NOPERM
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_scan_report(&report));
    }
    Ok(if !report.complete {
        ExitCode::from(3)
    } else if report
        .findings
        .iter()
        .any(|f| f.severity == secops_mcp::checks::Severity::Critical)
    {
        ExitCode::from(2)
    } else if report
        .findings
        .iter()
        .any(|f| f.severity == secops_mcp::checks::Severity::Warning)
    {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn render_scan_report(report: &secops_mcp::checks::scan::ScanReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} -> {} ({} ports each, {} ms, timeout {} ms)",
        report.target,
        report.addresses.join(", "),
        report.ports_scanned,
        report.duration_ms,
        report.timeout_ms
    );
    for h in &report.hosts {
        let _ = writeln!(
            out,
            "\n{}: {} open, {} closed, {} filtered, {} inconclusive",
            h.address,
            h.open.len(),
            h.closed_count,
            h.filtered_count,
            h.inconclusive_count
        );
        if !h.open.is_empty() {
            let _ = writeln!(out, "  {:<7} {:<20} DETAIL", "PORT", "SERVICE");
        }
        for p in &h.open {
            let mut detail = p.banner.clone().unwrap_or_default();
            if let Some(t) = &p.tls {
                if !detail.is_empty() {
                    detail.push_str("; ");
                }
                let _ = write!(detail, "TLS {} ({} days left)", t.subject, t.days_left);
            }
            let _ = writeln!(out, "  {:<7} {:<20} {}", p.port, p.service, detail);
            if let Some(r) = &p.risk {
                let _ = writeln!(out, "  {:<7} {:<20} risk: {r}", "", "");
            }
        }
        if h.filtered_count > 0 && h.filtered.len() <= 200 {
            let _ = writeln!(out, "  filtered: {}", h.filtered);
        }
    }
    if let Some(c) = &report.changes_since_last {
        let fmt = |v: &[secops_mcp::checks::scan::PortRef]| {
            v.iter()
                .map(|p| format!("{}:{}", p.address, p.port))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "\nSince {}:", c.previous_scan_at);
        let _ = writeln!(
            out,
            "  opened: {}",
            if c.opened.is_empty() {
                "-".into()
            } else {
                fmt(&c.opened)
            }
        );
        let _ = writeln!(
            out,
            "  closed: {}",
            if c.closed.is_empty() {
                "-".into()
            } else {
                fmt(&c.closed)
            }
        );
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out);
    }
    for f in &report.findings {
        let sev = format!("{:?}", f.severity).to_uppercase();
        let _ = writeln!(out, "{sev:<8} {} {}", f.code, f.message);
    }
    if !report.complete {
        let _ = writeln!(out, "\nINCOMPLETE: some ports could not be decided.");
    }
    out
}

/// 0 all ok, 1 some warning, 2 some critical or error (like monitoring plugins).
fn exit_for(report: &CertReport) -> ExitCode {
    if report.summary.critical + report.summary.error > 0 {
        ExitCode::from(2)
    } else if report.summary.warning > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn render_cert_report(report: &CertReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for r in &report.results {
        let status = match r.status {
            CertStatus::Ok => "OK",
            CertStatus::Warning => "WARNING",
            CertStatus::Critical => "CRITICAL",
            CertStatus::Error => "ERROR",
        };
        let _ = write!(out, "{status:<8} {}", r.target);
        if let Some(d) = r.days_left {
            let _ = write!(out, "  {d} days left");
        }
        if let Some(na) = &r.not_after {
            let _ = write!(out, " (until {na})");
        }
        if let Some(v) = &r.tls_version {
            let _ = write!(out, "  {v}");
        }
        if let Some(c) = &r.cipher {
            let _ = write!(out, " {c}");
        }
        out.push('\n');
        if let Some(e) = &r.verification_error {
            let _ = writeln!(out, "         verification: {e}");
        }
        if let Some(b) = &r.bundle {
            let _ = writeln!(
                out,
                "         bundle of {} CA certificates: {} expired, {} expiring within the warning \
                 window, {} not yet valid; {} with a problem{}",
                b.certificates,
                b.expired,
                b.expiring,
                b.not_yet_valid,
                b.with_problems,
                if b.listed_all || b.with_problems == 0 {
                    ""
                } else {
                    " (listed below; --details lists them all)"
                }
            );
        }
        for c in &r.chain {
            let _ = writeln!(
                out,
                "         #{} {}  issuer: {}  {}  {}  expires {} ({} days)",
                c.position,
                c.subject,
                c.issuer,
                c.key,
                c.signature_algorithm,
                c.not_after,
                c.days_left
            );
            if c.position == 1 && r.bundle.is_none() && !c.sans.is_empty() {
                let _ = writeln!(out, "             SANs: {}", c.sans.join(", "));
            }
        }
        for f in &r.findings {
            let sev = format!("{:?}", f.severity).to_lowercase();
            let _ = writeln!(out, "         - {sev} {}: {}", f.code, f.message);
        }
    }
    let _ = writeln!(out, "{}", report.summary_text());
    out
}

async fn check_health(mut config: Config, args: HealthCli, demo: bool) -> anyhow::Result<ExitCode> {
    let mut _demo_sim = None;
    if demo {
        _demo_sim = start_demo_simulator(&mut config).await?;
    }
    let ctx = AppContext::new(config, demo)?;
    let hargs = secops_mcp::checks::wazuh_health::HealthArgs {
        include: (!args.include.is_empty()).then_some(args.include),
        since: args.since,
    };
    let report = match secops_mcp::checks::wazuh_health::run(&ctx.health_deps(), &hargs).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("secops-mcp: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.summary_text());
        for f in &report.findings {
            let sev = format!("{:?}", f.severity).to_lowercase();
            println!("  - {sev:<8} {}: {}", f.code, f.message);
            if let Some(r) = &f.remediation {
                println!("             {r}");
            }
        }
    }
    use secops_mcp::checks::wazuh_health::Verdict;
    Ok(match report.status {
        Verdict::Healthy => ExitCode::SUCCESS,
        Verdict::Degraded => ExitCode::from(1),
        Verdict::Critical | Verdict::Unreachable => ExitCode::from(2),
        Verdict::NotConfigured => ExitCode::from(3),
    })
}

fn approve(config: Config, token: &str) -> anyhow::Result<ExitCode> {
    if !token.trim().starts_with("sct1_") {
        eprintln!(
            "secops-mcp: `{}` is not a confirmation token; give the `confirmation_token` a plan \
             returned (it starts with sct1_)",
            secops_mcp::util::sanitize_untrusted(token.as_bytes(), 40)
        );
        return Ok(ExitCode::from(EXIT_USAGE));
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

fn audit_verify(config: Config) -> anyhow::Result<ExitCode> {
    // Exit 1 means "broken chain" only; being unable to check is 2.
    let report =
        match secops_mcp::store::Store::open(&config.state_dir).and_then(|s| s.audit_verify()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("secops-mcp: cannot verify the audit log: {e}");
                return Ok(ExitCode::from(2));
            }
        };
    match &report.first_broken {
        None => {
            println!(
                "audit chain OK: {} verified",
                secops_mcp::util::count(report.rows as u64, "row", "rows")
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            println!("audit chain BROKEN at row {}: {}", b.id, b.reason);
            Ok(ExitCode::from(1))
        }
    }
}

fn audit_tail(config: Config, n: usize) -> anyhow::Result<ExitCode> {
    let store = secops_mcp::store::Store::open(&config.state_dir)?;
    // Rows can quote caller-supplied text: keep the terminal safe.
    let clean = |s: &str| secops_mcp::util::sanitize_untrusted(s.as_bytes(), 500);
    for r in store.audit_recent(n)?.iter().rev() {
        println!(
            "{:>6} {} {:<10} {:<20} {:<9} {:<12} {}{}",
            r.id,
            r.ts,
            clean(&r.caller),
            r.tool,
            r.action,
            r.outcome,
            clean(r.detail.as_deref().unwrap_or("")),
            r.incident_id
                .as_deref()
                .map(|i| format!(" [incident {}]", clean(i)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn config_check(config: Config, demo: bool) -> anyhow::Result<ExitCode> {
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
