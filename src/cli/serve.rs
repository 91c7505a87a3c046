//! `secops-mcp serve`: MCP over stdio (default) or streamable HTTP, with the periodic
//! incident ingest and the configured monitors (under `--demo`, demo monitors) beside it, until a signal drains and stops it.

use std::process::ExitCode;
use std::sync::Arc;

use rmcp::ServiceExt;
use secops_mcp::config::Config;
use secops_mcp::context::AppContext;
use secops_mcp::server::http::HttpServer;
use secops_mcp::server::{Caller, SecopsServer};
use tokio_util::sync::CancellationToken;

use super::ServeArgs;

pub async fn run(config: Config, args: ServeArgs, demo: bool) -> anyhow::Result<ExitCode> {
    // Keeps the demo simulator alive as long as the server runs.
    #[cfg(feature = "demo")]
    let (config, demo_sim) = {
        let (mut config, sim) = super::demo::simulator_for(config, demo).await?;
        if demo {
            // The own /healthz is watched when the port is known before binding.
            let healthz = args.http.filter(|a| a.port() != 0).map(|mut a| {
                if a.ip().is_unspecified() {
                    a.set_ip(match a {
                        std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{a}/healthz")
            });
            super::demo::add_monitors(&mut config, sim.as_ref(), healthz.as_deref(), true)?;
        }
        (config, sim.map(std::sync::Arc::new))
    };
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let ctx = AppContext::new(config, demo)?;
    // Finish or undo any credential rotation a crash interrupted before serving.
    secops_mcp::remediation::credentials::ensure_reconciled(&ctx).await;
    let shutdown = CancellationToken::new();
    secops_mcp::shutdown::on_signal_cancel(shutdown.clone());
    let ingest = spawn_incident_ingest(ctx.clone(), shutdown.child_token());
    let monitoring = spawn_monitors(&ctx)?;
    #[cfg(feature = "demo")]
    let attacks = demo_sim
        .clone()
        .map(|s| super::demo::spawn_attacks(s, shutdown.child_token()));
    let result = serve_transport(ctx, args, shutdown).await;
    if let Some((stop, task)) = ingest {
        stop.cancel();
        let _ = task.await;
    }
    if let Some((stop, task)) = monitoring {
        stop.cancel();
        let _ = task.await;
    }
    #[cfg(feature = "demo")]
    if let Some(a) = attacks {
        a.abort();
    }
    result
}

/// The configured monitors and their delivery beside the transport, when any is enabled.
fn spawn_monitors(
    ctx: &Arc<AppContext>,
) -> anyhow::Result<Option<(CancellationToken, tokio::task::JoinHandle<()>)>> {
    let Some(engine) =
        secops_mcp::monitor::start::engine(ctx, Arc::new(secops_mcp::clock::SystemClock))?
    else {
        return Ok(None);
    };
    let enabled = ctx.config.monitors.iter().filter(|m| m.enabled).count();
    tracing::info!(
        monitors = enabled,
        "running the configured monitors beside MCP"
    );
    let stop = CancellationToken::new();
    let token = stop.clone();
    Ok(Some((token, tokio::spawn(engine.run(stop)))))
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
