//! Sound synthesis: one timbre per [`SoundClass`] ([`class_sound`]) and the mix of a scene's
//! sources over its ambient bed ([`synth_sound`]).
//!
//! Levels: a source at gain `g` dB has an RMS of [`REFERENCE_RMS`]` × 10^(g/20)` over the
//! interval in which it sounds (fades excluded); the background bed sits at
//! [`BACKGROUND_DB`] dB re [`REFERENCE_RMS`]. Waveforms are mono at [`SAMPLE_RATE`] Hz and are
//! not clipped (a `+6 dB` pair stays well inside `[-1, 1]`; the WAV writer clamps).

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::background::{self, Background};
use crate::class::SoundClass;
use crate::dsp::{Biquad, SR, derive_seed, normalize_rms, rng_for, white};
use crate::error::{Result, SynthError};
use crate::scene::SourceSpec;

pub use crate::dsp::SAMPLE_RATE;

/// RMS amplitude of a source at 0 dB (about −26 dBFS).
pub const REFERENCE_RMS: f32 = 0.05;

/// Level of the ambient bed in dB relative to [`REFERENCE_RMS`].
pub const BACKGROUND_DB: f32 = -30.0;

/// Longest accepted duration in seconds.
pub const MAX_SECONDS: f32 = 600.0;

/// Length in seconds of the linear fade-in and fade-out applied where a source starts and stops.
pub const FADE_SECONDS: f32 = 0.03;

/// Converts dB to an amplitude ratio: `10^(db / 20)`.
pub fn db_to_amplitude(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Number of samples in `seconds` at [`SAMPLE_RATE`] (rounded to the nearest sample).
pub fn sample_count(seconds: f32) -> usize {
    (seconds.max(0.0) * SR).round() as usize
}

pub(crate) fn validate_seconds(seconds: f32) -> Result<()> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SECONDS) {
        return Err(SynthError::InvalidArgument(format!(
            "duration is {seconds} s; it must be in (0, {MAX_SECONDS}] s"
        )));
    }
    Ok(())
}

/// The sound of one source of `class` alone, `seconds` long, at `gain_db` (RMS
/// [`REFERENCE_RMS`]` × 10^(gain_db/20)`), without background or fades. Deterministic in
/// `seed`; different seeds vary pitch, rhythm and phase within the class's ranges.
///
/// # Errors
/// [`SynthError::InvalidArgument`] if `seconds` is not in `(0, MAX_SECONDS]` or `gain_db` is not
/// finite and within ±[`MAX_ABS_GAIN_DB`](crate::MAX_ABS_GAIN_DB).
pub fn class_sound(class: SoundClass, gain_db: f32, seconds: f32, seed: u64) -> Result<Vec<f32>> {
    validate_seconds(seconds)?;
    SourceSpec::new(class, gain_db).validate()?;
    Ok(class_samples(class, gain_db, sample_count(seconds), seed))
}

/// The sound of a scene: the `background` bed plus every source, each sounding only during its
/// interval (with [`FADE_SECONDS`] fades) — the audio is the plain sum of the parts.
/// Source `i` uses a seed derived from `(seed, i)`, so reordering sources changes their
/// realisations but not their levels.
///
/// # Errors
/// [`SynthError::InvalidArgument`] for a bad duration or an invalid source (see
/// [`SourceSpec::validate`]).
pub fn synth_sound(
    sources: &[SourceSpec],
    background: Background,
    seconds: f32,
    seed: u64,
) -> Result<Vec<f32>> {
    validate_seconds(seconds)?;
    sources.iter().try_for_each(SourceSpec::validate)?;
    Ok(mix(sources, background, 0.0, seconds, seed))
}

