//! Start-up shared by every binary: flags → config → storage → roles →
//! listeners, then serve until SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use pharos_config::{Env, Validator, load_str};
use pharos_server::{Listener, Readiness, ReadyHandle, Registry, Server, Shutdown};
use pharos_storage::ObjectStorage;

use crate::cli::Args;
use crate::config::PharosConfig;
use crate::roles::{Family, Role, parse_targets};

/// The `main` of every binary. `fixed` is the role a role binary runs;
/// `None` for the all-in-one `pharos`, which takes `-target`.
pub fn main_for(fixed: Option<Role>) -> ExitCode {
    let args = match Args::parse_go_style(std::env::args()) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    use crate::cli::{Checkable, Command};
    match &args.command {
        Some(Command::PromqlTest { files }) => return promql_test(files),
        Some(Command::Check(Checkable::Rules { files })) => return check_rules(files),
        Some(Command::Test(Checkable::Rules { files })) => return test_rules(files),
        None => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, fixed, Shutdown::new(), true)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // one line a person can act on
            eprintln!("{}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// `pharos promql-test FILE...`: every script's checks, failures with
/// their file, then one closing line.
fn promql_test(files: &[PathBuf]) -> ExitCode {
    let (mut passed, mut failed) = (0, 0);
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                failed += 1;
                continue;
            }
        };
        let report = pharos_promql::promqltest::run_script(&text);
        for failure in &report.failures {
            println!("FAIL {}: {failure}", f.display());
        }
        passed += report.passed;
        failed += report.failed;
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `check rules FILE...`: promtool's output and exit status.
fn check_rules(files: &[PathBuf]) -> ExitCode {
    let (results, ok) = match pharos_rules::unittest::check_rules(files) {
        Ok(r) => (r, true),
        Err(r) => (r, false),
    };
    for r in results {
        print!("{}", r.render());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `test rules FILE...`: promtool's unit-test output and exit status.
fn test_rules(files: &[PathBuf]) -> ExitCode {
    let (results, code) = pharos_rules::unittest::test_rules(files);
    for r in results {
        print!("{}", r.render());
    }
    if code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Loads the configuration the way every binary does: the dotenv file, the
/// YAML file (or defaults), then flags, then validation.
pub fn load_config(args: &Args, primary: Option<Role>) -> anyhow::Result<PharosConfig> {
    let env_file = args
        .env_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(".env"));
    let env = Env::from_process_and_dotenv(&env_file)?;
    let lookup = |name: &str| env.get(name);
    let (mut cfg, file) = match &args.config_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("config error: cannot read {}", path.display()))?;
            let file = path.display().to_string();
            match upstream_file_kind(&text, primary) {
                // `prometheus --config.file=prometheus.yml` and
                // `alertmanager --config.file=alertmanager.yml` keep working
                Some(Role::MetricsServer) => {
                    let mut cfg = PharosConfig::default();
                    cfg.metrics.config_file = Some(path.clone());
                    (cfg, file)
                }
                Some(_) => {
                    let mut cfg = PharosConfig::default();
                    cfg.alerts.config_file = Some(path.clone());
                    (cfg, file)
                }
                None => (load_str::<PharosConfig>(&text, &file, &lookup)?, file),
            }
        }
        None => (PharosConfig::default(), "<defaults>".to_owned()),
    };
    args.apply(&mut cfg, primary)
        .map_err(|e| anyhow::anyhow!("flag error: {e}"))?;
    // flags may have changed values the file's validation already passed
    let mut v = Validator::new();
    pharos_config::Validate::validate(&cfg, &mut v);
    if let Some((key, message)) = v.into_errors().into_iter().next() {
        let key = (!key.is_empty()).then_some(key);
        return Err(pharos_config::ConfigError::invalid(&file, None, key, message).into());
    }
    Ok(cfg)
}

