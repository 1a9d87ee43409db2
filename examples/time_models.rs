//! Median forward time of f_A and of G at the released sizes, with random weights, printed as
//! `name milliseconds` lines (`audio_encoder_b1 1031.4`, `generator_b8 10800.2`) for
//! `scripts/compare_speed.py`.
//!
//! ```sh
//! cargo run --release --example time_models -- [--runs 5] [--device flex|wgpu|cuda] \
//!     [--audio-batch 1] [--generator-batch 1 8]
//! ```
//! f_A runs on `[batch, 1, 257, 1004]` spectrograms (10 s clips), G (G_ch 96, 128×128) on
//! `[batch, 120]` noise and `[batch, 2048]` features. Each timing ends when the output has been
//! read back to the host, so GPU backends are timed to completion.

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use clap::Parser;
use sound2scene::BackendKind;
use sound2scene::models::audio_encoder::AudioEncoderConfig;
use sound2scene::models::biggan::GeneratorConfig;

/// Time f_A and G forward passes.
#[derive(Parser)]
struct Args {
    /// Timed runs per network and batch size (after one untimed warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Backend to run on: flex (CPU), wgpu or cuda (the latter two need their cargo feature).
    #[arg(long, default_value = "flex")]
    device: BackendKind,
    /// Batch sizes for f_A.
    #[arg(long, num_args = 1.., default_values_t = [1usize])]
    audio_batch: Vec<usize>,
    /// Batch sizes for G.
    #[arg(long, num_args = 1.., default_values_t = [1usize, 8])]
    generator_batch: Vec<usize>,
}

/// Median wall time of `runs` calls of `f` in milliseconds, after one warm-up call.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs.max(1))
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
    let args = Args::parse();
    let device = args.device.device()?;
    let encoder = AudioEncoderConfig::new().init(&device);
    for &batch in &args.audio_batch {
        let spec = Tensor::<4>::random(
            [batch, 1, 257, 1004],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ms = median_ms(args.runs, || {
            let out = encoder.forward(spec.clone()).expect("valid input shape");
            let _ = out.feature.into_data();
        });
        println!("audio_encoder_b{batch} {ms:.1}");
    }
    let config = GeneratorConfig::new();
    let generator = config.init(&device);
    for &batch in &args.generator_batch {
        let z = Tensor::<2>::random(
            [batch, config.dim_z()],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let feat = Tensor::<2>::random([batch, 2048], Distribution::Normal(0.0, 1.0), &device);
        let ms = median_ms(args.runs, || {
            let _ = generator.forward(z.clone(), feat.clone()).into_data();
        });
        println!("generator_b{batch} {ms:.1}");
    }
    Ok(())
}
