//! The role's own metrics, named as upstream's so dashboards keep working.

use std::fmt::Write as _;
use std::sync::Weak;

use pharos_server::metrics::Collect;
use pharos_server::{Counter, CounterVec, Gauge, HistogramVec, Registry};

/// Counters updated as requests arrive.
#[derive(Clone)]
pub struct AlertsMetrics {
    /// Children resolved once, as upstream does, instead of a label
    /// lookup per received alert.
    received_firing: Counter,
    received_resolved: Counter,
    pub(crate) invalid: Counter,
    pub(crate) reload_ok: Gauge,
    pub(crate) reload_ok_at: Gauge,
    pub(crate) notifications: CounterVec,
    pub(crate) notifications_failed: CounterVec,
    pub(crate) requests: CounterVec,
    pub(crate) requests_failed: CounterVec,
    pub(crate) latency: HistogramVec,
}

impl AlertsMetrics {
    pub(crate) fn new(registry: &Registry) -> Self {
        let received = registry.counter_vec(
            "alertmanager_alerts_received_total",
            "The total number of received alerts.",
            &["status", "version"],
        );
        Self {
            received_firing: received.with(&["firing", "v2"]),
            received_resolved: received.with(&["resolved", "v2"]),
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
            notifications: registry.counter_vec(
                "alertmanager_notifications_total",
                "The total number of attempted notifications.",
                &["integration"],
            ),
            notifications_failed: registry.counter_vec(
                "alertmanager_notifications_failed_total",
                "The total number of failed notifications.",
                &["integration"],
            ),
            requests: registry.counter_vec(
                "alertmanager_notification_requests_total",
                "The total number of attempted notification requests.",
                &["integration"],
            ),
            requests_failed: registry.counter_vec(
                "alertmanager_notification_requests_failed_total",
                "The total number of failed notification requests.",
                &["integration"],
            ),
            latency: registry.histogram_vec(
                "alertmanager_notification_latency_seconds",
                "The latency of notifications in seconds.",
                &["integration"],
                &[1.0, 5.0, 10.0, 15.0, 20.0],
            ),
        }
        .with_integrations()
    }

    /// Upstream exports every integration's series from the start, at 0.
    fn with_integrations(self) -> Self {
        for kind in crate::dispatch::KINDS {
            let _ = self.notifications.with(&[kind]);
            let _ = self.notifications_failed.with(&[kind]);
            let _ = self.requests.with(&[kind]);
            let _ = self.requests_failed.with(&[kind]);
            let _ = self.latency.with(&[kind]);
        }
        self
    }

    pub(crate) fn received(&self, firing: bool) {
        if firing {
            self.received_firing.inc();
        } else {
            self.received_resolved.inc();
        }
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
    /// Aggregation groups in the dispatcher.
    fn aggregation_groups(&self) -> usize;
    /// The `alertmanager_cluster_*` series.
    fn cluster_text(&self, out: &mut String);
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
        let g = state.aggregation_groups();
        let _ = write!(
            out,
            "# HELP alertmanager_dispatcher_aggregation_groups Number of active aggregation groups\n# TYPE alertmanager_dispatcher_aggregation_groups gauge\nalertmanager_dispatcher_aggregation_groups {g}\n"
        );
        state.cluster_text(out);
    }
}
