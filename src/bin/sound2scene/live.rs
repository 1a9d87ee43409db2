//! `sound2scene live`: the scene along a recording, a picture every hop, as an animated GIF.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use image::codecs::gif::{GifEncoder, Repeat};
use image::imageops::FilterType;
use image::{Delay, DynamicImage, Frame};
use indicatif::{ProgressBar, ProgressStyle};
use sound2scene::audio::MODEL_SAMPLE_RATE;
use sound2scene::infer::bundle::{AUDIO_ENCODER_FILE, GENERATOR_FILE};
use sound2scene::infer::visual::grid;
use sound2scene::infer::{LiveSettings, SceneStream, SoundToScene};

use crate::DeviceArgs;
use crate::common::{load_audio_reported, or_bundled};

/// Arguments of `sound2scene live`.
#[derive(clap::Args)]
pub struct LiveArgs {
    /// The recording (any length up to 10 minutes).
    #[arg(long)]
    audio: PathBuf,
    /// Seconds between pictures.
    #[arg(long, default_value_t = 0.5)]
    hop: f32,
    /// Seconds of sound each picture describes (default: the model's clip length, 10 s).
    #[arg(long)]
    window: Option<f32>,
    /// Share of the previous feature a new one keeps, in [0, 1): higher is steadier.
    #[arg(long, default_value_t = 0.5)]
    smoothing: f32,
    /// Pictures per hop, side by side (at most 16).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Seed of the noise, fixed for the whole recording.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Change the volume by this many dB (within ±60).
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.0)]
    gain_db: f32,
    /// Enlarge each picture this many times (default: to at least 128 pixels).
    #[arg(long)]
    scale: Option<u32>,
    /// The audio encoder: sound2scene.pth or a .bpk (default: the bundled model's).
    #[arg(long)]
    audio_weights: Option<PathBuf>,
    /// The generator: an IC-GAN experiment folder or a .bpk (default: the bundled model's).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// The animation to write (GIF), one frame per hop, played in real time.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Seconds of sound pushed at a time, as a microphone would deliver it.
const CHUNK_SECS: f64 = 0.1;

/// Stream the recording through [`SceneStream`] and write one GIF frame per hop.
pub fn run(args: LiveArgs) -> Result<()> {
    let settings = LiveSettings {
        window_secs: args.window,
        hop_secs: args.hop,
        smoothing: args.smoothing,
        count: args.count,
        seed: args.seed,
        gain_db: args.gain_db,
        ..LiveSettings::default()
    };
    if args.scale == Some(0) || args.scale.is_some_and(|s| s > 64) {
        anyhow::bail!("--scale must be from 1 to 64");
    }
    let device = args.device.device.device()?;
    let pipeline = SoundToScene::load_parts(
        Some(&or_bundled(
            args.audio_weights.as_deref(),
            AUDIO_ENCODER_FILE,
        )?),
        &or_bundled(args.generator.as_deref(), GENERATOR_FILE)?,
        None,
        &device,
    )?;
    let mut stream = SceneStream::new(&pipeline, &settings)?;
    let wave = load_audio_reported(&args.audio)?;
    let resolution = pipeline.generator_config().resolution as u32;
    let scale = args.scale.unwrap_or((128 / resolution.max(1)).max(1));
    let file =
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut gif = GifEncoder::new_with_speed(BufWriter::new(file), 10);
    gif.set_repeat(Repeat::Infinite)?;
    let hops = (wave.duration_secs() / f64::from(args.hop)).floor() as u64;
    let bar = ProgressBar::new(hops);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} pictures  [{eta_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let delay = Delay::from_numer_denom_ms((args.hop * 1000.0).round() as u32, 1);
    let chunk = (CHUNK_SECS * f64::from(MODEL_SAMPLE_RATE)) as usize;
    let mut written = 0u64;
    for samples in wave.samples.chunks(chunk) {
        for frame in stream.push(samples, wave.sample_rate, 1)? {
            let picture = grid(&frame.images, args.count, 0);
            let (w, h) = picture.dimensions();
            let picture = DynamicImage::ImageRgb8(picture)
                .resize_exact(w * scale, h * scale, FilterType::Nearest)
                .to_rgba8();
            gif.encode_frame(Frame::from_parts(picture, 0, 0, delay))
                .with_context(|| format!("cannot write {}", args.out.display()))?;
            written += 1;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    drop(gif);
    println!(
        "wrote {} ({written} pictures, one every {} s of {:.1} s)",
        args.out.display(),
        args.hop,
        wave.duration_secs()
    );
    Ok(())
}
