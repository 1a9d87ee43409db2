//! Where the networks trained on the procedural world live.
//!
//! A model directory holds the three networks as burnpack files under fixed names:
//! `DIR/audio_encoder.bpk` (f_A), `DIR/image_encoder.bpk` (f_V) and `DIR/generator.bpk` (G).
//! The bundled model is [`DEFAULT_MODEL_DIR`]; the world classifier is a separate file,
//! [`DEFAULT_CLASSIFIER`].

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::{Result, WorldEvalError};
use crate::{ModelPaths, SoundToScene};

/// The bundled model directory, relative to the repository root.
pub const DEFAULT_MODEL_DIR: &str = "assets/models/sound2scene-tiny";
/// The bundled world classifier, relative to the repository root.
pub const DEFAULT_CLASSIFIER: &str = "assets/models/world-classifier.bpk";
/// File name of the audio encoder in a model directory.
pub const AUDIO_ENCODER_FILE: &str = "audio_encoder.bpk";
/// File name of the image encoder in a model directory.
pub const IMAGE_ENCODER_FILE: &str = "image_encoder.bpk";
/// File name of the generator in a model directory.
pub const GENERATOR_FILE: &str = "generator.bpk";

/// `relative` under the current directory when it exists there, else under the repository this
/// binary was built from (so the bundled files are found from any working directory).
fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if repo.exists() { repo } else { here }
}

/// The bundled model directory ([`DEFAULT_MODEL_DIR`]): under the current directory when it
/// exists there, else under the repository this binary was built from.
pub fn default_model_dir() -> PathBuf {
    bundled(DEFAULT_MODEL_DIR)
}

/// The bundled world classifier ([`DEFAULT_CLASSIFIER`]).
pub fn default_classifier_path() -> PathBuf {
    bundled(DEFAULT_CLASSIFIER)
}

/// The three files of model directory `dir`, each checked to exist.
///
/// # Errors
/// [`WorldEvalError::Weights`] naming the missing file and how to get it.
pub fn model_paths(dir: impl AsRef<Path>) -> Result<ModelPaths> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(WorldEvalError::Weights {
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
            Err(WorldEvalError::Weights {
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
    Ok(SoundToScene::load(&paths, device)?)
}
