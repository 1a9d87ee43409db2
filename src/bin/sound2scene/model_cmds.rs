//! Commands that run the networks: embeddings, generation, conversion.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use sound2scene::audio::{Spectrogram, Waveform, read_npy_f32, to_tensor, write_npy_f32};
use sound2scene::models::burnpack::{self, NetworkKind, Precision};
use sound2scene::models::checkpoint::{
    is_burnpack, open_audio_encoder, open_discriminator, open_generator, open_image_encoder,
};
use sound2scene::models::{LoadOptions, ModelError};
use sound2scene::pipeline::{generate_best_of, l2_normalize, sample_noise};
use sound2scene::visual::{grid, tensor_to_images};

use sound2scene::world_eval::bundle::{
    AUDIO_ENCODER_FILE, GENERATOR_FILE, IMAGE_ENCODER_FILE, default_model_dir,
};

use crate::DeviceArgs;
use crate::audio_cmds::{load_audio_reported, spectrogram_config};

/// Write a `[rows, cols]` tensor as a float32 .npy file.
pub fn write_matrix(path: &Path, tensor: Tensor<2>) -> Result<()> {
    let dims = tensor.dims();
    let values = tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the result back: {e:?}"))?;
    write_npy_f32(path, &dims, &values)?;
    Ok(())
}

/// Read a `.npy` array as a `[n, d]` tensor (a `[d]` vector becomes `[1, d]`).
pub fn read_matrix(path: &Path, device: &Device) -> Result<Tensor<2>> {
    let array = read_npy_f32(path)?;
    let [n, d] = match array.shape.as_slice() {
        [d] => [1, *d],
        [n, d] => [*n, *d],
        other => bail!(
            "{}: expected a [n, d] array, found shape {other:?}",
            path.display()
        ),
    };
    Ok(Tensor::from_data(
        TensorData::new(array.data, [n, d]),
        device,
    ))
}

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
pub fn embed_audio(args: EmbedAudioArgs) -> Result<()> {
    let device = args.device.device.device()?;
    let (encoder, _) = open_audio_encoder(&args.weights, &LoadOptions::default(), &device)?;
    // One batch per spectrogram width: clips under 1 s give narrower ones.
    let batches = match &args.spectrogram {
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
            vec![Tensor::from_data(
                TensorData::new(array.data, dims),
                &device,
            )]
        }
        None => {
            let config = spectrogram_config(args.fill);
            let specs = args
                .audio
                .iter()
                .map(|path| Spectrogram::compute_with(&load_audio_reported(path)?, &config))
                .collect::<Result<Vec<_>, _>>()?;
            if specs.iter().all(|s| s.shape() == specs[0].shape()) {
                vec![to_tensor(&specs, &device)?]
            } else {
                specs
                    .iter()
                    .map(|s| to_tensor(std::slice::from_ref(s), &device))
                    .collect::<Result<Vec<_>, _>>()?
            }
        }
    };
    let mut features = Vec::with_capacity(batches.len());
    let mut pooled = Vec::with_capacity(batches.len());
    for batch in batches {
        let out = encoder.forward(batch)?;
        features.push(out.feature);
        pooled.push(out.pooled);
    }
    let embedding = sound2scene::models::audio_encoder::AudioEmbedding {
        feature: Tensor::cat(features, 0),
        pooled: Tensor::cat(pooled, 0),
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

/// Open an image file as RGB, naming the file on failure.
pub fn open_rgb(path: &Path) -> Result<image::RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("cannot read the image {}", path.display()))?
        .to_rgb8())
}

/// Encode images (or a normalized array) into z^V.
pub fn embed_image(args: EmbedImageArgs) -> Result<()> {
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
    let features = encoder.forward(batch)?;
    let [n, d] = features.dims();
    write_matrix(&args.out, features)?;
    println!("wrote {} ({n} x {d} image features)", args.out.display());
    Ok(())
}

/// Arguments of `sound2scene generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The generator: an IC-GAN experiment folder or a .bpk from `convert` (default: the
    /// bundled sound2scene-tiny model's).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// The sound to draw.
    #[arg(long, conflicts_with = "feature", required_unless_present = "feature")]
    audio: Option<PathBuf>,
    /// The audio encoder for --audio: sound2scene.pth or a .bpk (default: the bundled
    /// sound2scene-tiny model's).
    #[arg(long, requires = "audio")]
    audio_weights: Option<PathBuf>,
    /// Mix this sound into --audio before encoding.
    #[arg(long, requires = "audio")]
    mix: Option<PathBuf>,
    /// Weight of --mix in the mix (--audio gets 1 - W).
    #[arg(long, default_value_t = 0.5, requires = "mix")]
    mix_weight: f32,
    /// Change the volume of the sound by this many dB before encoding.
    #[arg(long, allow_hyphen_values = true)]
    gain_db: Option<f32>,
    /// Repeat a clip shorter than 1 s until 10 s instead of the official ten repetitions.
    #[arg(long, requires = "audio")]
    fill: bool,
    /// Conditioning features instead of a sound: [n, dim] or [dim] .npy, dim being G's
    /// instance size (2048 for IC-GAN).
    #[arg(long)]
    feature: Option<PathBuf>,
    /// Noise [n, dim_z] .npy instead of --seed.
    #[arg(long)]
    z: Option<PathBuf>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per feature.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Standard deviation of the noise (the official --z_var).
    #[arg(long, default_value_t = 1.0)]
    z_var: f32,
    /// Draw K pictures per image and keep the one the image encoder re-encodes closest to
    /// the feature (best of K; not in the official code, which draws once).
    #[arg(long, default_value_t = 1)]
    rerank: usize,
    /// The image encoder f_V for --rerank above 1: swav_800ep_pretrain.pth.tar or a .bpk
    /// (default: the bundled sound2scene-tiny model's).
    #[arg(long)]
    image_weights: Option<PathBuf>,
    /// The picture: a grid with one row per feature.
    #[arg(long)]
    out: PathBuf,
    /// Also write G's raw output [n, 3, H, W] in [-1, 1].
    #[arg(long)]
    out_npy: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// `given`, or the bundled model's `file` when none is given.
