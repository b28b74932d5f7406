//! Process-wide logging: `tracing` to stderr, logfmt-like or JSON.

use tracing::level_filters::LevelFilter;

pub fn init(level: &str, format: &str) {
    let level = match level {
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => LevelFilter::INFO,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    // a second init (tests running several servers in one process) is fine
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
