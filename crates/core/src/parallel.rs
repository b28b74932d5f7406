//! The read paths' parallelism (the TSDB's series reads, the PromQL
//! engine's per-series evaluation, the JSON writer): one pool of worker
//! threads, one per core, started on first use and kept.
//!
//! Work that runs on a pool worker ([`try_spawn`], [`install`]) splits its
//! parallel maps ([`map_chunks`], [`join`]) over the pool: the worker
//! itself takes part, idle workers steal the rest, and no thread is
//! started or woken per map. Before the pool, every map started scoped
//! threads; on small VMs the thread starts and wake-ups cost a dashboard
//! query as much as a fifth of its time.
//!
//! The pool takes at most one top-level job per worker. Past that (a
//! burst of queries) a job runs on the caller's own thread with its maps
//! sequential, so the operating system shares the cores between the
//! jobs as before and a long query cannot hold short ones in a queue.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

fn pool() -> &'static rayon_core::ThreadPool {
    static POOL: OnceLock<rayon_core::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(cores())
            .thread_name(|i| format!("pharos-read-{i}"))
            .build()
            // building spawns the threads: without them the process could
            // not have started its own either
            .expect("starting the read worker threads")
    })
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Top-level jobs on the pool or queued for it.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while a job runs outside the pool because it was full: its
    /// maps then run on this thread alone.
    static SEQUENTIAL: Cell<bool> = const { Cell::new(false) };
}

/// One top-level job's place on the pool, given back when dropped.
struct Slot;

impl Slot {
    fn claim() -> Option<Self> {
        if ACTIVE.fetch_add(1, Ordering::AcqRel) < cores() {
            Some(Slot)
        } else {
            ACTIVE.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

fn on_pool() -> bool {
    rayon_core::current_thread_index().is_some()
}

/// Runs `f` here with its maps sequential on this thread (as before
/// afterwards, even if `f` panics).
fn sequential<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SEQUENTIAL.set(self.0);
        }
    }
    let _restore = Restore(SEQUENTIAL.replace(true));
    f()
}

/// Runs `f` on a pool worker in the background when the pool has room,
/// and gives `f` back otherwise (run it on a thread of its own then:
/// [`map_chunks`] there stays on that thread). A panic in `f` ends `f`
/// only; whatever it was to send is dropped with it.
pub fn try_spawn<F: FnOnce() + Send + 'static>(f: F) -> Result<(), F> {
    if on_pool() {
        // a job spawned from a job would wait for a slot its parent holds
        return Err(f);
    }
    let Some(slot) = Slot::claim() else {
        return Err(f);
    };
    pool().spawn(move || {
        let _slot = slot;
        // the default panic hook has reported it
        let _ = catch_unwind(AssertUnwindSafe(f));
    });
    Ok(())
}

/// Runs `f` on a pool worker and returns its result (a panic in `f`
/// resumes here): right here when already on one, here with sequential
/// maps when the pool is full.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if on_pool() {
        return f();
    }
    if SEQUENTIAL.get() {
        return f();
    }
    match Slot::claim() {
        Some(_slot) => pool().install(f),
        None => sequential(f),
    }
}

/// Runs `a` and `b`, side by side where a pool worker is free, and
/// returns both results.
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if cores() <= 1 || SEQUENTIAL.get() {
        return (a(), b());
    }
    install(|| {
        if on_pool() {
            rayon_core::join(a, b)
        } else {
            (a(), b())
        }
    })
}

/// Splits `items` into `threads * chunks_per_thread` chunks (at most one
/// per item) and maps each with `f` on up to `threads` pool workers (the
/// caller being one of them when it is a worker), returning the results
/// in chunk order.
///
/// More chunks than threads, each taken by whichever thread is free: on
/// shared cores one thread may stall for a scheduler tick, and the other
/// then does more of the work instead of waiting for it; a worker that
/// comes late finds nothing left and returns at once. Chunks are handed
/// over by value, so `f` can drop each item once done with it: its freed
/// buffers serve the next allocations on the same thread while still in
/// cache. With `threads <= 1` it is one call of `f` on all items.
pub fn map_chunks<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    chunks_per_thread: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let threads = if SEQUENTIAL.get() {
        1
    } else {
        threads.min(items.len())
    };
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
    install(|| {
        if on_pool() {
            // a panic in a helper resumes here once all have ended
            rayon_core::scope(|sc| {
                for _ in 1..threads {
                    sc.spawn(|_| run());
                }
                run();
            });
        } else {
            run();
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
    fn maps_run_on_the_pool_when_it_has_room() {
        let out = map_chunks((0..64).collect::<Vec<u32>>(), 2, 4, |c| {
            (on_pool(), c.len())
        });
        assert!(out.iter().all(|(pooled, _)| *pooled));
        assert_eq!(out.iter().map(|(_, n)| n).sum::<usize>(), 64);
        assert!(install(on_pool));
        assert!(!on_pool(), "the caller is not a worker");
    }

    #[test]
    fn a_full_pool_leaves_jobs_to_their_callers_threads() {
        use std::sync::{Arc, Condvar};
        // hold every slot with a job that waits for the gate
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let mut held = 0;
        loop {
            let g = gate.clone();
            let job = move || {
                let (open, cv) = &*g;
                let mut o = open.lock().unwrap();
                while !*o {
                    o = cv.wait(o).unwrap();
                }
            };
            if try_spawn(job).is_err() {
                break;
            }
            held += 1;
            assert!(held <= cores(), "more jobs than workers were taken");
        }
        assert_eq!(held, cores());
        // now a job runs here, and its maps on this thread alone
        let me = std::thread::current().id();
        let (pooled, threads) = install(|| {
            let ids = map_chunks((0..64).collect::<Vec<u32>>(), 4, 4, |c| {
                (std::thread::current().id(), c.len())
            });
            (on_pool(), ids)
        });
        assert!(!pooled);
        assert_eq!(threads.len(), 1, "one chunk: the map ran sequentially");
        assert!(threads.iter().all(|(id, _)| *id == me));
        let (a, b) = join(|| std::thread::current().id(), || 7);
        assert_eq!((a, b), (me, 7));
        // the held slots come back once their jobs end
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !install(on_pool) {
            assert!(std::time::Instant::now() < deadline, "slots not returned");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn panics_reach_the_caller_and_leave_the_pool_working() {
        let r = catch_unwind(|| {
            map_chunks((0..64).collect::<Vec<u32>>(), 2, 4, |c| {
                assert!(!c.contains(&40), "bad item");
                c.len()
            })
        });
        assert!(r.is_err());
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(try_spawn(|| panic!("a failing background job")).is_ok());
        // its slot comes back (tests run one per process under nextest:
        // no other test holds one)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while ACTIVE.load(Ordering::Acquire) != 0 {
            assert!(std::time::Instant::now() < deadline, "slot not returned");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(try_spawn(move || tx.send(on_pool()).unwrap()).is_ok());
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)),
            Ok(true)
        );
        let out = map_chunks((0..8).collect::<Vec<u32>>(), 2, 1, |c| c.len());
        assert_eq!(out.iter().sum::<usize>(), 8);
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
