//! A Go `text/template` compatible template engine.
//!
//! Prometheus alert annotations, Alertmanager notification templates and
//! LogQL `line_format` are all written for Go's `text/template`; users copy
//! them between systems, so this engine aims to produce the same bytes as Go
//! for the same template and data. See `pkg.go.dev/text/template` for the
//! language; the differences that remain are listed in this crate's README.
//!
//! ```
//! use pharos_template::{ExecOptions, Template, Value, funcs};
//!
//! let t = Template::parse(
//!     "subject",
//!     "[{{ .Status | toUpper }}] {{ range $i, $n := .Names }}{{ if $i }}, {{ end }}{{ $n }}{{ end }}",
//!     &funcs::alertmanager(),
//! )?;
//! let data = Value::Map(
//!     [
//!         ("Status".to_string(), Value::str("firing")),
//!         ("Names".to_string(), Value::from(vec!["db", "web"])),
//!     ]
//!     .into(),
//! );
//! assert_eq!(t.execute("subject", &data, &ExecOptions::zero())?, "[FIRING] db, web");
//! # Ok::<(), pharos_template::TemplateError>(())
//! ```

pub mod am;
mod error;
mod exec;
pub mod format;
pub mod funcs;
mod lex;
mod parse;
mod template;
pub mod time;
mod value;

pub use error::{FuncError, TemplateError};
pub use funcs::{Func, Funcs};
pub use template::{Escape, ExecOptions, MissingKey, Template};
pub use value::{TemplateObject, Value};
