//! Criterion benchmarks: decode + spectrogram of a 10 s clip, and the spectrogram alone.
//!
//! The clip is `samples/inference/cow.wav` from the shared samples (env `SOUND2SCENE_SAMPLES`,
//! default `<workspace>/../shared/samples`); without it a synthetic 10 s clip written to a
//! temporary WAV file is used.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use sound2scene_audio::{Spectrogram, SpectrogramConfig, SpectrogramPlan, Waveform, load_audio};

fn clip_path() -> PathBuf {
    let samples = std::env::var_os("SOUND2SCENE_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples")
        });
    let p = samples.join("inference/cow.wav");
    if p.is_file() {
        return p;
    }
    let p = std::env::temp_dir().join(format!("s2s-bench-{}.wav", std::process::id()));
    let data: Vec<u8> = (0..160_000u32)
        .flat_map(|i| {
            let t = f64::from(i) / 16_000.0;
            let v = ((2.0 * std::f64::consts::PI * 440.0 * t).sin() * 0.3
                + f64::from(i.wrapping_mul(2_654_435_761) >> 16) / 65_536.0 * 0.05)
                * 32_767.0;
            (v as i16).to_le_bytes()
        })
        .collect();
    let mut wav = Vec::with_capacity(44 + data.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00");
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(b"\x02\x00\x10\x00data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    if let Err(e) = std::fs::write(&p, wav) {
        panic!("cannot write synthetic clip {}: {e}", p.display());
    }
    p
}

fn benches(c: &mut Criterion) {
    let path = clip_path();
    let wave: Waveform = load_audio(&path).unwrap_or_else(|e| panic!("{e}"));
    let plan =
        SpectrogramPlan::new(&SpectrogramConfig::default()).unwrap_or_else(|e| panic!("{e}"));

    c.bench_function("decode_and_spectrogram_10s", |b| {
        b.iter(|| {
            let w = load_audio(black_box(&path)).unwrap_or_else(|e| panic!("{e}"));
            black_box(Spectrogram::compute(&w).unwrap_or_else(|e| panic!("{e}")))
        })
    });
    c.bench_function("spectrogram_10s", |b| {
        b.iter(|| {
            black_box(
                plan.compute(black_box(&wave))
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        })
    });
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("spectrogram_10s_single_thread", |b| {
        b.iter(|| {
            single.install(|| {
                black_box(
                    plan.compute(black_box(&wave))
                        .unwrap_or_else(|e| panic!("{e}")),
                )
            })
        })
    });
}

criterion_group!(spectrogram, benches);
criterion_main!(spectrogram);