pub(crate) fn or_bundled(given: Option<&Path>, file: &str) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let path = default_model_dir().join(file);
    if !path.is_file() {
        bail!(
            "no weights given and the bundled model is missing ({}); pass the weights \
             (--generator, --audio-weights, --image-weights), or retrain the bundled model \
             with scripts/train_tiny.sh",
            path.display()
        );
    }
    Ok(path)
}

/// Refuse `--rerank 0`: best of k needs at least one candidate.
pub(crate) fn check_rerank(k: usize) -> Result<()> {
    if k == 0 {
        bail!("--rerank must be at least 1 (1 draws once)");
    }
    Ok(())
}

/// The image encoder to load: `given`, or the bundled one, which fits only the bundled
/// networks, so it is refused when the caller brought its own (`own_networks`).
pub(crate) fn image_encoder_path(given: Option<&Path>, own_networks: bool) -> Result<PathBuf> {
    if own_networks && given.is_none() {
        bail!(
            "give --image-weights too: with --audio-weights or --generator the bundled image \
             encoder does not fit (it only fits the bundled model)"
        );
    }
    or_bundled(given, IMAGE_ENCODER_FILE)
}

/// Draw images from a sound (optionally mixed or louder) or from given features.
pub fn generate(args: GenerateArgs) -> Result<()> {
    let device = args.device.device.device()?;
    let options = LoadOptions::default();
    let generator_path = or_bundled(args.generator.as_deref(), GENERATOR_FILE)?;
    let (generator, config) = open_generator(&generator_path, &options, &device)?;
    let features = match (&args.audio, &args.feature) {
        (Some(audio), _) => {
            let weights = or_bundled(args.audio_weights.as_deref(), AUDIO_ENCODER_FILE)?;
            let (encoder, _) = open_audio_encoder(&weights, &options, &device)?;
            let mut wave = load_audio_reported(audio)?;
            if let Some(other) = &args.mix {
                let other = load_audio_reported(other)?;
                wave = Waveform::mix(&[(&wave, 1.0 - args.mix_weight), (&other, args.mix_weight)])?;
            }
            if let Some(db) = args.gain_db {
                wave = wave.gain_db(db)?;
            }
            let spec = Spectrogram::compute_with(&wave, &spectrogram_config(args.fill))?;
            let batch = sound2scene::audio::to_tensor(std::slice::from_ref(&spec), &device)?;
            encoder.forward(batch)?.feature
        }
        (None, Some(path)) => read_matrix(path, &device)?,
        (None, None) => bail!("give --audio (with --audio-weights) or --feature"),
    };
    let rows = features.dims()[0];
    let count = args.count.max(1);
    let k = args.rerank;
    check_rerank(k)?;
    let features = l2_normalize(features).repeat_dim(0, count);
    let n = rows * count * k;
    let noise = match &args.z {
        Some(path) => {
            let z = read_matrix(path, &device)?;
            if z.dims() != [n, config.dim_z()] {
                bail!(
                    "{}: noise must be [{n}, {}] ({rows} feature(s) x {count} image(s) x {k} \
                     candidate(s)), found {:?}",
                    path.display(),
                    config.dim_z(),
                    z.dims()
                );
            }
            z
        }
        None => sample_noise(count * k, config.dim_z(), args.seed, args.z_var, &device)?
            .repeat_dim(0, rows),
    };
    // Row r of the grid is feature r: features were repeated feature-major above, so reorder
    // them to match the noise (each feature sees the same `count` noise vectors, or
    // `count · k` when reranking: picture c of row r has candidates c·k .. (c+1)·k).
    let features = reorder_feature_major(features, rows, count);
    let images = if k == 1 {
        generator.try_forward(noise, features)?
    } else {
        let own_networks = args.generator.is_some() || args.audio_weights.is_some();
        let path = image_encoder_path(args.image_weights.as_deref(), own_networks)?;
        let (image_encoder, _) = open_image_encoder(&path, &options, &device)?;
        generate_best_of(&generator, &image_encoder, features, noise, k)?
    };
    if let Some(path) = &args.out_npy {
        let dims = images.dims();
        let values = images
            .clone()
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("cannot read the images back: {e:?}"))?;
        write_npy_f32(path, &dims, &values)?;
        println!("wrote {}", path.display());
    }
    let pictures = tensor_to_images(images);
    grid(&pictures, count, 2)
        .save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {} ({rows} x {count} images)", args.out.display());
    Ok(())
}

/// `[count * rows, d]` repeated row-block-wise → `[rows * count, d]` with each row's copies
/// adjacent.
fn reorder_feature_major(repeated: Tensor<2>, rows: usize, count: usize) -> Tensor<2> {
    let [_, d] = repeated.dims();
    repeated
        .reshape([count, rows, d])
        .swap_dims(0, 1)
        .reshape([rows * count, d])
}

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
pub fn convert(args: ConvertArgs) -> Result<()> {
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
