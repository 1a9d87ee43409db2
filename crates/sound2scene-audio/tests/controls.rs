//! The paper's input-space manipulations on `Waveform`: volume, mixing, offset, trimming.

use sound2scene_audio::{Spectrogram, SpectrogramConfig, Tiling, Waveform};

fn tone(freq: f64, amp: f64, secs: f64) -> Waveform {
    let n = (secs * 16_000.0) as usize;
    Waveform::mono(
        (0..n)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                // A tone with a slow envelope plus a little deterministic noise-like component.
                (amp * (2.0 * std::f64::consts::PI * freq * t).sin()
                    * (0.6 + 0.4 * (3.0 * t).sin())
                    + amp * 0.05 * ((i * 7919 % 1013) as f64 / 1013.0 - 0.5)) as f32
            })
            .collect(),
        16_000,
    )
}

#[test]
fn plus_6_db_doubles_the_peak_without_clipping() {
    let w = tone(440.0, 0.7, 1.0);
    let louder = w.gain_db(6.0206).unwrap();
    let ratio = louder.peak() / w.peak();
    assert!((ratio - 2.0).abs() < 1e-4, "{ratio}");
    assert!(
        louder.peak() > 1.0,
        "gain must not clip, the front end does"
    );
    let quieter = w.gain_db(-6.0206).unwrap();
    assert!((w.peak() / quieter.peak() - 2.0).abs() < 1e-4);
}

/// A 440 Hz tone (amplitude 0.25) plus uniform noise in [-0.3, 0.3] from a 64-bit LCG, so that
/// every bin's power is well above the front end's 1e-7 floor.
fn tone_in_noise(secs: f64) -> Waveform {
    let n = (secs * 16_000.0) as usize;
    let mut state: u64 = 12_345;
    let samples = (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            let t = i as f64 / 16_000.0;
            (0.25 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + 0.3 * u) as f32
        })
        .collect();
    Waveform::mono(samples, 16_000)
}

fn mean_abs_diff(a: &Spectrogram, b: &Spectrogram) -> f64 {
    let sum: f64 = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| f64::from((x - y).abs()))
        .sum();
    sum / a.data().len() as f64
}

#[test]
fn gain_is_nearly_invisible_after_standardization_until_clipping() {
    // ln(g^2 S) = ln S + const, which standardization removes, up to the 1e-7 floor.
    let w = tone_in_noise(10.0);
    let base = Spectrogram::compute(&w).unwrap();
    for db in [3.0, -3.0] {
        let other = Spectrogram::compute(&w.gain_db(db).unwrap()).unwrap();
        let d = mean_abs_diff(&base, &other);
        assert!(
            d < 0.05,
            "{db} dB changed the spectrogram by {d} on average"
        );
    }
    // +20 dB drives the peak to ~5.5: the front end clips, which changes the spectrum.
    let clipped = Spectrogram::compute(&w.gain_db(20.0).unwrap()).unwrap();
    let d = mean_abs_diff(&base, &clipped);
    assert!(
        d > 0.3,
        "clipping should change the spectrogram, mean diff {d}"
    );
}

#[test]
fn invalid_gain_is_an_error() {
    let w = tone(440.0, 0.5, 0.1);
    assert!(w.gain_db(f32::NAN).is_err());
    assert!(w.gain_db(f32::INFINITY).is_err());
}

