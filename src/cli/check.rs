//! `secops-mcp check cert|scan|health`: one check from a shell, the same report the tool
//! returns, printed as text (or `--json`), with a monitoring-plugin exit code.

use std::process::ExitCode;

use secops_mcp::checks::cert::CertArgs;
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use tokio_util::sync::CancellationToken;

use super::{CertCli, CheckExit, DEMO_CA_FILE, HealthCli, ScanCli, exit, render, usage};

pub async fn cert(config: Config, args: CertCli, demo: bool) -> anyhow::Result<ExitCode> {
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
        Err(e) => return Ok(usage(e)),
    };
    print_report(&report, args.json, render::cert_report)?;
    Ok(CheckExit::of_cert(&report).into())
}

pub async fn scan(config: Config, args: ScanCli) -> anyhow::Result<ExitCode> {
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
    let bar = render::scan_progress();
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
        Err(ScanError::InvalidArgument(e)) => return Ok(usage(e)),
        Err(ScanError::Refused(r)) => {
            eprintln!("secops-mcp: {r}");
            return Ok(ExitCode::from(exit::NOPERM));
        }
    };
    print_report(&report, args.json, render::scan_report)?;
    Ok(CheckExit::of_scan(&report).into())
}

pub async fn health(config: Config, args: HealthCli, demo: bool) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "demo")]
    let (config, _demo_sim) = super::demo::simulator_for(config, demo).await?;
    let ctx = AppContext::new(config, demo)?;
    let hargs = secops_mcp::checks::wazuh_health::HealthArgs {
        include: (!args.include.is_empty()).then_some(args.include),
        since: args.since,
    };
    let report = match secops_mcp::checks::wazuh_health::run(&ctx.health_deps(), &hargs).await {
        Ok(r) => r,
        Err(e) => return Ok(usage(e)),
    };
    print_report(&report, args.json, render::health_report)?;
    Ok(CheckExit::of_health(&report).into())
}

/// A check's report on stdout: pretty JSON with `--json`, else its text rendering.
fn print_report<R: serde::Serialize>(
    report: &R,
    json: bool,
    text: fn(&R) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", text(report));
    }
    Ok(())
}
