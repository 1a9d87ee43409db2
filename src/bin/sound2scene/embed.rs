//! `sound2scene embed-audio` and `embed-image`: the encoders' features of sounds and pictures.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::{Tensor, TensorData};
use sound2scene::audio::{Spectrogram, read_npy_f32};
use sound2scene::infer::embed_spectrograms;
use sound2scene::models::LoadOptions;
use sound2scene::models::checkpoint::{open_audio_encoder, open_image_encoder};

use crate::DeviceArgs;
use crate::common::{load_audio_reported, open_rgb, spectrogram_config, write_matrix};

/// Arguments of `sound2scene embed-audio`.
#[derive(clap::Args)]
pub struct EmbedAudioArgs {
    /// The audio encoder: sound2scene.pth or a .bpk from `convert`.
    #[arg(long)]
    weights: PathBuf,
    /// Audio file(s) to encode.
    #[arg(long, num_args = 1.., conflicts_with = "spectrogram", required_unless_present = "spectrogram")]
    audio: Vec<PathBuf>,
    /// A spectrogram array instead: [257, T], [1, 257, T] or [n, 1, 257, T].
    #[arg(long)]
    spectrogram: Option<PathBuf>,
    /// Where to write z^A as [n, dim] float32 (dim 2048 for the released model).
    #[arg(long)]
    out: PathBuf,
    /// Also write the pooled trunk feature [n, 512].
    #[arg(long)]
    pooled_out: Option<PathBuf>,
    /// Repeat a clip shorter than 1 s until 10 s instead of the official ten repetitions.
    #[arg(long, conflicts_with = "spectrogram")]
    fill: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Encode audio files or a spectrogram array into z^A.
pub fn audio(args: EmbedAudioArgs) -> Result<()> {
    let device = args.device.device.device()?;
    let (encoder, _) = open_audio_encoder(&args.weights, &LoadOptions::default(), &device)?;
    let embedding = match &args.spectrogram {
        Some(path) => {
            let array = read_npy_f32(path)?;
            let dims: [usize; 4] = match array.shape.as_slice() {
                [f, t] => [1, 1, *f, *t],
                [1, f, t] => [1, 1, *f, *t],
                [n, 1, f, t] => [*n, 1, *f, *t],
                other => bail!(
                    "{}: expected a spectrogram of shape [257, T], [1, 257, T] or [n, 1, 257, T], found {other:?}",
                    path.display()
                ),
            };
            encoder.try_forward(Tensor::from_data(
                TensorData::new(array.data, dims),
                &device,
            ))?
        }
        None => {
            let config = spectrogram_config(args.fill);
            let specs = args
                .audio
                .iter()
                .map(|path| Spectrogram::compute_with(&load_audio_reported(path)?, &config))
                .collect::<Result<Vec<_>, _>>()?;
            // One batch per spectrogram width: clips under 1 s give narrower ones.
            embed_spectrograms(&encoder, &specs, &device)?
        }
    };
    let [n, d] = embedding.feature.dims();
    write_matrix(&args.out, embedding.feature)?;
    println!("wrote {} ({n} x {d} audio features)", args.out.display());
    if let Some(path) = args.pooled_out {
        write_matrix(&path, embedding.pooled)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Arguments of `sound2scene embed-image`.
#[derive(clap::Args)]
pub struct EmbedImageArgs {
    /// The image encoder: SwAV's swav_800ep_pretrain.pth.tar or a .bpk from `convert`.
    #[arg(long)]
    weights: PathBuf,
    /// Image file(s) (PNG or JPEG), preprocessed as the official code does.
    #[arg(long, num_args = 1.., conflicts_with = "tensor", required_unless_present = "tensor")]
    image: Vec<PathBuf>,
    /// An already-normalized [n, 3, 224, 224] array instead.
    #[arg(long)]
    tensor: Option<PathBuf>,
    /// Where to write z^V as [n, dim] float32 (dim 2048 for SwAV ResNet-50).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Encode images (or a normalized array) into z^V.
pub fn image(args: EmbedImageArgs) -> Result<()> {
    let device = args.device.device.device()?;
    let (encoder, _) = open_image_encoder(&args.weights, &LoadOptions::default(), &device)?;
    let batch = match &args.tensor {
        Some(path) => {
            let array = read_npy_f32(path)?;
            let dims: [usize; 4] = match array.shape.as_slice() {
                [n, 3, h, w] => [*n, 3, *h, *w],
                other => bail!(
                    "{}: expected [n, 3, {side}, {side}], found {other:?}",
                    path.display(),
                    side = encoder.input_side()
                ),
            };
            Tensor::from_data(TensorData::new(array.data, dims), &device)
        }
        None => {
            let images = args
                .image
                .iter()
                .map(|p| open_rgb(p))
                .collect::<Result<Vec<_>>>()?;
            encoder.preprocess(&images, &device)?
        }
    };
    let features = encoder.try_forward(batch)?;
    let [n, d] = features.dims();
    write_matrix(&args.out, features)?;
    println!("wrote {} ({n} x {d} image features)", args.out.display());
    Ok(())
}
