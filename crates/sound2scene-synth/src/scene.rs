//! Scene descriptions shared by the picture and sound generators: [`SourceSpec`] and
//! [`SceneSpec`].

use serde::{Deserialize, Serialize};

use crate::background::Background;
use crate::class::SoundClass;
use crate::error::{Result, SynthError};

/// Largest accepted gain magnitude in dB.
pub const MAX_ABS_GAIN_DB: f32 = 60.0;

/// One sound source: what it is, how loud (hence how close and how big) and where.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// The class (timbre and look).
    pub class: SoundClass,
    /// Loudness at the microphone in dB relative to [`crate::REFERENCE_RMS`]; also sets the
    /// drawn size (radius ∝ 10^(gain_db / 40)). Must lie in ±[`MAX_ABS_GAIN_DB`].
    pub gain_db: f32,
    /// Centre of the object as fractions of the image side, `(x, y)` with `(0, 0)` the top-left
    /// corner; each in `[0, 1]`.
    pub center: (f32, f32),
    /// The interval `(start, end)` in seconds during which the source is on screen and sounds;
    /// `None` means the whole clip.
    pub interval_s: Option<(f32, f32)>,
}

impl SourceSpec {
    /// A source of `class` at `gain_db`, in the centre of the picture, present all the time.
    pub fn new(class: SoundClass, gain_db: f32) -> Self {
        SourceSpec {
            class,
            gain_db,
            center: (0.5, 0.5),
            interval_s: None,
        }
    }

    /// The same source centred at `(x, y)` (fractions of the image side).
    pub fn at(self, x: f32, y: f32) -> Self {
        SourceSpec {
            center: (x, y),
            ..self
        }
    }

    /// The same source, present only from `start` to `end` seconds.
    pub fn during(self, start: f32, end: f32) -> Self {
        SourceSpec {
            interval_s: Some((start, end)),
            ..self
        }
    }

    /// Whether the source is on screen (and sounding) at `time_s` seconds: `start <= t < end`.
    pub fn active_at(&self, time_s: f32) -> bool {
        self.interval_s
            .is_none_or(|(start, end)| start <= time_s && time_s < end)
    }

    /// Checks that the gain, centre and interval are finite and in range.
    pub fn validate(&self) -> Result<()> {
        if !self.gain_db.is_finite() || self.gain_db.abs() > MAX_ABS_GAIN_DB {
            return Err(SynthError::InvalidArgument(format!(
                "gain of the {} source is {} dB; it must be finite and within ±{MAX_ABS_GAIN_DB} dB",
                self.class, self.gain_db
            )));
        }
        let (x, y) = self.center;
        if !(0.0..=1.0).contains(&x) || !(0.0..=1.0).contains(&y) {
            return Err(SynthError::InvalidArgument(format!(
                "centre of the {} source is ({x}, {y}); both coordinates must be fractions of the \
                 image side in [0, 1]",
                self.class
            )));
        }
        if let Some((start, end)) = self.interval_s
            && !(start.is_finite() && end.is_finite() && start < end)
        {
            return Err(SynthError::InvalidArgument(format!(
                "interval of the {} source is ({start}, {end}) s; it needs finite start < end",
                self.class
            )));
        }
        Ok(())
    }
}

/// A picture at one instant: a background and the sources drawn over it, and the level of the
/// recording that goes with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneSpec {
    /// The background kind.
    pub background: Background,
    /// Seed of the background texture (cloud, wave and grass placement).
    pub seed: u64,
    /// The instant in seconds: animates the background and selects the sources whose
    /// interval contains it.
    pub time_s: f32,
    /// Sources, drawn in order (later ones on top).
    pub sources: Vec<SourceSpec>,
    /// Overall level of the recording in dB: the ambient bed sounds at
    /// [`BACKGROUND_DB`](crate::BACKGROUND_DB)` + level_db`. Sources carry their own loudness
    /// at the microphone in [`SourceSpec::gain_db`] (a world clip's sources already include
    /// it), so this moves only the bed. 0 when absent from a file. Within ±[`MAX_ABS_GAIN_DB`].
    #[serde(default)]
    pub level_db: f32,
}

impl SceneSpec {
    /// A scene at time 0 with no sources.
    pub fn new(background: Background, seed: u64) -> Self {
        SceneSpec {
            background,
            seed,
            time_s: 0.0,
            sources: Vec::new(),
            level_db: 0.0,
        }
    }

    /// The same scene with one more source.
    pub fn with_source(mut self, source: SourceSpec) -> Self {
        self.sources.push(source);
        self
    }

    /// The same scene at `time_s` seconds.
    pub fn at_time(self, time_s: f32) -> Self {
        SceneSpec { time_s, ..self }
    }

    /// The same scene recorded `level_db` dB louder or quieter (see [`SceneSpec::level_db`]).
    pub fn with_level_db(self, level_db: f32) -> Self {
        SceneSpec { level_db, ..self }
    }

    /// Checks the time, the level and every source.
    pub fn validate(&self) -> Result<()> {
        if !self.level_db.is_finite() || self.level_db.abs() > MAX_ABS_GAIN_DB {
            return Err(SynthError::InvalidArgument(format!(
                "recording level is {} dB; it must be finite and within ±{MAX_ABS_GAIN_DB} dB",
                self.level_db
            )));
        }
        if !self.time_s.is_finite() {
            return Err(SynthError::InvalidArgument(format!(
                "scene time is {} s; it must be finite",
                self.time_s
            )));
        }
        self.sources.iter().try_for_each(SourceSpec::validate)
    }
}
