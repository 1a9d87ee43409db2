//! Sound2Scene inference: a sound in, pictures of the scene that made it out.
//!
//! [`SoundToScene`] holds the three networks (f_A, G and optionally f_V) and runs the paper's
//! inference: audio → log spectrogram → z^A → G. [`SoundToScene::draw`] draws any number of
//! pictures in batches of bounded size; [`controls`] holds the paper's feature-space controls
//! (interpolation, composition, editing); [`visual`] turns outputs into pictures and grids;
//! [`live`] draws a stream of sound (a microphone) a picture every hop;
//! [`bundle`] finds the bundled model, the default of every inference command; [`limits`]
//! holds the ranges a request may take.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sound2scene_infer::{DrawSettings, Noise, bundle, visual};
//!
//! let device = Device::default();
//! let pipeline = bundle::load_pipeline(bundle::default_model_dir(), &device)?;
//! let wave = sound2scene_audio::load_audio("assets/sounds/field_cow.wav")?;
//! let feature = pipeline.audio_features(std::slice::from_ref(&wave))?; // [1, dim]
//! let settings = DrawSettings { count: 4, ..DrawSettings::default() };
//! let drawn = pipeline.draw(feature, &Noise::Seeded { seed: 0, z_var: 1.0 }, &settings, |_, _| {})?;
//! visual::grid(&drawn.images, 4, 2).save("scene.png").expect("writable");
//! # Ok::<(), sound2scene_infer::InferError>(())
//! ```
#![deny(missing_docs)]

pub mod bundle;
pub mod controls;
pub mod draw;
pub mod error;
pub mod limits;
pub mod live;
pub mod pipeline;
pub mod visual;

pub use controls::{Interpolation, Inversion, InversionConfig, compose, interpolate, lerp, slerp};
pub use draw::{DrawSettings, Drawn, Noise};
pub use error::{InferError, Result};
pub use live::{LiveFrame, LiveSettings, LiveState, SceneStream};
pub use pipeline::{
    ModelPaths, NoiseStream, SoundToScene, embed_spectrograms, encode_spectrograms,
    generate_best_of, l2_normalize, mix_and_gain, sample_noise,
};
