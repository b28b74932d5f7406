//! Tenant ids from the `X-Scope-OrgID` header.
//!
//! The rules follow Cortex/Loki/Tempo: at most 150 bytes of
//! `[a-zA-Z0-9!-_.*'()]`, never `.` or `..`. Without the header the tenant
//! is `anonymous` unless the deployment requires it.

use std::fmt;

pub const ORG_ID_HEADER: &str = "X-Scope-OrgID";
pub const ANONYMOUS: &str = "anonymous";
const MAX_LEN: usize = 150;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    #[error("no org id")]
    Missing,
    #[error("tenant ID is too long: max {MAX_LEN} characters")]
    TooLong,
    #[error("tenant ID is '.' or '..'")]
    Unsafe,
    #[error("tenant ID '{id}' contains unsupported character '{ch}'")]
    BadChar { id: String, ch: char },
    #[error("multiple org IDs present")]
    Multiple,
}

impl TenantId {
    pub fn anonymous() -> Self {
        Self(ANONYMOUS.to_owned())
    }

    pub fn parse(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Missing);
        }
        if id.len() > MAX_LEN {
            return Err(TenantError::TooLong);
        }
        if id == "." || id == ".." {
            return Err(TenantError::Unsafe);
        }
        if let Some(ch) = id.chars().find(|c| !is_supported(*c)) {
            return Err(TenantError::BadChar {
                id: id.to_owned(),
                ch,
            });
        }
        Ok(Self(id.to_owned()))
    }

    /// Resolve the header value: absent means anonymous unless `required`.
    /// Upstream joins several tenants with `|` for federated reads; a
    /// single-tenant write path rejects that.
    pub fn from_header(value: Option<&str>, required: bool) -> Result<Self, TenantError> {
        match value.map(str::trim) {
            None | Some("") if required => Err(TenantError::Missing),
            None | Some("") => Ok(Self::anonymous()),
            Some(v) if v.contains('|') => Err(TenantError::Multiple),
            Some(v) => Self::parse(v),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_supported(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_header_is_anonymous_unless_required() {
        assert_eq!(
            TenantId::from_header(None, false).unwrap().as_str(),
            "anonymous"
        );
        assert_eq!(TenantId::from_header(None, true), Err(TenantError::Missing));
        assert_eq!(
            TenantId::from_header(Some(" "), true),
            Err(TenantError::Missing)
        );
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(matches!(
            TenantId::parse("a/b"),
            Err(TenantError::BadChar { ch: '/', .. })
        ));
        assert_eq!(TenantId::parse(".."), Err(TenantError::Unsafe));
        assert_eq!(TenantId::parse(&"x".repeat(151)), Err(TenantError::TooLong));
        assert_eq!(
            TenantId::from_header(Some("a|b"), false),
            Err(TenantError::Multiple)
        );
        assert_eq!(
            TenantId::parse("team-1_(prod).x*").unwrap().as_str(),
            "team-1_(prod).x*"
        );
    }
}
