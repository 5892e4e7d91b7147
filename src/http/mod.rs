//! The HTTP API: routes → handlers → outcome → response.
//!
//! Owns: everything HTTP (parsing requests, conditional/range semantics, rendering, the error →
//! status mapping, request ids, access logs, metrics). Talks to storage only through
//! `service::Gateway`. `server.rs` owns sockets and TLS; this module works on any
//! `http::Request`, so most tests drive it in-process.

pub mod body;
pub mod conditional;
pub mod error;
pub mod handlers;
pub mod listing;
pub mod metrics;
/// The OpenAPI 3.1 description of the HTTP API, served at `/openapi.json` (`openapi.json`
/// beside this file; `tests/api_contract.rs` tests the running server against it).
pub const OPENAPI: &str = include_str!("openapi.json");
pub mod render;
pub mod request_id;
pub mod routes;
pub mod ui;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response};
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use self::body::Body;
use self::metrics::Metrics;
use self::render::Outcome;
use self::routes::Endpoint;
use crate::error::{Error, Result};
use crate::service::{Gateway, Mount, Principal, Scope};

pub const REQUEST_ID: &str = "x-request-id";

/// What every request shares.
#[derive(Debug)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub metrics: Metrics,
    /// Largest request head answered normally; larger ones get a JSON `431`.
    pub max_header_bytes: usize,
}

/// The default of `limits.max_header_bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

impl AppState {
    pub fn new(gateway: Arc<Gateway>) -> Arc<AppState> {
        Self::with_max_header_bytes(gateway, DEFAULT_MAX_HEADER_BYTES)
    }

    pub fn with_max_header_bytes(gateway: Arc<Gateway>, max_header_bytes: usize) -> Arc<AppState> {
        let metrics = Metrics::with_storage(gateway.storage_metrics());
        Arc::new(AppState {
            gateway,
            metrics,
            max_header_bytes,
        })
    }
}

/// The size of a request head as it came on the wire (HTTP/1.1 framing; for HTTP/2 the same
/// fields counted the same way): request line, then `name: value\r\n` per field.
fn head_size<B>(req: &Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
        .sum();
    line + fields + 2
}

