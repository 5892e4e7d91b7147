//! Response and request bodies: the one boxed body type, and the conversion of a request body
//! into the storage layer's [`ByteStream`].

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::Frame;

use crate::error::{Error, ErrorKind};
use crate::storage::ByteStream;

/// Every response body.
pub type Body = UnsyncBoxBody<Bytes, Error>;

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn json(value: &serde_json::Value) -> Body {
    let mut v = serde_json::to_vec(value).expect("JSON values serialize");
    v.push(b'\n');
    full(v)
}

/// A streamed body; an error from the stream aborts the response (the connection is reset, so
/// the client sees a failure instead of a short body).
pub fn stream(s: ByteStream) -> Body {
    StreamBody::new(s.map_ok(Frame::data)).boxed_unsync()
}

/// Turns a request body into a byte stream; a broken or abandoned upload yields `Aborted`.
pub fn request_stream<B>(body: B) -> ByteStream
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display + Send + 'static,
{
    BodyStream::new(body)
        .filter_map(|frame| async move {
            match frame {
                Ok(f) => f.into_data().ok().map(Ok),
                Err(e) => Some(Err(Error::new(
                    ErrorKind::Aborted,
                    format!("the upload was interrupted: {e}"),
                ))),
            }
        })
        .boxed()
}
