//! Prometheus metrics, exposed at `/metrics` in the OpenMetrics text format.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Borrowed for the standard methods: counting a request allocates nothing.
    pub method: Cow<'static, str>,
    pub status: u16,
}

impl RequestLabels {
    pub fn new(method: &http::Method, status: u16) -> RequestLabels {
        use http::Method;
        let known: Option<&'static str> = match *method {
            Method::GET => Some("GET"),
            Method::HEAD => Some("HEAD"),
            Method::PUT => Some("PUT"),
            Method::POST => Some("POST"),
            Method::DELETE => Some("DELETE"),
            Method::OPTIONS => Some("OPTIONS"),
            _ => None,
        };
        RequestLabels {
            method: known.map_or_else(|| Cow::Owned(method.to_string()), Cow::Borrowed),
            status,
        }
    }
}

/// The gateway's counters.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub bytes_sent: Counter<u64, AtomicU64>,
    pub aborted_responses: Counter<u64, AtomicU64>,
    pub in_flight: Gauge,
    /// The counters of the most common requests, found once (a lookup in `requests` hashes
    /// the labels and takes a lock on every request).
    hot: [OnceLock<Counter>; HOT.len()],
}

/// Method and status of the requests whose counters are kept at hand.
const HOT: [(&str, u16); 4] = [("GET", 200), ("GET", 206), ("GET", 304), ("HEAD", 200)];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("artifact_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes_sent = Counter::<u64, AtomicU64>::default();
        let aborted_responses = Counter::<u64, AtomicU64>::default();
        let in_flight = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by method and status",
            requests.clone(),
        );
        registry.register(
            "http_response_body_bytes",
            "Response body bytes sent",
            bytes_sent.clone(),
        );
        registry.register(
            "http_aborted_responses",
            "Responses whose body failed midway (connection reset)",
            aborted_responses.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            bytes_sent,
            aborted_responses,
            in_flight,
            hot: Default::default(),
        }
    }
}

impl Metrics {
    /// The HTTP counters plus the storage layer's (backend bytes, cache).
    pub fn with_storage(storage: &crate::storage::metrics::StorageMetrics) -> Metrics {
        let mut m = Metrics::default();
        storage.register(&mut m.registry);
        m
    }

    /// Counts one answered request.
    pub fn count_request(&self, method: &http::Method, status: u16) {
        let hot = HOT
            .iter()
            .position(|(m, s)| *s == status && *m == method.as_str());
        match hot {
            Some(i) => self.hot[i]
                .get_or_init(|| {
                    self.requests
                        .get_or_create(&RequestLabels::new(method, status))
                        .clone()
                })
                .inc(),
            None => self
                .requests
                .get_or_create(&RequestLabels::new(method, status))
                .inc(),
        };
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}