/// For metrics-server and alert-router: whether `--config.file` names the
/// user's prometheus.yml or alertmanager.yml rather than a Pharos file,
/// judged by its top-level keys.
fn upstream_file_kind(text: &str, primary: Option<Role>) -> Option<Role> {
    const OURS: &[&str] = &[
        "server", "auth", "storage", "cluster", "limits", "metrics", "logs", "traces", "alerts",
    ];
    let doc: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let keys: Vec<&str> = doc
        .as_mapping()?
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    if keys.is_empty() || keys.iter().any(|k| OURS.contains(k)) {
        return None;
    }
    let prometheus = [
        "scrape_configs",
        "rule_files",
        "alerting",
        "remote_write",
        "remote_read",
        "storage_config",
    ];
    let alertmanager = [
        "route",
        "receivers",
        "inhibit_rules",
        "templates",
        "time_intervals",
        "mute_time_intervals",
    ];
    match primary {
        Some(Role::MetricsServer)
            if keys
                .iter()
                .any(|k| prometheus.contains(k) || *k == "global") =>
        {
            Some(Role::MetricsServer)
        }
        Some(Role::AlertRouter)
            if keys
                .iter()
                .any(|k| alertmanager.contains(k) || *k == "global") =>
        {
            Some(Role::AlertRouter)
        }
        _ => None,
    }
}

