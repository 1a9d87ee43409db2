//! Turn a sound into a picture of the scene that made it.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sound2scene::audio::load_audio;
//! use sound2scene::infer::{bundle, visual};
//!
//! // A sound in, four pictures of its scene out, with the bundled model.
//! let pipeline = bundle::load_pipeline(bundle::default_model_dir(), &Device::default())?;
//! let sound = load_audio("assets/sounds/field_cow.wav")?;
//! let pictures = pipeline.generate(&sound, 4, 0)?; // seed 0
//! visual::grid(&pictures, 4, 2).save("scene.png")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `sound2scene` is a pure-Rust implementation of Sound2Scene (Sung-Bin et al., CVPR 2023) on
//! the [Burn](https://burn.dev) framework. This crate is the facade: it re-exports the
//! workspace's libraries and adds the device selection shared by the CLI and examples.
//!
//! - [`audio`]: decoding, resampling, the official log spectrogram, waveform controls.
//! - [`models`]: the audio encoder, the SwAV image encoder and the IC-GAN generator and
//!   discriminator, loading the released PyTorch checkpoints directly.
//! - [`weights`]: the checkpoint readers under [`models`] (screened `.pth` → state dict of
//!   `f32`, burnpack headers), without Burn.
//! - [`infer`]: the sound-to-picture pipeline ([`SoundToScene`]), the paper's controls, live
//!   streams ([`SceneStream`]), pictures and grids, and the bundled model.
//! - [`kernels`]: the CPU kernels plugged into Burn's Flex backend.
//! - [`train`]: the contrastive alignment loss, the training loops and the evaluation metrics.
//! - [`select`]: localization-based pair mining (which frames of a video go with its sound).
//! - [`synth`]: a procedural audio-visual world with ground truth (training data and benchmark).
//! - [`world`]: the world's classifier and the paper's claims measured on the world.
//!
//! The `sound2scene serve` command (the crate `sound2scene-serve`, on axum and tokio) is behind
//! the default feature `serve`; the library never uses it.
//!
//! The front end on its own:
//!
//! ```
//! use sound2scene::audio::{Spectrogram, Waveform};
//!
//! // One second of a 440 Hz tone, tiled to the front end's 10 s like the official code.
//! let tone: Vec<f32> = (0..16_000)
//!     .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin() * 0.5)
//!     .collect();
//! let wave = Waveform::mono(tone, 16_000);
//! let spec = Spectrogram::compute(&wave)?;
//! assert_eq!(spec.shape(), [257, 1004]);
//! # Ok::<(), sound2scene::audio::AudioError>(())
//! ```
#![deny(missing_docs)]

pub mod device;

pub use device::{BackendKind, DeviceError};
pub use sound2scene_audio as audio;
pub use sound2scene_infer as infer;
pub use sound2scene_kernels as kernels;
pub use sound2scene_kernels::keep_freed_memory;
pub use sound2scene_models as models;
pub use sound2scene_select as select;
pub use sound2scene_synth as synth;
pub use sound2scene_train as train;
pub use sound2scene_weights as weights;
pub use sound2scene_world as world;

pub use sound2scene_infer::{
    DrawSettings, InferError, Interpolation, Inversion, InversionConfig, LiveFrame, LiveSettings,
    ModelPaths, Noise, SceneStream, SoundToScene, compose, interpolate, lerp, slerp,
};