/// [`synth_sound`] without validation (for inputs already checked), the bed moved by
/// `level_db` (see [`crate::SceneSpec::level_db`]).
pub(crate) fn mix(
    sources: &[SourceSpec],
    background: Background,
    level_db: f32,
    seconds: f32,
    seed: u64,
) -> Vec<f32> {
    let n = sample_count(seconds);
    let mut out = background::ambient(background, n, derive_seed(seed, 0));
    normalize_rms(
        &mut out,
        REFERENCE_RMS * db_to_amplitude(BACKGROUND_DB + level_db),
    );
    for (i, source) in sources.iter().enumerate() {
        let (start, end) = source.interval_s.unwrap_or((0.0, seconds));
        let a = sample_count(start).min(n);
        let b = sample_count(end).min(n);
        if b <= a {
            continue;
        }
        let mut part = class_samples(
            source.class,
            source.gain_db,
            b - a,
            derive_seed(seed, i as u64 + 1),
        );
        fade(&mut part, sample_count(FADE_SECONDS));
        out[a..b].iter_mut().zip(&part).for_each(|(o, p)| *o += p);
    }
    out
}

/// Linear fade-in and fade-out of `len` samples each (shortened for short buffers).
fn fade(buf: &mut [f32], len: usize) {
    let len = len.min(buf.len() / 2);
    let n = buf.len();
    for i in 0..len {
        let g = i as f32 / len as f32;
        buf[i] *= g;
        buf[n - 1 - i] *= g;
    }
}

/// `n` samples of `class` at `gain_db`, normalised to the class level.
pub(crate) fn class_samples(class: SoundClass, gain_db: f32, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rng_for(seed, class.index() as u64);
    let mut out = vec![0.0; n];
    match class {
        SoundClass::Bell => bell(&mut rng, &mut out),
        SoundClass::Siren => siren(&mut rng, &mut out),
        SoundClass::Engine => engine(&mut rng, &mut out),
        SoundClass::Bird => bird(&mut rng, &mut out),
        SoundClass::Dog => dog(&mut rng, &mut out),
        SoundClass::Drum => drum(&mut rng, &mut out),
        SoundClass::Whistle => whistle(&mut rng, &mut out),
        SoundClass::Cow => cow(&mut rng, &mut out),
    }
    normalize_rms(&mut out, REFERENCE_RMS * db_to_amplitude(gain_db));
    out
}

fn secs(n: usize) -> f32 {
    n as f32 / SR
}

fn samples(seconds: f32) -> usize {
    sample_count(seconds)
}

/// Inharmonic partials (free-bar ratios) struck every ≈ 1 s, each decaying exponentially.
fn bell(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    const RATIOS: [f32; 4] = [1.0, 2.76, 5.40, 8.93];
    const AMPS: [f32; 4] = [1.0, 0.5, 0.3, 0.15];
    const DECAYS: [f32; 4] = [1.0, 0.6, 0.35, 0.2];
    let f0 = rng.random_range(500.0..750.0);
    let period = rng.random_range(0.8..1.4);
    let tau = rng.random_range(0.5..0.9);
    let n = out.len();
    let mut start = 0usize;
    while start < n {
        let strike = rng.random_range(0.7..1.0);
        let len = samples(5.0 * tau).min(n - start);
        for p in 0..RATIOS.len() {
            let f = f0 * RATIOS[p];
            if f > 7500.0 {
                continue;
            }
            let phase = rng.random_range(0.0..2.0 * PI);
            let d = tau * DECAYS[p];
            for (i, o) in out[start..start + len].iter_mut().enumerate() {
                let t = secs(i);
                let attack = (t / 0.002).min(1.0);
                *o += strike * AMPS[p] * attack * (-t / d).exp() * (2.0 * PI * f * t + phase).sin();
            }
        }
        start += samples(period * rng.random_range(0.9..1.1)).max(1);
    }
}

/// A tone with two harmonics whose pitch wails slowly (sinusoidal FM).
fn siren(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let fc = rng.random_range(1000.0..1200.0);
    let dev = rng.random_range(300.0..450.0);
    let rate = rng.random_range(0.25..0.5);
    let lfo_phase = rng.random_range(0.0..2.0 * PI);
    let mut ph = rng.random_range(0.0..2.0 * PI);
    for (i, o) in out.iter_mut().enumerate() {
        let t = secs(i);
        let f = fc + dev * (2.0 * PI * rate * t + lfo_phase).sin();
        ph = (ph + 2.0 * PI * f / SR) % (2.0 * PI);
        *o = ph.sin() + 0.3 * (2.0 * ph).sin() + 0.12 * (3.0 * ph).sin();
    }
}

