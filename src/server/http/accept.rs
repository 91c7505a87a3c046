//! The accept loop: hyper http1 with header and keep-alive timers, the `max_connections`
//! cap (`503` beyond), the stalled-write wrapper, and graceful shutdown after the drain.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ConnectInfo;
use tokio_util::sync::CancellationToken;

use super::{Guard, HttpServer};

/// After the last call finished, how long responses get to flush before streams close.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

impl HttpServer {
    /// Serve until `shutdown` is cancelled, then stop accepting, let in-flight tool calls
    /// finish (up to [`DRAIN_TIMEOUT`]), close MCP streams and return.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let limits = self.guard.limits.clone();
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(limits.header_timeout_secs))
            .keep_alive(true);
        let write_timeout = Duration::from_secs(limits.write_timeout_secs);
        let trim = spawn_memory_trim(self.guard.clone(), shutdown.clone());
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let (tcp, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Without this each small SSE write waits for the peer's delayed ACK (~40 ms).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                self.ctx.metrics.refused("too_many_connections");
                tokio::spawn(refuse_connection(tcp, limits.max_connections));
                continue;
            };
            let app = self.app.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    let mut app = app.clone();
                    async move {
                        use tower::Service;
                        app.call(req.map(axum::body::Body::new)).await
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(StallTimeout::new(tcp, write_timeout));
            let conn = graceful.watch(http1.serve_connection(io, svc));
            tokio::spawn(async move {
                let _ = conn.await;
                drop(slot);
            });
        }
        drop(self.listener);
        let closed = tokio::spawn(graceful.shutdown());
        tracing::info!("shutting down: draining in-flight tool calls");
        let drain = Duration::from_secs(limits.drain_timeout_secs);
        if !self.ctx.inflight.wait_idle(drain).await {
            tracing::warn!("in-flight tool calls still running after drain timeout");
        }
        self.guard.shutting_down.store(true, Ordering::SeqCst);
        self.guard.cut.cancel();
        // Let the finished calls' responses reach their clients: connections that carry no
        // long-lived stream close by themselves. Then end the remaining MCP streams
        // (legacy sessions keep a GET stream open) so the server can stop.
        let mut closed = closed;
        if tokio::time::timeout(FLUSH_GRACE, &mut closed)
            .await
            .is_err()
        {
            self.mcp_ct.cancel();
            if tokio::time::timeout(Duration::from_secs(5), closed)
                .await
                .is_err()
            {
                tracing::warn!("HTTP connections still open after shutdown; closing");
            }
        }
        trim.abort();
        self.ctx.store.flush();
        Ok(())
    }
}

/// Beyond `max_connections`: a short `503` and close, without reading the request.
async fn refuse_connection(mut tcp: tokio::net::TcpStream, max: usize) {
    use tokio::io::AsyncWriteExt;
    let body = format!(
        "{{\"error\":\"too_many_connections\",\"message\":\"the server holds its maximum of {max} connections (http.max_connections); retry shortly\"}}"
    );
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = tcp.write_all(resp.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// Take the hard open-file limit as the soft one (idempotent; logged once).
pub(super) fn raise_open_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    });
}

/// Return freed memory to the system after sessions close: glibc keeps freed heap in its
/// per-thread arenas, so without this RSS stays at its peak after a burst of sessions.
fn spawn_memory_trim(guard: Arc<Guard>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0usize;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = guard.sessions.sessions.read().await.len();
            if now < last {
                trim_heap();
            }
            last = now;
        }
    })
}

pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory back to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// An IO whose writes (and flushes) fail once they make no progress for `timeout`: a client
/// that stopped reading (an SSE stream, a large response) cannot hold the connection.
struct StallTimeout {
    inner: tokio::net::TcpStream,
    timeout: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl StallTimeout {
    fn new(inner: tokio::net::TcpStream, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn check<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        match polled {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl tokio::io::AsyncRead for StallTimeout {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallTimeout {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
