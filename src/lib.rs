//! artifact-gateway: serve and fetch Flink job artifacts from local disk, S3, Aliyun OSS and
//! HDFS over plain HTTP(S).
//!
//! Layers, with dependencies pointing one way only:
//! - the server: `http` (routes → handlers → render) → `service` (mounts, auth, deadlines) →
//!   `storage` (trait + backends);
//! - the init container: `cli` → `fetch` (plan, sources, disk landing) → `storage`, with
//!   `client` adding the gateway's HTTP API as one more fetch source;
//! - `config` (typed configuration, which names each backend's options from `storage` and owns
//!   the token and signing sections) feeds `server` and `service`, and imports neither;
//! - `error`, `secret` and `retry` are leaves every layer may use.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod fetch;
pub mod http;
pub mod retry;
pub mod secret;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;

pub use error::{Error, ErrorKind, Result};
