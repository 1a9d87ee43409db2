//! Throughput of the IC-GAN loop on this machine: one D step and one G step per optimizer
//! step, timed on random images and features, with the networks and optimizers of a
//! configuration file (default `scripts/tiny_gan.json`, the bundled model's).
//!
//! ```text
//! cargo run --release -p sound2scene-train --example gan_throughput -- [CONFIG] [STEPS]
//! ```
//!
//! Prints one line per step after the first (`step 2: 0.41 s, 78.3 samples/s`) and the median
//! step time last (`gan_step_ms 412.0`), which `scripts/compare_speed.py --train` reads. The
//! step includes drawing the batch, both updates and G's moving average when the
//! configuration starts it; no checkpoint or sample is written inside the timed steps.

use std::time::Instant;

use burn::tensor::Device;
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sound2scene_train::control::Control;
use sound2scene_train::gan::{GanConfig, GanData, GanHooks, GanSession};
use sound2scene_train::progress::ProgressMode;
use sound2scene_train::run::read_config;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sound2scene_kernels::keep_freed_memory();
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "scripts/tiny_gan.json".into());
    let steps: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let config = read_config::<GanConfig>(&path)?
        .with_steps(steps + 1)
        .with_checkpoint_every(0)
        .with_sample_every(0);
    let resolution = config.generator.resolution;
    let dim = config.generator.instance_size();
    let n = 4 * config.batch_size.max(config.k_nn);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let images: Vec<RgbImage> = (0..n)
        .map(|_| {
            RgbImage::from_fn(resolution as u32, resolution as u32, |_, _| {
                image::Rgb([rng.random(), rng.random(), rng.random()])
            })
        })
        .collect();
    let features = (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect();
    let names = (0..n).map(|i| format!("x{i}")).collect();
    let data = GanData::in_memory(names, features, &images, resolution)?;
    let mut times = Vec::new();
    let mut last = Instant::now();
    let hooks = GanHooks {
        on_step: Some(Box::new(move |report| {
            let now = Instant::now();
            if report.step > 1 {
                let seconds = now.duration_since(last).as_secs_f64();
                times.push(seconds);
                println!(
                    "step {}: {seconds:.3} s, {:.1} samples/s",
                    report.step, report.samples_per_sec
                );
                if report.step == steps + 1 {
                    times.sort_by(f64::total_cmp);
                    println!("gan_step_ms {:.1}", 1e3 * times[times.len() / 2]);
                }
            }
            last = now;
            Control::Continue
        })),
        ..GanHooks::default()
    };
    let out = tempfile::tempdir()?;
    GanSession::new(config, data, out.path(), Device::default())?
        .with_progress(ProgressMode::Never)
        .run(false, hooks)?;
    Ok(())
}
