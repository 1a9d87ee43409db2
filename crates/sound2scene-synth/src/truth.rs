//! Ground truth: per object ([`ObjectTruth`]), frame ([`FrameTruth`]), source
//! ([`SourceTruth`]), clip ([`ClipTruth`]) and dataset ([`DatasetTruth`]). All serde-serialisable;
//! the dataset writers store a [`DatasetTruth`] as `ground_truth.json`.

use serde::{Deserialize, Serialize};

use crate::background::Background;
use crate::class::SoundClass;
use crate::world::WorldConfig;
use crate::writer::Layout;

/// One object as drawn in one picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectTruth {
    /// Index of the source in its scene or clip.
    pub source: usize,
    /// The source's class.
    pub class: SoundClass,
    /// The source's gain in dB.
    pub gain_db: f32,
    /// Tight bounding box `[x0, y0, x1, y1]` in pixels; `x1` and `y1` are exclusive.
    pub bbox: [u32; 4],
    /// Number of pixels painted in the class colour (after occlusion).
    pub area_px: usize,
}

/// The objects of one video frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameTruth {
    /// Frame index (0-based).
    pub index: usize,
    /// Time of the frame in seconds (`index / fps`).
    pub time_s: f32,
    /// The objects visible in the frame.
    pub objects: Vec<ObjectTruth>,
}

/// One sound source of a clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceTruth {
    /// The class.
    pub class: SoundClass,
    /// Loudness at the microphone in dB relative to [`crate::REFERENCE_RMS`] (the clip's
    /// recording level included); it sets the drawn size.
    pub gain_db: f32,
    /// Drawn radius in pixels ([`crate::radius_px`]).
    pub radius_px: f32,
    /// Centre as fractions of the image side, `(x, y)`.
    pub center: (f32, f32),
    /// The interval `(start, end)` in seconds during which the source is on screen and sounds.
    pub interval_s: (f32, f32),
    /// Indices of the frames in which the source is visible (at least one pixel).
    pub visible_frames: Vec<usize>,
}

/// Everything known about one clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipTruth {
    /// File stem, `clip_NNNNNN`.
    pub name: String,
    /// Index of the clip in its world.
    pub index: usize,
    /// The background kind.
    pub background: Background,
    /// Overall level of the recording in dB ([`crate::SceneSpec::level_db`]; 0 in files written
    /// before recordings varied in level). Each source's `gain_db` already includes it.
    #[serde(default)]
    pub level_db: f32,
    /// Duration in seconds.
    pub seconds: f32,
    /// Audio sample rate in Hz.
    pub sample_rate: u32,
    /// Frames per second.
    pub fps: u32,
    /// Image side in pixels.
    pub image_size: u32,
    /// The sound sources (0 or more).
    pub sources: Vec<SourceTruth>,
    /// Per-frame objects, one entry per frame.
    pub frames: Vec<FrameTruth>,
    /// Index of the middle frame (`frames / 2`), the one the official layout stores.
    pub middle_frame: usize,
    /// Indices (into `sources`) of the sources visible in the middle frame.
    pub middle_frame_sources: Vec<usize>,
}

impl ClipTruth {
    /// The classes of the clip's sources, in source order.
    pub fn classes(&self) -> Vec<SoundClass> {
        self.sources.iter().map(|s| s.class).collect()
    }

    /// Whether the middle frame shows at least one source.
    pub fn middle_frame_shows_a_source(&self) -> bool {
        !self.middle_frame_sources.is_empty()
    }

    /// Whether the middle frame shows every source of the clip (vacuously true without sources).
    /// When false, the clip's sound contains a source its middle frame does not show: a poor
    /// training pair for the official layout.
    pub fn middle_frame_shows_all_sources(&self) -> bool {
        self.middle_frame_sources.len() == self.sources.len()
    }

    /// The clip's frame indices ranked as a perfect pair selector would rank them, best first:
    /// by the number of sources on screen (most first), then by distance to the middle of the
    /// frames where the most sources are on screen (the steadiest view), then by index. The
    /// ground-truth counterpart of a top-k moments file.
    pub fn ranked_frames(&self) -> Vec<usize> {
        let frame_count = self.frames.len();
        let mut visible = vec![0usize; frame_count];
        for source in &self.sources {
            for &f in &source.visible_frames {
                if f < frame_count {
                    visible[f] += 1;
                }
            }
        }
        let most = visible.iter().copied().max().unwrap_or(0);
        let best: Vec<usize> = (0..frame_count).filter(|&f| visible[f] == most).collect();
        // Twice the centre of the best frames, to stay in integers.
        let centre2 = best.first().zip(best.last()).map_or(0, |(a, b)| a + b);
        let mut order: Vec<usize> = (0..frame_count).collect();
        order.sort_by_key(|&f| (std::cmp::Reverse(visible[f]), (2 * f).abs_diff(centre2), f));
        order
    }
}

/// Ground truth of a written dataset (`ground_truth.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetTruth {
    /// The layout of the files next to this file.
    pub layout: Layout,
    /// The configuration of the world the clips come from.
    pub config: WorldConfig,
    /// Number of clips whose middle frame shows no source (background only).
    pub middle_frame_without_source: usize,
    /// Number of clips whose middle frame misses at least one of the clip's sources.
    pub middle_frame_missing_a_source: usize,
    /// Every clip, in index order.
    pub clips: Vec<ClipTruth>,
}

impl DatasetTruth {
    /// Collects clip truths and counts the middle-frame statistics.
    pub fn new(layout: Layout, config: WorldConfig, clips: Vec<ClipTruth>) -> Self {
        let middle_frame_without_source = clips
            .iter()
            .filter(|c| !c.middle_frame_shows_a_source())
            .count();
        let middle_frame_missing_a_source = clips
            .iter()
            .filter(|c| !c.middle_frame_shows_all_sources())
            .count();
        DatasetTruth {
            layout,
            config,
            middle_frame_without_source,
            middle_frame_missing_a_source,
            clips,
        }
    }
}
