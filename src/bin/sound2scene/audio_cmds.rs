//! Commands on audio alone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sound2scene::audio::{
    AudioError, DecodeOptions, MODEL_SAMPLE_RATE, Spectrogram, SpectrogramConfig, Tiling, Waveform,
    load_audio_reporting, write_npy_f32,
};
use sound2scene::visual;

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

/// Decode `path` for the model (mono, 16 kHz) and print on stderr what the decoder noticed on
/// the way, e.g. "warning: cut.wav declares 10.0 s, holds 0.03 s: …" for a cut-off file.
pub fn load_audio_reported(path: &Path) -> Result<Waveform, AudioError> {
    let decoded = load_audio_reporting(path, &DecodeOptions::default(), MODEL_SAMPLE_RATE)?;
    for warning in &decoded.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(decoded.wave)
}

/// The front end's configuration: the official one, filling short clips to the full length
/// when `fill` is set.
pub fn spectrogram_config(fill: bool) -> SpectrogramConfig {
    SpectrogramConfig {
        tiling: if fill { Tiling::Fill } else { Tiling::Official },
        ..SpectrogramConfig::default()
    }
}

/// Decode, compute the spectrogram and write it (and the picture, on request).
pub fn spectrogram(args: SpectrogramArgs) -> Result<()> {
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