/// Serves one request. Never fails: errors become JSON responses.
pub async fn handle<B>(state: Arc<AppState>, req: Request<B>) -> Response<AccessLog>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display + Send + 'static,
{
    let started = Instant::now();
    let request_id = request_id::next();
    let method = req.method().clone();
    // The URI shares its bytes with the request: no copy unless the log line is written.
    let uri = req.uri().clone();
    state.metrics.in_flight.inc();

    let mut who = None;
    let size = head_size(&req);
    let result = if size > state.max_header_bytes {
        Err(Error::new(
            crate::error::ErrorKind::HeaderTooLarge,
            format!(
                "the request head is {size} bytes, over this server's limit of {} (limits.max_header_bytes)",
                state.max_header_bytes
            ),
        ))
    } else {
        dispatch(&state, req, &mut who).await
    };
    let mut resp = match result {
        Ok(outcome) => render::render(outcome),
        Err(e) => {
            if error::status_of(e.kind()).is_server_error() {
                tracing::warn!(request_id = %request_id, error = ?e, "request failed");
            }
            error::render(&e)
        }
    };
    resp.headers_mut().insert(REQUEST_ID, request_id.header());
    harden(resp.headers_mut());
    let status = resp.status();
    let (parts, body) = resp.into_parts();
    let bodyless = method == Method::HEAD
        || status == http::StatusCode::NOT_MODIFIED
        || status == http::StatusCode::NO_CONTENT;
    let expected = if bodyless {
        Some(0)
    } else {
        parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    let logged = AccessLog {
        expected,
        inner: body,
        state,
        request_id,
        method,
        uri,
        principal: who,
        status: status.as_u16(),
        started,
        bytes: 0,
        failed: false,
        finished: false,
    };
    Response::from_parts(parts, logged)
}

/// Routes a request to its handler, authorizing it first; `who` learns the caller once known.
async fn dispatch<B>(
    state: &AppState,
    req: Request<B>,
    who: &mut Option<Principal>,
) -> Result<Outcome>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display + Send + 'static,
{
    let endpoint = routes::route(req.method(), req.uri().path(), req.uri().query())?;
    let gw = &state.gateway;
    let headers = req.headers();
    match endpoint {
        Endpoint::MethodNotAllowed { allow } => Ok(Outcome::MethodNotAllowed { allow }),
        Endpoint::Healthz => Ok(Outcome::Json(serde_json::json!({ "status": "ok" }))),
        Endpoint::Readyz => Ok(Outcome::Readiness(gw.readiness().await)),
        Endpoint::Metrics => Ok(Outcome::Metrics(state.metrics.encode())),
        Endpoint::OpenApi => Ok(Outcome::Document {
            content_type: "application/json",
            body: OPENAPI,
        }),
        Endpoint::Mounts => {
            let cred = handlers::bearer(headers)?;
            Ok(handlers::mounts(gw, cred.as_deref(), headers))
        }
        Endpoint::WhoAmI => {
            let cred = handlers::bearer(headers)?;
            handlers::whoami(gw, cred.as_deref())
        }
        Endpoint::UiRoot => Ok(Outcome::Redirect("/ui/")),
        Endpoint::UiAsset { name } => Ok(Outcome::UiAsset(ui::asset(&name)?)),
        Endpoint::List {
            mount,
            dir,
            limit,
            after,
        } => {
            let m = authorize(gw, headers, &mount, Scope::Read, who)?;
            handlers::list(m, gw, headers, &dir, limit, after).await
        }
        Endpoint::Get {
            mount,
            path,
            head,
            signed,
        } => {
            // A signed URL is its own credential (a bearer token beside it is not consulted).
            let m = match &signed {
                Some(q) => gw.authorize_signed(&mount, &path, q)?,
                None => authorize(gw, headers, &mount, Scope::Read, who)?,
            };
            handlers::get(m, gw, req.method(), headers, &path, head).await
        }
        Endpoint::Sign {
            mount,
            path,
            expires,
        } => {
            let cred = handlers::bearer(headers)?;
            handlers::sign(gw, cred.as_deref(), &mount, &path, expires.as_deref())
        }
        Endpoint::Delete { mount, path } => {
            let m = authorize(gw, headers, &mount, Scope::Delete, who)?;
            handlers::delete(m, gw, headers, &path).await
        }
        Endpoint::Put { mount, path } => {
            let m = authorize(gw, headers, &mount, Scope::Write, who)?;
            let (parts, body) = req.into_parts();
            let body = body::request_stream(body);
            handlers::put(m, gw, &parts.headers, &path, body).await
        }
    }
}

/// Headers every response carries: no MIME sniffing, and (except on the web page's own files,
/// which carry their policy) `Content-Security-Policy: sandbox`, so an uploaded HTML or SVG
/// artifact opened in a browser runs no script and gets an opaque origin: it can never read the
/// page's session token.
fn harden(headers: &mut http::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
    }
}

/// Finds the mount and checks the bearer token (if any) may use `scope` on it; records who the
/// caller is for the access log.
fn authorize<'g>(
    gw: &'g Gateway,
    headers: &HeaderMap,
    mount: &str,
    scope: Scope,
    who: &mut Option<Principal>,
) -> Result<&'g Mount> {
    let cred = handlers::bearer(headers)?;
    let (m, principal) = gw.authorize(mount, scope, cred.as_deref())?;
    *who = Some(principal);
    Ok(m)
}

/// The body of every response: counts the body as it is sent and writes the access log line
/// (and metrics) when the response is finished or abandoned, so `bytes` is what really went out.
pub struct AccessLog {
    /// The body length when known up front (hyper stops polling once it has sent that much).
    expected: Option<u64>,
    inner: Body,
    state: Arc<AppState>,
    request_id: request_id::RequestId,
    method: Method,
    uri: http::Uri,
    /// Who the caller is, once the request was authorized.
    principal: Option<Principal>,
    status: u16,
    started: Instant,
    bytes: u64,
    failed: bool,
    finished: bool,
}

impl HttpBody for AccessLog {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None) => self.finished = true,
            Poll::Ready(Some(Err(e))) => {
                self.failed = true;
                tracing::error!(request_id = %self.request_id, error = %e, "response body failed midway; aborting the connection");
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        let m = &self.state.metrics;
        m.in_flight.dec();
        m.count_request(&self.method, self.status);
        m.bytes_sent.inc_by(self.bytes);
        let complete = !self.failed
            && (self.finished || self.inner.is_end_stream() || self.expected == Some(self.bytes));
        if self.failed {
            m.aborted_responses.inc();
        }
        tracing::info!(
            target: "access",
            request_id = %self.request_id,
            method = %self.method,
            path = %self.uri.path(),
            principal = self.principal.as_ref().map(tracing::field::display),
            status = self.status,
            bytes = self.bytes,
            complete,
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
        );
    }
}
