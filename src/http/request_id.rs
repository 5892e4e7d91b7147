//! Request ids: 32 lowercase hex digits, unique per process and unlikely to repeat across
//! processes: a random 64-bit prefix drawn once at start-up, then a counter.
//!
//! Why not a UUIDv4 per request: each one asked the kernel for random bytes (a `getrandom`
//! system call) and formatted a `String`; a request id only has to be unique, not secret, and
//! this is on the path of every request.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::HeaderValue;

static PREFIX: OnceLock<u64> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// One request's id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    prefix: u64,
    n: u64,
}

/// The next id.
pub fn next() -> RequestId {
    let prefix = *PREFIX.get_or_init(rand::random::<u64>);
    RequestId {
        prefix,
        n: COUNTER.fetch_add(1, Ordering::Relaxed),
    }
}

impl RequestId {
    fn hex(&self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, word) in [self.prefix, self.n].into_iter().enumerate() {
            for j in 0..16 {
                out[i * 16 + j] = DIGITS[((word >> (60 - 4 * j)) & 0xf) as usize];
            }
        }
        out
    }

    /// The `X-Request-Id` header value.
    pub fn header(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.hex()).expect("hex digits are a valid header value")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let a = next();
        let b = next();
        assert_ne!(a, b);
        let s = a.to_string();
        assert_eq!(s.len(), 32);
        assert!(s
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(a.header().to_str().unwrap(), s);
        assert_eq!(&s[..16], &b.to_string()[..16], "one prefix per process");
    }
}
