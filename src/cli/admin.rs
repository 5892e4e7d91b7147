//! The admin commands over the gateway's HTTP API: `put`, `ls`, `stat`, `rm`. Human output by
//! default, `--json` for scripts; errors name the server's own message and set the exit code.

use bytesize::ByteSize;
use serde::Serialize;

use super::{
    exit_code, AdminArgs, LsArgs, PutArgs, RmArgs, SignArgs, StatArgs, EXIT_OK, EXIT_USAGE,
};
use crate::client::gateway::{
    artifact_url, GatewayClient, ListEntry, MountInfo, PutParams, Target,
};
use crate::error::{Error, ErrorKind, Result};

pub async fn put(args: PutArgs) -> i32 {
    if let Err(e) = regular_file(&args.file) {
        return usage("put", &args.admin, &e);
    }
    let (gw, target) = match setup("put", &args.admin, &args.target) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let params = PutParams {
        no_overwrite: args.no_overwrite,
        content_type: args.content_type.clone(),
    };
    let result = gw.put_file(&args.file, &target, &params).await;
    answer("put", &args.admin, result, |r| {
        println!(
            "{} {}/{}: {}, sha256 {}, etag \"{}\", {}",
            if r.created { "created" } else { "replaced" },
            target.mount,
            r.path,
            ByteSize(r.size),
            r.sha256.as_deref().unwrap_or("-"),
            r.etag,
            r.content_type.as_deref().unwrap_or("-"),
        );
    })
}

pub async fn ls(args: LsArgs) -> i32 {
    let gw = match client(&args.admin) {
        Ok(gw) => gw,
        Err(e) => return usage("ls", &args.admin, &e),
    };
    let Some(raw) = args.target.as_deref() else {
        let result = gw.mounts().await.map(|mounts| Mounts { mounts });
        return answer("ls", &args.admin, result, |m| {
            for m in &m.mounts {
                println!("{}/", m.name);
            }
        });
    };
    let target = match Target::parse(raw, false) {
        Ok(t) => t,
        Err(e) => return usage("ls", &args.admin, &e),
    };
    let result = gw.list(&target).await;
    answer("ls", &args.admin, result, |l| print_table(&l.entries))
}

pub async fn stat(args: StatArgs) -> i32 {
    let (gw, target) = match setup("stat", &args.admin, &args.target) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = gw.stat(&target).await;
    answer("stat", &args.admin, result, |s| {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        println!("path:          {}/{}", s.mount, s.path);
        println!(
            "size:          {}",
            s.size
                .map(|n| format!("{n} ({})", ByteSize(n)))
                .unwrap_or_else(|| "-".into())
        );
        println!("sha256:        {}", dash(&s.sha256));
        println!(
            "etag:          {}",
            s.etag
                .as_ref()
                .map(|e| format!("\"{e}\""))
                .unwrap_or_else(|| "-".into())
        );
        println!("last modified: {}", dash(&s.last_modified));
        println!("content type:  {}", dash(&s.content_type));
    })
}

pub async fn rm(args: RmArgs) -> i32 {
    let (gw, target) = match setup("rm", &args.admin, &args.target) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = gw.delete(&target, args.force).await.map(|deleted| Deleted {
        mount: target.mount.clone(),
        path: target.path.to_string(),
        deleted,
    });
    answer("rm", &args.admin, result, |d| {
        if d.deleted {
            println!("deleted {target}");
        } else {
            println!("not found (nothing to delete): {target}");
        }
    })
}

/// `ls` without a target, as JSON.
#[derive(Serialize)]
struct Mounts {
    mounts: Vec<MountInfo>,
}

/// `rm`, as JSON.
#[derive(Serialize)]
struct Deleted {
    mount: String,
    path: String,
    deleted: bool,
}

/// The client and the target (`MOUNT/PATH`); a usage error is reported and its code returned.
fn setup(
    cmd: &str,
    args: &AdminArgs,
    raw: &str,
) -> std::result::Result<(GatewayClient, Target), i32> {
    let made = client(args).and_then(|gw| Ok((gw, Target::parse(raw, true)?)));
    made.map_err(|e| usage(cmd, args, &e))
}

