//! Wiring: build the store, the handlers and the supervisor, serve HTTP, and run until a signal.
//!
//! Shutdown: on SIGTERM/SIGINT the supervisor drains the pool (no new claims; running
//! tasks get `WORKER_SHUTDOWN_TIMEOUT` to finish, then are handed back without burning an attempt),
//! the HTTP server stops, and the process exits 0.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::{App, HttpServer, web};
use tracing::{error, info, warn};

pub mod gauges;

use crate::api::auth::JwtKeys;
use crate::api::{self, AppState, guard};
use crate::config::Config;
use crate::handlers::HandlerRegistry;
use crate::pool::consumer::{ClaimProbe, ConsumerDeps};
use crate::pool::supervisor::{Shutdown, SupervisorActor};
use crate::pool::usage::InstanceUsage;
use crate::queue::{PoolStatus, QueueError, QueueStore};
use crate::telemetry::metrics::Series;
use crate::vercel::client::{VercelClient, VercelError};
use crate::vercel::gateway::{self, Pace, VercelActor};
use crate::vercel::handlers::{self as vercel, DeployPolling, VercelApi};
use gauges::MetricsActor;

/// Why `run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on port {port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Vercel(#[from] VercelError),
    #[error("{0} is not set")]
    MissingSecret(&'static str),
}

/// A started consumer pool.
pub struct Pool {
    pub supervisor: Addr<SupervisorActor>,
    /// Running-task start times and CPU/memory ratios shared with the MetricsActor.
    pub usage: Arc<InstanceUsage>,
}

/// Start a supervisor (and so a consumer pool) for this configuration. `probe` hears every
/// claim's latency (`bench`).
pub fn start_pool(
    config: &Config,
    store: QueueStore,
    handlers: HandlerRegistry,
    probe: Option<Arc<dyn ClaimProbe>>,
) -> Pool {
    let deps = ConsumerDeps {
        store,
        handlers: Arc::new(handlers),
        usage: Arc::new(InstanceUsage::default()),
        prefetch: config.worker.prefetch,
        poll_interval: config.worker.poll_interval,
        probe,
    };
    let usage = deps.usage.clone();
    Pool {
        supervisor: SupervisorActor::new(config.worker.clone(), deps).start(),
        usage,
    }
}

/// The built-in handlers plus the Vercel ones, backed by a new VercelActor. Fails when
/// `VERCEL_TOKEN` is missing: `run` never falls back to the simulator.
pub fn handlers_with_vercel(
    config: &Config,
    store: QueueStore,
) -> Result<HandlerRegistry, StartupError> {
    let token = config
        .vercel
        .token
        .clone()
        .ok_or(StartupError::MissingSecret("VERCEL_TOKEN"))?;
    let client = VercelClient::new(&config.vercel, token)?;
    let pace = Pace {
        per_min: config.vercel.rate_limit_per_min,
        burst: config.vercel.rate_limit_burst,
    };
    let actor = VercelActor::new(client, store, pace).start();
    let mut handlers = HandlerRegistry::builtin(config.submit.diagnostics);
    vercel::register(
        &mut handlers,
        VercelApi::new(actor),
        DeployPolling {
            interval: config.vercel.poll_interval,
            timeout: config.vercel.deploy_timeout,
        },
    );
    Ok(handlers)
}

/// The label values owned by the layers above telemetry, so their series start at 0.
pub fn metric_series() -> Series {
    Series {
        pool_statuses: &PoolStatus::LABELS,
        vercel_operations: &gateway::OPERATION_LABELS,
        vercel_status_classes: &gateway::STATUS_CLASSES,
        rate_limit_reasons: &gateway::RATE_LIMIT_REASONS,
    }
}

/// Resolve on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
                }
                return;
            }
            Err(e) => warn!(error = %e, "cannot watch SIGTERM; only SIGINT will stop the worker"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    info!("SIGINT received");
}

/// A running instance: pool, metrics, API.
pub struct Instance {
    pub store: QueueStore,
    pub supervisor: Addr<SupervisorActor>,
    server: actix_web::dev::ServerHandle,
    /// The address the HTTP server is bound to (the real port when `PORT=0`).
    addr: std::net::SocketAddr,
    /// The metrics listener (`METRICS_PORT`) and its address, when configured.
    metrics_server: Option<(actix_web::dev::ServerHandle, std::net::SocketAddr)>,
    shutdown_grace: Duration,
    /// The `/api/events` streams, ended before the server stops (they would hold it open).
    event_streams: api::events::EventStreams,
}

impl Instance {
    /// Start everything `run` runs. Must be called inside an actix System.
    pub async fn start(config: &Config) -> Result<Self, StartupError> {
        let store = QueueStore::new(&config.redis, &config.queue).await?;
        info!(
            instance = %config.worker.instance_id,
            queue = %store.key_base(),
            redis = %config.redis.url,
            consumers = config.worker.concurrency,
            "starting ops-worker"
        );
        if config.redis.tls.as_ref().is_some_and(|t| t.insecure) {
            warn!(
                "REDIS_TLS_INSECURE=true: the Redis server's certificate is NOT checked; anyone on \
                 the network path can read and change the queue"
            );
        }
        let secret = config
            .jwt_secret
            .clone()
            .ok_or(StartupError::MissingSecret("JWT_SECRET"))?;
        let metrics = crate::telemetry::metrics::install(&metric_series());
        let handlers = handlers_with_vercel(config, store.clone())?;
        let (server, addr) = serve_api_unstarted(config)?;
        let metrics_listener = bind_metrics(config)?;
        let pool = start_pool(config, store.clone(), handlers, None);
        let supervisor = pool.supervisor.clone();
        if let Some(handle) = metrics.clone() {
            MetricsActor::new(
                handle,
                store.clone(),
                supervisor.clone(),
                pool.usage.clone(),
            )
            .start();
        }
        let metrics_server = match metrics_listener {
            Some(listener) => Some(serve_metrics(config, listener, metrics.clone())?),
            None => None,
        };
        let event_streams = api::events::EventStreams::default();
        let server = server(
            store.clone(),
            supervisor.clone(),
            metrics,
            &secret,
            event_streams.clone(),
        )?;
        let handle = server.handle();
        actix_rt::spawn(server);
        info!(port = addr.port(), addr = %addr, "HTTP listening");
        Ok(Instance {
            store,
            supervisor,
            server: handle,
            addr,
            metrics_server,
            shutdown_grace: config.worker.shutdown_timeout + Duration::from_secs(10),
            event_streams,
        })
    }

