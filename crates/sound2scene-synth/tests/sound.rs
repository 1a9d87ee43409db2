//! Sounds: levels, mixing, silence outside the visible interval, class discriminability.

mod common;

use common::{band_energy, rms};
use sound2scene_synth::{
    BACKGROUND_DB, Background, REFERENCE_RMS, SAMPLE_RATE, SoundClass, SourceSpec, World,
    WorldConfig, class_sound, db_to_amplitude, synth_sound,
};

#[test]
fn class_sound_level_follows_gain() {
    for class in SoundClass::ALL {
        for gain in [-12.0, 0.0, 6.0] {
            let s = class_sound(class, gain, 2.0, 4).unwrap();
            assert_eq!(s.len(), 2 * SAMPLE_RATE as usize);
            let expected = REFERENCE_RMS * db_to_amplitude(gain);
            let got = rms(&s);
            assert!(
                (got / expected - 1.0).abs() < 0.01,
                "{class} {gain} dB: {got}"
            );
            assert!(s.iter().all(|x| x.is_finite() && x.abs() < 1.0));
        }
    }
}

#[test]
fn background_is_thirty_db_below_sources() {
    for background in Background::ALL {
        let bed = synth_sound(&[], background, 3.0, 1).unwrap();
        let level = 20.0 * (rms(&bed) / REFERENCE_RMS).log10();
        assert!(
            (level - BACKGROUND_DB).abs() < 0.1,
            "{background}: {level} dB"
        );
    }
}

#[test]
fn each_class_puts_most_of_its_energy_in_its_band() {
    for class in SoundClass::ALL {
        let s = class_sound(class, 0.0, 4.0, 21).unwrap();
        let own = band_energy(&s, class.band_hz());
        let total = band_energy(&s, (0.0, 8000.0));
        assert!(
            own / total > 0.4,
            "{class}: {:.2} of energy in its band",
            own / total
        );
    }
}

/// Pairs of classes whose characteristic bands do not overlap.
const DISJOINT_PAIRS: [(SoundClass, SoundClass); 6] = [
    (SoundClass::Whistle, SoundClass::Engine),
    (SoundClass::Bird, SoundClass::Drum),
    (SoundClass::Bird, SoundClass::Cow),
    (SoundClass::Whistle, SoundClass::Cow),
    (SoundClass::Siren, SoundClass::Drum),
    (SoundClass::Bell, SoundClass::Whistle),
];

#[test]
fn a_mix_contains_both_spectra() {
    for (a, b) in DISJOINT_PAIRS {
        let (band_a, band_b) = (a.band_hz(), b.band_hz());
        assert!(
            band_a.1 <= band_b.0 || band_b.1 <= band_a.0,
            "{a}/{b} bands overlap"
        );
        let seconds = 3.0;
        let bg = Background::Sky;
        let only_a = synth_sound(&[SourceSpec::new(a, 0.0)], bg, seconds, 8).unwrap();
        let only_b = synth_sound(&[SourceSpec::new(b, 0.0)], bg, seconds, 8).unwrap();
        let mix = synth_sound(
            &[SourceSpec::new(a, 0.0), SourceSpec::new(b, 0.0)],
            bg,
            seconds,
            8,
        )
        .unwrap();
        for (band, name) in [(band_a, a), (band_b, b)] {
            let in_mix = band_energy(&mix, band);
            let in_a = band_energy(&only_a, band);
            let in_b = band_energy(&only_b, band);
            let single_baseline = in_a.min(in_b);
            let single_own = in_a.max(in_b);
            assert!(
                in_mix > 10.0 * single_baseline,
                "{a}+{b}: {name} band {in_mix:.3e} vs single-source baseline {single_baseline:.3e}"
            );
            assert!(
                in_mix > 0.5 * single_own,
                "{a}+{b}: {name} band lost in the mix"
            );
        }
    }
}

