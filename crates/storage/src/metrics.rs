//! Counters of storage operations, kept as plain atomics so this crate does
//! not pick a metrics library; the server crate reads them with
//! [`StorageMetrics::snapshot`] and exports them on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of operation counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    Put,
    PutIfAbsent,
    Get,
    GetRange,
    Head,
    List,
    ListDirs,
    Delete,
    DeletePrefix,
    UploadStart,
    UploadPart,
    UploadComplete,
    UploadAbort,
}

impl Op {
    pub const ALL: [Op; 13] = [
        Op::Put,
        Op::PutIfAbsent,
        Op::Get,
        Op::GetRange,
        Op::Head,
        Op::List,
        Op::ListDirs,
        Op::Delete,
        Op::DeletePrefix,
        Op::UploadStart,
        Op::UploadPart,
        Op::UploadComplete,
        Op::UploadAbort,
    ];

    /// Label value for metrics and the name used in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::PutIfAbsent => "put_if_absent",
            Op::Get => "get",
            Op::GetRange => "get_range",
            Op::Head => "head",
            Op::List => "list",
            Op::ListDirs => "list_dirs",
            Op::Delete => "delete",
            Op::DeletePrefix => "delete_prefix",
            Op::UploadStart => "upload_start",
            Op::UploadPart => "upload_part",
            Op::UploadComplete => "upload_complete",
            Op::UploadAbort => "upload_abort",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
struct Counters {
    ops: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
}

/// Totals for one [`Op`] since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Operations started (each counts once however often it was retried).
    pub ops: u64,
    /// Operations that returned an error to the caller (a missing object
    /// asked for by `get` counts; a missing object passed to `delete` does not).
    pub errors: u64,
    /// Extra attempts made by our retry loop (not object_store's own HTTP
    /// retries, which it does not report).
    pub retries: u64,
}

/// Counters shared by an [`crate::ObjectStorage`] and all its scoped views.
#[derive(Debug, Default)]
pub struct StorageMetrics {
    counters: [Counters; Op::ALL.len()],
}

impl StorageMetrics {
    pub fn op(&self, op: Op) -> OpStats {
        let c = &self.counters[op.index()];
        OpStats {
            ops: c.ops.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    pub fn snapshot(&self) -> Vec<(Op, OpStats)> {
        Op::ALL.iter().map(|&op| (op, self.op(op))).collect()
    }

    pub(crate) fn started(&self, op: Op) {
        self.counters[op.index()]
            .ops
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, op: Op) {
        self.counters[op.index()]
            .errors
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self, op: Op) {
        self.counters[op.index()]
            .retries
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_index_their_own_counters() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i, "{op:?}");
        }
        let m = StorageMetrics::default();
        m.started(Op::Get);
        m.started(Op::Get);
        m.failed(Op::Get);
        m.retried(Op::UploadAbort);
        assert_eq!(
            m.op(Op::Get),
            OpStats {
                ops: 2,
                errors: 1,
                retries: 0
            }
        );
        assert_eq!(m.op(Op::UploadAbort).retries, 1);
        assert_eq!(m.snapshot().len(), Op::ALL.len());
    }
}