    /// The address the HTTP server is bound to.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The port the HTTP server is bound to: `config.port`, or the one the OS chose for `PORT=0`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The port of the metrics listener (`METRICS_PORT`, the real one for 0), when configured.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, a)| a.port())
    }

    /// Drain the pool (running tasks may finish until `WORKER_SHUTDOWN_TIMEOUT`, then are handed
    /// back), then stop the HTTP server.
    pub async fn shutdown(self) {
        match tokio::time::timeout(self.shutdown_grace, self.supervisor.send(Shutdown)).await {
            Ok(Ok(())) => info!("pool drained"),
            Ok(Err(e)) => error!(error = %e, "supervisor unavailable during shutdown"),
            Err(_) => error!("pool did not drain in time; unfinished leases will be reclaimed"),
        }
        self.event_streams.close();
        self.server.stop(true).await;
        if let Some((metrics, _)) = self.metrics_server {
            metrics.stop(true).await;
        }
        info!("ops-worker stopped");
    }
}

/// `ops-worker run`: the pool plus the HTTP server, until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), StartupError> {
    let instance = Instance::start(&config).await?;
    shutdown_signal().await;
    instance.shutdown().await;
    Ok(())
}

type ServerFactory = Box<
    dyn FnOnce(
        QueueStore,
        Addr<SupervisorActor>,
        Option<metrics_exporter_prometheus::PrometheusHandle>,
        &crate::config::Secret,
        api::events::EventStreams,
    ) -> Result<actix_web::dev::Server, StartupError>,
>;

/// Bind the port first (so a taken port fails before any consumer starts), serve later. Port 0
/// means any free port; the bound address is returned with the factory.
fn serve_api_unstarted(
    config: &Config,
) -> Result<(ServerFactory, std::net::SocketAddr), StartupError> {
    let bind_error = |source| StartupError::Bind {
        port: config.port,
        source,
    };
    let listener = std::net::TcpListener::bind(("0.0.0.0", config.port)).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let config = config.clone();
    let factory: ServerFactory = Box::new(move |store, supervisor, metrics, secret, events| {
        serve_api(
            &config, listener, store, supervisor, metrics, secret, events,
        )
    });
    Ok((factory, addr))
}

/// Bind the metrics listener of `METRICS_PORT`, when set (before any consumer starts, like `PORT`).
fn bind_metrics(config: &Config) -> Result<Option<std::net::TcpListener>, StartupError> {
    let Some(port) = config.metrics_port else {
        return Ok(None);
    };
    std::net::TcpListener::bind(("0.0.0.0", port))
        .map(Some)
        .map_err(|source| StartupError::Bind { port, source })
}

/// Serve `/metrics` alone on the metrics listener; returns its handle and address.
fn serve_metrics(
    config: &Config,
    listener: std::net::TcpListener,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Result<(actix_web::dev::ServerHandle, std::net::SocketAddr), StartupError> {
    let bind_error = |source| StartupError::Bind {
        port: config.metrics_port.unwrap_or_default(),
        source,
    };
    let addr = listener.local_addr().map_err(bind_error)?;
    let handle = web::Data::new(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(handle.clone())
            .configure(api::configure_metrics_only)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(bind_error)?
    .run();
    let server_handle = server.handle();
    actix_rt::spawn(server);
    info!(port = addr.port(), addr = %addr, "metrics listening");
    Ok((server_handle, addr))
}

/// Serve the API + dashboard on an already bound listener, with the connection timeouts, body
/// rules and security headers of [`guard`] around every route.
pub fn serve_api(
    config: &Config,
    listener: std::net::TcpListener,
    store: QueueStore,
    supervisor: Addr<SupervisorActor>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    secret: &crate::config::Secret,
    events: api::events::EventStreams,
) -> Result<actix_web::dev::Server, StartupError> {
    let state = web::Data::new(AppState {
        store,
        supervisor,
        metrics,
        metrics_elsewhere: config.metrics_port.is_some(),
        body_limit: config.body_limit,
        default_max_retries: config.queue.max_retries,
        submit: config.submit,
        events,
    });
    let keys = web::Data::new(
        JwtKeys::new(secret, config.trust_loopback).with_max_ttl(config.jwt_max_ttl),
    );
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(keys.clone())
            .configure(api::configure)
            .wrap(actix_web::middleware::from_fn(guard::body_rules))
            .wrap(guard::security_headers())
    })
    .client_request_timeout(guard::HEADER_TIMEOUT)
    .client_disconnect_timeout(guard::DISCONNECT_TIMEOUT)
    .keep_alive(guard::KEEP_ALIVE)
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        port: config.port,
        source,
    })?
    .run())
}
