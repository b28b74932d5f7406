//! The role's own metrics, named as upstream's so dashboards keep working.

use std::fmt::Write as _;
use std::sync::Weak;

use pharos_server::metrics::Collect;
use pharos_server::{Counter, CounterVec, Gauge, Registry};

/// Counters updated as requests arrive.
#[derive(Clone)]
pub struct AlertsMetrics {
    received: CounterVec,
    pub(crate) invalid: Counter,
    pub(crate) reload_ok: Gauge,
    pub(crate) reload_ok_at: Gauge,
}

impl AlertsMetrics {
    pub(crate) fn new(registry: &Registry) -> Self {
        Self {
            received: registry.counter_vec(
                "alertmanager_alerts_received_total",
                "The total number of received alerts.",
                &["status", "version"],
            ),
            invalid: registry
                .counter_vec(
                    "alertmanager_alerts_invalid_total",
                    "The total number of received alerts that were invalid.",
                    &["version"],
                )
                .with(&["v2"]),
            reload_ok: registry.gauge(
                "alertmanager_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
            ),
            reload_ok_at: registry.gauge(
                "alertmanager_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
            ),
        }
    }

    pub(crate) fn received(&self, firing: bool) {
        let status = if firing { "firing" } else { "resolved" };
        self.received.with(&[status, "v2"]).inc();
    }
}

/// Counts of alerts and silences by state, computed at scrape time from
/// the live state (which the collector does not keep alive).
pub(crate) struct StateCollector(pub(crate) Weak<dyn StateCounts>);

pub(crate) trait StateCounts: Send + Sync {
    /// (active, suppressed) alerts.
    fn alert_states(&self) -> (usize, usize);
    /// (active, pending, expired) silences.
    fn silence_states(&self) -> (usize, usize, usize);
}

impl Collect for StateCollector {
    fn collect(&self, out: &mut String) {
        let Some(state) = self.0.upgrade() else {
            return;
        };
        let (active, suppressed) = state.alert_states();
        let _ = write!(
            out,
            "# HELP alertmanager_alerts How many alerts by state.\n# TYPE alertmanager_alerts gauge\nalertmanager_alerts{{state=\"active\"}} {active}\nalertmanager_alerts{{state=\"suppressed\"}} {suppressed}\n"
        );
        let (a, p, e) = state.silence_states();
        let _ = write!(
            out,
            "# HELP alertmanager_silences How many silences by state.\n# TYPE alertmanager_silences gauge\nalertmanager_silences{{state=\"active\"}} {a}\nalertmanager_silences{{state=\"expired\"}} {e}\nalertmanager_silences{{state=\"pending\"}} {p}\n"
        );
    }
}
