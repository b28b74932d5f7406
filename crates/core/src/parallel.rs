//! One parallel map for the read paths that split work over the cores
//! (the TSDB's series reads, the PromQL engine's per-series evaluation).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Splits `items` into `threads * chunks_per_thread` chunks (at most one
/// per item) and maps each with `f` on `threads` scoped threads (the caller
/// being one of them), returning the results in chunk order.
///
/// More chunks than threads, each taken by whichever thread is free: on
/// shared cores one thread may stall for a scheduler tick, and the other
/// then does more of the work instead of waiting for it. Chunks are handed
/// over by value, so `f` can drop each item once done with it: its freed
/// buffers serve the next allocations on the same thread while still in
/// cache. With `threads <= 1` it is one call of `f` on all items.
pub fn map_chunks<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    chunks_per_thread: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return vec![f(items)];
    }
    let n = threads
        .saturating_mul(chunks_per_thread.max(1))
        .min(items.len());
    let per = items.len().div_ceil(n);
    let mut chunks: Vec<Mutex<Option<Vec<T>>>> = Vec::with_capacity(n);
    let mut rest = items.into_iter();
    loop {
        let c: Vec<T> = rest.by_ref().take(per).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(Mutex::new(Some(c)));
    }
    let results: Vec<Mutex<Option<R>>> = chunks.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let run = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = chunks.get(i) else { break };
            let chunk = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(chunk) = chunk {
                let r = f(chunk);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            }
        }
    };
    std::thread::scope(|sc| {
        let handles: Vec<_> = (1..threads).map(|_| sc.spawn(run)).collect();
        run();
        for h in handles {
            // a panic there is a bug, surfaced as if it happened here
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
    });
    // every chunk was taken and mapped once the threads are joined
    results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_whatever_the_split() {
        for (len, threads, per) in [
            (0, 2, 4),
            (1, 2, 4),
            (7, 2, 4),
            (100, 3, 4),
            (5, 8, 1),
            (9, 1, 4),
        ] {
            let items: Vec<usize> = (0..len).collect();
            let out = map_chunks(items, threads, per, |c: Vec<usize>| c);
            let flat: Vec<usize> = out.into_iter().flatten().collect();
            assert_eq!(flat, (0..len).collect::<Vec<_>>(), "{len} {threads} {per}");
        }
    }

    #[test]
    fn every_thread_may_take_work() {
        let seen = Mutex::new(std::collections::HashSet::new());
        let out = map_chunks((0..64).collect::<Vec<u32>>(), 2, 8, |c| {
            seen.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(std::time::Duration::from_millis(2));
            c.len()
        });
        assert_eq!(out.iter().sum::<usize>(), 64);
        assert_eq!(out.len(), 16);
        assert!(!seen.lock().unwrap().is_empty());
    }
}
