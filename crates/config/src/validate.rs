//! Checks that serde cannot express: ranges, addresses, combinations.

/// Semantic checks of a config section, run after parsing.
///
/// Report problems to the [`Validator`] with key paths relative to the
/// section; the caller places the section with [`Validator::section`]. The
/// default does nothing.
pub trait Validate {
    /// Records every problem found in `self`.
    fn validate(&self, _v: &mut Validator) {}
}

/// Collects validation problems as (dotted key path, message) pairs.
///
/// Loading reports the first one, with the line found from its key path.
#[derive(Debug, Default)]
pub struct Validator {
    prefix: String,
    errors: Vec<(String, String)>,
}

impl Validator {
    /// An empty validator at the top level.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` (relative to the current prefix) is wrong. The
    /// message should say what is wrong and what to write instead.
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let path = join(&self.prefix, key);
        self.errors.push((path, message.into()));
    }

    /// Records `message` for `key` unless `ok` holds.
    pub fn check(&mut self, ok: bool, key: &str, message: impl Into<String>) {
        if !ok {
            self.error(key, message);
        }
    }

    /// Runs `f` with `prefix` (`server`, `targets[2]`) added to every key it reports.
    pub fn nested(&mut self, prefix: &str, f: impl FnOnce(&mut Validator)) {
        let saved = self.prefix.len();
        self.prefix = join(&self.prefix, prefix);
        f(self);
        self.prefix.truncate(saved);
    }

    /// Validates `section` under `prefix`: how a top-level config delegates
    /// to the sections it is composed of.
    pub fn section<T: Validate + ?Sized>(&mut self, prefix: &str, section: &T) {
        self.nested(prefix, |v| section.validate(v));
    }

    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems in the order they were reported.
    pub fn errors(&self) -> &[(String, String)] {
        &self.errors
    }

    /// Takes the problems.
    pub fn into_errors(self) -> Vec<(String, String)> {
        self.errors
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else if key.is_empty() {
        prefix.to_owned()
    } else if key.starts_with('[') {
        format!("{prefix}{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Server {
        port: u32,
    }

    impl Validate for Server {
        fn validate(&self, v: &mut Validator) {
            v.check(self.port > 0, "port", "must be above 0");
        }
    }

    #[test]
    fn prefixes_nest_and_unwind() {
        let mut v = Validator::new();
        assert!(v.is_empty());
        v.section("server", &Server { port: 0 });
        v.nested("targets", |v| {
            v.nested("[1]", |v| v.error("address", "bad address"));
            v.error("", "too many");
        });
        v.check(true, "never", "not recorded");
        v.error("top", "at the top");
        let errors: Vec<(&str, &str)> = v
            .errors()
            .iter()
            .map(|(k, m)| (k.as_str(), m.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                ("server.port", "must be above 0"),
                ("targets[1].address", "bad address"),
                ("targets", "too many"),
                ("top", "at the top"),
            ]
        );
        assert_eq!(v.into_errors().len(), 4);
    }

    #[test]
    fn default_validate_accepts_anything() {
        struct Nothing;
        impl Validate for Nothing {}
        let mut v = Validator::new();
        v.section("x", &Nothing);
        assert!(v.is_empty());
    }
}
