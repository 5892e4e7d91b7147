//! The S3-only request hook: an `object_store` HTTP connector whose client adds the
//! `If-None-Match: *` / `If-Match` a multipart completion must carry (S3 and MinIO honour both
//! on `CompleteMultipartUpload`; `object_store` has no option for it). The adapter registers the
//! condition through [`CompletionPreconditions`] just before completing an upload and drops it
//! afterwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ::object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use ::object_store::ClientOptions;
use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::object_store::{CompletionGuard, CompletionPreconditions};

type ByUpload = Mutex<HashMap<String, (http::HeaderName, http::HeaderValue)>>;

/// Preconditions that multipart completions must carry, by upload id. The store's HTTP client
/// ([`ConditionalCompletionConnector`]) adds one to its upload's `POST …?uploadId=` request,
/// retries included.
#[derive(Debug, Default)]
pub struct CompletionConditions {
    by_upload: Arc<ByUpload>,
}

/// Removes a registered precondition when dropped.
struct ConditionGuard {
    by_upload: Arc<ByUpload>,
    upload_id: String,
}

impl Drop for ConditionGuard {
    fn drop(&mut self) {
        self.by_upload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.upload_id);
    }
}

impl CompletionPreconditions for CompletionConditions {
    fn require(
        &self,
        upload_id: &str,
        name: http::HeaderName,
        value: &str,
    ) -> Result<CompletionGuard> {
        let value = http::HeaderValue::from_str(value).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                "the ETag has characters a header cannot carry",
            )
        })?;
        self.by_upload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(upload_id.to_string(), (name, value));
        Ok(Box::new(ConditionGuard {
            by_upload: self.by_upload.clone(),
            upload_id: upload_id.to_string(),
        }))
    }
}

impl CompletionConditions {
    /// Adds the precondition registered for the upload this request completes, if any.
    fn apply(&self, req: &mut HttpRequest) {
        if req.method() != http::Method::POST {
            return;
        }
        let Some(query) = req.uri().query() else {
            return;
        };
        let mut upload_id = None;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "uploadId" => {
                    upload_id = Some(
                        percent_encoding::percent_decode_str(v)
                            .decode_utf8_lossy()
                            .into_owned(),
                    )
                }
                "partNumber" => return,
                _ => {}
            }
        }
        let Some(upload_id) = upload_id else { return };
        let found = self
            .by_upload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&upload_id)
            .cloned();
        if let Some((name, value)) = found {
            req.headers_mut().insert(name, value);
        }
    }
}

/// An `object_store` HTTP connector (reqwest underneath) whose client applies
/// [`CompletionConditions`] to multipart completion requests. The header is added after
/// signing, which SigV4 allows: only `x-amz-*` headers must be signed.
#[derive(Debug)]
pub struct ConditionalCompletionConnector {
    conditions: Arc<CompletionConditions>,
}

impl ConditionalCompletionConnector {
    pub fn new(conditions: Arc<CompletionConditions>) -> Self {
        ConditionalCompletionConnector { conditions }
    }
}

impl HttpConnector for ConditionalCompletionConnector {
    fn connect(&self, options: &ClientOptions) -> ::object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(ConditionalCompletionService {
            inner,
            conditions: self.conditions.clone(),
        }))
    }
}

#[derive(Debug)]
struct ConditionalCompletionService {
    inner: HttpClient,
    conditions: Arc<CompletionConditions>,
}

#[async_trait]
impl HttpService for ConditionalCompletionService {
    async fn call(&self, mut req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        self.conditions.apply(&mut req);
        self.inner.execute(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_conditions_touch_only_their_completion() {
        use ::object_store::client::HttpRequestBody;
        let conditions = Arc::new(CompletionConditions::default());
        let req = |method: http::Method, uri: &str| {
            http::Request::builder()
                .method(method)
                .uri(uri)
                .body(HttpRequestBody::empty())
                .unwrap()
        };
        let guard = conditions
            .require("id+1/=", http::header::IF_NONE_MATCH, "*")
            .unwrap();
        let mut complete = req(http::Method::POST, "http://h/b/k?uploadId=id%2B1%2F%3D");
        conditions.apply(&mut complete);
        assert_eq!(complete.headers().get("if-none-match").unwrap(), "*");
        let mut part = req(
            http::Method::PUT,
            "http://h/b/k?partNumber=1&uploadId=id%2B1%2F%3D",
        );
        conditions.apply(&mut part);
        assert!(part.headers().get("if-none-match").is_none());
        let mut other = req(http::Method::POST, "http://h/b/k?uploadId=another");
        conditions.apply(&mut other);
        assert!(other.headers().get("if-none-match").is_none());
        drop(guard);
        let mut later = req(http::Method::POST, "http://h/b/k?uploadId=id%2B1%2F%3D");
        conditions.apply(&mut later);
        assert!(
            later.headers().get("if-none-match").is_none(),
            "the guard removes the condition"
        );
    }
}
