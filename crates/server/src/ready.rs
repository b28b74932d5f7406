//! Readiness: each role registers the components it waits for; `/ready`
//! answers 200 only when every component behind that listener is ready and
//! the process is not shutting down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    components: Mutex<BTreeMap<String, Arc<AtomicBool>>>,
    stopping: AtomicBool,
}

/// Held by a role; flips its component to ready (or back).
#[derive(Clone)]
pub struct ReadyHandle(Arc<AtomicBool>);

impl ReadyHandle {
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a component, not ready until its handle says so.
    pub fn register(&self, name: &str) -> ReadyHandle {
        let flag = Arc::new(AtomicBool::new(false));
        self.inner
            .components
            .lock()
            .expect("readiness lock")
            .insert(name.to_owned(), flag.clone());
        ReadyHandle(flag)
    }

    pub fn set_stopping(&self) {
        self.inner.stopping.store(true, Ordering::Release);
    }

    /// `Ok(())` when all of `names` are ready; otherwise what to tell the
    /// caller. Unknown names count as not ready.
    pub fn check(&self, names: &[String]) -> Result<(), String> {
        if self.inner.stopping.load(Ordering::Acquire) {
            return Err("shutting down".into());
        }
        let comps = self.inner.components.lock().expect("readiness lock");
        let waiting: Vec<&str> = names
            .iter()
            .filter(|n| !comps.get(*n).is_some_and(|f| f.load(Ordering::Acquire)))
            .map(String::as_str)
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("not ready: waiting for {}", waiting.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let r = Readiness::new();
        let a = r.register("metrics-server");
        let names = vec!["metrics-server".to_string()];
        assert_eq!(
            r.check(&names),
            Err("not ready: waiting for metrics-server".into())
        );
        a.set_ready(true);
        assert_eq!(r.check(&names), Ok(()));
        assert!(r.check(&["nope".into()]).is_err());
        r.set_stopping();
        assert_eq!(r.check(&names), Err("shutting down".into()));
    }
}
