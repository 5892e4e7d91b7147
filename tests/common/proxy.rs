//! A TCP proxy in front of a test server that counts the bytes the server sends (what a
//! backend really delivered on the wire, headers included), can slow them down, stall them
//! (a backend that stops answering mid-way, connections open), and can cut every open
//! connection at once (a backend dying mid-transfer, seen from the client).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    down: Arc<AtomicU64>,
    rate: Arc<AtomicU64>,
    refusing: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicU64::new(0));
        let rate = Arc::new(AtomicU64::new(0));
        let refusing = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(0u64);
        let (d, r, c, refuse) = (down.clone(), rate.clone(), cut.clone(), refusing.clone());
        let stall = stalled.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (d, r, mut cut_rx) = (d.clone(), r.clone(), c.subscribe());
                let stall = stall.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    tokio::select! {
                        _ = pipe(client, server, d, r, stall) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            down,
            rate,
            refusing,
            stalled,
            cut,
            accept,
        }
    }

    /// A proxy in front of the server at `endpoint` (`http://127.0.0.1:PORT`).
    pub async fn in_front_of(endpoint: &str) -> Proxy {
        let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
        Proxy::start(hostport.parse().expect("a 127.0.0.1:PORT endpoint")).await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes the server has sent through the proxy so far.
    pub fn down_bytes(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }

    /// Limits each connection's server-to-client bytes per second (0: unlimited).
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Closes every open connection (new ones are still accepted).
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// The backend is down: every open connection is cut and new ones are closed at once,
    /// until [`Proxy::up`].
    pub fn down(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.cut();
    }

    pub fn up(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }

    /// Stops (`true`) or resumes forwarding the server's bytes on every connection; the
    /// connections stay open, so the client sees a backend that stopped answering.
    pub fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    down: Arc<AtomicU64>,
    rate: Arc<AtomicU64>,
    stalled: Arc<AtomicBool>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while stalled.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            down.fetch_add(n as u64, Ordering::SeqCst);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            let r = rate.load(Ordering::SeqCst);
            if r > 0 {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / r as f64)).await;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, downstream);
}
