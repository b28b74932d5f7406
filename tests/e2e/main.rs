//! End-to-end tests: start the real binaries on free loopback ports and
//! talk to them only as a client would.

mod access;
mod alert_ha;
mod alerting;
mod blocks;
mod config_errors;
mod durability;
mod otlp;
mod remote_write;
mod rules;
mod rules_differential;
mod scrape;
mod startup;
mod support;
mod tools;
