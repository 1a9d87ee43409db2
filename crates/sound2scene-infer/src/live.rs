//! Live scenes: a stream of sound in (a microphone, a long recording), a picture out every hop.
//!
//! [`SceneStream`] takes PCM chunks of any length, rate and channel count, keeps the last
//! `window_secs` of sound (a [`SlidingWindow`] at the model's rate) and, every `hop_secs`, draws
//! the scene of that window. The pictures do not flicker from hop to hop: the noise z is drawn
//! once when the stream starts and kept, and the audio feature is smoothed over time. Memory is
//! fixed when the stream starts; nothing grows with the stream's length.
//!
//! The knobs ([`LiveSettings`]):
//! - `window_secs`: how much sound one picture describes (default: the model's clip length,
//!   10 s). Shorter follows changes sooner; the encoder was trained on its clip length.
//! - `hop_secs`: time between pictures (default 0.5 s); each hop runs the audio encoder once
//!   and G `count` times.
//! - `smoothing`: how much of the previous feature a new one keeps, in `[0, 1)` (default 0.5):
//!   0 draws each window as [`SoundToScene::draw`] would draw it as a clip; 0.9 lets a change
//!   of sound take over in about ten hops.
//! - `count`, `seed`, `z_var`: pictures per hop and their noise, as for a clip.
//! - `gain_db`: a volume change applied to the window before encoding, as `--gain-db` is to a
//!   clip (louder draws larger objects).
//!
//! With `smoothing` 0, the picture drawn when the window holds a whole clip is the one
//! `generate` draws for that clip with the same seed.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sound2scene_infer::{LiveSettings, SceneStream, bundle};
//!
//! let pipeline = bundle::load_pipeline(bundle::default_model_dir(), &Device::default())?;
//! let mut stream = SceneStream::new(&pipeline, &LiveSettings::default())?;
//! let chunk = vec![0.0f32; 4_800]; // 0.1 s of 48 kHz mono from a microphone
//! for frame in stream.push(&chunk, 48_000, 1)? {
//!     println!("{:.1} s: {} picture(s)", frame.time_secs, frame.images.len());
//! }
//! # Ok::<(), sound2scene_infer::InferError>(())
//! ```

use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use sound2scene_audio::{SlidingWindow, SpectrogramPlan};

use crate::draw::{DrawSettings, Noise, host};
use crate::error::{InferError, Result};
use crate::limits::{check_gain_db, check_live_count, check_live_timing, check_smoothing};
use crate::pipeline::{NoiseStream, SoundToScene, encode_spectrograms};

/// How a live stream is cut into pictures; see the [module docs](crate::live) for what each
/// knob does.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSettings {
    /// Seconds of sound one picture describes; `None` is the model's clip length (10 s).
    pub window_secs: Option<f32>,
    /// Seconds between pictures (default 0.5).
    pub hop_secs: f32,
    /// Share of the previous feature a new one keeps, in `[0, 1)` (default 0.5).
    pub smoothing: f32,
    /// Pictures per hop (default 1).
    pub count: usize,
    /// Seed of the noise, drawn once (default 0).
    pub seed: u64,
    /// Standard deviation of the noise (default 1.0, as the official code).
    pub z_var: f32,
    /// Volume change in dB applied to the window before encoding (default 0).
    pub gain_db: f32,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            window_secs: None,
            hop_secs: 0.5,
            smoothing: 0.5,
            count: 1,
            seed: 0,
            z_var: 1.0,
            gain_db: 0.0,
        }
    }
}

/// The pictures of one hop.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    /// Time of the hop in seconds from the stream's start (the end of the window).
    pub time_secs: f64,
    /// The hop's pictures, `count` of them.
    pub images: Vec<RgbImage>,
}

/// What a live stream keeps from hop to hop: the fixed noise and the smoothed feature. It
/// lives on the host (it is `Send`), so a server can keep one per client and hand it to the
/// thread that runs the networks with each hop's window.
#[derive(Debug, Clone)]
pub struct LiveState {
    settings: LiveSettings,
    plan: Arc<SpectrogramPlan>,
    /// `[count, dim_z]`, row-major.
    noise: Vec<f32>,
    /// The smoothed, unit-norm feature `[dim]` (the raw feature when `smoothing` is 0).
    feature: Option<Vec<f32>>,
}

impl LiveState {
    /// The settings the stream runs with.
    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Change the volume applied to the window from the next hop on (e.g. a slider).
    ///
    /// # Errors
    /// [`InferError::OutOfRange`] beyond ±[`MAX_GAIN_DB`](crate::limits::MAX_GAIN_DB).
    pub fn set_gain_db(&mut self, db: f32) -> Result<()> {
        self.settings.gain_db = check_gain_db("gain", db)?;
        Ok(())
    }

    /// The window and hop in samples at the model's rate.
    pub fn window_and_hop(&self) -> (usize, usize) {
        let rate = f64::from(self.plan.config().sample_rate);
        let window = match self.settings.window_secs {
            Some(secs) => (f64::from(secs) * rate).round() as usize,
            None => self.plan.config().num_samples(),
        };
        let hop = (f64::from(self.settings.hop_secs) * rate).round() as usize;
        (window, hop)
    }

    /// A sliding window cut as these settings ask.
    ///
    /// # Errors
    /// [`InferError::Audio`] when the window cannot be made (the settings were checked, so
    /// it can).
    pub fn sliding_window(&self) -> Result<SlidingWindow> {
        let (window, hop) = self.window_and_hop();
        Ok(SlidingWindow::new(
            window,
            hop,
            self.plan.config().sample_rate,
        )?)
    }
}

