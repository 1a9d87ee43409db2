//! Band-limited resampling with rubato's synchronous FFT resampler.

use rubato::{FftFixedIn, Resampler};

use crate::error::{AudioError, Result};
use crate::waveform::Waveform;

/// Target length of one FFT block of input frames (rounded to an even number of
/// `from / gcd(from, to)` periods so that every block maps to an exact output block and the
/// filter delay, half a block, is a whole number of input and output frames).
const BLOCK_FRAMES: usize = 2048;

/// Resample `wave` to `to_hz` Hz, all channels, with an anti-aliased FFT resampler.
///
/// The resampler's group delay is removed, so the output is time-aligned with the input, and
/// the output has `ceil(frames * to_hz / from_hz)` frames (the length `scipy.signal.resample_poly`
/// gives). Work is done in `f64`.
pub fn resample(wave: &Waveform, to_hz: u32) -> Result<Waveform> {
    let from_hz = wave.sample_rate;
    check_rates(from_hz, to_hz)?;
    if from_hz == to_hz {
        return Ok(wave.clone());
    }
    let ch = usize::from(wave.channels.max(1));
    let frames_in = wave.frames();
    let frames_out = (frames_in as u128 * u128::from(to_hz)).div_ceil(u128::from(from_hz));
    let frames_out = usize::try_from(frames_out)
        .map_err(|_| resample_error(from_hz, to_hz, "output too long"))?;
    if frames_in == 0 {
        return Ok(Waveform {
            samples: Vec::new(),
            sample_rate: to_hz,
            channels: wave.channels,
        });
    }

    let block_in = block_frames(from_hz, to_hz);
    let mut rs = fft_resampler(from_hz, to_hz, ch)?;
    let delay = rs.output_delay();
    let wanted = delay + frames_out;

    let mut planar: Vec<Vec<f64>> = vec![Vec::with_capacity(frames_in); ch];
    for frame in wave.samples.chunks_exact(ch) {
        for (c, &s) in frame.iter().enumerate() {
            planar[c].push(f64::from(s));
        }
    }

    let mut in_block: Vec<Vec<f64>> = vec![vec![0.0; block_in]; ch];
    let mut out_block: Vec<Vec<f64>> = vec![vec![0.0; rs.output_frames_max()]; ch];
    let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(wanted + block_in); ch];
    let mut pos = 0usize;
    while out[0].len() < wanted {
        for (c, block) in in_block.iter_mut().enumerate() {
            let end = (pos + block_in).min(frames_in);
            let avail = end.saturating_sub(pos);
            if avail > 0 {
                block[..avail].copy_from_slice(&planar[c][pos..end]);
            }
            block[avail..].fill(0.0);
        }
        pos += block_in;
        let (_, produced) = rs
            .process_into_buffer(&in_block, &mut out_block, None)
            .map_err(|e| resample_error(from_hz, to_hz, e.to_string()))?;
        for (o, b) in out.iter_mut().zip(&out_block) {
            o.extend_from_slice(&b[..produced]);
        }
    }

    let mut samples = Vec::with_capacity(frames_out * ch);
    for i in delay..wanted {
        for o in &out {
            samples.push(o[i] as f32);
        }
    }
    Ok(Waveform {
        samples,
        sample_rate: to_hz,
        channels: wave.channels,
    })
}

/// [`AudioError::Resample`] for `from_hz` → `to_hz`.
fn resample_error(from_hz: u32, to_hz: u32, detail: impl Into<String>) -> AudioError {
    AudioError::Resample {
        from_hz,
        to_hz,
        detail: detail.into(),
    }
}

/// Both rates must be positive.
fn check_rates(from_hz: u32, to_hz: u32) -> Result<()> {
    if from_hz == 0 || to_hz == 0 {
        return Err(resample_error(
            from_hz,
            to_hz,
            "sample rates must be positive",
        ));
    }
    Ok(())
}

/// rubato's FFT resampler for `channels` channels, one block of [`block_frames`] input frames
/// at a time.
fn fft_resampler(from_hz: u32, to_hz: u32, channels: usize) -> Result<FftFixedIn<f64>> {
    let block_in = block_frames(from_hz, to_hz);
    FftFixedIn::<f64>::new(from_hz as usize, to_hz as usize, block_in, 1, channels)
        .map_err(|e| resample_error(from_hz, to_hz, e.to_string()))
}

/// Input frames of one FFT block for `from_hz` → `to_hz` (see [`BLOCK_FRAMES`]).
fn block_frames(from_hz: u32, to_hz: u32) -> usize {
    let g = gcd(from_hz as usize, to_hz as usize);
    let period_in = from_hz as usize / g;
    period_in * 2 * BLOCK_FRAMES.div_ceil(2 * period_in)
}

/// [`resample`] for a mono stream that arrives in chunks of any length (e.g. a microphone):
/// the output is the one [`resample`] gives for the whole stream so far, delivered a block at
/// a time, with at most one block of input held back (2048 frames or a little more; 46 ms at
/// 44.1 kHz). Its memory is fixed when it is made: nothing grows with the stream.
pub struct StreamResampler {
    resampler: FftFixedIn<f64>,
    from_hz: u32,
    to_hz: u32,
    /// The block being filled (one channel), `filled` frames of it so far.
    block: Vec<Vec<f64>>,
    filled: usize,
    out_block: Vec<Vec<f64>>,
    /// Output frames still to drop: the filter's delay, as [`resample`] drops it.
    skip: usize,
}

