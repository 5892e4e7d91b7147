//! What the real server answers before routing, over a real socket: request heads over
//! `limits.max_header_bytes` get the same JSON error body as everything else (431
//! `header_too_large`); heads so large that hyper itself refuses them (over twice the limit, at
//! least 16 KiB more, or more than 100 fields) get hyper's own 431 with an empty body; a client
//! that does not finish its head within `limits.header_read_timeout` is disconnected (hyper closes
//! the connection without an answer; there is no hook to write one).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Gateway;

fn exchange(port: u16, head: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    String::from_utf8_lossy(&all).into_owned()
}

fn start(dir: &std::path::Path) -> Gateway {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/a.jar"), b"jar").unwrap();
    let config = format!(
        "[limits]\nmax_header_bytes = \"8 KiB\"\nheader_read_timeout = \"1s\"\n\
         [[mounts]]\nname = \"default\"\nurl = \"file://{}\"\nanonymous_read = true\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("gw.toml"), config).unwrap();
    Gateway::start(&["--config", dir.join("gw.toml").to_str().unwrap()], &[])
}

#[test]
fn oversized_heads_get_a_json_431_and_slow_heads_are_cut() {
    let dir = common::tempdir();
    let gw = start(dir.path());
    let get = |extra: &str| {
        format!(
            "GET /artifacts/default/a.jar HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
        )
    };

    let ok = exchange(gw.port, &get(&format!("X-Pad: {}\r\n", "p".repeat(4000))));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    // 12 KiB: over the 8 KiB limit, under hyper's own: the JSON error body.
    let r = exchange(
        gw.port,
        &get(&format!("X-Pad: {}\r\n", "p".repeat(12 * 1024))),
    );
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    assert!(
        r.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{r}"
    );
    assert!(r.contains("\"code\":\"header_too_large\""), "{r}");
    assert!(r.to_ascii_lowercase().contains("x-request-id:"), "{r}");

    // 40 KiB: over hyper's own limit (24 KiB here): hyper's bare 431.
    let r = exchange(
        gw.port,
        &get(&format!("X-Pad: {}\r\n", "p".repeat(40 * 1024))),
    );
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    assert!(
        !r.contains("header_too_large"),
        "hyper answers this one itself: {r}"
    );

    // A head that never ends: disconnected after header_read_timeout (1 s), no answer.
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /artifacts/default/a.jar HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let waited = started.elapsed();
    assert!(all.is_empty(), "{:?}", String::from_utf8_lossy(&all));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}
