//! Where the bundled model lives, and model directories in general.
//!
//! A model directory holds the three networks as burnpack files under fixed names:
//! `DIR/audio_encoder.bpk` (f_A), `DIR/image_encoder.bpk` (f_V) and `DIR/generator.bpk` (G).
//! The bundled model, trained on the procedural world by `scripts/train_tiny.sh`, is
//! [`DEFAULT_MODEL_DIR`]. Every inference command takes its default weights from here.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::error::{InferError, Result};
use crate::pipeline::{ModelPaths, SoundToScene};

/// The bundled model directory, relative to the repository root.
pub const DEFAULT_MODEL_DIR: &str = "assets/models/sound2scene-tiny";
/// File name of the audio encoder in a model directory.
pub const AUDIO_ENCODER_FILE: &str = "audio_encoder.bpk";
/// File name of the image encoder in a model directory.
pub const IMAGE_ENCODER_FILE: &str = "image_encoder.bpk";
/// File name of the generator in a model directory.
pub const GENERATOR_FILE: &str = "generator.bpk";

/// `relative` under the current directory when it exists there, else under the repository
/// this crate was built from (so the bundled files are found from any working directory).
pub fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    if repo.exists() { repo } else { here }
}

/// The bundled model directory ([`DEFAULT_MODEL_DIR`]): under the current directory when it
/// exists there, else under the repository this crate was built from.
pub fn default_model_dir() -> PathBuf {
    bundled(DEFAULT_MODEL_DIR)
}

/// The bundled model's `file` (one of [`AUDIO_ENCODER_FILE`], [`IMAGE_ENCODER_FILE`],
/// [`GENERATOR_FILE`]), checked to exist.
///
/// # Errors
/// [`InferError::Weights`] naming the missing file and how to get it.
pub fn bundled_file(file: &str) -> Result<PathBuf> {
    let path = default_model_dir().join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(InferError::Weights {
            path,
            reason: "the bundled model is missing; pass your own weights, or retrain the \
                     bundled model with scripts/train_tiny.sh"
                .into(),
        })
    }
}

/// The three files of model directory `dir`, each checked to exist.
///
/// # Errors
/// [`InferError::Weights`] naming the missing file and how to get it.
pub fn model_paths(dir: impl AsRef<Path>) -> Result<ModelPaths> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(InferError::Weights {
            path: dir.to_path_buf(),
            reason: format!(
                "no such model directory; it must hold {AUDIO_ENCODER_FILE}, \
                 {IMAGE_ENCODER_FILE} and {GENERATOR_FILE} (burnpack). The bundled model \
                 ({DEFAULT_MODEL_DIR}) is trained by scripts/train_tiny.sh; or pass \
                 --weights DIR"
            ),
        });
    }
    let file = |name: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(InferError::Weights {
                path,
                reason: format!(
                    "missing: a model directory holds {AUDIO_ENCODER_FILE}, \
                     {IMAGE_ENCODER_FILE} and {GENERATOR_FILE} (burnpack)"
                ),
            })
        }
    };
    Ok(ModelPaths {
        audio_encoder: file(AUDIO_ENCODER_FILE)?,
        generator: file(GENERATOR_FILE)?,
        image_encoder: Some(file(IMAGE_ENCODER_FILE)?),
    })
}

/// The pipeline of model directory `dir` (all three networks) on `device`.
///
/// # Errors
/// As [`model_paths`]; loading errors name the file.
pub fn load_pipeline(dir: impl AsRef<Path>, device: &Device) -> Result<SoundToScene> {
    let paths = model_paths(dir)?;
    SoundToScene::load(&paths, device)
}