pub async fn run(
    args: Args,
    fixed: Option<Role>,
    shutdown: Shutdown,
    signals: bool,
) -> anyhow::Result<()> {
    let roles = match (fixed, &args.target) {
        (Some(r), Some(t)) if t != r.name() && t != "all" => {
            anyhow::bail!(
                "flag error: -target={t} but this binary runs {r}; use the pharos binary to pick roles"
            )
        }
        (Some(r), _) => vec![r],
        (None, t) => parse_targets(t.as_deref().unwrap_or("all"))
            .map_err(|e| anyhow::anyhow!("flag error: {e}"))?,
    };
    let cfg = load_config(&args, fixed)?;
    if args.check_config {
        println!("configuration OK");
        return Ok(());
    }
    crate::logging::init(&cfg.server.log_level, &cfg.server.log_format);
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    tracing::info!(roles = ?names, version = env!("CARGO_PKG_VERSION"), "starting pharos");

    let registry = Registry::new();
    registry.register_process_metrics();
    let readiness = Readiness::new();
    let storage = ObjectStorage::from_config(&cfg.storage)
        .await
        .context("storage")?;
    registry.register(std::sync::Arc::new(
        crate::storage_metrics::StorageCollector(storage.clone()),
    ));
    let mut server = Server::new(
        &cfg.server,
        &cfg.auth,
        registry.clone(),
        readiness.clone(),
        cfg.to_masked_yaml(),
    );

    let mut handles = Vec::new();
    let mut hooks = Hooks::default();
    for family in [
        Family::Metrics,
        Family::Logs,
        Family::Traces,
        Family::Alerts,
    ] {
        let members: Vec<Role> = roles
            .iter()
            .copied()
            .filter(|r| r.family() == family)
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut router = Router::new();
        for r in &members {
            router = router.merge(role_router(*r, &cfg, &storage, &registry, &mut hooks).await?);
            handles.push((*r, readiness.register(r.name())));
        }
        let components = members.iter().map(|r| r.name().to_owned()).collect();
        let (name, address) = family_listener(&cfg, family, &members);
        server
            .bind(Listener::http(name, address, router).with_components(components))
            .await?;
    }
    let (health, grpc) = grpc_router();
    // tonic-health starts out SERVING; say NOT_SERVING until the roles are ready
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    server
        .bind(Listener::grpc(
            "grpc",
            cfg.server.grpc_listen_address.clone(),
            grpc.clone(),
        ))
        .await?;
    if roles.contains(&Role::TraceDistributor) {
        server
            .bind(Listener::grpc(
                "otlp-grpc",
                cfg.traces.otlp_grpc_listen_address.clone(),
                grpc,
            ))
            .await?;
        server
            .bind(
                Listener::http(
                    "otlp-http",
                    cfg.traces.otlp_http_listen_address.clone(),
                    pharos_traces::otlp_http_router(Default::default()),
                )
                .with_components(vec![Role::TraceDistributor.name().into()]),
            )
            .await?;
    }

    for r in &roles {
        prepare_local_dir(&cfg, *r).await?;
    }
    tokio::spawn(become_ready(storage.clone(), handles, health));
    if signals {
        shutdown.listen_for_signals();
        listen_for_reload(std::mem::take(&mut hooks.on_reload));
    }
    server.run(shutdown).await?;
    for hook in hooks.on_shutdown {
        let _ = tokio::task::spawn_blocking(hook).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// What roles ask the process to do on SIGHUP and after the listeners
/// have drained (flushing WALs).
#[derive(Default)]
struct Hooks {
    on_reload: Vec<Box<dyn Fn() -> Result<(), String> + Send + Sync>>,
    on_shutdown: Vec<Box<dyn FnOnce() + Send>>,
}

async fn role_router(
    role: Role,
    cfg: &PharosConfig,
    storage: &ObjectStorage,
    registry: &Registry,
    hooks: &mut Hooks,
) -> anyhow::Result<Router> {
    Ok(match role {
        Role::MetricsServer => {
            let store = open_metrics_store(cfg, storage).await?;
            registry.register(store.clone());
            let s = store.clone();
            hooks.on_shutdown.push(Box::new(move || s.sync()));
            store.spawn_maintenance(cfg.metrics.maintenance_interval.as_std());
            let ingest = cfg
                .metrics
                .remote_write_receiver
                .then(|| pharos_metrics::Ingest::new(store.clone(), &cfg.limits, registry));
            let scraping =
                pharos_metrics::Scraping::start(store.clone(), cfg.metrics.config_file.clone())
                    .map_err(|e| anyhow::anyhow!("metrics.config_file: {e}"))?;
            let sc = scraping.clone();
            hooks.on_reload.push(Box::new(move || {
                sc.reload().map_err(|e| format!("prometheus config: {e}"))
            }));
            let engine = Arc::new(pharos_promql::Engine::new(pharos_promql::EngineOptions {
                timeout: cfg.limits.query_timeout.as_std(),
                max_samples: if cfg.limits.max_query_samples == 0 {
                    usize::MAX
                } else {
                    cfg.limits.max_query_samples as usize
                },
                ..Default::default()
            }));
            let mut query = pharos_metrics::query_api::QueryApi::new(store.clone());
            query.engine = engine.clone();
            query.config_yaml = Arc::new(cfg.to_masked_yaml());
            let external_url = cfg.metrics.external_url.clone().unwrap_or_else(|| {
                let port = cfg
                    .metrics
                    .http_listen_address
                    .rsplit(':')
                    .next()
                    .unwrap_or("9090");
                format!("http://localhost:{port}")
            });
            let rules = pharos_metrics::rules::Rules::start(
                store.clone(),
                engine,
                cfg.metrics.config_file.clone(),
                external_url,
            )
            .await
            .map_err(|e| anyhow::anyhow!("rules: {e}"))?;
            let rules_metrics = pharos_metrics::rules::RulesMetrics::default();
            rules_metrics.spawn_refresh(rules.clone(), Duration::from_secs(5));
            registry.register(Arc::new(rules_metrics));
            let rl = rules.clone();
            let handle = tokio::runtime::Handle::current();
            hooks.on_reload.push(Box::new(move || {
                let rl = rl.clone();
                handle
                    .block_on(async move { rl.reload().await })
                    .map_err(|e| format!("rules: {e}"))
            }));
            pharos_metrics::router(pharos_metrics::MetricsApi {
                ingest,
                scraping: Some(scraping),
                query: Some(query),
                rules: Some(rules),
            })
        }
        Role::LogIngester => pharos_logs::ingester_router(Default::default()),
        Role::LogQuerier => pharos_logs::querier_router(Default::default()),
        Role::TraceDistributor => pharos_traces::distributor_router(Default::default()),
        Role::TraceIngester => pharos_traces::ingester_router(Default::default()),
        Role::TraceQuerier => pharos_traces::querier_router(Default::default()),
        Role::TraceCompactor => pharos_traces::compactor_router(Default::default()),
        Role::AlertRouter => {
            let api = pharos_alerts::AlertsApi::from_config(&cfg.alerts).context("alert-router")?;
            // Silences and the notification log are kept in the object
            // store too, so a replica on a new disk gets them back.
            api.attach_object_store(storage.scoped("alerts")).await;
            api.register_metrics(registry);
            let s = api.clone();
            hooks.on_shutdown.push(Box::new(move || s.stop()));
            let a = api.clone();
            hooks.on_reload.push(Box::new(move || {
                a.reload()
                    .map(|_| ())
                    .map_err(|e| format!("alertmanager config: {e}"))
            }));
            pharos_alerts::router(api)
        }
    })
}

/// SIGHUP reloads every role's upstream config file (prometheus.yml,
/// alertmanager.yml); a broken file keeps the running config and logs why.
fn listen_for_reload(hooks: Vec<Box<dyn Fn() -> Result<(), String> + Send + Sync>>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot install the SIGHUP handler");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("received SIGHUP, reloading configuration");
            for h in &hooks {
                match h() {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "reload failed, keeping the running configuration")
                    }
                }
            }
        }
    });
}

