//! Access decisions: which bearer token may do what on which mount, from the `[[tokens]]` of
//! the configuration ([`TokenConfig`], [`Scope`], which `config` owns: configuration is read
//! by the service, never the other way round).
//!
//! Tokens are kept only as SHA-256 digests and compared in constant time against every
//! configured token (no early exit), so neither timing nor length leaks which one matched.

use subtle::ConstantTimeEq;

pub use crate::config::{Scope, TokenConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::storage::Sha256;

#[derive(Debug)]
struct Token {
    name: String,
    digest: Sha256,
    scopes: Vec<Scope>,
    mounts: Vec<String>,
}

impl Token {
    fn covers(&self, mount: &str, scope: Scope) -> bool {
        self.scopes.contains(&scope) && self.mounts.iter().any(|m| m == "*" || m == mount)
    }
}

/// The tokens of one gateway.
#[derive(Debug, Default)]
pub struct Authorizer {
    tokens: Vec<Token>,
}

/// Who is asking: the token's name, or anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Token(String),
}

/// As the access log shows it: `anonymous` or `token:<name>`.
impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Anonymous => f.write_str("anonymous"),
            Principal::Token(name) => write!(f, "token:{name}"),
        }
    }
}

impl Authorizer {
    /// Resolves every token's secret now, so a missing env var or file stops start-up.
    pub fn from_config(tokens: &[TokenConfig], env_token: Option<&str>) -> Result<Self> {
        let mut out = Vec::new();
        for t in tokens {
            let value = t.secret.resolve().map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("tokens[{:?}].secret: {}", t.name, e.message()),
                )
            })?;
            out.push(Token {
                name: t.name.clone(),
                digest: Sha256::of(value.as_bytes()),
                scopes: t.scopes.clone(),
                mounts: t.mounts.clone(),
            });
        }
        if let Some(v) = env_token {
            let value = Secret::Value(v.to_string()).resolve().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "ARTIFACT_GATEWAY_TOKEN is set but empty",
                )
            })?;
            out.push(Token {
                name: "ARTIFACT_GATEWAY_TOKEN".into(),
                digest: Sha256::of(value.as_bytes()),
                scopes: vec![Scope::Read, Scope::Write, Scope::Delete],
                mounts: vec!["*".into()],
            });
        }
        Ok(Authorizer { tokens: out })
    }

    /// The configured token equal to `presented`, comparing against every one in constant time.
    fn find(&self, presented: &str) -> Option<&Token> {
        let digest = Sha256::of(presented.as_bytes());
        let mut matched: Option<&Token> = None;
        for t in &self.tokens {
            if bool::from(t.digest.0.ct_eq(&digest.0)) {
                matched = Some(t);
            }
        }
        matched
    }

    /// Who presents `credential`: anonymous without one, the token's name with a valid one, and
    /// `Unauthenticated` for a token that matches none.
    pub fn identify(&self, credential: Option<&str>) -> Result<Principal> {
        let Some(presented) = credential else {
            return Ok(Principal::Anonymous);
        };
        self.find(presented)
            .map(|t| Principal::Token(t.name.clone()))
            .ok_or_else(|| Error::new(ErrorKind::Unauthenticated, "the bearer token is not valid"))
    }

    /// Decides whether `credential` (the bearer token, if any) may use `scope` on `mount`.
    pub fn check(
        &self,
        mount: &str,
        anonymous_read: bool,
        scope: Scope,
        credential: Option<&str>,
    ) -> Result<Principal> {
        if scope != Scope::Read && !self.tokens.iter().any(|t| t.covers(mount, scope)) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{} is disabled on mount {mount:?}: no token with the `{}` scope is configured. Set \
                     ARTIFACT_GATEWAY_TOKEN (one token with every scope) or add a [[tokens]] entry to the config",
                    if scope == Scope::Write { "uploading" } else { "deleting" },
                    scope.as_str()
                ),
            ));
        }
        let Some(presented) = credential else {
            if scope == Scope::Read && anonymous_read {
                return Ok(Principal::Anonymous);
            }
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                "a bearer token is required (Authorization: Bearer <token>)",
            ));
        };
        match self.find(presented) {
            None => Err(Error::new(
                ErrorKind::Unauthenticated,
                "the bearer token is not valid",
            )),
            Some(t) if t.covers(mount, scope) => Ok(Principal::Token(t.name.clone())),
            Some(_) if scope == Scope::Read && anonymous_read => Ok(Principal::Anonymous),
            Some(t) => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "token {:?} lacks the `{}` scope on mount {mount:?}",
                    t.name,
                    scope.as_str()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authorizer {
        std::env::set_var("AG_AUTH_TEST_READER", "reader-secret");
        let tokens = vec![TokenConfig {
            name: "reader".into(),
            secret: Secret::Env("AG_AUTH_TEST_READER".into()),
            scopes: vec![Scope::Read],
            mounts: vec!["jobs".into()],
        }];
        Authorizer::from_config(&tokens, Some("admin-secret")).unwrap()
    }

    #[test]
    fn decisions() {
        let a = auth();
        assert_eq!(
            a.check("jobs", false, Scope::Read, Some("reader-secret"))
                .unwrap(),
            Principal::Token("reader".into())
        );
        assert_eq!(
            a.check("jobs", true, Scope::Read, None).unwrap(),
            Principal::Anonymous
        );
        assert_eq!(
            a.check("jobs", false, Scope::Read, None)
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            a.check("jobs", false, Scope::Read, Some("wrong"))
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            a.check("other", false, Scope::Read, Some("reader-secret"))
                .unwrap_err()
                .kind(),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            a.check("jobs", false, Scope::Write, Some("reader-secret"))
                .unwrap_err()
                .kind(),
            ErrorKind::PermissionDenied
        );
        assert!(a
            .check("jobs", false, Scope::Delete, Some("admin-secret"))
            .is_ok());
    }

    #[test]
    fn writes_without_any_write_token_say_how_to_enable_them() {
        let a = Authorizer::from_config(&[], None).unwrap();
        let err = a.check("default", true, Scope::Write, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.message().contains("ARTIFACT_GATEWAY_TOKEN"), "{err}");
    }
}
