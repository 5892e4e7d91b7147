//! Listing documents: JSON for programs, a plain HTML index for browsers.

use std::fmt::Write;

use serde_json::{json, Value};

use crate::storage::{ArtifactPath, Entry, ListPage};

use crate::storage::path::encode_url_segment as encode_segment;

/// The URL path of an artifact or directory: `/artifacts/<mount>/<encoded path>`.
pub fn url_path(mount: &str, path: &ArtifactPath, dir: bool) -> String {
    let mut out = format!("/artifacts/{}/", encode_segment(mount));
    out.push_str(&path.to_url_encoded());
    if dir && !path.is_root() {
        out.push('/');
    }
    out
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "name": e.name,
        "is_dir": e.is_dir,
        "size": e.size,
        "last_modified": e.last_modified.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        "etag": e.etag,
        "sha256": e.sha256.map(|d| d.to_hex()),
    })
}

pub fn json_page(mount: &str, dir: &ArtifactPath, page: &ListPage) -> Value {
    json!({
        "mount": mount,
        "path": dir.as_dir_prefix(),
        "entries": page.entries.iter().map(entry_json).collect::<Vec<_>>(),
        "next_after": page.next_after,
    })
}

pub fn html_page(mount: &str, dir: &ArtifactPath, page: &ListPage, limit: usize) -> String {
    let title = format!("/{}/{}", mount, dir.as_dir_prefix());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of {t}</title></head><body>\n<h1>Index of {t}</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Last modified</th><th>SHA-256</th></tr>\n",
        t = escape(&title)
    );
    if !dir.is_root() {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">../</a></td><td></td><td></td><td></td></tr>",
            escape(&url_path(mount, &dir.parent(), true))
        );
    }
    for e in &page.entries {
        let Ok(child) = dir.child(&e.name) else {
            continue;
        };
        let href = url_path(mount, &child, e.is_dir);
        let label = if e.is_dir {
            format!("{}/", e.name)
        } else {
            e.name.clone()
        };
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&href),
            escape(&label),
            e.size.map(|s| s.to_string()).unwrap_or_default(),
            e.last_modified
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_default(),
            e.sha256.map(|d| d.to_hex()).unwrap_or_default(),
        );
    }
    out.push_str("</table>\n");
    if let Some(next) = &page.next_after {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("limit", &limit.to_string())
            .append_pair("after", next)
            .finish();
        let _ = writeln!(
            out,
            "<p><a href=\"{}?{}\">next page</a></p>",
            escape(&url_path(mount, dir, true)),
            escape(&q)
        );
    }
    out.push_str("</body></html>\n");
    out
}

/// The mounts as a plain HTML index (what a browser without JavaScript gets from `/artifacts/`).
pub fn html_mounts(names: &[&str]) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Mounts</title></head><body>\n<h1>Mounts</h1>\n<ul>\n",
    );
    for name in names {
        let _ = writeln!(
            out,
            "<li><a href=\"{}\">{}/</a></li>",
            escape(&url_path(name, &ArtifactPath::root(), true)),
            escape(name)
        );
    }
    out.push_str("</ul>\n</body></html>\n");
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
