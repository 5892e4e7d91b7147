//! Routing: a pure function from method + path + query to an [`Endpoint`]. Paths are decoded and
//! validated here, once, into [`ArtifactPath`]; nothing below sees a raw string.

use http::Method;

use crate::error::{Error, ErrorKind, Result};
use crate::service::SignedQuery;
use crate::storage::ArtifactPath;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Readyz,
    Metrics,
    /// `GET /openapi.json`: the OpenAPI 3.1 description of this API.
    OpenApi,
    /// `GET /artifacts/`: the mounts.
    Mounts,
    /// `GET /whoami`: who the caller is and what it may do on each mount.
    WhoAmI,
    /// `GET /ui`: redirects to `/ui/` (the page's modules load relative to it).
    UiRoot,
    /// `GET /ui/<name>`: one embedded asset of the web page (`""` is the page itself).
    UiAsset {
        name: String,
    },
    /// `GET /artifacts/<mount>/<dir>/`: one level of a directory.
    List {
        mount: String,
        dir: ArtifactPath,
        limit: usize,
        after: Option<String>,
    },
    /// `GET|HEAD /artifacts/<mount>/<path>`, with the signed-URL parameters when present.
    Get {
        mount: String,
        path: ArtifactPath,
        head: bool,
        signed: Option<SignedQuery>,
    },
    /// `POST /sign/<mount>/<path>?expires=24h`: a signed URL for reading one artifact
    /// (`expires` is checked after the caller is, see [`sign_lifetime`]).
    Sign {
        mount: String,
        path: ArtifactPath,
        expires: Option<String>,
    },
    /// `PUT /artifacts/<mount>/<path>`.
    Put {
        mount: String,
        path: ArtifactPath,
    },
    /// `DELETE /artifacts/<mount>/<path>`.
    Delete {
        mount: String,
        path: ArtifactPath,
    },
    /// A known path asked with a method it does not take; `allow` lists those it does.
    MethodNotAllowed {
        allow: &'static str,
    },
}

pub const DEFAULT_LIST_LIMIT: usize = 1000;
pub const MAX_LIST_LIMIT: usize = 10_000;

/// Maps a request to an endpoint, or to the error the client gets.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Result<Endpoint> {
    let simple = |ep: Endpoint| -> Result<Endpoint> {
        if method == Method::GET || method == Method::HEAD {
            Ok(ep)
        } else {
            Ok(Endpoint::MethodNotAllowed { allow: "GET, HEAD" })
        }
    };
    match path {
        "/healthz" => return simple(Endpoint::Healthz),
        "/readyz" => return simple(Endpoint::Readyz),
        "/metrics" => return simple(Endpoint::Metrics),
        "/openapi.json" => return simple(Endpoint::OpenApi),
        "/artifacts" | "/artifacts/" => return simple(Endpoint::Mounts),
        "/whoami" => return simple(Endpoint::WhoAmI),
        "/ui" => return simple(Endpoint::UiRoot),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/sign/") {
        if method != Method::POST {
            return Ok(Endpoint::MethodNotAllowed { allow: "POST" });
        }
        let (mount, raw_path) = split_mount(rest)?;
        let artifact = ArtifactPath::from_url_path(raw_path)?;
        if raw_path.is_empty() || raw_path.ends_with('/') {
            return Err(Error::new(
                ErrorKind::InvalidPath,
                "a signed URL is for one artifact: POST /sign/<mount>/<path>",
            ));
        }
        return Ok(Endpoint::Sign {
            mount,
            path: artifact,
            expires: url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .find(|(k, _)| k == "expires")
                .map(|(_, v)| v.into_owned()),
        });
    }
    if let Some(name) = path.strip_prefix("/ui/") {
        return simple(Endpoint::UiAsset {
            name: name.to_string(),
        });
    }
    let Some(rest) = path.strip_prefix("/artifacts/") else {
        return Err(Error::new(
            ErrorKind::NotFound,
            "no such endpoint: artifacts are under /artifacts/<mount>/<path>",
        ));
    };
    let (mount, raw_path) = split_mount(rest)?;
    let is_dir = raw_path.is_empty() || raw_path.ends_with('/');
    let artifact = ArtifactPath::from_url_path(raw_path)?;
    let signed = SignedQuery::from_query(query)?;
    if signed.is_some() && (is_dir || (method != Method::GET && method != Method::HEAD)) {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "a signed URL grants only GET and HEAD of its one artifact",
        ));
    }
    if is_dir {
        if method != Method::GET && method != Method::HEAD {
            return Ok(Endpoint::MethodNotAllowed { allow: "GET, HEAD" });
        }
        let (limit, after) = list_query(query)?;
        return Ok(Endpoint::List {
            mount,
            dir: artifact,
            limit,
            after,
        });
    }
    match *method {
        Method::GET => Ok(Endpoint::Get {
            mount,
            path: artifact,
            head: false,
            signed,
        }),
        Method::HEAD => Ok(Endpoint::Get {
            mount,
            path: artifact,
            head: true,
            signed,
        }),
        Method::PUT => Ok(Endpoint::Put {
            mount,
            path: artifact,
        }),
        Method::DELETE => Ok(Endpoint::Delete {
            mount,
            path: artifact,
        }),
        _ => Ok(Endpoint::MethodNotAllowed {
            allow: "GET, HEAD, PUT, DELETE",
        }),
    }
}

