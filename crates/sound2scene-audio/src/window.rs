//! A sliding window over a live stream: PCM chunks of any length, rate and channel count in,
//! the last few seconds of mono audio at the model's rate out, once every hop.
//!
//! This is the audio half of live inference: a microphone or a long recording is pushed chunk
//! by chunk, each chunk is downmixed to mono and resampled to the model's rate
//! ([`StreamResampler`]), and every `hop` samples the window (the last `window` samples, or all
//! of them while fewer have arrived) is handed out. Its memory is set when it is made: the
//! window, one resampler block and one chunk's worth of scratch, whatever the stream's length.

use crate::error::{AudioError, Result};
use crate::resample::StreamResampler;

/// A sliding window of mono audio at a fixed rate, handed out every hop.
pub struct SlidingWindow {
    rate: u32,
    hop: usize,
    /// Ring buffer of the last `ring.len()` samples; `head` is where the next one goes.
    ring: Vec<f32>,
    head: usize,
    /// Samples in the ring (up to its length).
    filled: usize,
    /// Samples since the last hop.
    since_hop: usize,
    /// Samples received since the start, at `rate`.
    received: u64,
    resampler: Option<StreamResampler>,
    /// Downmixed input of one chunk, and its resampled output.
    mono: Vec<f32>,
    resampled: Vec<f32>,
    /// The window in time order, handed to the caller.
    ordered: Vec<f32>,
}

impl SlidingWindow {
    /// A window of `window` samples at `rate` Hz, handed out every `hop` samples.
    ///
    /// # Errors
    /// [`AudioError::InvalidArgument`] for a zero rate, window or hop, or a hop longer than
    /// the window.
    pub fn new(window: usize, hop: usize, rate: u32) -> Result<Self> {
        if rate == 0 || window == 0 || hop == 0 || hop > window {
            return Err(AudioError::InvalidArgument(format!(
                "a sliding window needs a positive rate, window and hop, with the hop at most \
                 the window; got {rate} Hz, window {window} and hop {hop} samples"
            )));
        }
        Ok(Self {
            rate,
            hop,
            ring: vec![0.0; window],
            head: 0,
            filled: 0,
            since_hop: 0,
            received: 0,
            resampler: None,
            mono: Vec::new(),
            resampled: Vec::new(),
            ordered: Vec::with_capacity(window),
        })
    }

    /// The rate of the window in Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Seconds of audio received so far (at the window's rate, after resampling).
    pub fn seconds(&self) -> f64 {
        self.received as f64 / f64::from(self.rate)
    }

