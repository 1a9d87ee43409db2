//! Sound2Scene over HTTP: a page to try it, a JSON/PNG API and live pictures over a WebSocket.
//!
//! ```no_run
//! use sound2scene_serve::{ServeConfig, Server};
//!
//! let server = Server::bind(ServeConfig::default())?; // the bundled model, 127.0.0.1:8080
//! println!("listening on http://{}", server.local_addr());
//! server.run()?; // until Ctrl-C
//! # Ok::<(), sound2scene_serve::ServeError>(())
//! ```
//!
//! Routes:
//! - `GET /`: a page where a person drops or records a sound and sees its scene, changes its
//!   volume, mixes two sounds and turns the microphone on for live pictures;
//! - `GET /api/info`: the model and the limits;
//! - `POST /api/generate` (multipart: `audio`, `mix`, `mix_weight`, `count`, `seed`,
//!   `gain_db`, `format`): pictures as PNG data URLs in JSON, or the grid as one PNG;
//! - `POST /api/interpolate` (multipart: `a`, `b`, `steps`, `seed`, `mode`);
//! - `GET /api/live`: a WebSocket: one text message of settings (`{"sample_rate": 48000}`),
//!   then little-endian `f32` PCM; a `{"type": "frame", ...}` message with the pictures every
//!   hop, `{"gain_db": 6}` to change the volume while streaming.
//!
//! Limits hold under abuse ([`ServeConfig`]): loopback by default, a cap on the body, on the
//! sound's length, on counts and steps; one inference thread with a bounded queue (503 when
//! full); a timeout on every request (504); JSON errors naming the field; uploads decoded from
//! memory, so no client input reaches the file system.
#![deny(missing_docs)]

mod api;
pub mod config;
pub mod error;
mod live;
mod page;
mod state;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

pub use config::ServeConfig;
pub use error::{ApiError, ServeError};
pub use worker::{ModelInfo, Worker};

use state::AppState;

/// The routes over a started [`Worker`].
pub fn router(worker: Arc<Worker>, config: Arc<ServeConfig>) -> Router {
    let state = AppState {
        worker,
        live_sessions: Arc::new(Semaphore::new(config.live_sessions)),
        config: Arc::clone(&config),
    };
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::app_js))
        .route("/worklet.js", get(page::worklet_js))
        .route("/style.css", get(page::style_css))
        .route("/api/info", get(api::info))
        .route("/api/generate", post(api::generate))
        .route("/api/interpolate", post(api::interpolate_sounds))
        .route("/api/live", get(live::live))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(config.max_upload_bytes))
        .with_state(state)
}

/// A server with its model loaded and its address bound, ready to [`run`](Self::run).
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
}

impl Server {
    /// Check `config`, load the model on the inference thread and bind the address.
    ///
    /// # Errors
    /// [`ServeError::Config`] for a limit out of range, [`ServeError::Model`] when the networks
    /// do not load, [`ServeError::Bind`] when the address is taken or not allowed.
    pub fn bind(config: ServeConfig) -> Result<Self, ServeError> {
        config.validate()?;
        let worker = Arc::new(Worker::start(&config)?);
        // The networks run on the inference thread (whose kernels use every core); the
        // runtime only moves bytes, so two threads are plenty.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sound2scene-http")
            .enable_all()
            .build()?;
        let addr = config.addr;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let router = router(worker, Arc::new(config));
        Ok(Self {
            runtime,
            listener,
            router,
            addr,
        })
    }

    /// The address the server listens on (with the port picked when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until Ctrl-C (or SIGTERM), then let the requests under way finish (for at most
    /// a few seconds) and return.
    ///
    /// # Errors
    /// [`ServeError::Io`] when the connection loop fails.
    pub fn run(self) -> Result<(), ServeError> {
        let Self {
            runtime,
            listener,
            router,
            ..
        } = self;
        runtime.block_on(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(shutdown());
            // Live sessions would hold a graceful shutdown open until their clients leave:
            // give the requests under way a few seconds, then stop.
            let deadline = async {
                shutdown().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            };
            tokio::select! {
                served = serve => served,
                () = deadline => Ok(()),
            }
        })?;
        Ok(())
    }
}

/// How long requests under way may finish after Ctrl-C or SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
