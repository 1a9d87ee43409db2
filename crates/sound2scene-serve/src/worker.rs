//! The inference thread: it owns the networks and runs one job at a time, in the order they
//! came; a bounded number of jobs may wait ([`Worker::try_permit`]), so a flood of requests is
//! answered 503 at once instead of piling up in memory.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;

use sound2scene_infer::{SoundToScene, bundle};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::config::ServeConfig;
use crate::error::{ApiError, ServeError};

/// What the served model is, for `/api/info` and the page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    /// Side of G's square pictures in pixels.
    pub resolution: usize,
    /// Rate in Hz the sound is brought to.
    pub sample_rate: u32,
    /// Length in seconds of the clip the audio encoder reads.
    pub clip_secs: f32,
}

type Job = Box<dyn FnOnce(&SoundToScene) + Send>;

/// A handle on the inference thread.
pub struct Worker {
    jobs: mpsc::Sender<Job>,
    queue: Arc<Semaphore>,
    capacity: usize,
    info: ModelInfo,
}

impl Worker {
    /// Start the thread and load the model on it (the bundled one when `config.model` is
    /// `None`); returns once the model has loaded.
    ///
    /// # Errors
    /// [`ServeError::Model`] when the networks do not load.
    pub fn start(config: &ServeConfig) -> Result<Self, ServeError> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (loaded, loaded_rx) = mpsc::channel();
        let model = config.model.clone();
        let device = config.device.clone();
        std::thread::Builder::new()
            .name("sound2scene-infer".into())
            .spawn(move || {
                let pipeline = match &model {
                    Some(paths) => SoundToScene::load(paths, &device),
                    None => bundle::load_pipeline(bundle::default_model_dir(), &device),
                };
                let pipeline = match pipeline {
                    Ok(pipeline) => pipeline,
                    Err(e) => {
                        let _ = loaded.send(Err(e));
                        return;
                    }
                };
                let spectrogram = pipeline.spectrogram_config();
                let info = ModelInfo {
                    resolution: pipeline.generator_config().resolution,
                    sample_rate: spectrogram.sample_rate,
                    clip_secs: spectrogram.seconds,
                };
                let _ = loaded.send(Ok(info));
                for job in inbox {
                    job(&pipeline);
                }
            })?;
        let info = loaded_rx
            .recv()
            .map_err(|_| ServeError::WorkerGone)?
            .map_err(ServeError::Model)?;
        Ok(Self {
            jobs,
            queue: Arc::new(Semaphore::new(config.queue)),
            capacity: config.queue,
            info,
        })
    }

    /// The served model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// A place in the queue, or 503 when it is full. Take it before reading a request's body,
    /// so that bodies waiting in memory are bounded too.
    ///
    /// # Errors
    /// [`ApiError::busy`] when the queue is full.
    pub fn try_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.queue)
            .try_acquire_owned()
            .map_err(|_| ApiError::busy(self.capacity))
    }

    /// Run `work` on the inference thread, holding `permit` until it is done (also when the
    /// caller stops waiting), and wait for its result. A panic in `work` is a 500, and the
    /// thread goes on with the next job.
    ///
    /// # Errors
    /// [`ApiError::internal`] when the work panicked or the thread has stopped; the work's own
    /// error.
    pub async fn run<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        work: impl FnOnce(&SoundToScene) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |pipeline| {
            let result = catch_unwind(AssertUnwindSafe(|| work(pipeline))).unwrap_or_else(|p| {
                let detail = p
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(ApiError::internal(format!(
                    "inference failed unexpectedly ({detail}); the server goes on"
                )))
            });
            let _ = reply.send(result);
            drop(permit);
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::internal("the inference thread has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the inference thread has stopped"))?
    }
}
