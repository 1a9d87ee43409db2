//! One generated clip ([`Clip`]): its scene, its ground truth, and its audio and frames
//! rendered on demand.

use std::collections::HashMap;

use image::RgbImage;

use crate::dsp::SAMPLE_RATE;
use crate::error::{Result, SynthError};
use crate::render;
use crate::scene::SceneSpec;
use crate::sound;
use crate::truth::{ClipTruth, FrameTruth, SourceTruth};
use crate::world::WorldConfig;

/// A clip of the world: `seconds` of mono audio at [`SAMPLE_RATE`] Hz and `seconds × fps`
/// square frames, with ground truth. Obtained from [`crate::World::clip`].
#[derive(Debug, Clone)]
pub struct Clip {
    scene: SceneSpec,
    audio_seed: u64,
    truth: ClipTruth,
}

impl Clip {
    /// Builds the clip and computes its ground truth (`config` is already validated).
    pub(crate) fn new(
        name: String,
        index: usize,
        scene: SceneSpec,
        audio_seed: u64,
        config: &WorldConfig,
    ) -> Self {
        let size = config.image_size;
        let frame_count = config.frame_count();
        let mut cache: HashMap<Vec<bool>, Vec<crate::truth::ObjectTruth>> = HashMap::new();
        let mut frames = Vec::with_capacity(frame_count);
        for k in 0..frame_count {
            let time_s = k as f32 / config.fps as f32;
            let active: Vec<bool> = scene.sources.iter().map(|s| s.active_at(time_s)).collect();
            let objects = cache
                .entry(active)
                .or_insert_with(|| render::objects(&scene.clone().at_time(time_s), size))
                .clone();
            frames.push(FrameTruth {
                index: k,
                time_s,
                objects,
            });
        }
        let sources = scene
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| SourceTruth {
                class: s.class,
                gain_db: s.gain_db,
                radius_px: render::radius_px(s.class, s.gain_db, size),
                center: s.center,
                interval_s: s.interval_s.unwrap_or((0.0, config.seconds)),
                visible_frames: frames
                    .iter()
                    .filter(|f| f.objects.iter().any(|o| o.source == i))
                    .map(|f| f.index)
                    .collect(),
            })
            .collect();
        let middle_frame = frame_count / 2;
        let middle_frame_sources = frames
            .get(middle_frame)
            .map(|f| f.objects.iter().map(|o| o.source).collect())
            .unwrap_or_default();
        let truth = ClipTruth {
            name,
            index,
            background: scene.background,
            level_db: scene.level_db,
            seconds: config.seconds,
            sample_rate: SAMPLE_RATE,
            fps: config.fps,
            image_size: size,
            sources,
            frames,
            middle_frame,
            middle_frame_sources,
        };
        Clip {
            scene,
            audio_seed,
            truth,
        }
    }

    /// File stem, `clip_NNNNNN`.
    pub fn name(&self) -> &str {
        &self.truth.name
    }

    /// The ground truth.
    pub fn truth(&self) -> &ClipTruth {
        &self.truth
    }

    /// Consumes the clip, keeping its ground truth.
    pub fn into_truth(self) -> ClipTruth {
        self.truth
    }

    /// The scene at time 0; every source carries its on-screen interval.
    pub fn scene(&self) -> &SceneSpec {
        &self.scene
    }

    /// Number of frames (`round(seconds × fps)`).
    pub fn frame_count(&self) -> usize {
        self.truth.frames.len()
    }

    /// The audio: `round(seconds × 16000)` mono samples at [`SAMPLE_RATE`] Hz, the sum of the
    /// background bed (at the clip's recording level) and each source during its interval (see
    /// [`crate::synth_sound`]).
    pub fn audio(&self) -> Vec<f32> {
        sound::mix(
            &self.scene.sources,
            self.scene.background,
            self.scene.level_db,
            self.truth.seconds,
            self.audio_seed,
        )
    }

    /// Frame `index` (at `index / fps` seconds), `image_size` pixels square.
    ///
    /// # Errors
    /// [`SynthError::InvalidArgument`] if `index >= frame_count()`.
    pub fn frame(&self, index: usize) -> Result<RgbImage> {
        let frame = self.truth.frames.get(index).ok_or_else(|| {
            SynthError::InvalidArgument(format!(
                "frame {index} requested from {}, which has {} frames",
                self.truth.name,
                self.frame_count()
            ))
        })?;
        Ok(render::paint(
            &self.scene.clone().at_time(frame.time_s),
            self.truth.image_size,
        ))
    }

    /// The middle frame (index `frame_count() / 2`), the one the official layout stores.
    pub fn middle_frame(&self) -> RgbImage {
        let time_s = self.truth.middle_frame as f32 / self.truth.fps as f32;
        render::paint(&self.scene.clone().at_time(time_s), self.truth.image_size)
    }

    /// Every frame, in order.
    pub fn frames(&self) -> Vec<RgbImage> {
        self.truth
            .frames
            .iter()
            .map(|f| render::paint(&self.scene.clone().at_time(f.time_s), self.truth.image_size))
            .collect()
    }
}