    /// Push interleaved samples (`channels` per frame, at `rate` Hz; any length, also less
    /// than one hop) and call `on_hop` with the window, oldest sample first, and the time of
    /// its end in seconds from the stream's start, each time a hop completes — several times when the chunk spans several hops. Until the window has
    /// filled, the window handed out is what has arrived. A change of rate between chunks
    /// starts a new resampler (the old one's held-back samples are dropped).
    ///
    /// # Errors
    /// [`AudioError::InvalidArgument`] for a zero rate or channel count, a chunk that is not
    /// whole frames, or a non-finite sample; errors of `on_hop`, after which the stream goes
    /// on from the next sample.
    pub fn push<E: From<AudioError>>(
        &mut self,
        samples: &[f32],
        rate: u32,
        channels: u16,
        mut on_hop: impl FnMut(&[f32], f64) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        if rate == 0 || channels == 0 {
            return Err(AudioError::InvalidArgument(format!(
                "a chunk needs a positive rate and channel count, got {rate} Hz and {channels}"
            ))
            .into());
        }
        let channels = usize::from(channels);
        if !samples.len().is_multiple_of(channels) {
            return Err(AudioError::InvalidArgument(format!(
                "a chunk of {} samples is not whole frames of {channels} channels",
                samples.len()
            ))
            .into());
        }
        if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
            return Err(AudioError::InvalidArgument(format!(
                "sample {i} of the chunk is {}, not a finite number",
                samples[i]
            ))
            .into());
        }
        self.mono.clear();
        self.mono.extend(
            samples
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        let input = if rate == self.rate {
            self.resampler = None;
            &self.mono
        } else {
            if self.resampler.as_ref().is_none_or(|r| r.from_hz() != rate) {
                self.resampler = Some(StreamResampler::new(rate, self.rate)?);
            }
            self.resampled.clear();
            if let Some(resampler) = &mut self.resampler {
                resampler.push(&self.mono, &mut self.resampled)?;
            }
            &self.resampled
        };
        let mut at = 0;
        while at < input.len() {
            let take = (self.hop - self.since_hop).min(input.len() - at);
            for &s in &input[at..at + take] {
                self.ring[self.head] = s;
                self.head = (self.head + 1) % self.ring.len();
            }
            self.filled = (self.filled + take).min(self.ring.len());
            self.since_hop += take;
            self.received += take as u64;
            at += take;
            if self.since_hop == self.hop {
                self.since_hop = 0;
                self.ordered.clear();
                let start = (self.head + self.ring.len() - self.filled) % self.ring.len();
                if start + self.filled <= self.ring.len() {
                    self.ordered
                        .extend_from_slice(&self.ring[start..start + self.filled]);
                } else {
                    self.ordered.extend_from_slice(&self.ring[start..]);
                    self.ordered.extend_from_slice(&self.ring[..self.head]);
                }
                on_hop(&self.ordered, self.seconds())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(w: &mut SlidingWindow, samples: &[f32], rate: u32, channels: u16) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        w.push(samples, rate, channels, |win, _| {
            out.push(win.to_vec());
            Ok::<(), AudioError>(())
        })
        .unwrap();
        out
    }

    #[test]
    fn hands_out_the_last_window_every_hop_whatever_the_chunks() {
        let mut w = SlidingWindow::new(5, 2, 10).unwrap();
        let signal: Vec<f32> = (0..11).map(|i| i as f32).collect();
        let mut got = Vec::new();
        for chunk in [&signal[..1], &signal[1..6], &signal[6..7], &signal[7..]] {
            got.extend(windows(&mut w, chunk, 10, 1));
        }
        let want: Vec<Vec<f32>> = vec![
            vec![0.0, 1.0],
            vec![0.0, 1.0, 2.0, 3.0],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            vec![3.0, 4.0, 5.0, 6.0, 7.0],
            vec![5.0, 6.0, 7.0, 8.0, 9.0],
        ];
        assert_eq!(got, want);
        assert!((w.seconds() - 1.1).abs() < 1e-9);
    }

    #[test]
    fn downmixes_and_resamples() {
        let mut w = SlidingWindow::new(16_000, 8_000, 16_000).unwrap();
        // Stereo at 48 kHz, left = right: one second gives 16000 mono samples, less the block
        // the resampler holds back, so one hop of 8000.
        let stereo: Vec<f32> = (0..48_000)
            .flat_map(|i| {
                let s = (i as f32 * 0.01).sin() * 0.5;
                [s, s]
            })
            .collect();
        let got = windows(&mut w, &stereo, 48_000, 2);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), 8_000);
        let want =
            crate::waveform::Waveform::mono(stereo.chunks_exact(2).map(|f| f[0]).collect(), 48_000)
                .resample(16_000)
                .unwrap();
        let err = got[0]
            .iter()
            .zip(&want.samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-5, "max difference {err}");
    }

    #[test]
    fn refuses_bad_chunks_and_settings() {
        assert!(SlidingWindow::new(4, 5, 16_000).is_err());
        assert!(SlidingWindow::new(4, 0, 16_000).is_err());
        let mut w = SlidingWindow::new(4, 2, 16_000).unwrap();
        let mut call = |s: &[f32], rate, ch| w.push(s, rate, ch, |_, _| Ok::<(), AudioError>(()));
        assert!(call(&[0.0, 1.0, 2.0], 16_000, 2).is_err());
        assert!(call(&[0.0, f32::NAN], 16_000, 1).is_err());
        assert!(call(&[0.0], 0, 1).is_err());
        assert!(call(&[0.0], 16_000, 0).is_err());
        assert!(call(&[0.0, 1.0], 16_000, 2).is_ok());
    }
}
