//! [`Waveform`]: decoded PCM audio plus the paper's input-space manipulations (volume, mixing,
//! offset and trimming).

use crate::error::{AudioError, Result};

/// Decoded audio: interleaved `f32` samples, nominally in `[-1, 1]`.
///
/// `samples.len()` is `frames * channels`; frame `i` of channel `c` is `samples[i * channels + c]`.
/// Samples may exceed `[-1, 1]` (float files, positive gain); the spectrogram front end clips them.
#[derive(Clone, Debug, PartialEq)]
pub struct Waveform {
    /// Interleaved samples, `frames * channels` long.
    pub samples: Vec<f32>,
    /// Sample rate in Hz (frames per second).
    pub sample_rate: u32,
    /// Number of interleaved channels (1 = mono).
    pub channels: u16,
}

impl Waveform {
    /// A mono waveform from `samples` at `sample_rate` Hz.
    pub fn mono(samples: Vec<f32>, sample_rate: u32) -> Self {
        Self {
            samples,
            sample_rate,
            channels: 1,
        }
    }

    /// A waveform with `channels` interleaved channels.
    ///
    /// Fails if `channels` is 0, `sample_rate` is 0, or `samples.len()` is not a multiple of
    /// `channels`.
    pub fn interleaved(samples: Vec<f32>, sample_rate: u32, channels: u16) -> Result<Self> {
        if channels == 0 {
            return Err(AudioError::InvalidArgument(
                "a waveform needs at least one channel".into(),
            ));
        }
        if sample_rate == 0 {
            return Err(AudioError::InvalidArgument(
                "a waveform's sample rate must be positive".into(),
            ));
        }
        if !samples.len().is_multiple_of(usize::from(channels)) {
            return Err(AudioError::InvalidArgument(format!(
                "{} interleaved samples are not a whole number of {channels}-channel frames",
                samples.len()
            )));
        }
        Ok(Self {
            samples,
            sample_rate,
            channels,
        })
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Duration in seconds (`frames / sample_rate`).
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.frames() as f64 / f64::from(self.sample_rate)
    }

