//! Training objective and evaluation metrics of the Sound2Scene Rust port.
//!
//! - [`loss`]: the audio-to-image alignment losses on Burn tensors (the official
//!   `InfoNCE_with_L2` and two ablations), differentiable for training the audio encoder.
//! - [`metrics`]: FID, Inception Score and retrieval recall@K in pure Rust on `f64`.
//! - [`error`]: the crate's error type, [`TrainError`].

#![deny(missing_docs)]

pub mod error;
pub mod loss;
pub mod metrics;

pub use error::TrainError;
pub use loss::{ContrastiveLoss, info_nce_cosine_loss, info_nce_l2_loss, l2_loss};
