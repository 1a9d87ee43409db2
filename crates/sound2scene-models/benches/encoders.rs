//! Criterion benchmark of f_A, the audio encoder (full-width ResNet-18 with random weights),
//! on one 10 s spectrogram `[1, 1, 257, 1004]` on the flex CPU device, in inference mode.
//!
//! Compare with `scripts/bench_encoders_torch.py`, which times the same network in PyTorch
//! with two threads: `cargo bench -p sound2scene-models --bench encoders`.

use std::hint::black_box;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use sound2scene_models::audio_encoder::AudioEncoderConfig;

fn benches(c: &mut Criterion) {
    let device = Device::flex();
    let encoder = AudioEncoderConfig::new().init(&device);
    let spectrogram = Tensor::<4>::random([1, 1, 257, 1004], Distribution::Default, &device);

    let mut group = c.benchmark_group("audio_encoder");
    group.sample_size(20);
    group.bench_function("resnet18_1x1x257x1004", |b| {
        b.iter(|| {
            let out = encoder.forward(black_box(spectrogram.clone()));
            // Wait for the result so that lazy backends are timed in full.
            black_box(out.feature.into_data())
        })
    });
    group.finish();
}

criterion_group!(encoder_benches, benches);
criterion_main!(encoder_benches);