    /// Largest absolute sample value (0 for an empty waveform).
    pub fn peak(&self) -> f32 {
        self.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()))
    }

    /// Downmix to mono by averaging the channels of each frame (a mono waveform is cloned).
    pub fn to_mono(&self) -> Waveform {
        let ch = usize::from(self.channels.max(1));
        if ch == 1 {
            return self.clone();
        }
        let inv = 1.0 / ch as f64;
        let samples = self
            .samples
            .chunks_exact(ch)
            .map(|frame| (frame.iter().map(|&s| f64::from(s)).sum::<f64>() * inv) as f32)
            .collect();
        Waveform::mono(samples, self.sample_rate)
    }

    /// Resample to `to_hz` Hz with a band-limited (FFT, anti-aliased) resampler.
    ///
    /// The output has `ceil(frames * to_hz / sample_rate)` frames and the same channels.
    pub fn resample(&self, to_hz: u32) -> Result<Waveform> {
        crate::resample::resample(self, to_hz)
    }

    /// Change the volume by `db` decibels: every sample is multiplied by `10^(db / 20)`
    /// (+6.0206 dB doubles the amplitude). No clipping happens here; the spectrogram front end
    /// clips to `[-1, 1]` afterwards, as the official pipeline does.
    pub fn gain_db(&self, db: f32) -> Result<Waveform> {
        if !db.is_finite() {
            return Err(AudioError::InvalidArgument(format!(
                "gain must be a finite number of dB, got {db}"
            )));
        }
        let factor = 10f64.powf(f64::from(db) / 20.0);
        let samples = self
            .samples
            .iter()
            .map(|&s| (f64::from(s) * factor) as f32)
            .collect();
        Ok(Waveform {
            samples,
            sample_rate: self.sample_rate,
            channels: self.channels,
        })
    }

    /// Repeat the waveform from its start (like `np.tile`) and cut it to exactly `frames` frames.
    ///
    /// An empty waveform becomes `frames` frames of silence.
    pub fn tile_to(&self, frames: usize) -> Waveform {
        let ch = usize::from(self.channels.max(1));
        let want = frames * ch;
        let samples = if self.samples.is_empty() {
            vec![0.0; want]
        } else {
            self.samples.iter().copied().cycle().take(want).collect()
        };
        Waveform {
            samples,
            sample_rate: self.sample_rate,
            channels: self.channels,
        }
    }

    /// Weighted sum of several waveforms: `sum_i weight_i * wave_i`.
    ///
    /// All inputs must share sample rate and channel count (resample / downmix first). Lengths
    /// are aligned the way the front end tiles: shorter inputs are repeated from their start up
    /// to the longest input's length. Weights are used as given (not normalised), so a 50/50 mix
    /// of a sound with itself is the sound.
    pub fn mix(inputs: &[(&Waveform, f32)]) -> Result<Waveform> {
        let Some((first, _)) = inputs.first() else {
            return Err(AudioError::InvalidArgument(
                "mix needs at least one waveform".into(),
            ));
        };
        for (w, weight) in inputs {
            if w.sample_rate != first.sample_rate || w.channels != first.channels {
                return Err(AudioError::InvalidArgument(format!(
                    "cannot mix {} Hz/{} ch with {} Hz/{} ch audio; resample and downmix first",
                    w.sample_rate, w.channels, first.sample_rate, first.channels
                )));
            }
            if !weight.is_finite() {
                return Err(AudioError::InvalidArgument(format!(
                    "mix weights must be finite, got {weight}"
                )));
            }
        }
        let frames = inputs.iter().map(|(w, _)| w.frames()).max().unwrap_or(0);
        let len = frames * usize::from(first.channels.max(1));
        let mut acc = vec![0f64; len];
        for (w, weight) in inputs {
            if w.samples.is_empty() {
                continue;
            }
            let weight = f64::from(*weight);
            for (a, &s) in acc.iter_mut().zip(w.samples.iter().cycle()) {
                *a += weight * f64::from(s);
            }
        }
        Ok(Waveform {
            samples: acc.into_iter().map(|v| v as f32).collect(),
            sample_rate: first.sample_rate,
            channels: first.channels,
        })
    }

    /// Shift the sound in time by `seconds`.
    ///
    /// Positive: the sound starts later (that much silence is prepended, length grows).
    /// Negative: the sound starts earlier (that much is removed from the start; shifting past the
    /// end leaves an empty waveform). The shift is rounded to whole frames.
    pub fn offset(&self, seconds: f64) -> Result<Waveform> {
        let frames = self.secs_to_frames(seconds.abs(), "offset")?;
        let ch = usize::from(self.channels.max(1));
        let samples = if seconds >= 0.0 {
            let mut v = vec![0.0; frames * ch];
            v.extend_from_slice(&self.samples);
            v
        } else {
            let start = (frames * ch).min(self.samples.len());
            self.samples[start..].to_vec()
        };
        Ok(Waveform {
            samples,
            sample_rate: self.sample_rate,
            channels: self.channels,
        })
    }

    /// Keep the segment starting at `start_secs` lasting `duration_secs` (to the end if `None`).
    ///
    /// Both are in seconds, non-negative, rounded to whole frames; the segment is cut at the end
    /// of the waveform.
    pub fn trim(&self, start_secs: f64, duration_secs: Option<f64>) -> Result<Waveform> {
        let ch = usize::from(self.channels.max(1));
        let start = self.secs_to_frames(start_secs, "trim start")?;
        let start = start.min(self.frames());
        let end = match duration_secs {
            Some(d) => start.saturating_add(self.secs_to_frames(d, "trim duration")?),
            None => self.frames(),
        }
        .min(self.frames());
        Ok(Waveform {
            samples: self.samples[start * ch..end * ch].to_vec(),
            sample_rate: self.sample_rate,
            channels: self.channels,
        })
    }

    fn secs_to_frames(&self, seconds: f64, what: &str) -> Result<usize> {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(AudioError::InvalidArgument(format!(
                "{what} must be a finite, non-negative number of seconds, got {seconds}"
            )));
        }
        let frames = (seconds * f64::from(self.sample_rate)).round();
        if frames > (isize::MAX as f64) / 8.0 {
            return Err(AudioError::InvalidArgument(format!(
                "{what} of {seconds} s is too large"
            )));
        }
        Ok(frames as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_mono_averages_channels() {
        let w = Waveform::interleaved(vec![1.0, 0.0, 0.5, -0.5], 8000, 2).unwrap();
        assert_eq!(w.to_mono().samples, vec![0.5, 0.0]);
    }

    #[test]
    fn interleaved_rejects_partial_frames() {
        assert!(Waveform::interleaved(vec![0.0; 3], 8000, 2).is_err());
        assert!(Waveform::interleaved(vec![0.0; 4], 8000, 0).is_err());
        assert!(Waveform::interleaved(vec![0.0; 4], 0, 1).is_err());
    }

    #[test]
    fn tile_repeats_from_start() {
        let w = Waveform::mono(vec![1.0, 2.0, 3.0], 10);
        assert_eq!(
            w.tile_to(7).samples,
            vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
        );
        assert_eq!(w.tile_to(2).samples, vec![1.0, 2.0]);
        assert_eq!(
            Waveform::mono(vec![], 10).tile_to(2).samples,
            vec![0.0, 0.0]
        );
    }
}
