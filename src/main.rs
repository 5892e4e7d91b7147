//! The `artifact-gateway` binary: parse the command line, run it, exit with its code.

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = artifact_gateway::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(artifact_gateway::cli::run(cli));
    std::process::exit(code);
}
