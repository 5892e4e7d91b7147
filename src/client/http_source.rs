//! An artifact behind an `http(s)://` URL (the gateway, or any server with the same semantics)
//! as a `fetch` [`Source`]: `HEAD` for the validators, `GET` with `Range` + `If-Range` to resume.

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, RANGE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::{header, status_error, transport_error, HttpClient};
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::{Opened, Remote, Resume, Source};
use crate::secret::redact_url;
use crate::storage::Sha256;

/// One artifact URL.
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: HttpClient,
    url: Url,
    shown: String,
}

impl HttpSource {
    pub fn new(client: HttpClient, url: Url) -> HttpSource {
        let shown = redact_url(&url);
        HttpSource { client, url, shown }
    }
}

#[async_trait]
impl Source for HttpSource {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn head(&self) -> Result<Remote> {
        let what = format!("HEAD {}", self.shown);
        let resp = self
            .client
            .send(self.client.request(Method::HEAD, self.url.clone()), &what)
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &what).await);
        }
        let headers = resp.headers();
        let size = header(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok());
        remote(headers, size, &what)
    }

    async fn open(&self, resume: Option<&Resume>) -> Result<Opened> {
        let what = format!("GET {}", self.shown);
        let mut req = self.client.request(Method::GET, self.url.clone());
        if let Some(r) = resume {
            req = req
                .header(RANGE, format!("bytes={}-", r.offset))
                .header(IF_RANGE, r.etag.as_str());
        }
        let resp = self.client.send(req, &what).await?;
        let headers = resp.headers();
        let (offset, size) = match resp.status() {
            StatusCode::OK => (
                0,
                header(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()),
            ),
            StatusCode::PARTIAL_CONTENT => {
                let Some(r) = resume else {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("{what}: 206 to a request without Range"),
                    ));
                };
                let (start, total) = header(headers, CONTENT_RANGE.as_str())
                    .and_then(content_range)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidInput,
                            format!("{what}: 206 without a usable Content-Range"),
                        )
                    })?;
                if start != r.offset {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "{what}: asked for bytes from {}, the server sent from {start}",
                            r.offset
                        ),
                    ));
                }
                (start, Some(total))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(Error::new(
                    ErrorKind::RangeNotSatisfiable,
                    format!("{what}: the partial download is not shorter than the artifact"),
                ));
            }
            _ => return Err(status_error(resp, &what).await),
        };
        let remote = remote(headers, size, &what)?;
        let body = resp
            .bytes_stream()
            .map(move |r| r.map_err(|e| transport_error(&e, &what)))
            .boxed();
        Ok(Opened {
            remote,
            offset,
            body,
        })
    }
}

fn remote(headers: &reqwest::header::HeaderMap, size: Option<u64>, what: &str) -> Result<Remote> {
    let etag = header(headers, ETAG.as_str())
        .filter(|e| e.starts_with('"'))
        .map(str::to_string);
    let sha256 = match header(headers, "repr-digest") {
        None => None,
        Some(v) => Sha256::from_digest_field(v).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{what}: malformed Repr-Digest: {}", e.message()),
            )
        })?,
    };
    let last_modified =
        header(headers, "last-modified").and_then(|v| httpdate::parse_http_date(v).ok());
    Ok(Remote {
        size,
        etag,
        sha256,
        last_modified,
    })
}

/// `bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(v: &str) -> Option<(u64, u64)> {
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, 200)));
        assert_eq!(content_range("bytes */200"), None);
        assert_eq!(content_range("items 1-2/3"), None);
    }
}
