//! A deterministic procedural audio-visual world with ground truth, for training and
//! benchmarking Sound2Scene (sound → picture of the scene that made it).
//!
//! A [`World`] is an unbounded, random-access collection of [`Clip`]s, each fully determined
//! by `(WorldConfig, index)`. A clip has a [`Background`] (sky, water or field: a look and a
//! quiet ambient bed at [`BACKGROUND_DB`] dB) and 0–2 sound sources of distinct
//! [`SoundClass`]es (bell, siren, engine, bird, dog, drum, whistle, cow). Each class has its own
//! synthesized timbre and its own look: a shape in a flat, saturated colour that no other class
//! and no background uses, so a class's area in a picture is measured by counting colours
//! ([`measure_class_area`]).
//!
//! # Physics
//! * **Louder is closer is bigger.** A source at `gain_db` has an RMS of
//!   [`REFERENCE_RMS`]` × 10^(gain_db/20)` and is drawn with radius
//!   `base × image_size × 10^(gain_db/40)` ([`radius_px`]): +12 dB doubles the radius,
//!   +6 dB doubles the area. The gain is the loudness at the microphone: a world whose
//!   recordings vary in level ([`WorldConfig::level_db_range`]) moves every source and the bed
//!   of a clip together, so a louder recording of a scene shows its sources larger.
//! * **Mixing sounds draws both objects.** The audio of a scene is the sum of its sources and
//!   its bed, and every sounding source is drawn.
//! * **Sound and sight share one interval.** A source is on screen during its interval
//!   `[start, end)` (20–50 % of the clip by default, placed at random) and sounds exactly then
//!   (with [`FADE_SECONDS`] fades); the other frames show only the background. Hence the
//!   middle frame — the one the official layout pairs with the audio — misses a sounding source
//!   in a known fraction of clips (see [`DatasetTruth`]).
//!
//! # Sounds (16 kHz; designed to be told apart on a 257-bin log spectrogram)
//! See [`SoundClass`] for the table of timbres and looks and [`SoundClass::band_hz`] for each
//! class's characteristic band. Low band: engine (continuous buzz with 8–14 Hz chug), drum
//! (periodic thumps), cow (long harmonic moans). Middle: bell (decaying inharmonic lines),
//! siren (sweeping line), dog (short formant bursts). High: whistle (steady line with vibrato),
//! bird (fast sweeps).
//!
//! # Example
//! ```
//! use sound2scene_synth::{
//!     Background, SceneSpec, SoundClass, SourceSpec, measure_class_area, render_scene,
//!     synth_sound,
//! };
//!
//! let near = SourceSpec::new(SoundClass::Bell, 6.0).at(0.3, 0.5);
//! let far = SourceSpec::new(SoundClass::Bell, -6.0).at(0.7, 0.5);
//! let big = render_scene(&SceneSpec::new(Background::Sky, 1).with_source(near), 64)?;
//! let small = render_scene(&SceneSpec::new(Background::Sky, 1).with_source(far), 64)?;
//! assert!(measure_class_area(&big, SoundClass::Bell) > measure_class_area(&small, SoundClass::Bell));
//!
//! let audio = synth_sound(&[near, SourceSpec::new(SoundClass::Dog, 0.0)], Background::Field, 1.0, 7)?;
//! assert_eq!(audio.len(), 16_000);
//! # Ok::<(), sound2scene_synth::SynthError>(())
//! ```
//!
//! Datasets are written with [`write_dataset`] in the official layout (`images/`, `audios/`)
//! or the VGGSound layout (`frames/NAME/`, `audios/`), plus `ground_truth.json`.
//!
//! Determinism: all randomness comes from ChaCha8 streams and integer hashes seeded from the
//! world seed, so output is identical across runs and thread counts on one platform
//! (floating-point transcendental functions may differ in the last bit across platforms).
#![deny(missing_docs)]

pub mod background;
pub mod class;
pub mod clip;
mod dsp;
pub mod error;
pub mod render;
pub mod scene;
pub mod sound;
pub mod truth;
pub mod world;
pub mod writer;

pub use background::Background;
pub use class::{Shape, SoundClass};
pub use clip::Clip;
pub use error::{Result, SynthError};
pub use render::{
    COLOR_TOLERANCE, MAX_IMAGE_SIZE, MIN_RADIUS_PX, measure_class_area, measure_class_area_within,
    radius_px, render_scene, scene_objects,
};
pub use scene::{MAX_ABS_GAIN_DB, SceneSpec, SourceSpec};
pub use sound::{
    BACKGROUND_DB, FADE_SECONDS, MAX_SECONDS, REFERENCE_RMS, SAMPLE_RATE, class_sound,
    db_to_amplitude, sample_count, synth_sound,
};
pub use truth::{ClipTruth, DatasetTruth, FrameTruth, ObjectTruth, SourceTruth};
pub use world::{MAX_FPS, WORLD_FILE, World, WorldConfig};
pub use writer::{GROUND_TRUTH_FILE, JPEG_QUALITY, Layout, encode_wav, write_dataset, write_wav};
