//! Strings that must never be printed: passwords, tokens, keys.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MASK: &str = "<secret>";

/// A secret string. `Debug`, `Display` and `Serialize` show `<secret>` (as
/// Prometheus does in `/api/v1/status/config`), or `""` when empty so an
/// operator can still see whether one is set. Read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call it only where the value is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn masked(&self) -> &'static str {
        if self.0.is_empty() { "" } else { MASK }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.masked())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Auth {
        user: String,
        password: Secret,
    }

    #[test]
    fn never_leaks_in_debug_display_or_serialize() {
        let auth: Auth = serde_yaml::from_str("user: bob\npassword: hunter2\n").unwrap();
        assert_eq!(auth.password.expose(), "hunter2");
        let debug = format!("{auth:?}");
        assert_eq!(debug, r#"Auth { user: "bob", password: "<secret>" }"#);
        assert_eq!(auth.password.to_string(), "<secret>");
        let yaml = serde_yaml::to_string(&auth).unwrap();
        assert_eq!(yaml, "user: bob\npassword: <secret>\n");
        let json_like = format!("{:#?}", auth.password);
        assert!(!json_like.contains("hunter2"));
    }

    #[test]
    fn empty_secret_shows_as_empty() {
        let secret = Secret::default();
        assert!(secret.is_empty());
        assert_eq!(format!("{secret:?}"), "\"\"");
        assert_eq!(serde_yaml::to_string(&secret).unwrap(), "''\n");
        assert!(!Secret::from("x").is_empty());
        assert_eq!(Secret::new("abc").expose(), "abc");
    }
}
