//! Saving and loading networks as burnpack files, Burn's own weight format.
//!
//! A burnpack file written here carries two metadata entries beside the tensors:
//! [`NETWORK_KEY`] (which network it holds, a [`NetworkKind`]) and [`CONFIG_KEY`] (the
//! network's configuration as JSON), so it can be loaded without knowing anything else about
//! it; [`read_header`] reads them (it and those names are `sound2scene-weights`', re-exported
//! here). Weights are stored in `f32`, or in `f16` for files half the size
//! ([`Precision::F16`]); normalization statistics and spectral-norm vectors always stay `f32`,
//! since running variances underflow in `f16`.

use std::path::Path;

use burn::config::Config;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnpackStore, FloatCastAdapter, ModuleAdapter, ModuleContext, ModuleSnapshot};
use burn::tensor::{DType, Device};

pub use sound2scene_weights::burnpack::{
    BurnpackHeader, CONFIG_KEY, NETWORK_KEY, NetworkKind, read_header,
};

use crate::error::{ModelError, Result};

/// Storage precision of the weights in a burnpack file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats: outputs identical to the source.
    #[default]
    F32,
    /// 16-bit floats for weights (half the size); statistics stay 32-bit.
    F16,
}

/// Tensors whose last name segment is one of these keep `f32` in an `f16` file.
const KEEP_F32: [&str; 6] = [
    "running_mean",
    "running_var",
    "stored_mean",
    "stored_var",
    "u0",
    "sv0",
];

/// Casts weights to `f16` on save, leaving statistics and spectral-norm state in `f32`.
#[derive(Debug, Clone)]
struct HalfWeights;

impl ModuleAdapter for HalfWeights {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let last = tensor.name.rsplit('.').next().unwrap_or("");
        if KEEP_F32.contains(&last) {
            return tensor;
        }
        FloatCastAdapter::to(DType::F16).adapt(tensor, ctx)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

fn burnpack_error(path: &Path, reason: impl std::fmt::Display) -> ModelError {
    ModelError::Burnpack {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Write `module` with its `config` to `path` (overwriting it) in the given precision.
///
/// # Errors
/// [`ModelError::Burnpack`] when the file cannot be written.
pub fn save<M: ModuleSnapshot, C: Config>(
    module: &M,
    network: NetworkKind,
    config: &C,
    path: impl AsRef<Path>,
    precision: Precision,
) -> Result<()> {
    let path = path.as_ref();
    let config_json = serde_json::to_string(config).map_err(|e| burnpack_error(path, e))?;
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true)
        .metadata(NETWORK_KEY, network.as_str())
        .metadata(CONFIG_KEY, config_json);
    if precision == Precision::F16 {
        store = store.with_to_adapter(HalfWeights);
    }
    module
        .save_into(&mut store)
        .map_err(|e| burnpack_error(path, e))
}

/// Load a network of kind `expected` from a burnpack file: its configuration, the network built
/// from it on `device`, and the weights applied strictly (any missing or unused tensor is an
/// error).
///
/// `build` makes the empty network from the configuration.
///
/// # Errors
/// [`ModelError::Burnpack`] when the file holds another network, its configuration does not
/// parse, or its tensors do not fit.
pub fn load<M: ModuleSnapshot, C: Config>(
    path: impl AsRef<Path>,
    expected: NetworkKind,
    device: &Device,
    build: impl FnOnce(&C, &Device) -> M,
) -> Result<(M, C)> {
    let path = path.as_ref();
    let header = read_header(path)?;
    if header.network != expected {
        return Err(burnpack_error(
            path,
            format!(
                "holds a {}, not a {}",
                header.network.as_str(),
                expected.as_str()
            ),
        ));
    }
    let config: C = serde_json::from_str(&header.config_json)
        .map_err(|e| burnpack_error(path, format!("configuration does not parse: {e}")))?;
    let mut module = build(&config, device);
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .with_from_adapter(FloatCastAdapter::to(DType::F32));
    let result = module
        .load_from(&mut store)
        .map_err(|e| burnpack_error(path, e))?;
    if !result.is_success() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(burnpack_error(
            path,
            format!(
                "tensors do not fit: missing {:?}, unused {:?}, errors {:?}",
                result.missing, result.unused, result.errors
            ),
        ));
    }
    Ok((module, config))
}