#[test]
fn half_and_half_mix_of_a_sound_with_itself_is_the_sound() {
    let w = tone(440.0, 0.5, 1.0);
    let m = Waveform::mix(&[(&w, 0.5), (&w, 0.5)]).unwrap();
    assert_eq!(m.frames(), w.frames());
    let d = m
        .samples
        .iter()
        .zip(&w.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(d <= 1e-7, "{d}");
}

#[test]
fn mix_tiles_shorter_inputs_like_the_front_end() {
    let a = Waveform::mono(vec![1.0, 2.0, 3.0], 16_000);
    let b = Waveform::mono(vec![10.0; 7], 16_000);
    let m = Waveform::mix(&[(&a, 1.0), (&b, 0.5)]).unwrap();
    assert_eq!(m.samples, vec![6.0, 7.0, 8.0, 6.0, 7.0, 8.0, 6.0]);
}

#[test]
fn mix_is_linear_in_the_weights() {
    let a = tone(300.0, 0.4, 0.5);
    let b = tone(1200.0, 0.3, 0.5);
    let m = Waveform::mix(&[(&a, 0.25), (&b, 0.75)]).unwrap();
    for i in (0..a.frames()).step_by(97) {
        let want = 0.25 * a.samples[i] + 0.75 * b.samples[i];
        assert!((m.samples[i] - want).abs() < 1e-6);
    }
}

#[test]
fn mix_rejects_mismatched_inputs() {
    let a = Waveform::mono(vec![0.0; 10], 16_000);
    let b = Waveform::mono(vec![0.0; 10], 44_100);
    assert!(Waveform::mix(&[(&a, 0.5), (&b, 0.5)]).is_err());
    assert!(Waveform::mix(&[]).is_err());
    assert!(Waveform::mix(&[(&a, f32::NAN)]).is_err());
}

#[test]
fn offset_shifts_in_seconds() {
    let w = Waveform::mono((1..=16_000).map(|i| i as f32).collect(), 16_000);
    let later = w.offset(0.5).unwrap();
    assert_eq!(later.frames(), 24_000);
    assert!(later.samples[..8_000].iter().all(|&s| s == 0.0));
    assert_eq!(later.samples[8_000], 1.0);
    let earlier = w.offset(-0.25).unwrap();
    assert_eq!(earlier.frames(), 12_000);
    assert_eq!(earlier.samples[0], 4_001.0);
    assert_eq!(w.offset(-5.0).unwrap().frames(), 0);
    assert!(w.offset(f64::NAN).is_err());
}

#[test]
fn trim_keeps_a_segment() {
    let w = Waveform::mono((0..16_000).map(|i| i as f32).collect(), 16_000);
    let seg = w.trim(0.25, Some(0.5)).unwrap();
    assert_eq!(seg.frames(), 8_000);
    assert_eq!(seg.samples[0], 4_000.0);
    assert_eq!(w.trim(0.9, None).unwrap().frames(), 1_600);
    assert_eq!(w.trim(0.9, Some(10.0)).unwrap().frames(), 1_600);
    assert_eq!(w.trim(2.0, None).unwrap().frames(), 0);
    assert!(w.trim(-1.0, None).is_err());
}

#[test]
fn tiling_makes_a_short_clip_periodic_in_the_spectrogram() {
    // A 1.3 s clip tiled to 10 s and the same clip tiled by hand give the same spectrogram.
    let w = tone(700.0, 0.5, 1.3);
    let by_front_end = Spectrogram::compute(&w).unwrap();
    let by_hand = Spectrogram::compute(&w.tile_to(160_000)).unwrap();
    assert_eq!(by_front_end, by_hand);
}

#[test]
fn clips_under_a_second_are_tiled_ten_times_by_default() {
    // np.tile(samples, 10)[:160000]: 0.3 s -> 3 s -> (48000 - 512) / 159 + 1 = 299 frames, and
    // the same as tiling by hand to ten times the length (the spectrogram of exactly those 3 s).
    let w = tone(700.0, 0.5, 0.3);
    let official = Spectrogram::compute(&w).unwrap();
    assert_eq!(official.shape(), [257, 299]);
    assert_eq!(SpectrogramConfig::default().frames_for(w.frames()), 299);
    let three_seconds = SpectrogramConfig {
        seconds: 3.0,
        ..SpectrogramConfig::default()
    };
    let by_hand = Spectrogram::compute_with(&w.tile_to(48_000), &three_seconds).unwrap();
    assert!(
        official == by_hand,
        "official cut differs from tiling by hand"
    );

    // Filling repeats it to the full 10 s.
    let fill = SpectrogramConfig {
        tiling: Tiling::Fill,
        ..SpectrogramConfig::default()
    };
    let filled = Spectrogram::compute_with(&w, &fill).unwrap();
    assert_eq!(filled.shape(), [257, 1004]);
    assert_eq!(fill.frames_for(w.frames()), 1004);
    assert!(filled == Spectrogram::compute(&w.tile_to(160_000)).unwrap());

    // From 1 s on both cuts are the same 10 s.
    let second = tone(700.0, 0.5, 1.0);
    assert!(
        Spectrogram::compute(&second).unwrap()
            == Spectrogram::compute_with(&second, &fill).unwrap()
    );
}

#[test]
fn a_clip_too_short_for_one_segment_is_refused_unless_filled() {
    // 50 samples tiled ten times is 500 samples, less than one 512-sample segment.
    let first = |n: usize| Waveform::mono(tone(700.0, 0.5, 0.01).samples[..n].to_vec(), 16_000);
    let w = first(50);
    let err = Spectrogram::compute(&w).unwrap_err().to_string();
    assert!(
        err.contains("500 samples") && err.contains("--fill"),
        "{err}"
    );
    let fill = SpectrogramConfig {
        tiling: Tiling::Fill,
        ..SpectrogramConfig::default()
    };
    assert_eq!(
        Spectrogram::compute_with(&w, &fill).unwrap().shape(),
        [257, 1004]
    );
    // 52 samples give 520: exactly one frame.
    assert_eq!(Spectrogram::compute(&first(52)).unwrap().shape(), [257, 1]);
}

#[test]
fn duration_is_a_parameter() {
    let w = tone(700.0, 0.5, 2.0);
    let cfg = SpectrogramConfig {
        seconds: 5.0,
        ..Default::default()
    };
    let s = Spectrogram::compute_with(&w, &cfg).unwrap();
    assert_eq!(s.shape(), [257, (80_000 - 512) / 159 + 1]);
    assert_eq!(s.frames(), cfg.frames());
}

#[test]
fn front_end_accepts_other_rates_and_channels() {
    let mono = tone(500.0, 0.5, 10.0);
    let stereo = Waveform::interleaved(
        mono.samples.iter().flat_map(|&s| [s, s]).collect(),
        16_000,
        2,
    )
    .unwrap();
    assert_eq!(
        Spectrogram::compute(&stereo).unwrap(),
        Spectrogram::compute(&mono).unwrap()
    );
}