/// Opens (and replays) every tenant's TSDB under `metrics.local_path/tsdb`,
/// with blocks in object storage.
async fn open_metrics_store(
    cfg: &PharosConfig,
    storage: &ObjectStorage,
) -> anyhow::Result<Arc<pharos_metrics::TenantStore>> {
    let root = cfg.metrics.local_path.join("tsdb");
    let opts = pharos_tsdb::TsdbOptions {
        head: pharos_tsdb::HeadOptions {
            // every tenant's own head: the limit is per tenant
            max_series: usize::try_from(cfg.limits.max_active_series).unwrap_or(usize::MAX),
            ..Default::default()
        },
        retention: Some(cfg.metrics.retention_time.as_std()),
        retention_size: cfg.metrics.retention_size.map(|b| b.as_u64()),
        cache_size: cfg.metrics.block_cache_size.as_u64(),
        ..Default::default()
    };
    let blocks = pharos_metrics::BlockStorage::new(storage, tokio::runtime::Handle::current());
    tracing::info!(dir = %root.display(), "opening metrics storage, replaying write-ahead logs");
    let store = tokio::task::spawn_blocking(move || {
        pharos_metrics::TenantStore::open_with(&root, opts, Some(blocks))
    })
    .await
    .context("metrics storage")?
    .context("metrics storage")?;
    Ok(Arc::new(store))
}

/// The listener name is the role's when one role owns the port, else the
/// family's.
fn family_listener(cfg: &PharosConfig, family: Family, members: &[Role]) -> (&'static str, String) {
    let (family_name, addr) = match family {
        Family::Metrics => ("metrics", &cfg.metrics.http_listen_address),
        Family::Logs => ("logs", &cfg.logs.http_listen_address),
        Family::Traces => ("traces", &cfg.traces.http_listen_address),
        Family::Alerts => ("alerts", &cfg.alerts.http_listen_address),
    };
    let name = if members.len() == 1 {
        members[0].name()
    } else {
        family_name
    };
    (name, addr.clone())
}

fn grpc_router() -> (tonic_health::server::HealthReporter, Router) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let router = tonic::service::Routes::new(service)
        .prepare()
        .into_axum_router();
    (reporter, router)
}

async fn prepare_local_dir(cfg: &PharosConfig, role: Role) -> anyhow::Result<()> {
    let dir: &Path = match role.family() {
        Family::Metrics => &cfg.metrics.local_path,
        Family::Logs => &cfg.logs.local_path,
        Family::Traces => &cfg.traces.local_path,
        Family::Alerts => &cfg.alerts.local_path,
    };
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create local directory {} for {role}", dir.display()))
}

/// Roles are ready once object storage answers; until then `/ready` says
/// what it waits for, and the check is retried with backoff.
async fn become_ready(
    storage: ObjectStorage,
    handles: Vec<(Role, ReadyHandle)>,
    health: tonic_health::server::HealthReporter,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        match storage.list_dirs("").await {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "object storage not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    for (role, h) in handles {
        h.set_ready(true);
        tracing::info!(role = role.name(), "ready");
    }
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
}
