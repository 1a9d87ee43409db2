//! What every handler shares.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::ServeConfig;
use crate::worker::Worker;

/// The inference thread, the limits and the live-session count.
#[derive(Clone)]
pub struct AppState {
    /// The inference thread and its queue.
    pub worker: Arc<Worker>,
    /// The limits.
    pub config: Arc<ServeConfig>,
    /// One permit per live session the server takes.
    pub live_sessions: Arc<Semaphore>,
}