#[test]
fn sources_sound_only_while_visible() {
    let fps = 10;
    let world = World::new(WorldConfig {
        seed: 77,
        clips: 40,
        seconds: 6.0,
        fps,
        ..WorldConfig::default()
    })
    .unwrap();
    let bed_rms = REFERENCE_RMS * db_to_amplitude(BACKGROUND_DB);
    let mut checked = 0;
    for i in 0..world.len() {
        let clip = world.clip(i);
        let truth = clip.truth();
        if truth.sources.len() != 1 {
            continue;
        }
        let audio = clip.audio();
        let source = &truth.sources[0];
        let frame_samples = SAMPLE_RATE as usize / fps as usize;
        let window =
            |k: usize| &audio[k * frame_samples..((k + 1) * frame_samples).min(audio.len())];
        let (mut loud, mut visible_n) = (0.0f32, 0);
        for frame in &truth.frames {
            let visible = source.visible_frames.contains(&frame.index);
            let near_edge = [source.interval_s.0, source.interval_s.1]
                .iter()
                .any(|&edge| (frame.time_s - edge).abs() < 0.25);
            if near_edge {
                continue;
            }
            let level = rms(window(frame.index));
            if visible {
                loud += level * level;
                visible_n += 1;
            } else {
                assert!(
                    level < 2.5 * bed_rms,
                    "{}: frame {} rms {level} while {} is off screen",
                    truth.name,
                    frame.index,
                    source.class
                );
            }
        }
        if visible_n > 0 {
            let loud = (loud / visible_n as f32).sqrt();
            let expected = REFERENCE_RMS * db_to_amplitude(source.gain_db);
            assert!(
                loud > 0.6 * expected,
                "{}: visible rms {loud} < {expected}",
                truth.name
            );
            assert!(loud > 5.0 * bed_rms);
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} single-source clips checked");
}

/// A 24-band log-spaced spectral profile plus temporal modulation statistics of a sound.
fn features(s: &[f32]) -> Vec<f64> {
    let edges: Vec<f32> = (0..=24)
        .map(|i| 40.0 * (7600.0f32 / 40.0).powf(i as f32 / 24.0))
        .collect();
    let total = band_energy(s, (0.0, 8000.0));
    let mut f: Vec<f64> = edges
        .windows(2)
        .map(|w| (band_energy(s, (w[0], w[1])) / total + 1e-6).log10())
        .collect();
    let frame = 320;
    let env: Vec<f32> = s.chunks(frame).map(rms).collect();
    let mean = env.iter().sum::<f32>() / env.len() as f32;
    let var = env.iter().map(|e| (e - mean).powi(2)).sum::<f32>() / env.len() as f32;
    f.push(2.0 * f64::from(var.sqrt() / mean));
    f
}

#[test]
fn classes_are_discriminable_by_nearest_centroid() {
    let seeds = 0..4u64;
    let feats: Vec<Vec<Vec<f64>>> = SoundClass::ALL
        .iter()
        .map(|&c| {
            seeds
                .clone()
                .map(|seed| features(&class_sound(c, 0.0, 3.0, seed * 31 + 5).unwrap()))
                .collect()
        })
        .collect();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    let mut errors = Vec::new();
    for (ci, class_feats) in feats.iter().enumerate() {
        for (si, f) in class_feats.iter().enumerate() {
            let best = (0..feats.len())
                .min_by(|&a, &b| {
                    let centroid = |k: usize| {
                        let others: Vec<&Vec<f64>> = feats[k]
                            .iter()
                            .enumerate()
                            .filter(|&(j, _)| !(k == ci && j == si))
                            .map(|(_, v)| v)
                            .collect();
                        (0..f.len())
                            .map(|d| others.iter().map(|v| v[d]).sum::<f64>() / others.len() as f64)
                            .collect::<Vec<f64>>()
                    };
                    dist(f, &centroid(a)).total_cmp(&dist(f, &centroid(b)))
                })
                .unwrap();
            if best != ci {
                errors.push((SoundClass::ALL[ci], si, SoundClass::ALL[best]));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "misclassified (class, seed, as): {errors:?}"
    );
}

#[test]
fn bad_sound_arguments_are_errors() {
    assert!(class_sound(SoundClass::Bell, 0.0, 0.0, 0).is_err());
    assert!(class_sound(SoundClass::Bell, 0.0, -1.0, 0).is_err());
    assert!(class_sound(SoundClass::Bell, 0.0, f32::NAN, 0).is_err());
    assert!(class_sound(SoundClass::Bell, f32::INFINITY, 1.0, 0).is_err());
    assert!(class_sound(SoundClass::Bell, 100.0, 1.0, 0).is_err());
    assert!(synth_sound(&[], Background::Sky, 1e9, 0).is_err());
}
