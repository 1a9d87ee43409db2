//! Shared helpers for the facade's integration tests: where the fixtures are, and loading the
//! reduced-width released-format checkpoints they hold.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use sound2scene::{ModelPaths, SoundToScene};

/// Fixtures directory: `$SOUND2SCENE_FIXTURES`, else `<repo>/../shared/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("SOUND2SCENE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
}

/// Samples directory: `$SOUND2SCENE_SAMPLES`, else `<fixtures>/../samples`.
pub fn samples_dir() -> PathBuf {
    std::env::var_os("SOUND2SCENE_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures_dir().join("../samples"))
}

/// `Some(path)` when it exists; a missing path fails under `CI=true`, else prints a skip.
pub fn require(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "required fixture {} is missing (CI=true)",
        path.display()
    );
    eprintln!("skip: fixture {} not found", path.display());
    None
}

/// The fixture checkpoints in the released formats (audio encoder, IC-GAN folder at width 8,
/// SwAV layout with blocks [1,1,1,1]).
pub fn fixture_paths() -> Option<ModelPaths> {
    let models = fixtures_dir().join("models");
    Some(ModelPaths {
        audio_encoder: require(models.join("sound2scene_audio_resnet18.pth"))?,
        generator: require(models.join("icgan_biggan_ch8_res128"))?,
        image_encoder: Some(require(models.join("swav_resnet50_layers1111.pth.tar"))?),
    })
}

/// The pipeline over the fixture checkpoints on the default device.
pub fn fixture_pipeline() -> Option<SoundToScene> {
    let paths = fixture_paths()?;
    Some(SoundToScene::load(&paths, &Device::default()).expect("fixture checkpoints load"))
}

/// A sample clip from `../shared/samples/inference`.
pub fn sample(name: &str) -> Option<PathBuf> {
    require(samples_dir().join("inference").join(name))
}

/// The values of a tensor.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensor")
}

/// Largest absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// How [`wav_bytes`] stores samples.
#[derive(Clone, Copy)]
pub enum WavSamples {
    /// 16-bit integers (`round(s · 32767)`, clipped to `[-1, 1]` first).
    Pcm16,
    /// 32-bit IEEE floats, exactly the samples given.
    Float32,
}

/// A mono WAV file of `samples` at `rate` Hz, as bytes.
pub fn wav_bytes(samples: &[f32], rate: u32, format: WavSamples) -> Vec<u8> {
    let (code, width): (u16, u16) = match format {
        WavSamples::Pcm16 => (1, 2),
        WavSamples::Float32 => (3, 4),
    };
    let data: Vec<u8> = match format {
        WavSamples::Pcm16 => samples
            .iter()
            .flat_map(|&s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
            .collect(),
        WavSamples::Float32 => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
    };
    let mut wav = Vec::with_capacity(44 + data.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&code.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * u32::from(width)).to_le_bytes());
    wav.extend_from_slice(&width.to_le_bytes());
    wav.extend_from_slice(&(8 * width).to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    wav
}
