//! A live stream of sound, a picture every hop, and how fast that runs: the sound is pushed
//! in 0.1 s chunks, as a microphone delivers it, as fast as the machine draws, and the speed
//! is printed as pictures per second and as the real-time factor (seconds of sound handled
//! per second of wall time; above 1 keeps up with a microphone).
//!
//! ```sh
//! cargo run --release --example live_stream -- [--audio assets/sounds/field_cow.wav] \
//!     [--seconds 30] [--hop 0.1] [--out live.png]
//! ```
//! The bundled model by default; the pictures of the last hops are written as a grid to
//! `--out` when given.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use clap::Parser;
use sound2scene::audio::load_audio;
use sound2scene::infer::bundle::{default_model_dir, load_pipeline};
use sound2scene::infer::visual::grid;
use sound2scene::{LiveSettings, SceneStream};

/// Stream a sound through the bundled model and time it.
#[derive(Parser)]
struct Args {
    /// The sound, repeated to `--seconds`.
    #[arg(long, default_value = "assets/sounds/field_cow.wav")]
    audio: PathBuf,
    /// Seconds of sound to stream.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Seconds between pictures.
    #[arg(long, default_value_t = 0.1)]
    hop: f32,
    /// Write the last 16 pictures here as a grid.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let pipeline = load_pipeline(default_model_dir(), &Device::default())?;
    let wave = load_audio(&args.audio)?;
    let wave = wave.tile_to((args.seconds * f64::from(wave.sample_rate)) as usize);
    let settings = LiveSettings {
        hop_secs: args.hop,
        ..LiveSettings::default()
    };
    let mut stream = SceneStream::new(&pipeline, &settings)?;
    let chunk = wave.sample_rate as usize / 10;
    let mut last = Vec::new();
    let mut pictures = 0usize;
    let started = Instant::now();
    for samples in wave.samples.chunks(chunk) {
        for frame in stream.push(samples, wave.sample_rate, 1)? {
            pictures += frame.images.len();
            last.extend(frame.images);
            if last.len() > 16 {
                last.remove(0);
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "live: {pictures} pictures from {:.1} s of sound in {wall:.2} s: {:.1} pictures/s, \
         real-time factor {:.2} (hop {} s, window {} s)",
        args.seconds,
        pictures as f64 / wall,
        args.seconds / wall,
        args.hop,
        pipeline.spectrogram_config().seconds,
    );
    if let Some(out) = &args.out {
        grid(&last, 8, 2).save(out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
