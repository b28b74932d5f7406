//! High availability: replicas find each other with SWIM membership
//! (`foca`) over UDP on `cluster_listen_address` and share silences and
//! notification log entries, so that a group notifies once per cluster.
//!
//! Every datagram starts with a tag byte: SWIM traffic, or a state message
//! (JSON: silences and nflog records) that the receiver merges newest-wins.
//! State is pushed, not piggybacked on SWIM: foca's custom broadcasts are
//! bounded by one packet (1400 bytes) and a full state does not fit, so
//! each change goes straight to every alive member and the whole state
//! goes to a member when it comes up and periodically to all (upstream's
//! memberlist does the same with its push/pull on join and every minute).
//! Datagrams may be lost; the periodic full push repairs that.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use foca::{AccumulatingRuntime, Foca, Identity, OwnedNotification, PostcardCodec, Timer};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::dispatch::LogRecord;
use crate::silences::Silence;

const TAG_SWIM: u8 = 0;
const TAG_STATE: u8 = 1;

/// Largest state datagram we send; bigger states go in several. UDP
/// carries up to 64 KiB, fragmented by IP where the path needs it.
const MAX_STATE_DATAGRAM: usize = 60_000;

/// How often the whole state is pushed to every member.
const FULL_SYNC_EVERY: Duration = Duration::from_secs(60);

/// How often joining is retried while no peer answered.
const JOIN_RETRY: Duration = Duration::from_secs(1);

/// How long a replica that finds no peer waits before it considers itself
/// settled and sends alone.
const SETTLE_ALONE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("cannot listen for cluster gossip on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cluster gossip needs a tokio runtime")]
    NoRuntime,
    #[error("cannot seed the gossip random generator: {0}")]
    Random(String),
}

/// A replica as the membership knows it. `name` orders replicas for the
/// flush positions; `started` and `bump` let a restarted or renewed
/// replica on the same address replace its old self.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
    started: i64,
    bump: u16,
}

impl Identity for Node {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Node {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, other: &Self) -> bool {
        (self.started, self.bump) > (other.started, other.bump)
    }
}

/// Silences and nflog records one replica tells the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateMsg {
    #[serde(default)]
    pub silences: Vec<Silence>,
    #[serde(default)]
    pub nflog: Vec<LogRecord>,
}

impl StateMsg {
    pub fn is_empty(&self) -> bool {
        self.silences.is_empty() && self.nflog.is_empty()
    }

    /// Splits into parts whose JSON stays under [`MAX_STATE_DATAGRAM`]
    /// (a single item larger than that still goes alone).
    fn chunks(&self) -> Vec<StateMsg> {
        let limit = MAX_STATE_DATAGRAM - 64;
        let mut out = Vec::new();
        let mut cur = StateMsg::default();
        let mut size = 0;
        let len = |v: Result<Vec<u8>, serde_json::Error>| v.map_or(0, |v| v.len()) + 1;
        for s in &self.silences {
            let n = len(serde_json::to_vec(s));
            if size + n > limit && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                size = 0;
            }
            cur.silences.push(s.clone());
            size += n;
        }
        for r in &self.nflog {
            let n = len(serde_json::to_vec(r));
            if size + n > limit && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                size = 0;
            }
            cur.nflog.push(r.clone());
            size += n;
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}

/// What the cluster needs from the replica's state.
pub(crate) trait SharedState: Send + Sync {
    /// Merges what a peer said, newest wins.
    fn merge(&self, msg: StateMsg);
    /// Everything to tell a peer that just joined.
    fn full_state(&self) -> StateMsg;
}

/// Settings of the cluster layer.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub listen: String,
    pub peers: Vec<String>,
    pub peer_timeout: Duration,
}

#[derive(Default)]
struct Counters {
    received_full: AtomicU64,
    received_update: AtomicU64,
    sent_full: AtomicU64,
    sent_update: AtomicU64,
    joined: AtomicU64,
    left: AtomicU64,
    bad_datagrams: AtomicU64,
}

/// A running cluster peer. Dropping it does not stop the task; call
/// [`Cluster::stop`].
pub struct Cluster {
    me: Node,
    peer_timeout: Duration,
    members: Mutex<Vec<Node>>,
    ready: watch::Sender<bool>,
    out: mpsc::UnboundedSender<StateMsg>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    counters: Counters,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn random_u64() -> Result<u64, ClusterError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| ClusterError::Random(e.to_string()))?;
    Ok(u64::from_le_bytes(b))
}