/// Prints a command's answer (JSON with `--json`, otherwise as `human` writes it) and returns
/// exit 0, or reports the failure and returns its exit code.
fn answer<T: Serialize>(
    cmd: &str,
    args: &AdminArgs,
    result: Result<T>,
    human: impl FnOnce(&T),
) -> i32 {
    match result {
        Ok(value) => {
            if args.json {
                print_json(&value);
            } else {
                human(&value);
            }
            EXIT_OK
        }
        Err(e) => failed(cmd, args, &e),
    }
}

fn regular_file(file: &std::path::Path) -> Result<()> {
    match std::fs::metadata(file) {
        Ok(md) if md.is_file() => Ok(()),
        Ok(_) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a regular file", file.display()),
        )),
        Err(e) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{}: {e}", file.display()),
        )),
    }
}

pub async fn sign(args: SignArgs) -> i32 {
    let target = match Target::parse(&args.target, true) {
        Ok(t) => t,
        Err(e) => return usage("sign", &args.admin, &e),
    };
    let signed = match &args.config {
        // Offline: the server's own key.
        Some(path) => {
            let setup = || -> Result<crate::service::Signer> {
                let config = crate::config::Config::from_file(path)?;
                let cfg = config.signing.ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("{}: no [signing] section", path.display()),
                    )
                })?;
                crate::service::Signer::from_config(&cfg)
            };
            let signer = match setup() {
                Ok(s) => s,
                Err(e) => return usage("sign", &args.admin, &e),
            };
            match signer.sign(
                &target.mount,
                &target.path,
                args.expires,
                std::time::SystemTime::now(),
            ) {
                Ok(s) => {
                    let mut url = artifact_url(&args.admin.server, &target, false);
                    url.set_query(Some(&s.query));
                    (url, s.expires)
                }
                Err(e) => return usage("sign", &args.admin, &e),
            }
        }
        // Online: the server signs for a token that may read the mount.
        None => {
            let gw = match client(&args.admin) {
                Ok(gw) => gw,
                Err(e) => return usage("sign", &args.admin, &e),
            };
            match gw.sign(&target, args.expires).await {
                Ok(x) => x,
                Err(e) => return failed("sign", &args.admin, &e),
            }
        }
    };
    let (url, expires) = signed;
    let at = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires),
    )
    .to_string();
    if args.admin.json {
        print_json(
            &serde_json::json!({ "url": url.as_str(), "expires": expires, "expires_at": at }),
        );
    } else {
        println!("{url}");
        eprintln!("artifact-gateway sign: valid for GET/HEAD of {target} until {at}");
    }
    EXIT_OK
}

fn client(args: &AdminArgs) -> Result<GatewayClient> {
    GatewayClient::new(args.conn.http_client()?, args.server.clone())
}

fn print_table(entries: &[ListEntry]) {
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                if e.is_dir {
                    format!("{}/", e.name)
                } else {
                    e.name.clone()
                },
                e.size
                    .map(|n| ByteSize(n).to_string())
                    .unwrap_or_else(|| "-".into()),
                e.last_modified.clone().unwrap_or_else(|| "-".into()),
                e.sha256.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for r in &rows {
        println!("{:<w0$}  {:>w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3]);
    }
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string(value).expect("values serialize")
    );
}

fn usage(cmd: &str, args: &AdminArgs, e: &Error) -> i32 {
    report(cmd, args, e);
    EXIT_USAGE
}

fn failed(cmd: &str, args: &AdminArgs, e: &Error) -> i32 {
    report(cmd, args, e);
    exit_code(e.kind())
}

fn report(cmd: &str, args: &AdminArgs, e: &Error) {
    eprintln!("artifact-gateway {cmd}: {e}");
    if args.json {
        print_json(
            &serde_json::json!({ "error": { "code": e.kind().code(), "message": e.message() } }),
        );
    }
}
