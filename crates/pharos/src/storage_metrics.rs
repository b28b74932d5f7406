//! Exports the object store's operation counters on `/metrics`.

use std::fmt::Write as _;

use pharos_server::metrics::Collect;
use pharos_storage::{ObjectStorage, Op};

pub struct StorageCollector(pub ObjectStorage);

impl Collect for StorageCollector {
    fn collect(&self, out: &mut String) {
        let backend = self.0.backend_name();
        let snapshot: Vec<_> = Op::ALL
            .iter()
            .map(|op| (*op, self.0.metrics().op(*op)))
            .collect();
        for (name, help, pick) in [
            (
                "pharos_storage_operations_total",
                "Object storage operations started, by backend and operation.",
                0,
            ),
            (
                "pharos_storage_operation_failures_total",
                "Object storage operations that failed after retries.",
                1,
            ),
            (
                "pharos_storage_retries_total",
                "Retries of object storage operations after transient errors.",
                2,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (op, s) in &snapshot {
                let v = [s.ops, s.errors, s.retries][pick];
                let _ = writeln!(
                    out,
                    "{name}{{backend=\"{backend}\",operation=\"{}\"}} {v}",
                    op.as_str()
                );
            }
        }
    }
}
