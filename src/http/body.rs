//! Response and request bodies: the one response body type, and the conversion of a request
//! body into the storage layer's [`ByteStream`].
//!
//! [`Body`] is a plain enum (nothing, bytes in memory, or a stream) rather than a boxed trait
//! object: a small artifact's response is then one chunk that hyper sees end with its last
//! byte, without a box per layer (measured on 4 KiB GETs, see `benches/bench.sh`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::BodyStream;
use hyper::body::{Frame, SizeHint};

use crate::error::{Error, ErrorKind};
use crate::storage::ByteStream;

/// Every response body.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    /// Bytes in memory, sent as one chunk (never empty).
    Full(Bytes),
    /// A stream of `remaining` more bytes (the response's `Content-Length`): once they are
    /// out, the body reports its end without asking the stream again; an error from the
    /// stream aborts the response (the connection is reset, so the client sees a failure
    /// instead of a short body).
    Stream {
        stream: ByteStream,
        remaining: u64,
    },
}

pub fn empty() -> Body {
    Body { kind: Kind::Empty }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    let bytes = bytes.into();
    if bytes.is_empty() {
        return empty();
    }
    Body {
        kind: Kind::Full(bytes),
    }
}

pub fn json(value: &serde_json::Value) -> Body {
    let mut v = serde_json::to_vec(value).expect("JSON values serialize");
    v.push(b'\n');
    full(v)
}

/// A streamed body of `len` bytes.
pub fn stream(s: ByteStream, len: u64) -> Body {
    if len == 0 {
        return empty();
    }
    Body {
        kind: Kind::Stream {
            stream: s,
            remaining: len,
        },
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(_) => match std::mem::replace(&mut self.kind, Kind::Empty) {
                Kind::Full(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                _ => unreachable!("matched Full above"),
            },
            Kind::Stream { stream, remaining } => {
                let polled = Pin::new(stream).poll_next(cx);
                match &polled {
                    Poll::Ready(Some(Ok(chunk))) => {
                        *remaining = remaining.saturating_sub(chunk.len() as u64)
                    }
                    Poll::Ready(None) | Poll::Ready(Some(Err(_))) => *remaining = 0,
                    Poll::Pending => {}
                }
                polled.map(|o| o.map(|r| r.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(_) => false,
            Kind::Stream { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.len() as u64),
            Kind::Stream { remaining, .. } => {
                let mut h = SizeHint::new();
                h.set_upper(*remaining);
                h
            }
        }
    }
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
