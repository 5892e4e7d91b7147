//! Connection threads: one single-threaded runtime per thread, each serving the connections handed
//! to it from accept to close (nginx's worker processes, in threads of one process).
//!
//! The listener accepts on the main runtime and gives each connection to the thread with the fewest
//! open ones. A connection's request handling, TLS, body streaming and the tasks its requests spawn
//! (a cache fill, say) all run on that thread, so a request never wakes another thread's scheduler
//! and no worker steals another's tasks halfway through a response. Blocking work (file reads that
//! miss the page cache, hashing) still goes to the runtime's blocking pool, so one thread is never
//! stalled by a disk.
//!
//! Why not tokio's work-stealing runtime for connections, as before: on 2 cores shared with the
//! client, 4 KiB GETs (wrk -t2 -c32) reached the same requests/s with one worker thread as with two,
//! while nginx gains 12% from its second worker. With these threads the gateway answered 1.19× as
//! many (`benches/bench.py --compare-bin`, 5 interleaved rounds, 2026-12-07), with 1 GiB and
//! 16 × 256 MiB downloads at 1.06× and 1.02×. The price is that a connection stays on its thread:
//! many busy connections landing on one thread while another idles are not rebalanced (the fewest-
//! open choice at accept time keeps that rare for the many short, similar transfers this serves).

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Result};

/// How long a stopping thread waits for its blocking tasks (a read in flight) before it leaves them.
const STOP_WAIT: Duration = Duration::from_secs(1);

pub struct Threads {
    threads: Vec<Thread>,
}

struct Thread {
    handle: Handle,
    /// Connections on this thread right now.
    open: Arc<AtomicUsize>,
    /// Dropped (with the server) to stop the thread's runtime.
    _stop: oneshot::Sender<()>,
}

/// Counts one connection on its thread while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Threads {
    /// Starts `n` threads, each with a runtime waiting for connections.
    pub fn start(n: NonZeroUsize) -> Result<Threads> {
        let mut threads = Vec::with_capacity(n.get());
        for i in 0..n.get() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("ag-conn-{i}"))
                .build()
                .map_err(|e| start_error(&e))?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("ag-conn-{i}"))
                .spawn(move || {
                    // Runs until the server drops its sender, then lets the connections go.
                    let _ = runtime.block_on(stopped);
                    runtime.shutdown_timeout(STOP_WAIT);
                })
                .map_err(|e| start_error(&e))?;
            threads.push(Thread {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(Threads { threads })
    }

    /// The number of threads the server uses when the configuration does not say: one per CPU
    /// this process may run on (its affinity and cgroup quota included).
    pub fn default_count() -> NonZeroUsize {
        std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
    }

    /// Runs the connection `serve` builds on the thread with the fewest open connections. The
    /// socket moves to that thread's runtime (`serve` gets it registered there).
    pub fn spawn<F, Fut>(&self, tcp: tokio::net::TcpStream, serve: F) -> std::io::Result<()>
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let thread = self
            .threads
            .iter()
            .min_by_key(|t| t.open.load(Ordering::Acquire))
            .expect("at least one thread");
        let tcp = tcp.into_std()?;
        thread.open.fetch_add(1, Ordering::AcqRel);
        let open = Open(thread.open.clone());
        thread.handle.spawn(async move {
            let _open = open;
            match tokio::net::TcpStream::from_std(tcp) {
                Ok(tcp) => serve(tcp).await,
                Err(e) => tracing::warn!(error = %e, "cannot hand a connection to its thread"),
            }
        });
        Ok(())
    }
}

fn start_error(e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("cannot start the connection threads: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Connections go to the least busy thread, run on it (not on the accepting runtime), and
    /// leave its count when they end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_spread_over_the_threads_and_run_there() {
        let threads = Threads::start(NonZeroUsize::new(2).unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..4 {
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            threads
                .spawn(tcp, |mut tcp| async move {
                    // Says which thread serves it, then echoes until the client closes.
                    let name = std::thread::current().name().unwrap_or("").to_string();
                    tcp.write_all(format!("{name:<9}").as_bytes()).await.unwrap();
                    let mut buf = [0u8; 1];
                    while tcp.read(&mut buf).await.unwrap_or(0) > 0 {}
                })
                .unwrap();
            clients.push(client);
        }
        let mut names = Vec::new();
        for c in &mut clients {
            let mut name = [0u8; 9];
            c.read_exact(&mut name).await.unwrap();
            names.push(String::from_utf8_lossy(&name).trim().to_string());
        }
        names.sort();
        assert_eq!(names, ["ag-conn-0", "ag-conn-0", "ag-conn-1", "ag-conn-1"]);
        let open = |i: usize| threads.threads[i].open.load(Ordering::Acquire);
        assert_eq!((open(0), open(1)), (2, 2));
        drop(clients);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while open(0) + open(1) > 0 {
            assert!(std::time::Instant::now() < deadline, "connections never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
