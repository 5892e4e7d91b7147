//! The listener: TCP (plain or TLS with ALPN h2/http1.1), HTTP/1.1 and HTTP/2 by hyper's auto
//! builder, header-size and header-timeout limits, an idle timeout per connection, and graceful
//! shutdown that lets in-flight transfers finish within a grace period.
//!
//! Owns sockets and TLS only; requests go to `http::handle`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{Limits, TlsConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::http::AppState;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    state: Arc<AppState>,
}

impl Server {
    /// Binds the address (port 0 picks a free one) and loads the TLS files if any.
    pub async fn bind(
        addr: SocketAddr,
        tls: Option<&TlsConfig>,
        limits: Limits,
        state: Arc<AppState>,
    ) -> Result<Server> {
        let tls = tls.map(load_tls).transpose()?;
        // Not a configuration error: the address may just be in use right now.
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::new(ErrorKind::Internal, format!("cannot listen on {addr}: {e}"))
        })?;
        Ok(Server {
            listener,
            tls,
            limits,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives open connections up to
    /// `limits.shutdown_grace` to finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper answers heads over its own limits itself, with an empty body; so its limits sit
        // above `max_header_bytes` (twice it, at least 16 KiB more), and heads between the two
        // get the JSON 431 from `http::handle`. Only heads over hyper's limit, or with more than
        // 100 fields, get hyper's bare 431. (100 is hyper's default: with it, hyper parses into
        // arrays on the stack; any other number costs two heap arrays per request, measured at
        // about 7% of a 4 KiB GET's instructions with 200.)
        let limit = self.limits.max_header_bytes.as_u64() as usize;
        let hard = (limit * 2).max(limit + 16 * 1024).max(8192);
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(hard)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(hard as u32);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    let ctx = ConnCtx {
                        builder: builder.clone(),
                        state: self.state.clone(),
                        tls: self.tls.clone(),
                        watcher: graceful.watcher(),
                    };
                    let activity = Arc::new(Activity::new());
                    let conn = tokio::spawn(ctx.run(tcp, peer, activity.clone()));
                    tokio::spawn(close_when_idle(conn.abort_handle(), activity, self.limits.idle_timeout));
                }
                _ = &mut shutdown => break,
            }
        }
        drop(self.listener);
        let open = graceful.count();
        tracing::info!(open_connections = open, grace = ?self.limits.shutdown_grace, "shutting down: no new connections, letting in-flight requests finish");
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(self.limits.shutdown_grace) => tracing::warn!("grace period over; closing remaining connections"),
        }
        Ok(())
    }
}

struct ConnCtx {
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    watcher: hyper_util::server::graceful::Watcher,
}

/// Closes a connection (by dropping its task) once no byte moved on it for `idle`.
///
/// A task beside the connection's rather than a timer inside it: a timer polled with the
/// connection was polled again on every request (measured: about 2% of a 4 KiB GET's
/// instructions); this one wakes only every quarter of `idle`.
async fn close_when_idle(conn: tokio::task::AbortHandle, activity: Arc<Activity>, idle: Duration) {
    let check = (idle / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(check).await;
        if conn.is_finished() {
            return;
        }
        if activity.idle_for() >= idle {
            tracing::debug!(?idle, "closing idle connection");
            conn.abort();
            return;
        }
    }
}

impl ConnCtx {
    async fn run(self, tcp: tokio::net::TcpStream, peer: SocketAddr, activity: Arc<Activity>) {
        let tcp = Tracked {
            inner: tcp,
            activity: activity.clone(),
        };
        match self.tls.clone() {
            Some(acceptor) => {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => self.serve(stream).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
            None => self.serve(tcp).await,
        }
    }

    async fn serve<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = self.state.clone();
        let service = hyper::service::service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, std::convert::Infallible>(crate::http::handle(state, req).await) }
        });
        let conn = self
            .builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        if let Err(e) = self.watcher.watch(conn).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// When bytes last moved on a connection.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A socket that records activity on every successful read or write.
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

fn load_tls(cfg: &TlsConfig) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| tls_err("tls.cert_file", &cfg.cert_file, &e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(
            "tls.cert_file",
            &cfg.cert_file,
            "no PEM certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| tls_err("tls.key_file", &cfg.key_file, &e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("tls: the certificate and key do not fit together: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn tls_err(key: &str, path: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("{key} {}: {why}", path.display()),
    )
}
