//! Throughput of the alignment loop on this machine: samples per second of f_A training
//! steps (forward, InfoNCE-L2, backward, Adam) on random spectrograms and features.
//!
//! ```text
//! cargo run --release -p sound2scene-train --example align_throughput -- [WIDTH] [BATCH] [STEPS]
//! ```
//!
//! WIDTH is the audio ResNet-18's base width (64 in the paper, the default), BATCH the batch
//! size (default 8), STEPS the optimizer steps timed after one warm-up step (default 4). The
//! input is the official `[batch, 1, 257, 1004]` spectrogram of a 10 s clip. Prints one line
//! per timed step and the median step time last (`align_step_ms 2210.0`), which
//! `scripts/compare_speed.py --train` reads.

use std::time::Instant;

use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sound2scene_audio::Spectrogram;
use sound2scene_models::audio_encoder::AudioEncoderConfig;
use sound2scene_models::resnet::ResNetConfig;
use sound2scene_train::align::{AlignConfig, AlignHooks, AlignSession};
use sound2scene_train::control::Control;
use sound2scene_train::dataset::AlignData;
use sound2scene_train::progress::ProgressMode;

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sound2scene_kernels::keep_freed_memory();
    let (width, batch, steps) = (arg(1, 64), arg(2, 8), arg(3, 4));
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut normal =
        |n: usize| -> Vec<f32> { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() };
    let n = batch * (steps + 1);
    let specs = (0..n)
        .map(|_| Spectrogram::from_vec(normal(257 * 1004), 257, 1004))
        .collect::<Result<Vec<_>, _>>()?;
    let features = normal(n * 2048);
    let names = (0..n).map(|i| format!("x{i}")).collect();
    let data = AlignData::in_memory(names, specs, features, 2048)?;

    let encoder =
        AudioEncoderConfig::new().with_resnet(ResNetConfig::resnet18(1).with_base_width(width));
    let config = AlignConfig::new()
        .with_encoder(encoder)
        .with_batch_size(batch)
        .with_val_fraction(0.0)
        .with_max_steps(Some(steps as u64 + 1))
        .with_checkpoint_every(0);
    let timed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = timed.clone();
    let hooks = AlignHooks {
        on_step: Some(Box::new(move |report| {
            if report.step > 1 {
                let mut timed = recorded.lock().expect("one writer");
                timed.push(report.samples_per_sec);
                let mean = timed.iter().sum::<f64>() / timed.len() as f64;
                println!(
                    "width {width} batch {batch} step {}: {:.2} samples/s (mean {:.2})",
                    report.step, report.samples_per_sec, mean
                );
            }
            Control::Continue
        })),
        ..AlignHooks::default()
    };
    let out = tempfile::tempdir()?;
    let started = Instant::now();
    AlignSession::new(config, data, out.path(), Device::default())?
        .with_progress(ProgressMode::Never)
        .run(false, hooks)?;
    println!(
        "{} steps in {:.1} s (warm-up and final checkpoint included)",
        steps + 1,
        started.elapsed().as_secs_f64()
    );
    let mut rates = timed.lock().expect("the run is over").clone();
    rates.sort_by(f64::total_cmp);
    if let Some(rate) = rates.get(rates.len() / 2) {
        println!("align_step_ms {:.1}", 1e3 * batch as f64 / rate);
    }
    Ok(())
}
