//! Median forward time of f_A and of G at the released sizes on the CPU (flex), with random
//! weights, printed as `name milliseconds` lines for `scripts/compare_speed.py`.
//!
//! ```sh
//! cargo run --release --example time_models -- [RUNS]
//! ```

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use sound2scene::models::audio_encoder::AudioEncoderConfig;
use sound2scene::models::biggan::GeneratorConfig;

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(5), |s| s.parse())?;
    let device = Device::flex();
    let encoder = AudioEncoderConfig::new().init(&device);
    let spec = Tensor::<4>::random([1, 1, 257, 1004], Distribution::Normal(0.0, 1.0), &device);
    let fa = median_ms(runs, || {
        let out = encoder.forward(spec.clone()).expect("valid input shape");
        let _ = out.feature.into_data();
    });
    println!("audio_encoder_b1 {fa:.1}");
    let config = GeneratorConfig::new();
    let generator = config.init(&device);
    for batch in [1usize, 8] {
        let z = Tensor::<2>::random(
            [batch, config.dim_z()],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let feat = Tensor::<2>::random([batch, 2048], Distribution::Normal(0.0, 1.0), &device);
        let ms = median_ms(runs, || {
            let _ = generator.forward(z.clone(), feat.clone()).into_data();
        });
        println!("generator_b{batch} {ms:.1}");
    }
    Ok(())
}
