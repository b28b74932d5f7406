//! `metrics-server`: one role, with upstream's flags.

use pharos::Role;

fn main() -> std::process::ExitCode {
    pharos::main_for(Some(Role::MetricsServer))
}