/// Splits `<mount>/<rest>` and decodes the mount name.
fn split_mount(rest: &str) -> Result<(String, &str)> {
    let (raw_mount, raw_path) = rest.split_once('/').unwrap_or((rest, ""));
    let mount = percent_encoding::percent_decode_str(raw_mount)
        .decode_utf8()
        .map_err(|_| Error::new(ErrorKind::InvalidPath, "the mount name is not UTF-8"))?
        .into_owned();
    Ok((mount, raw_path))
}

/// Default lifetime of a signed URL when `?expires=` is not given.
pub const DEFAULT_SIGNED_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// The lifetime a `POST /sign/…?expires=` asks for (default one hour).
pub fn sign_lifetime(expires: Option<&str>) -> Result<std::time::Duration> {
    match expires {
        None => Ok(DEFAULT_SIGNED_LIFETIME),
        Some(v) => humantime::parse_duration(v).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("expires must be a duration such as 24h or 30m: {e}"),
            )
        }),
    }
}

fn list_query(query: Option<&str>) -> Result<(usize, Option<String>)> {
    let mut limit = DEFAULT_LIST_LIMIT;
    let mut after = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidInput,
                            format!("limit must be 1..={MAX_LIST_LIMIT}"),
                        )
                    })?;
            }
            "after" => after = Some(v.into_owned()).filter(|s| !s.is_empty()),
            _ => {}
        }
    }
    Ok((limit, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_artifacts_and_listings() {
        let get = route(&Method::GET, "/artifacts/default/jobs/wc.jar", None).unwrap();
        assert_eq!(
            get,
            Endpoint::Get {
                mount: "default".into(),
                path: ArtifactPath::parse("jobs/wc.jar").unwrap(),
                head: false,
                signed: None
            }
        );
        let list = route(
            &Method::GET,
            "/artifacts/default/jobs/",
            Some("limit=5&after=a.jar"),
        )
        .unwrap();
        assert_eq!(
            list,
            Endpoint::List {
                mount: "default".into(),
                dir: ArtifactPath::parse("jobs").unwrap(),
                limit: 5,
                after: Some("a.jar".into())
            }
        );
        assert!(matches!(
            route(&Method::GET, "/artifacts/default", None).unwrap(),
            Endpoint::List { .. }
        ));
        assert_eq!(
            route(&Method::GET, "/artifacts/", None).unwrap(),
            Endpoint::Mounts
        );
        assert_eq!(
            route(&Method::GET, "/ui/app.js", None).unwrap(),
            Endpoint::UiAsset {
                name: "app.js".into()
            }
        );
        assert_eq!(
            route(&Method::GET, "/whoami", None).unwrap(),
            Endpoint::WhoAmI
        );
        assert!(matches!(
            route(&Method::PUT, "/artifacts/m/x", None).unwrap(),
            Endpoint::Put { .. }
        ));
        assert!(matches!(
            route(&Method::DELETE, "/artifacts/m/x", None).unwrap(),
            Endpoint::Delete { .. }
        ));
    }

    #[test]
    fn refuses_bad_paths_and_methods() {
        for p in [
            "/artifacts/m/../x",
            "/artifacts/m/%2e%2e/x",
            "/artifacts/m/a%2Fb",
            "/artifacts/m/a//b",
            "/artifacts/m/a%00",
        ] {
            assert_eq!(
                route(&Method::GET, p, None).unwrap_err().kind(),
                ErrorKind::InvalidPath,
                "{p}"
            );
        }
        assert_eq!(
            route(&Method::POST, "/artifacts/m/x", None).unwrap(),
            Endpoint::MethodNotAllowed {
                allow: "GET, HEAD, PUT, DELETE"
            }
        );
        assert_eq!(
            route(&Method::PUT, "/artifacts/m/dir/", None).unwrap(),
            Endpoint::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(
            route(&Method::DELETE, "/healthz", None).unwrap(),
            Endpoint::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(
            route(&Method::GET, "/nope", None).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            route(&Method::GET, "/artifacts/m/", Some("limit=0"))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
    }
}