/// The address peers reach us on: the bound one, or for a wildcard bind
/// the local address the OS would route from towards the first peer (or,
/// with no peer resolvable yet, towards a documentation address, which
/// picks the default route's interface).
fn advertise(bound: SocketAddr, peers: &[SocketAddr]) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let towards = peers
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([192, 0, 2, 1], 9094)));
    let ip = std::net::UdpSocket::bind((bound.ip(), 0))
        .ok()
        .and_then(|probe| {
            // `connect` on UDP only picks a route; nothing is sent.
            probe.connect(towards).ok()?;
            probe.local_addr().ok().map(|a| a.ip())
        })
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    SocketAddr::new(ip, bound.port())
}

async fn resolve(peers: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for p in peers {
        match tokio::net::lookup_host(p.as_str()).await {
            Ok(addrs) => out.extend(addrs),
            Err(e) => tracing::debug!(peer = %p, error = %e, "cannot resolve cluster peer"),
        }
    }
    out.sort();
    out.dedup();
    out
}

impl Cluster {
    /// Binds the gossip socket and starts the membership task on the
    /// current tokio runtime.
    pub(crate) fn start(
        settings: &ClusterSettings,
        state: Weak<dyn SharedState>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| ClusterError::NoRuntime)?;
        let bind_err = |source| ClusterError::Bind {
            addr: settings.listen.clone(),
            source,
        };
        let std_sock = std::net::UdpSocket::bind(settings.listen.as_str()).map_err(bind_err)?;
        std_sock.set_nonblocking(true).map_err(bind_err)?;
        let bound = std_sock.local_addr().map_err(bind_err)?;
        // Resolving here blocks, but only once at start and only to pick
        // the advertised IP of a wildcard bind; the task resolves again
        // on every join attempt.
        let literal: Vec<SocketAddr> = if bound.ip().is_unspecified() {
            settings
                .peers
                .iter()
                .filter_map(|p| std::net::ToSocketAddrs::to_socket_addrs(p.as_str()).ok())
                .flatten()
                .collect()
        } else {
            Vec::new()
        };
        let me = Node {
            name: crate::uuid::new_v4().map_err(|e| ClusterError::Random(e.to_string()))?,
            addr: advertise(bound, &literal),
            started: crate::time::now_ms(),
            bump: 0,
        };
        let seed = random_u64()?;
        let (out, out_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            me: me.clone(),
            peer_timeout: settings.peer_timeout,
            members: Mutex::new(Vec::new()),
            ready: watch::channel(false).0,
            out,
            stop: watch::channel(false).0,
            task: Mutex::new(None),
            counters: Counters::default(),
        });
        let sock = UdpSocket::from_std(std_sock).map_err(bind_err)?;
        let task = Task {
            cluster: Arc::downgrade(&cluster),
            state,
            sock,
            peers: settings.peers.clone(),
            foca: Foca::new(
                me.clone(),
                foca::Config::new_lan(NonZeroU32::MIN.saturating_add(2)),
                SmallRng::seed_from_u64(seed),
                PostcardCodec,
            ),
            rt: AccumulatingRuntime::new(),
        };
        let stop = cluster.stop.subscribe();
        let jh = handle.spawn(task.run(out_rx, stop));
        *cluster.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(jh);
        tracing::info!(name = %me.name, addr = %me.addr, peers = ?settings.peers, "cluster gossip started");
        Ok(cluster)
    }

    /// This replica.
    pub fn me(&self) -> &Node {
        &self.me
    }

    /// The other alive replicas, sorted by name.
    pub fn members(&self) -> Vec<Node> {
        let mut v = self
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// This replica's index among all alive replicas sorted by name: it
    /// waits that many peer timeouts before a flush.
    pub fn position(&self) -> usize {
        self.members()
            .iter()
            .filter(|m| m.name < self.me.name)
            .count()
    }

    pub fn peer_timeout(&self) -> Duration {
        self.peer_timeout
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the membership settled (a peer answered, or none did
    /// for a while), at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) {
        let mut rx = self.ready.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|r| *r)).await;
    }

    /// Tells every alive peer about these changes.
    pub fn broadcast(&self, msg: StateMsg) {
        if !msg.is_empty() {
            let _ = self.out.send(msg);
        }
    }

    /// Leaves the cluster and stops the task.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }

    /// Stops the task without waiting for it (it leaves the cluster when
    /// the runtime still runs it).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// `/api/v2/status`'s `cluster` object.
    pub fn status_json(&self) -> serde_json::Value {
        let mut peers =
            vec![serde_json::json!({"name": self.me.name, "address": self.me.addr.to_string()})];
        peers.extend(
            self.members()
                .iter()
                .map(|m| serde_json::json!({"name": m.name, "address": m.addr.to_string()})),
        );
        peers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        serde_json::json!({
            "name": self.me.name,
            "status": if self.is_ready() { "ready" } else { "settling" },
            "peers": peers,
        })
    }

    /// Upstream's `alertmanager_cluster_*` series in the text format.
    pub(crate) fn metrics_text(&self, out: &mut String) {
        use std::fmt::Write as _;
        let c = &self.counters;
        let members = self.members().len() + 1;
        let _ = write!(
            out,
            "# HELP alertmanager_cluster_enabled Indicates whether the clustering is enabled or not.\n# TYPE alertmanager_cluster_enabled gauge\nalertmanager_cluster_enabled 1\n\
# HELP alertmanager_cluster_members Number indicating current number of members in cluster.\n# TYPE alertmanager_cluster_members gauge\nalertmanager_cluster_members {members}\n\
# HELP alertmanager_peer_position Position the Alertmanager instance believes it's in. The position determines a peer's behavior in the cluster.\n# TYPE alertmanager_peer_position gauge\nalertmanager_peer_position {}\n\
# HELP alertmanager_cluster_messages_received_total Total number of cluster messages received.\n# TYPE alertmanager_cluster_messages_received_total counter\nalertmanager_cluster_messages_received_total{{msg_type=\"full_state\"}} {}\nalertmanager_cluster_messages_received_total{{msg_type=\"update\"}} {}\n\
# HELP alertmanager_cluster_messages_sent_total Total number of cluster messages sent.\n# TYPE alertmanager_cluster_messages_sent_total counter\nalertmanager_cluster_messages_sent_total{{msg_type=\"full_state\"}} {}\nalertmanager_cluster_messages_sent_total{{msg_type=\"update\"}} {}\n\
# HELP alertmanager_cluster_peers_joined_total A counter of the number of peers that have joined.\n# TYPE alertmanager_cluster_peers_joined_total counter\nalertmanager_cluster_peers_joined_total {}\n\
# HELP alertmanager_cluster_peers_left_total A counter of the number of peers that have left.\n# TYPE alertmanager_cluster_peers_left_total counter\nalertmanager_cluster_peers_left_total {}\n\
# HELP alertmanager_cluster_messages_invalid_total Cluster datagrams that could not be decoded.\n# TYPE alertmanager_cluster_messages_invalid_total counter\nalertmanager_cluster_messages_invalid_total {}\n",
            self.position(),
            c.received_full.load(Ordering::Relaxed),
            c.received_update.load(Ordering::Relaxed),
            c.sent_full.load(Ordering::Relaxed),
            c.sent_update.load(Ordering::Relaxed),
            c.joined.load(Ordering::Relaxed),
            c.left.load(Ordering::Relaxed),
            c.bad_datagrams.load(Ordering::Relaxed),
        );
    }
}

