//! Pair selection for Sound2Scene (paper Sec. 2.3): a sound-source localization network that
//! finds, in each video, the frames that show what is heard, so training pairs are not the
//! (often silent-looking) middle frame.
//!
//! - [`model`]: the localizer (audio window encoder, spatial visual encoder, cosine
//!   localization map, C_av = q^V · q^A, the LVS training loss).
//! - [`train`]: self-supervised training with resumable atomic checkpoints and metrics.
//! - [`clip`]: videos in the VGGSound layout (`frames/VIDEO/NNNN.jpg` + `audios/VIDEO.wav`)
//!   and their decoding.
//! - [`mine`](mod@mine): ranking every frame of every video, sharded, resumable and parallel, written
//!   in the released moments format.
//! - [`names`]: tolerant matching of local video names against moments keys.
//! - [`metrics`]: top-1 selection precision, cIoU and AUC against ground truth.
//! - [`heatmap`]: localization maps blended over frames, as PNG.
//! - [`error`]: the crate's error type, [`SelectError`].
//!
//! ```no_run
//! use std::path::Path;
//! use burn::tensor::Device;
//! use sound2scene_select::{MineOptions, discover_videos, load_localizer, mine};
//!
//! # fn main() -> Result<(), sound2scene_select::SelectError> {
//! let device = Device::default();
//! let (model, config) = load_localizer(Path::new("out/select"), &device)?;
//! let listing = discover_videos(Path::new("data/frames"), Path::new("data/audios"))?;
//! let summary = mine(&model, &config, &listing.videos, Path::new("moments.json"), "w1",
//!     &MineOptions::default(), &device)?;
//! println!("{} videos mined", summary.mined);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod clip;
pub mod error;
pub mod heatmap;
pub mod metrics;
pub mod mine;
pub mod model;
pub mod names;
pub mod train;

pub use clip::{LoadedVideo, Video, VideoListing, discover_videos};
pub use error::{Result, SelectError};
pub use metrics::{GroundTruth, SelectionReport, VideoEval, VideoTruth};
pub use mine::{MineOptions, MiningSummary, Scoring, Shard, VideoScores, mine, score_video};
pub use model::{Localizer, LocalizerConfig};
pub use names::{MatchKind, MatchReport, match_names, remap_moments};
pub use train::{
    SelectData, SelectHooks, SelectSummary, SelectTrainConfig, load_localizer, train_select,
};
