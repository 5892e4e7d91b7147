//! The administrator's web page at `/ui/`: static files embedded in the binary (no build step, no
//! CDN), served with a strict Content-Security-Policy. The page talks to the same JSON API as every
//! other client (`/whoami`, `/artifacts/…`); nothing here knows about storage.

use crate::error::{Error, ErrorKind, Result};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The page's policy: its own scripts, styles and API only; no inline script or style, no
/// framing, no form posts, no plugins.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!("ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("sha256.js", JS),
    asset!("snippets.js", JS),
    asset!("upload.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// The asset `/ui/<name>` names (`""` is the page).
pub fn asset(name: &str) -> Result<&'static Asset> {
    let name = if name.is_empty() { "index.html" } else { name };
    ASSETS.iter().find(|a| a.name == name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("no such page asset: /ui/{name}"),
        )
    })
}
