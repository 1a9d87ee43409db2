//! The procedural world: [`WorldConfig`] and [`World`], a deterministic, random-access
//! collection of clips.

use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::background::Background;
use crate::class::SoundClass;
use crate::clip::Clip;
use crate::dsp::{derive_seed, rng_for};
use crate::error::{Result, SynthError};
use crate::render::{MAX_IMAGE_SIZE, radius_px};
use crate::scene::{MAX_ABS_GAIN_DB, SceneSpec, SourceSpec};
use crate::sound::validate_seconds;
use crate::truth::ClipTruth;

/// File name of the world description in a model directory ([`WorldConfig::load`]).
pub const WORLD_FILE: &str = "world.json";

/// Most frames per second accepted.
pub const MAX_FPS: u32 = 1000;

/// Parameters of a [`World`]. Every field has a default (see [`WorldConfig::default`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// Seed of the whole world; clip `i` depends only on `(seed, i)` and the other fields.
    pub seed: u64,
    /// Number of clips the dataset writers write (indices `0..clips`).
    pub clips: usize,
    /// Clip duration in seconds, in `(0, MAX_SECONDS]`. Default 10.
    pub seconds: f32,
    /// Video frames per second, `1..=MAX_FPS`. Default 10 (100 frames for 10 s).
    pub fps: u32,
    /// Side of the square frames in pixels, `1..=MAX_IMAGE_SIZE`. Default 64.
    pub image_size: u32,
    /// Largest number of sources in a clip, at most 8 (sources have distinct classes). Default 2.
    pub max_sources: usize,
    /// Probability that a clip has no source at all (background only). Default 0.1. Otherwise
    /// the number of sources is uniform in `1..=max_sources`.
    pub empty_probability: f32,
    /// Range `(low, high)` of source gains in dB relative to the recording's level, drawn
    /// uniformly. Default (−12, +6).
    pub gain_db_range: (f32, f32),
    /// Range `(low, high)` of the recording's overall level in dB, drawn uniformly per clip
    /// ([`SceneSpec::level_db`]): it moves the ambient bed and every source alike, as a
    /// recording made nearer or farther, or with more or less input gain, does. A source's
    /// loudness at the microphone, its gain plus this level, sets its drawn size, so a gain on a
    /// whole waveform changes the drawn size the way the world draws it. Default (0, 0), every
    /// recording at one level.
    pub level_db_range: (f32, f32),
    /// Range `(low, high)` of the fraction of the clip during which a source is on screen
    /// (and sounds), drawn uniformly; the interval's start is uniform over the clip.
    /// Each in `(0, 1]`. Default (0.2, 0.5).
    pub visible_fraction: (f32, f32),
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: 0,
            clips: 1000,
            seconds: 10.0,
            fps: 10,
            image_size: 64,
            max_sources: 2,
            empty_probability: 0.1,
            gain_db_range: (-12.0, 6.0),
            level_db_range: (0.0, 0.0),
            visible_fraction: (0.2, 0.5),
        }
    }
}

impl WorldConfig {
    /// A configuration with defaults except for `seed` and `clips`.
    pub fn new(seed: u64, clips: usize) -> Self {
        WorldConfig {
            seed,
            clips,
            ..Self::default()
        }
    }

    /// Reads a world description: a JSON object with any of the fields, the others at their
    /// defaults (e.g. `{"image_size": 64, "level_db_range": [-6, 6]}`). A model directory
    /// keeps the description of the world it was trained on as [`WORLD_FILE`].
    ///
    /// # Errors
    /// [`SynthError::Read`] if the file cannot be read, [`SynthError::WorldFile`] if it is not
    /// such an object (unknown keys included), [`SynthError::InvalidArgument`] if a value is out
    /// of range.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| SynthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: WorldConfig =
            serde_json::from_str(&text).map_err(|source| SynthError::WorldFile {
                path: path.to_path_buf(),
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Number of frames per clip: `round(seconds × fps)`.
    pub fn frame_count(&self) -> usize {
        (self.seconds * self.fps as f32).round() as usize
    }

    /// Checks every field; see the field docs for the accepted ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(SynthError::InvalidArgument(msg));
        validate_seconds(self.seconds)?;
        if self.fps == 0 || self.fps > MAX_FPS {
            return bad(format!("fps is {}; it must be in 1..={MAX_FPS}", self.fps));
        }
        if self.frame_count() == 0 {
            return bad(format!(
                "{} s at {} fps gives no frame; lengthen the clip or raise fps",
                self.seconds, self.fps
            ));
        }
        if self.image_size == 0 || self.image_size > MAX_IMAGE_SIZE {
            return bad(format!(
                "image size is {} pixels; it must be in 1..={MAX_IMAGE_SIZE}",
                self.image_size
            ));
        }
        if self.max_sources > SoundClass::ALL.len() {
            return bad(format!(
                "max_sources is {}; at most {} (one per class)",
                self.max_sources,
                SoundClass::ALL.len()
            ));
        }
        if !(0.0..=1.0).contains(&self.empty_probability) {
            return bad(format!(
                "empty_probability is {}; it must be in [0, 1]",
                self.empty_probability
            ));
        }
        let (lo, hi) = self.gain_db_range;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi)
            || lo < -MAX_ABS_GAIN_DB
            || hi > MAX_ABS_GAIN_DB
        {
            return bad(format!(
                "gain_db_range is ({lo}, {hi}) dB; it needs low <= high within ±{MAX_ABS_GAIN_DB} dB"
            ));
        }
        let (lo, hi) = self.level_db_range;
        let (gain_lo, gain_hi) = self.gain_db_range;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi)
            || gain_lo + lo < -MAX_ABS_GAIN_DB
            || gain_hi + hi > MAX_ABS_GAIN_DB
        {
            return bad(format!(
                "level_db_range is ({lo}, {hi}) dB; it needs low <= high, and a source's gain \
                 plus the level must stay within ±{MAX_ABS_GAIN_DB} dB"
            ));
        }
        let (lo, hi) = self.visible_fraction;
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return bad(format!(
                "visible_fraction is ({lo}, {hi}); it needs 0 < low <= high <= 1"
            ));
        }
        Ok(())
    }
}