impl SoundToScene {
    /// The state of a new live stream with `settings`: the noise is drawn here, once.
    ///
    /// # Errors
    /// [`InferError::OutOfRange`] for a setting out of range (see
    /// [`limits`](crate::limits)); [`InferError::NoAudioEncoder`] without f_A.
    pub fn live_state(&self, settings: &LiveSettings) -> Result<LiveState> {
        if !self.has_audio_encoder() {
            return Err(InferError::NoAudioEncoder);
        }
        let config = self.spectrogram_config();
        let max_window = f64::from(config.seconds);
        check_live_timing(settings.window_secs, settings.hop_secs, max_window)?;
        check_live_count("count", settings.count)?;
        check_smoothing("smoothing", settings.smoothing)?;
        check_gain_db("gain", settings.gain_db)?;
        let noise = NoiseStream::new(self.dim_z(), settings.seed, settings.z_var)?
            .next_values(settings.count);
        Ok(LiveState {
            settings: settings.clone(),
            plan: SpectrogramPlan::cached(config)?,
            noise,
            feature: None,
        })
    }

    /// Draw the pictures of one hop: `window` is mono sound at the model's rate (what a
    /// [`SlidingWindow`] hands out), `state` the stream's noise and smoothed feature, which
    /// this updates.
    ///
    /// # Errors
    /// [`InferError::Audio`] for a window too short for one spectrogram segment (under
    /// 52 samples); the networks' errors.
    pub fn live_step(&self, state: &mut LiveState, window: &[f32]) -> Result<Vec<RgbImage>> {
        let encoder = self.audio_encoder().ok_or(InferError::NoAudioEncoder)?;
        let spectrogram = if state.settings.gain_db == 0.0 {
            state.plan.compute_samples(window)?
        } else {
            // As `Waveform::gain_db` computes it, so a live gain matches `--gain-db`.
            let factor = 10f64.powf(f64::from(state.settings.gain_db) / 20.0);
            let louder: Vec<f32> = window
                .iter()
                .map(|&s| (f64::from(s) * factor) as f32)
                .collect();
            state.plan.compute_samples(&louder)?
        };
        let feature = encode_spectrograms(encoder, &[spectrogram], self.device())?; // [1, dim]
        let [_, dim] = feature.dims();
        let current = host(feature)?;
        let smoothing = state.settings.smoothing;
        let feature = match state.feature.take() {
            Some(previous) if smoothing > 0.0 => {
                let current = unit(current);
                unit(
                    previous
                        .iter()
                        .zip(&current)
                        .map(|(p, c)| smoothing * p + (1.0 - smoothing) * c)
                        .collect(),
                )
            }
            _ if smoothing > 0.0 => unit(current),
            _ => current,
        };
        let device = self.device();
        let features = Tensor::<2>::from_data(TensorData::new(feature.clone(), [1, dim]), device);
        state.feature = Some(feature);
        let count = state.settings.count;
        let noise = Tensor::<2>::from_data(
            TensorData::new(state.noise.clone(), [count, self.dim_z()]),
            device,
        );
        let settings = DrawSettings {
            count,
            ..DrawSettings::default()
        };
        let drawn = self.draw(
            features,
            &Noise::Given(Box::new(noise)),
            &settings,
            |_, _| {},
        )?;
        Ok(drawn.images)
    }
}

/// A live stream: chunks of sound in, [`LiveFrame`]s out, one every hop.
pub struct SceneStream<'a> {
    pipeline: &'a SoundToScene,
    window: SlidingWindow,
    state: LiveState,
}

impl<'a> SceneStream<'a> {
    /// A stream drawn by `pipeline` with `settings`.
    ///
    /// # Errors
    /// Those of [`SoundToScene::live_state`].
    pub fn new(pipeline: &'a SoundToScene, settings: &LiveSettings) -> Result<Self> {
        let state = pipeline.live_state(settings)?;
        Ok(Self {
            pipeline,
            window: state.sliding_window()?,
            state,
        })
    }

    /// Push interleaved samples (`channels` per frame at `rate` Hz, any length) and get the
    /// pictures of every hop they complete (none, one, or several for a long chunk).
    ///
    /// # Errors
    /// [`InferError::Audio`] for a chunk that is not whole frames, a non-finite sample or a
    /// zero rate or channel count; the networks' errors.
    pub fn push(&mut self, samples: &[f32], rate: u32, channels: u16) -> Result<Vec<LiveFrame>> {
        let mut frames = Vec::new();
        let (pipeline, state) = (self.pipeline, &mut self.state);
        self.window
            .push(samples, rate, channels, |window, time_secs| {
                let images = pipeline.live_step(state, window)?;
                frames.push(LiveFrame { time_secs, images });
                Ok::<(), InferError>(())
            })?;
        Ok(frames)
    }

    /// The stream's state (settings, smoothed feature).
    pub fn state(&self) -> &LiveState {
        &self.state
    }

    /// Change the volume from the next hop on (see [`LiveState::set_gain_db`]).
    ///
    /// # Errors
    /// [`InferError::OutOfRange`] beyond ±[`MAX_GAIN_DB`](crate::limits::MAX_GAIN_DB).
    pub fn set_gain_db(&mut self, db: f32) -> Result<()> {
        self.state.set_gain_db(db)
    }

    /// Seconds of sound received so far.
    pub fn seconds(&self) -> f64 {
        self.window.seconds()
    }
}

/// `v / |v|` (a zero vector stays zero).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}