/// A low sawtooth buzz, low-passed at ≈ 400 Hz, amplitude-modulated at the firing rate, over a rumble.
fn engine(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let f0 = rng.random_range(45.0..80.0);
    let am = rng.random_range(8.0..14.0);
    let am_phase = rng.random_range(0.0..2.0 * PI);
    let wobble = crate::dsp::Swell::new(rng, 0.1, 0.5);
    let mut lp1 = Biquad::lowpass(400.0, 0.7);
    let mut lp2 = Biquad::lowpass(500.0, 0.7);
    let mut rumble = Biquad::lowpass(200.0, 0.7);
    let mut ph: f32 = rng.random();
    for (i, o) in out.iter_mut().enumerate() {
        let t = secs(i);
        let f = f0 * (0.97 + 0.06 * wobble.at(t));
        ph = (ph + f / SR).fract();
        let saw = 2.0 * ph - 1.0;
        let chug = 0.5 + 0.5 * (2.0 * PI * am * t + am_phase).sin();
        let buzz = lp2.process(lp1.process(saw)) * (0.45 + 0.55 * chug * chug);
        *o = buzz + 0.3 * rumble.process(white(rng));
    }
}

/// Phrases of 3–8 fast pitch sweeps high in the spectrum, separated by pauses.
fn bird(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let n = out.len();
    let mut start = samples(rng.random_range(0.0..0.03));
    while start < n {
        let chirps = rng.random_range(3..=8);
        for _ in 0..chirps {
            let dur = rng.random_range(0.04..0.09);
            let (hi, lo) = (
                rng.random_range(4800.0..7000.0),
                rng.random_range(3200.0..4400.0),
            );
            let (fa, fb) = if rng.random_bool(0.7) {
                (hi, lo)
            } else {
                (lo, hi)
            };
            let len = samples(dur);
            let mut ph = 0.0f32;
            for i in 0..len.min(n.saturating_sub(start)) {
                let u = i as f32 / len as f32;
                let f = fa + (fb - fa) * u;
                ph = (ph + 2.0 * PI * f / SR) % (2.0 * PI);
                out[start + i] += (PI * u).sin().powi(2) * ph.sin();
            }
            start += len + samples(rng.random_range(0.04..0.15));
        }
        start += samples(rng.random_range(0.2..0.6));
    }
}

/// Barks: a sawtooth (glottal) source plus noise through two formant resonators, in groups of 1–3.
fn dog(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let f1 = rng.random_range(500.0..800.0);
    let f2 = rng.random_range(1200.0..1800.0);
    let pitch = rng.random_range(350.0..450.0);
    let mut formant1 = Biquad::bandpass(f1, 5.0);
    let mut formant2 = Biquad::bandpass(f2, 6.0);
    let n = out.len();
    let mut excitation = vec![0.0f32; n];
    let mut start = samples(rng.random_range(0.0..0.05));
    while start < n {
        let barks = rng.random_range(1..=3);
        for _ in 0..barks {
            let dur = rng.random_range(0.12..0.22);
            let len = samples(dur);
            let f_start = pitch * rng.random_range(0.9..1.1);
            let mut ph = 0.0f32;
            for i in 0..len.min(n.saturating_sub(start)) {
                let t = secs(i);
                let u = i as f32 / len as f32;
                let env = (t / 0.01).min(1.0) * (1.0 - u);
                let f = f_start * (1.0 - 0.3 * u);
                ph += f / SR;
                ph = ph.fract();
                let glottal = 2.0 * ph - 1.0;
                excitation[start + i] = env * (glottal + 0.6 * white(rng));
            }
            start += len + samples(rng.random_range(0.08..0.15));
        }
        start += samples(rng.random_range(0.2..0.5));
    }
    for (o, e) in out.iter_mut().zip(excitation) {
        *o = formant1.process(e) + 0.7 * formant2.process(e);
    }
}

