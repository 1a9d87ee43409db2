//! `sound2scene convert`: a released checkpoint to burnpack (f32, or f16 with --half).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use sound2scene::models::burnpack::{self, NetworkKind, Precision};
use sound2scene::models::checkpoint::{
    is_burnpack, open_audio_encoder, open_discriminator, open_generator, open_image_encoder,
};
use sound2scene::models::{LoadOptions, ModelError};

/// Arguments of `sound2scene convert`.
#[derive(clap::Args)]
pub struct ConvertArgs {
    /// A released checkpoint: sound2scene.pth, SwAV's .pth.tar, or an IC-GAN folder.
    #[arg(long)]
    from: PathBuf,
    /// The burnpack file to write.
    #[arg(long)]
    to: PathBuf,
    /// Which network the source holds (guessed from the source when left out).
    #[arg(long, value_parser = ["audio", "image", "generator", "discriminator"])]
    network: Option<String>,
    /// Store weights as f16 (half the size; outputs within ~1e-2).
    #[arg(long)]
    half: bool,
}

/// Guess which network a source path holds.
fn guess_network(path: &Path) -> Result<NetworkKind> {
    if path.is_dir() {
        return Ok(NetworkKind::Generator);
    }
    if is_burnpack(path) {
        return Ok(burnpack::read_header(path)?.network);
    }
    let dict = sound2scene::models::StateDict::from_pytorch(path, None, &LoadOptions::default())?;
    if dict.keys().any(|k| k.contains("audnet.")) {
        Ok(NetworkKind::AudioEncoder)
    } else if dict.keys().any(|k| k.ends_with("layer1.0.conv3.weight")) {
        Ok(NetworkKind::ImageEncoder)
    } else {
        bail!(
            "{}: cannot tell which network this checkpoint holds; pass --network",
            path.display()
        )
    }
}

/// Convert a released checkpoint to burnpack.
pub fn run(args: ConvertArgs) -> Result<()> {
    let device = Device::flex();
    let options = LoadOptions::default();
    let precision = if args.half {
        Precision::F16
    } else {
        Precision::F32
    };
    let kind = match args.network.as_deref() {
        Some("audio") => NetworkKind::AudioEncoder,
        Some("image") => NetworkKind::ImageEncoder,
        Some("generator") => NetworkKind::Generator,
        Some("discriminator") => NetworkKind::Discriminator,
        _ => guess_network(&args.from)?,
    };
    let saved: Result<(), ModelError> = match kind {
        NetworkKind::AudioEncoder => {
            let (m, c) = open_audio_encoder(&args.from, &options, &device)?;
            burnpack::save(&m, kind, &c, &args.to, precision)
        }
        NetworkKind::ImageEncoder => {
            let (m, c) = open_image_encoder(&args.from, &options, &device)?;
            burnpack::save(&m, kind, &c, &args.to, precision)
        }
        NetworkKind::Generator => {
            let (m, c) = open_generator(&args.from, &options, &device)?;
            burnpack::save(&m, kind, &c, &args.to, precision)
        }
        NetworkKind::Discriminator => {
            let (m, c) = open_discriminator(&args.from, &options, &device)?;
            burnpack::save(&m, kind, &c, &args.to, precision)
        }
    };
    saved?;
    println!(
        "wrote {} ({} in {})",
        args.to.display(),
        kind.as_str(),
        if args.half { "f16" } else { "f32" }
    );
    Ok(())
}