impl StreamResampler {
    /// A resampler from `from_hz` to `to_hz` Hz (both positive; equal rates pass through).
    ///
    /// # Errors
    /// [`AudioError::Resample`] for a rate of 0 or one rubato does not take.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self> {
        check_rates(from_hz, to_hz)?;
        let block_in = block_frames(from_hz, to_hz);
        let resampler = fft_resampler(from_hz, to_hz, 1)?;
        let skip = resampler.output_delay();
        let out_block = vec![vec![0.0; resampler.output_frames_max()]];
        Ok(Self {
            resampler,
            from_hz,
            to_hz,
            block: vec![vec![0.0; block_in]],
            filled: 0,
            out_block,
            skip,
        })
    }

    /// The input rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// The output rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Take `input` (mono samples at [`from_hz`](Self::from_hz)) and append to `out` the
    /// output samples that are complete.
    ///
    /// # Errors
    /// [`AudioError::Resample`] when rubato fails (it does not for valid rates).
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        if self.from_hz == self.to_hz {
            out.extend_from_slice(input);
            return Ok(());
        }
        let mut input = input;
        while !input.is_empty() {
            let block = &mut self.block[0];
            let take = (block.len() - self.filled).min(input.len());
            for (b, &s) in block[self.filled..self.filled + take].iter_mut().zip(input) {
                *b = f64::from(s);
            }
            self.filled += take;
            input = &input[take..];
            if self.filled < block.len() {
                break;
            }
            self.filled = 0;
            let (_, produced) = self
                .resampler
                .process_into_buffer(&self.block, &mut self.out_block, None)
                .map_err(|e| resample_error(self.from_hz, self.to_hz, e.to_string()))?;
            let dropped = self.skip.min(produced);
            self.skip -= dropped;
            out.extend(
                self.out_block[0][dropped..produced]
                    .iter()
                    .map(|&s| s as f32),
            );
        }
        Ok(())
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
        let n = (secs * f64::from(rate)) as usize;
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    /// A stream cut into uneven chunks resamples to the whole clip's output, minus the held-back
    /// last block.
    #[test]
    fn streamed_chunks_give_the_offline_output() {
        for (from, to) in [
            (44_100, 16_000),
            (48_000, 16_000),
            (8_000, 16_000),
            (16_000, 16_000),
        ] {
            let input: Vec<f32> = (0..3 * from as usize)
                .map(|i| ((i as f32 * 0.013).sin() + (i as f32 * 0.0007).cos()) * 0.4)
                .collect();
            let offline = Waveform::mono(input.clone(), from).resample(to).unwrap();
            let mut stream = StreamResampler::new(from, to).unwrap();
            let mut out = Vec::new();
            let mut at = 0;
            for size in [1usize, 777, 4096, 13, 30_000].iter().cycle() {
                if at >= input.len() {
                    break;
                }
                let end = (at + size).min(input.len());
                stream.push(&input[at..end], &mut out).unwrap();
                at = end;
            }
            let held_back = 2 * block_frames(from, to) * to as usize / from as usize + 2;
            assert!(
                out.len() + held_back >= offline.samples.len(),
                "{from}->{to}: {}",
                out.len()
            );
            assert!(out.len() <= offline.samples.len());
            let err = out
                .iter()
                .zip(&offline.samples)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-6, "{from}->{to}: max difference {err}");
        }
    }

    #[test]
    fn sine_survives_44100_to_16000() {
        let w = Waveform::mono(sine(440.0, 44_100, 1.0), 44_100);
        let r = w.resample(16_000).unwrap();
        assert_eq!(r.frames(), 16_000);
        let expect = sine(440.0, 16_000, 1.0);
        // Ignore the edges, where the zero padding outside the signal matters.
        let err = r.samples[200..15_800]
            .iter()
            .zip(&expect[200..15_800])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn tone_above_new_nyquist_is_removed() {
        // 11 kHz cannot be represented at 16 kHz (Nyquist 8 kHz): a band-limited resampler removes
        // it instead of aliasing it to 5 kHz as linear interpolation would.
        let w = Waveform::mono(sine(11_000.0, 44_100, 1.0), 44_100);
        let r = w.resample(16_000).unwrap();
        let rms = (r.samples[500..15_500]
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / 15_000.0)
            .sqrt();
        assert!(rms < 0.01, "alias rms {rms}");
    }

    #[test]
    fn upsampling_keeps_channels() {
        let w = Waveform::interleaved([0.25, -0.25].repeat(800), 8_000, 2).unwrap();
        let r = w.resample(16_000).unwrap();
        assert_eq!(r.channels, 2);
        assert_eq!(r.frames(), 1_600);
        assert!((r.samples[1600] - 0.25).abs() < 1e-3);
        assert!((r.samples[1601] + 0.25).abs() < 1e-3);
    }
}
