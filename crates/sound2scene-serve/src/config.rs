//! What the server serves and the limits it holds every request to.

use std::net::SocketAddr;
use std::time::Duration;

use burn::tensor::Device;
use sound2scene_infer::ModelPaths;
use sound2scene_infer::limits::{MAX_LIVE_COUNT, MAX_STEPS};

use crate::error::ServeError;

/// Where to listen, which model to serve and the limits that hold under abuse.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (default `127.0.0.1:8080`, loopback only; port 0 picks a free one).
    pub addr: SocketAddr,
    /// The networks; `None` serves the bundled model.
    pub model: Option<ModelPaths>,
    /// The device the networks run on.
    pub device: Device,
    /// Largest request body in bytes (default 16 MiB); larger is 413.
    pub max_upload_bytes: usize,
    /// Longest sound accepted in seconds (default 60); longer is 400.
    pub max_audio_secs: f64,
    /// Most pictures per request (default 16).
    pub max_count: usize,
    /// Most interpolation steps (default 32).
    pub max_steps: usize,
    /// Requests queued or running at once (default 8); more get 503 at once.
    pub queue: usize,
    /// Live WebSocket sessions at once (default 4); more get 503.
    pub live_sessions: usize,
    /// Longest a request may take, reading its body included (default 30 s); longer is 504.
    pub timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            model: None,
            device: Device::default(),
            max_upload_bytes: 16 * 1024 * 1024,
            max_audio_secs: 60.0,
            max_count: 16,
            max_steps: 32,
            queue: 8,
            live_sessions: 4,
            timeout: Duration::from_secs(30),
        }
    }
}

impl ServeConfig {
    /// Check every limit, naming the one that is out of range.
    ///
    /// # Errors
    /// [`ServeError::Config`] for a zero or too-large limit.
    pub fn validate(&self) -> Result<(), ServeError> {
        let bad = |what: &str, allowed: &str, got: String| {
            Err(ServeError::Config(format!(
                "{what} must be {allowed}, got {got}"
            )))
        };
        if self.max_upload_bytes == 0 || self.max_upload_bytes > 1 << 30 {
            return bad(
                "the upload limit",
                "from 1 byte to 1 GiB",
                self.max_upload_bytes.to_string(),
            );
        }
        if !(self.max_audio_secs.is_finite() && self.max_audio_secs > 0.0) {
            return bad(
                "the audio length limit",
                "a positive number of seconds",
                self.max_audio_secs.to_string(),
            );
        }
        if !(1..=MAX_LIVE_COUNT).contains(&self.max_count) {
            return bad(
                "the count limit",
                &format!("from 1 to {MAX_LIVE_COUNT}"),
                self.max_count.to_string(),
            );
        }
        if !(2..=MAX_STEPS).contains(&self.max_steps) {
            return bad(
                "the steps limit",
                &format!("from 2 to {MAX_STEPS}"),
                self.max_steps.to_string(),
            );
        }
        if !(1..=1024).contains(&self.queue) {
            return bad("the queue", "from 1 to 1024", self.queue.to_string());
        }
        if !(1..=256).contains(&self.live_sessions) {
            return bad(
                "the live session limit",
                "from 1 to 256",
                self.live_sessions.to_string(),
            );
        }
        if self.timeout.is_zero() {
            return bad("the timeout", "positive", "0".into());
        }
        Ok(())
    }

    /// The model's folder or files, for the startup message.
    pub fn model_description(&self) -> String {
        match &self.model {
            Some(paths) => format!(
                "{} and {}",
                paths.audio_encoder.display(),
                paths.generator.display()
            ),
            None => format!(
                "the bundled model ({})",
                sound2scene_infer::bundle::default_model_dir().display()
            ),
        }
    }
}
