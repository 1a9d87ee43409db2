//! `sound2scene spectrogram`: the official log spectrogram of a sound, as an array and a picture.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sound2scene::audio::{Spectrogram, SpectrogramConfig, write_npy_f32};
use sound2scene::infer::visual;

use crate::common::{load_audio_reported, spectrogram_config};

/// Arguments of `sound2scene spectrogram`.
#[derive(clap::Args)]
pub struct SpectrogramArgs {
    /// Audio file (WAV, FLAC, MP3, Ogg Vorbis, AAC in MP4/M4A, or a video's audio track).
    #[arg(long)]
    audio: PathBuf,
    /// Where to write the [257, frames] float32 array.
    #[arg(long)]
    out: PathBuf,
    /// Also write a picture of the spectrogram (viridis colour map, low frequencies at the bottom).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Clip length in seconds after tiling (the official front end uses 10).
    #[arg(long, default_value_t = 10.0)]
    seconds: f32,
    /// Repeat a clip shorter than a tenth of --seconds until the full length (1004 frames),
    /// instead of the official ten repetitions (a 0.5 s clip gives 500 frames).
    #[arg(long)]
    fill: bool,
}

/// Decode, compute the spectrogram and write it (and the picture, on request).
pub fn run(args: SpectrogramArgs) -> Result<()> {
    let config = SpectrogramConfig {
        seconds: args.seconds,
        ..spectrogram_config(args.fill)
    };
    let wave = load_audio_reported(&args.audio)?;
    let spec = Spectrogram::compute_with(&wave, &config)?;
    let [bins, frames] = spec.shape();
    write_npy_f32(&args.out, &[bins, frames], spec.data())?;
    println!(
        "wrote {} ({bins} x {frames} spectrogram of {})",
        args.out.display(),
        args.audio.display()
    );
    if let Some(png) = args.png {
        visual::heatmap(spec.data(), bins, frames)
            .save(&png)
            .with_context(|| format!("cannot write the picture {}", png.display()))?;
        println!("wrote {}", png.display());
    }
    Ok(())
}
