//! Training objective and evaluation metrics of the Sound2Scene Rust port.
//!
//! - [`loss`]: the audio-to-image alignment losses on Burn tensors (the official
//!   `InfoNCE_with_L2` and two ablations), differentiable for training the audio encoder.
//! - [`metrics`]: FID, Inception Score and retrieval recall@K in pure Rust on `f64`.
//! - [`data`]: finding audio/image training pairs on disk (official and VGGSound layouts) and
//!   the validation split.
//! - [`feature_cache`]: the frozen image encoder's features z^V, computed once, in sharded
//!   `.npy` files.
//! - [`dataset`]: the alignment examples and their batches, prepared ahead of the model.
//! - [`run`]: the training-loop kit every loop builds on (output directory, resume, hooks,
//!   checkpoints of a run, Adam settings, epoch batches).
//! - [`align`]: the audio-visual alignment training loop (paper Sec. 2.1), resumable.
//! - [`parallel`]: data parallelism of the alignment step over several devices.
//! - [`checkpoint`]: crash-safe checkpoint directories.
//! - [`finite`]: the NaN/Inf check on parameters and gradients.
//! - [`swav`]: self-supervised training of the image encoder f_V (SwAV), resumable.
//! - [`gan`]: the IC-GAN generator/discriminator training loop, resumable.
//! - [`progress`]: the `metrics.jsonl` log and the progress bar.
//! - [`skip`]: broken samples skipped and reported instead of ending a run.
//! - [`init`]: the process-wide lock that makes seeded initialization reproducible.
//! - [`error`]: the crate's error type, [`TrainError`].

#![deny(missing_docs)]

pub mod align;
pub mod checkpoint;
pub mod control;
pub mod data;
pub mod dataset;
pub mod error;
pub mod feature_cache;
pub mod finite;
pub mod gan;
pub mod init;
pub mod loss;
pub mod metrics;
pub mod parallel;
pub mod progress;
pub mod run;
pub mod skip;
pub mod swav;

pub use align::{AlignConfig, AlignHooks, AlignSession, AlignSummary, train_align};
pub use control::{Control, Outcome};
pub use data::{Discovery, Pair, discover_official, discover_vggsound};
pub use dataset::{AlignData, AudioInput, Batch};
pub use feature_cache::{CacheBuild, CacheOptions, FeatureCache};
pub use skip::{SkipPolicy, SkipReport, SkippedSample};

pub use error::TrainError;
pub use loss::{ContrastiveLoss, info_nce_cosine_loss, info_nce_l2_loss, l2_loss};
