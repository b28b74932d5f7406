//! Config loading shared by every Pharos role.
//!
//! A role crate defines its own section (`#[serde(default, deny_unknown_fields)]`
//! plus `impl Default` and `impl Validate`); the app composes sections into one
//! top-level struct and calls [`load_file`]. Loading expands `${VAR}` /
//! `${VAR:-default}`, parses strictly with serde_yaml, then validates; every
//! failure is one [`ConfigError`] naming the file, line and key.

mod bytesize;
mod duration;
mod env;
mod error;
mod load;
mod locate;
mod secret;
mod sections;
mod validate;

pub use bytesize::{ByteSize, ParseByteSizeError};
pub use duration::{Duration, ParseDurationError};
pub use env::{Env, expand_env, read_dotenv};
pub use error::ConfigError;
pub use load::{Loaded, load_file, load_str};
pub use secret::Secret;
pub use sections::{ClusterConfig, LimitsConfig};
pub use validate::{Validate, Validator};
