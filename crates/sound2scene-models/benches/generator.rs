//! Criterion benchmark of the IC-GAN generator G at the released size (`G_ch = 96`,
//! 128×128, `dim_z = 120` hierarchical, attention at 64×64; random weights) on the flex CPU
//! device in evaluation mode, for batches of 1 and 8.
//!
//! Compare with `scripts/bench_generator_torch.py`, which times the same network built from
//! the official BigGAN-PyTorch definitions with two threads:
//! `cargo bench -p sound2scene-models --bench generator`.

use std::hint::black_box;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use sound2scene_models::biggan::{GeneratorConfig, INSTANCE_DIM};

fn benches(c: &mut Criterion) {
    let device = Device::flex();
    let config = GeneratorConfig::new();
    let generator = config.init(&device);

    let mut group = c.benchmark_group("icgan_generator");
    group.sample_size(10);
    for batch in [1, 8] {
        let z = Tensor::<2>::random(
            [batch, config.dim_z()],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let feat = Tensor::<2>::random([batch, INSTANCE_DIM], Distribution::Default, &device);
        group.bench_function(format!("ch96_res128_batch{batch}"), |b| {
            b.iter(|| {
                let img = generator.forward(black_box(z.clone()), black_box(feat.clone()));
                // Wait for the result so that lazy backends are timed in full.
                black_box(img.into_data())
            })
        });
    }
    group.finish();
}

criterion_group!(generator_benches, benches);
criterion_main!(generator_benches);