/// Low thumps with a falling pitch and a short noise click, at a steady tempo.
fn drum(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let period = rng.random_range(0.35..0.6);
    let f_start = rng.random_range(140.0..180.0);
    let f_end = rng.random_range(45.0..65.0);
    let tau = rng.random_range(0.12..0.2);
    let n = out.len();
    let mut hits = Vec::new();
    let mut t = 0.0f32;
    while samples(t) < n {
        hits.push(t);
        if rng.random_bool(0.15) {
            hits.push(t + period / 2.0);
        }
        t += period;
    }
    let mut click_filter = Biquad::lowpass(3000.0, 0.7);
    for hit in hits {
        let start = samples(hit);
        if start >= n {
            continue;
        }
        let velocity = rng.random_range(0.8..1.0);
        let len = samples(5.0 * tau).min(n - start);
        let mut ph = 0.0f32;
        for (i, o) in out[start..start + len].iter_mut().enumerate() {
            let t = secs(i);
            let f = f_end + (f_start - f_end) * (-t / 0.03).exp();
            ph = (ph + 2.0 * PI * f / SR) % (2.0 * PI);
            let click = click_filter.process(white(rng)) * (-t / 0.015).exp();
            *o += velocity * (ph.sin() * (-t / tau).exp() + 0.3 * click);
        }
    }
}

/// A pure high tone with vibrato, blown in breaths of 0.8–2 s.
fn whistle(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let f0 = rng.random_range(2000.0..2600.0);
    let vib_rate = rng.random_range(5.0..7.0);
    let n = out.len();
    let mut start = 0usize;
    while start < n {
        let dur = rng.random_range(0.8..2.0);
        let len = samples(dur);
        let f = f0 * rng.random_range(0.95..1.05);
        let glide = rng.random_range(-0.04..0.04);
        let mut ph = 0.0f32;
        for i in 0..len.min(n - start) {
            let t = secs(i);
            let u = i as f32 / len as f32;
            let env = (t / 0.04).min(1.0) * ((dur - t) / 0.04).clamp(0.0, 1.0);
            let fi = f * (1.0 + glide * u) * (1.0 + 0.015 * (2.0 * PI * vib_rate * t).sin());
            ph = (ph + 2.0 * PI * fi / SR) % (2.0 * PI);
            out[start + i] += env * ph.sin();
        }
        start += len + samples(rng.random_range(0.15..0.4));
    }
}

/// Long low moans: 12 harmonics of a gliding f0 under a formant that opens from ≈ 300 to
/// ≈ 700 Hz ("mmm-ooo").
fn cow(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let f0 = rng.random_range(95.0..140.0);
    let n = out.len();
    let mut start = 0usize;
    while start < n {
        let dur = rng.random_range(1.2..2.0);
        let len = samples(dur);
        let f = f0 * rng.random_range(0.92..1.08);
        let mut ph = 0.0f32;
        for i in 0..len.min(n - start) {
            let t = secs(i);
            let u = i as f32 / len as f32;
            let env = (t / 0.15).min(1.0) * ((dur - t) / 0.3).clamp(0.0, 1.0);
            let fi = f * (0.9 + 0.2 * (PI * u).sin());
            let formant = 300.0 + 400.0 * u.sqrt();
            ph = (ph + 2.0 * PI * fi / SR) % (2.0 * PI);
            let mut s = 0.0;
            for k in 1..=12 {
                let fk = fi * k as f32;
                let w = (-((fk - formant) / 200.0).powi(2)).exp() + 0.1;
                s += w / k as f32 * (k as f32 * ph).sin();
            }
            out[start + i] += env * s;
        }
        start += len + samples(rng.random_range(0.4..1.0));
    }
}