/// A state message on the wire; `full` tells a full-state push from a
/// single change, only for the metrics.
#[derive(Serialize, Deserialize)]
struct Envelope {
    full: bool,
    #[serde(flatten)]
    msg: StateMsg,
}

struct Task {
    cluster: Weak<Cluster>,
    state: Weak<dyn SharedState>,
    sock: UdpSocket,
    peers: Vec<String>,
    foca: Foca<Node, PostcardCodec, SmallRng, foca::NoCustomBroadcast>,
    rt: AccumulatingRuntime<Node>,
}

impl Task {
    async fn run(
        mut self,
        mut out_rx: mpsc::UnboundedReceiver<StateMsg>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (timer_tx, mut timer_rx) = mpsc::unbounded_channel::<Timer<Node>>();
        let mut buf = vec![0u8; 65_536];
        let mut join = tokio::time::interval(JOIN_RETRY);
        join.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync = tokio::time::interval_at(
            tokio::time::Instant::now() + FULL_SYNC_EVERY,
            FULL_SYNC_EVERY,
        );
        let settle_alone = tokio::time::sleep(SETTLE_ALONE);
        tokio::pin!(settle_alone);
        let mut settled_alone = false;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                r = self.sock.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.on_datagram(&buf[..n], from),
                    Err(e) => tracing::debug!(error = %e, "cluster socket receive failed"),
                },
                Some(t) = timer_rx.recv() => {
                    if let Err(e) = self.foca.handle_timer(t, &mut self.rt) {
                        tracing::debug!(error = %e, "cluster timer");
                    }
                }
                Some(msg) = out_rx.recv() => {
                    let members = self.members();
                    self.send_state(&msg, false, &members).await;
                }
                _ = join.tick() => {
                    // Keep knocking while alone: peers may start later or
                    // their names may not resolve yet.
                    if self.foca.num_members() == 0 {
                        for addr in resolve(&self.peers).await {
                            let dst = Node { name: String::new(), addr, started: 0, bump: 0 };
                            if addr != self.foca.identity().addr
                                && let Err(e) = self.foca.announce(dst, &mut self.rt)
                            {
                                tracing::debug!(error = %e, "cluster announce");
                            }
                        }
                    }
                }
                _ = sync.tick() => {
                    if let Some(state) = self.state.upgrade() {
                        let full = state.full_state();
                        let members = self.members();
                        self.send_state(&full, true, &members).await;
                    }
                }
                () = &mut settle_alone, if !settled_alone => {
                    settled_alone = true;
                    if let Some(c) = self.cluster.upgrade() {
                        c.ready.send_replace(true);
                    }
                }
            }
            self.drain(&timer_tx).await;
        }
        // A graceful leave lets peers take over at once instead of after
        // suspicion times out.
        if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
            tracing::debug!(error = %e, "cluster leave");
        }
        self.drain(&timer_tx).await;
        tracing::info!("cluster gossip stopped");
    }

    fn members(&self) -> Vec<Node> {
        self.foca.iter_members().map(|m| m.id().clone()).collect()
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        let Some((&tag, body)) = data.split_first() else {
            return;
        };
        match tag {
            TAG_SWIM => {
                if let Err(e) = self.foca.handle_data(body, &mut self.rt) {
                    tracing::debug!(%from, error = %e, "bad cluster datagram");
                    self.count(|c| &c.bad_datagrams);
                }
            }
            TAG_STATE => match serde_json::from_slice::<Envelope>(body) {
                Ok(env) => {
                    if env.full {
                        self.count(|c| &c.received_full);
                    } else {
                        self.count(|c| &c.received_update);
                    }
                    if let Some(state) = self.state.upgrade() {
                        state.merge(env.msg);
                    }
                }
                Err(e) => {
                    tracing::debug!(%from, error = %e, "bad cluster state message");
                    self.count(|c| &c.bad_datagrams);
                }
            },
            _ => self.count(|c| &c.bad_datagrams),
        }
    }

    fn count(&self, f: impl Fn(&Counters) -> &AtomicU64) {
        if let Some(c) = self.cluster.upgrade() {
            f(&c.counters).fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn send_state(&self, msg: &StateMsg, full: bool, to: &[Node]) {
        if to.is_empty() || msg.is_empty() {
            return;
        }
        for part in msg.chunks() {
            let mut bytes = vec![TAG_STATE];
            // Plain structs of strings and numbers always serialize.
            bytes.extend(serde_json::to_vec(&Envelope { full, msg: part }).unwrap_or_default());
            for m in to {
                if let Err(e) = self.sock.send_to(&bytes, m.addr).await {
                    tracing::debug!(to = %m.addr, error = %e, "cluster state send failed");
                    continue;
                }
                if full {
                    self.count(|c| &c.sent_full);
                } else {
                    self.count(|c| &c.sent_update);
                }
            }
        }
    }

    /// Carries out what foca asked for: datagrams, timers, and membership
    /// changes (which update the shared member list and push our state to
    /// newcomers).
    async fn drain(&mut self, timers: &mpsc::UnboundedSender<Timer<Node>>) {
        loop {
            let mut progressed = false;
            while let Some((to, data)) = self.rt.to_send() {
                progressed = true;
                let mut d = Vec::with_capacity(data.len() + 1);
                d.push(TAG_SWIM);
                d.extend_from_slice(&data);
                if let Err(e) = self.sock.send_to(&d, to.addr).await {
                    tracing::debug!(to = %to.addr, error = %e, "cluster send failed");
                }
            }
            while let Some((after, timer)) = self.rt.to_schedule() {
                progressed = true;
                let tx = timers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(timer);
                });
            }
            while let Some(n) = self.rt.to_notify() {
                progressed = true;
                self.on_notification(n).await;
            }
            if !progressed {
                return;
            }
        }
    }

    async fn on_notification(&mut self, n: OwnedNotification<Node>) {
        let Some(cluster) = self.cluster.upgrade() else {
            return;
        };
        match n {
            OwnedNotification::MemberUp(node) => {
                tracing::info!(name = %node.name, addr = %node.addr, "cluster peer joined");
                cluster.counters.joined.fetch_add(1, Ordering::Relaxed);
                {
                    let mut m = cluster.members.lock().unwrap_or_else(|p| p.into_inner());
                    m.retain(|x| x.addr != node.addr);
                    m.push(node.clone());
                }
                if let Some(state) = self.state.upgrade() {
                    let full = state.full_state();
                    self.send_state(&full, true, std::slice::from_ref(&node))
                        .await;
                }
                cluster.ready.send_replace(true);
            }
            OwnedNotification::MemberDown(node) => {
                tracing::info!(name = %node.name, addr = %node.addr, "cluster peer left");
                cluster.counters.left.fetch_add(1, Ordering::Relaxed);
                cluster
                    .members
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|x| x != &node);
            }
            OwnedNotification::Rename(old, new) => {
                let mut m = cluster.members.lock().unwrap_or_else(|p| p.into_inner());
                for x in m.iter_mut() {
                    if *x == old {
                        *x = new.clone();
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> LogRecord {
        LogRecord {
            group_key: format!("{{}}:{{g=\"{i}\"}}"),
            receiver: "r".into(),
            integration: "webhook".into(),
            index: 0,
            send_resolved: true,
            firing: vec![i as u64; 20],
            resolved: vec![],
            at: i as i64,
        }
    }

    #[test]
    fn big_states_split_into_datagrams_that_lose_nothing() {
        let msg = StateMsg {
            silences: Vec::new(),
            nflog: (0..2000).map(record).collect(),
        };
        let parts = msg.chunks();
        assert!(parts.len() > 1, "2000 records do not fit one datagram");
        let mut back = StateMsg::default();
        for p in parts {
            let bytes = serde_json::to_vec(&Envelope { full: true, msg: p }).unwrap();
            assert!(bytes.len() < MAX_STATE_DATAGRAM, "{}", bytes.len());
            let env: Envelope = serde_json::from_slice(&bytes).unwrap();
            assert!(env.full);
            back.nflog.extend(env.msg.nflog);
        }
        assert_eq!(back, msg);
        assert!(StateMsg::default().chunks().is_empty());
    }

    #[test]
    fn a_restarted_or_renewed_replica_wins_its_address() {
        let addr: SocketAddr = "127.0.0.1:9094".parse().unwrap();
        let old = Node {
            name: "a".into(),
            addr,
            started: 1,
            bump: 0,
        };
        let renewed = old.renew().unwrap();
        assert_eq!(renewed.addr(), addr);
        assert!(renewed.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&renewed));
        let restarted = Node {
            name: "b".into(),
            started: 2,
            ..old.clone()
        };
        assert!(restarted.win_addr_conflict(&renewed));
    }

    #[test]
    fn wildcard_binds_advertise_a_routable_address() {
        let bound: SocketAddr = "0.0.0.0:9094".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:9095".parse().unwrap();
        assert_eq!(advertise(bound, &[peer]), "127.0.0.1:9094".parse().unwrap());
        let fixed: SocketAddr = "127.0.0.2:1".parse().unwrap();
        assert_eq!(advertise(fixed, &[peer]), fixed);
    }
}
