//! artifact-gateway: serve and fetch Flink job artifacts from local disk, S3, Aliyun OSS and
//! HDFS over plain HTTP(S).
//!
//! Layers, with dependencies pointing one way only:
//! `http` (routes → handlers → render) → `service` (mounts, auth, deadlines) → `storage`
//! (trait + backends). `cli` and `client` sit beside `http` as another entry point. `error` and
//! `secret` are shared leaves; `config` reads the file into typed values and imports
//! `storage` for the backend spec and each backend's options type, nothing above it.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod http;
pub mod secret;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;

pub use error::{Error, ErrorKind, Result};