/// A deterministic world of clips. Clip `i` is generated from its own random stream
/// (ChaCha8 seeded by `seed`, stream `i`), so clips are independent and can be generated in
/// any order or in parallel.
#[derive(Debug, Clone)]
pub struct World {
    config: WorldConfig,
}

/// Draws a value uniformly in `[lo, hi]` (returns `lo` when the range is empty).
fn uniform(rng: &mut ChaCha8Rng, (lo, hi): (f32, f32)) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

impl World {
    /// A world with `config`.
    ///
    /// # Errors
    /// [`SynthError::InvalidArgument`] if the configuration is invalid (see
    /// [`WorldConfig::validate`]).
    pub fn new(config: WorldConfig) -> Result<Self> {
        config.validate()?;
        Ok(World { config })
    }

    /// The configuration.
    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// Number of clips the writers write (`config.clips`).
    pub fn len(&self) -> usize {
        self.config.clips
    }

    /// Whether the world has no clips to write.
    pub fn is_empty(&self) -> bool {
        self.config.clips == 0
    }

    /// File stem of clip `index`: `clip_NNNNNN` (at least six digits).
    pub fn clip_name(index: usize) -> String {
        format!("clip_{index:06}")
    }

    /// Clip `index`. Any index is valid (the world is unbounded; `config.clips` only sizes the
    /// written datasets); the same `(config, index)` always gives the same clip. The ground
    /// truth is computed here; audio and frames are rendered on demand.
    pub fn clip(&self, index: usize) -> Clip {
        let c = &self.config;
        let mut rng = rng_for(c.seed, index as u64);
        let clip_seed = derive_seed(c.seed, index as u64);
        let background = Background::ALL[rng.random_range(0..Background::ALL.len())];
        let count = if c.max_sources == 0 || rng.random_bool(f64::from(c.empty_probability)) {
            0
        } else {
            rng.random_range(1..=c.max_sources)
        };
        // The level has a stream of its own, so that worlds drawn before levels varied keep
        // every other draw.
        let level_db = uniform(&mut rng_for(clip_seed, 3), c.level_db_range);
        let mut classes = SoundClass::ALL;
        for i in 0..count {
            let j = rng.random_range(i..classes.len());
            classes.swap(i, j);
        }
        let mut sources: Vec<SourceSpec> = Vec::with_capacity(count);
        for &class in &classes[..count] {
            let gain_db = uniform(&mut rng, c.gain_db_range) + level_db;
            let duration = c.seconds * uniform(&mut rng, c.visible_fraction);
            let start = uniform(&mut rng, (0.0, c.seconds - duration));
            let r = radius_px(class, gain_db, c.image_size) / c.image_size as f32;
            let mut center = (0.5, 0.5);
            for _ in 0..20 {
                let span = (r, (1.0 - r).max(r));
                center = if r >= 0.5 {
                    (0.5, 0.5)
                } else {
                    (uniform(&mut rng, span), uniform(&mut rng, span))
                };
                let clear = sources.iter().all(|o| {
                    let ro = radius_px(o.class, o.gain_db, c.image_size) / c.image_size as f32;
                    let (dx, dy) = (o.center.0 - center.0, o.center.1 - center.1);
                    (dx * dx + dy * dy).sqrt() >= r + ro
                });
                if clear {
                    break;
                }
            }
            sources.push(SourceSpec {
                class,
                gain_db,
                center,
                interval_s: Some((start, start + duration)),
            });
        }
        let scene = SceneSpec {
            background,
            seed: derive_seed(clip_seed, 1),
            time_s: 0.0,
            sources,
            level_db,
        };
        Clip::new(
            Self::clip_name(index),
            index,
            scene,
            derive_seed(clip_seed, 2),
            c,
        )
    }

    /// The ground truth of clips `0..config.clips`, computed in parallel (no audio or frames
    /// are rendered).
    pub fn truths(&self) -> Vec<ClipTruth> {
        (0..self.config.clips)
            .into_par_iter()
            .map(|i| self.clip(i).into_truth())
            .collect()
    }
}
