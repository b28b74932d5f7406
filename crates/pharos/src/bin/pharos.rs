//! `pharos`: every role in one process on local disk (or the roles
//! named by `-target`).

fn main() -> std::process::ExitCode {
    pharos::main_for(None)
}
