//! Audio input for Sound2Scene: decoding, resampling, waveform manipulations and the official
//! log-spectrogram front end (`[257, 1004]` for a clip of 1 s or more at 16 kHz; a shorter clip
//! is repeated ten times, as the official code does, and gives fewer frames).
//!
//! ```no_run
//! use sound2scene_audio::{Spectrogram, load_audio};
//!
//! let wave = load_audio("cow.wav")?; // mono, 16 kHz
//! let louder = wave.gain_db(6.0206)?; // twice the amplitude
//! let spec = Spectrogram::compute(&louder)?;
//! assert_eq!(spec.shape(), [257, 1004]);
//! # Ok::<(), sound2scene_audio::AudioError>(())
//! ```
//!
//! The default feature `tensor` adds [`to_tensor`] and [`spectrogram_batch`] (spectrograms as a
//! Burn tensor); without it the crate does not depend on Burn (the fuzz targets build it so).
#![deny(missing_docs)]

pub mod batch;
pub mod decode;
pub mod error;
mod mp4_edit;
pub mod npy;
pub mod resample;
pub mod spectrogram;
pub mod waveform;
pub mod window;

pub use batch::spectrograms;
#[cfg(feature = "tensor")]
pub use batch::{spectrogram_batch, to_tensor};
pub use decode::{
    DecodeOptions, DecodeWarning, Decoded, MAX_SAMPLE_RATE, MAX_WAV_CHANNELS, MODEL_SAMPLE_RATE,
    decode_bytes, decode_file, decode_file_reporting, load_audio, load_audio_bytes,
    load_audio_reporting, load_audio_with,
};
pub use error::{AudioError, Result};
pub use npy::{NpyArray, read_npy_f32, write_npy_f32};
pub use resample::StreamResampler;
pub use spectrogram::{OFFICIAL_REPEATS, Spectrogram, SpectrogramConfig, SpectrogramPlan, Tiling};
pub use waveform::Waveform;
pub use window::SlidingWindow;
