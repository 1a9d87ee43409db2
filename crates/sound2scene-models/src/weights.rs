//! Reading released PyTorch checkpoints into a key → tensor map, and building networks from
//! it strictly.
//!
//! Loading goes in two steps, in the manner of candle's `VarBuilder`:
//! 1. [`StateDict::from_pytorch`] reads every float tensor of a `.pth` file (ZIP or legacy
//!    `torch.save` format, through burn-store's `pytorch-reader`), converts it to `f32` and
//!    refuses NaN or infinite values unless asked not to.
//! 2. Each network's `load` function asks a [`WeightLoader`] for the tensors it needs by their
//!    PyTorch key and shape. The loader records every missing, unused and mis-shaped key, and
//!    [`WeightLoader::finish`] turns a non-empty record into one [`ModelError::Mismatch`] that
//!    lists them all, so a wrong checkpoint is explained in one message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use pytorch_reader::{DType, PytorchReader};

use crate::error::{ModelError, Result};

mod pickle_guard;

/// A checkpoint's float tensors may take at most this many times the file's size in memory
/// as `f32` (an `f16` file doubles; tied weights share one storage), plus
/// [`EXPANSION_SLACK`]. A stride-0 view or a deflated ZIP entry can declare a tensor far
/// larger than the file; such a file is refused before anything of that size is allocated.
pub const MAX_EXPANSION: u64 = 4;

/// Bytes allowed beyond [`MAX_EXPANSION`] times the file size, for tiny files (1 MiB).
pub const EXPANSION_SLACK: u64 = 1 << 20;

/// Options for reading a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Accept tensors that hold NaN or infinite values (refused by default, since such a
    /// checkpoint is damaged and produces NaN images).
    pub allow_non_finite: bool,
}

/// One tensor of a state dict: its shape (outermost first) and its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// Extents, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// Values in row-major order, `shape.iter().product()` of them.
    pub values: Vec<f32>,
}

/// The float tensors of a checkpoint by key, with the file they came from.
#[derive(Debug, Clone)]
pub struct StateDict {
    path: PathBuf,
    tensors: BTreeMap<String, StoredTensor>,
    /// Integer bookkeeping tensors (BatchNorm's `num_batches_tracked`) that carry no weights.
    bookkeeping: BTreeSet<String>,
}

impl StateDict {
    /// An empty state dict attributed to `path` (used to build one in code or from burnpack).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            tensors: BTreeMap::new(),
            bookkeeping: BTreeSet::new(),
        }
    }

    /// Read every float tensor of a PyTorch checkpoint (`.pth`, `.pth.tar`, `.pt`), optionally
    /// below a top-level key such as `"state_dict"`.
    ///
    /// # Errors
    /// [`ModelError::Io`] when the file cannot be opened, [`ModelError::Checkpoint`] when it is
    /// not a checkpoint or the reader refuses it (truncated, a storage shorter than its tensor,
    /// a pickle naming a callable that is not a tensor type, such as `os.system`, tensors
    /// larger than [`MAX_EXPANSION`] times the file), [`ModelError::NonFinite`] for NaN or
    /// infinite weights unless `options.allow_non_finite`.
    pub fn from_pytorch(
        path: impl AsRef<Path>,
        top_level_key: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Self> {
        let path = path.as_ref();
        let file_len = std::fs::metadata(path)
            .map_err(|source| ModelError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        pickle_guard::screen(path).map_err(|reason| checkpoint_error(path, reason))?;
        let budget = file_len
            .saturating_mul(MAX_EXPANSION)
            .saturating_add(EXPANSION_SLACK);
        let mut materialized = 0u64;
        let reader = match top_level_key {
            Some(key) => PytorchReader::with_top_level_key(path, key),
            None => PytorchReader::new(path),
        }
        .map_err(|e| checkpoint_error(path, e))?;
        let mut dict = Self::new(path);
        for (key, tensor) in reader.into_tensors() {
            let dtype = tensor.dtype();
            if !is_float(dtype) {
                if key.ends_with("num_batches_tracked") {
                    dict.bookkeeping.insert(key);
                    continue;
                }
                return Err(ModelError::DType {
                    path: path.to_path_buf(),
                    key,
                    dtype: format!("{dtype:?}"),
                });
            }
            let shape = tensor.shape().to_vec();
            let as_f32 = (tensor.num_elements() as u64).saturating_mul(4);
            materialized = materialized.saturating_add(as_f32);
            if materialized > budget || tensor.byte_len() as u64 > budget {
                return Err(checkpoint_error(
                    path,
                    format!(
                        "tensor '{key}' of shape {shape:?} takes the checkpoint past \
                         {budget} bytes in memory, {MAX_EXPANSION} times its {file_len} byte \
                         size: its shapes claim more data than the file holds"
                    ),
                ));
            }
            let bytes = tensor.read().map_err(|e| ModelError::Checkpoint {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            let values = to_f32(&bytes, dtype);
            if values.len() != shape.iter().product::<usize>() {
                return Err(ModelError::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!(
                        "tensor '{key}' holds {} values for shape {shape:?}",
                        values.len()
                    ),
                });
            }
            dict.insert(key, StoredTensor { shape, values }, options)?;
        }
        Ok(dict)
    }

    /// Add a tensor, checking its values are finite unless `options` allow otherwise.
    ///
    /// # Errors
    /// [`ModelError::NonFinite`] for NaN or infinite values.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        tensor: StoredTensor,
        options: &LoadOptions,
    ) -> Result<()> {
        let key = key.into();
        if !options.allow_non_finite {
            let count = tensor.values.iter().filter(|v| !v.is_finite()).count();
            if count > 0 {
                return Err(ModelError::NonFinite {
                    path: self.path.clone(),
                    key,
                    count,
                });
            }
        }
        self.tensors.insert(key, tensor);
        Ok(())
    }

    /// The file this state dict was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor stored under `key`.
    pub fn get(&self, key: &str) -> Option<&StoredTensor> {
        self.tensors.get(key)
    }

    /// All float tensor keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of float tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the state dict holds no float tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Keep only the keys that start with `prefix`, with the prefix removed
    /// (`module.layer1.0.conv1.weight` → `layer1.0.conv1.weight` for `prefix = "module."`).
    pub fn select_prefix(mut self, prefix: &str) -> Self {
        self.tensors = std::mem::take(&mut self.tensors)
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v)))
            .collect();
        self.bookkeeping = std::mem::take(&mut self.bookkeeping)
            .into_iter()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_string))
            .collect();
        self
    }

    /// Drop every key for which `drop` returns true (e.g. a projection head the network does
    /// not have).
    pub fn without(mut self, drop: impl Fn(&str) -> bool) -> Self {
        self.tensors.retain(|k, _| !drop(k));
        self
    }

    /// Whether any key starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors.keys().any(|k| k.starts_with(prefix))
    }
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
}

fn to_f32(bytes: &[u8], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn checkpoint_error(path: &Path, error: impl std::fmt::Display) -> ModelError {
    ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Hands a network's builder the tensors it asks for, and keeps account of what did not fit.
///
/// A missing or mis-shaped tensor is recorded and replaced by zeros so that the builder can go
/// on and every problem is reported at once by [`finish`](Self::finish).
pub struct WeightLoader<'a> {
    dict: Source<'a>,
    /// Tensors already moved out of an owned dict, flat, for a key asked for twice.
    taken: BTreeMap<String, Tensor<1>>,
    device: Device,
    network: String,
    used: BTreeSet<String>,
    missing: Vec<String>,
    mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

/// The state dict a [`WeightLoader`] reads: borrowed (its values are copied) or owned (they
/// are moved out).
enum Source<'a> {
    Borrowed(&'a StateDict),
    Owned(StateDict),
}

impl Source<'_> {
    fn get(&self) -> &StateDict {
        match self {
            Source::Borrowed(dict) => dict,
            Source::Owned(dict) => dict,
        }
    }
}

impl<'a> WeightLoader<'a> {
    /// A loader over `dict` that puts tensors on `device`; `network` names the network in
    /// error messages.
    pub fn new(dict: &'a StateDict, device: &Device, network: impl Into<String>) -> Self {
        Self::over(Source::Borrowed(dict), device, network)
    }

    /// A loader that owns `dict` and moves each tensor's values into the network instead of
    /// copying them, so that loading holds the weights in memory once rather than twice (the
    /// released G is 280 MB of `f32`).
    pub fn owning(dict: StateDict, device: &Device, network: impl Into<String>) -> Self {
        Self::over(Source::Owned(dict), device, network)
    }

    fn over(dict: Source<'a>, device: &Device, network: impl Into<String>) -> Self {
        Self {
            dict,
            taken: BTreeMap::new(),
            device: device.clone(),
            network: network.into(),
            used: BTreeSet::new(),
            missing: Vec::new(),
            mis_shaped: Vec::new(),
        }
    }

    /// The device tensors are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the checkpoint has a tensor under `key` (for optional parts such as biases).
    pub fn contains(&self, key: &str) -> bool {
        self.dict.get().get(key).is_some()
    }

    /// The stored shape under `key`, if any (for inferring a layer's width from the file).
    pub fn shape_of(&self, key: &str) -> Option<&[usize]> {
        self.dict.get().get(key).map(|t| t.shape.as_slice())
    }

    /// The tensor under `key`, which must have `shape`.
    pub fn tensor<const D: usize>(&mut self, key: &str, shape: [usize; D]) -> Tensor<D> {
        let Some(stored) = self.dict.get().get(key) else {
            self.missing.push(key.to_string());
            return Tensor::zeros(shape, &self.device);
        };
        self.used.insert(key.to_string());
        // A 0-d scalar stored for a [1] tensor (e.g. attention gamma) is the same data.
        let one_value = stored.shape.iter().product::<usize>() == 1;
        if stored.shape.as_slice() != shape.as_slice()
            && !(one_value && shape.iter().product::<usize>() == 1)
        {
            self.mis_shaped
                .push((key.to_string(), shape.to_vec(), stored.shape.clone()));
            return Tensor::zeros(shape, &self.device);
        }
        self.flat(key).reshape(shape)
    }

    /// The values under `key` (present) as a flat tensor: moved out of an owned dict (once;
    /// later requests share the tensor), copied from a borrowed one.
    fn flat(&mut self, key: &str) -> Tensor<1> {
        if let Some(tensor) = self.taken.get(key) {
            return tensor.clone();
        }
        let values = match &mut self.dict {
            Source::Borrowed(dict) => dict.tensors[key].values.clone(),
            Source::Owned(dict) => std::mem::take(
                &mut dict
                    .tensors
                    .get_mut(key)
                    .expect("the caller found the key")
                    .values,
            ),
        };
        let len = values.len();
        let tensor = Tensor::from_data(TensorData::new(values, [len]), &self.device);
        if let Source::Owned(_) = self.dict {
            self.taken.insert(key.to_string(), tensor.clone());
        }
        tensor
    }

    /// The tensor under `key` as a trainable parameter.
    pub fn param<const D: usize>(&mut self, key: &str, shape: [usize; D]) -> Param<Tensor<D>> {
        Param::from_tensor(self.tensor(key, shape))
    }

    /// A PyTorch `nn.Linear` weight `[out, in]` under `key`, transposed to Burn's `[in, out]`.
    pub fn linear_weight(&mut self, key: &str, d_in: usize, d_out: usize) -> Param<Tensor<2>> {
        Param::from_tensor(self.tensor(key, [d_out, d_in]).transpose())
    }

    /// The tensor under `key` as non-trainable running state (BatchNorm statistics,
    /// spectral-norm vectors).
    pub fn state<const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
    ) -> RunningState<Tensor<D>> {
        RunningState::new(self.tensor(key, shape))
    }

    /// A PyTorch `nn.Conv2d` under `prefix` (`prefix.weight`, and `prefix.bias` when the config
    /// has one), with the geometry of `config`.
    pub fn conv2d(&mut self, prefix: &str, config: &Conv2dConfig) -> Conv2d {
        let mut conv = config.init(&self.device);
        let [c_in, c_out] = config.channels;
        let [kh, kw] = config.kernel_size;
        conv.weight = self.param(
            &format!("{prefix}.weight"),
            [c_out, c_in / config.groups, kh, kw],
        );
        if conv.bias.is_some() {
            conv.bias = Some(self.param(&format!("{prefix}.bias"), [c_out]));
        }
        conv
    }

    /// A PyTorch `nn.Linear` under `prefix`, `[d_in] -> [d_out]`.
    pub fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Linear {
        let mut linear = LinearConfig::new(d_in, d_out)
            .with_bias(bias)
            .init(&self.device);
        linear.weight = self.linear_weight(&format!("{prefix}.weight"), d_in, d_out);
        if bias {
            linear.bias = Some(self.param(&format!("{prefix}.bias"), [d_out]));
        }
        linear
    }

    /// A PyTorch `nn.BatchNorm2d` under `prefix` with `channels` features (weight, bias,
    /// running_mean, running_var).
    pub fn batch_norm(&mut self, prefix: &str, channels: usize, epsilon: f64) -> BatchNorm {
        let mut bn = BatchNormConfig::new(channels)
            .with_epsilon(epsilon)
            .init(&self.device);
        bn.gamma = self.param(&format!("{prefix}.weight"), [channels]);
        bn.beta = self.param(&format!("{prefix}.bias"), [channels]);
        bn.running_mean = self.state(&format!("{prefix}.running_mean"), [channels]);
        bn.running_var = self.state(&format!("{prefix}.running_var"), [channels]);
        bn
    }

    /// Mark keys as deliberately unused (e.g. a classifier head the network leaves out).
    pub fn skip(&mut self, key: &str) {
        if self.dict.get().get(key).is_some() {
            self.used.insert(key.to_string());
        }
    }

    /// Finish loading: an error listing every missing, unexpected and mis-shaped key, if any.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`] when the checkpoint did not fit exactly.
    pub fn finish(self) -> Result<()> {
        let unexpected: Vec<String> = self
            .dict
            .get()
            .keys()
            .filter(|k| !self.used.contains(*k))
            .map(str::to_string)
            .collect();
        if self.missing.is_empty() && unexpected.is_empty() && self.mis_shaped.is_empty() {
            return Ok(());
        }
        Err(ModelError::Mismatch {
            path: self.dict.get().path().to_path_buf(),
            network: self.network,
            missing: self.missing,
            unexpected,
            mis_shaped: self.mis_shaped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict_with(entries: &[(&str, Vec<usize>)]) -> StateDict {
        let mut dict = StateDict::new("test.pth");
        for (k, shape) in entries {
            let n = shape.iter().product();
            dict.insert(
                *k,
                StoredTensor {
                    shape: shape.clone(),
                    values: vec![0.5; n],
                },
                &LoadOptions::default(),
            )
            .expect("finite values");
        }
        dict
    }

    #[test]
    fn exact_fit_loads() {
        let dict = dict_with(&[("a.weight", vec![2, 3])]);
        let mut loader = WeightLoader::new(&dict, &Device::default(), "test net");
        let t = loader.tensor("a.weight", [2, 3]);
        assert_eq!(t.dims(), [2, 3]);
        loader.finish().expect("exact fit");
    }

    #[test]
    fn an_owning_loader_moves_values_and_serves_a_key_twice() {
        let mut dict = StateDict::new("test.pth");
        let values: Vec<f32> = (0..6).map(|v| v as f32 * 0.5).collect();
        dict.insert(
            "w",
            StoredTensor {
                shape: vec![2, 3],
                values: values.clone(),
            },
            &LoadOptions::default(),
        )
        .unwrap();
        let device = Device::default();
        let mut loader = WeightLoader::owning(dict, &device, "test net");
        let first = loader.tensor("w", [2, 3]);
        let tied = loader.tensor("w", [2, 3]);
        assert_eq!(first.into_data().try_to_vec::<f32>().unwrap(), values);
        assert_eq!(tied.into_data().try_to_vec::<f32>().unwrap(), values);
        assert!(loader.contains("w"));
        assert_eq!(loader.shape_of("w"), Some([2, 3].as_slice()));
        let _ = loader.tensor("absent", [1]);
        let err = loader.finish().unwrap_err().to_string();
        assert!(err.contains("absent"), "{err}");
    }

    #[test]
    fn mismatch_lists_every_problem() {
        let dict = dict_with(&[("a.weight", vec![2, 3]), ("extra", vec![1])]);
        let mut loader = WeightLoader::new(&dict, &Device::default(), "test net");
        let _ = loader.tensor("a.weight", [3, 2]);
        let _ = loader.tensor("b.weight", [4]);
        let err = loader.finish().expect_err("three problems");
        let msg = err.to_string();
        assert!(msg.contains("b.weight"), "{msg}");
        assert!(msg.contains("extra"), "{msg}");
        assert!(
            msg.contains("a.weight (expected [3, 2], found [2, 3])"),
            "{msg}"
        );
        assert!(msg.contains("test.pth"), "{msg}");
    }

    #[test]
    fn non_finite_weights_are_refused_by_default() {
        let mut dict = StateDict::new("bad.pth");
        let bad = StoredTensor {
            shape: vec![2],
            values: vec![1.0, f32::NAN],
        };
        let err = dict
            .insert("w", bad.clone(), &LoadOptions::default())
            .expect_err("NaN refused");
        assert!(matches!(err, ModelError::NonFinite { count: 1, .. }));
        let allow = LoadOptions {
            allow_non_finite: true,
        };
        dict.insert("w", bad, &allow).expect("allowed on request");
    }

    #[test]
    fn select_prefix_strips_and_filters() {
        let dict = dict_with(&[("module.conv1.weight", vec![1]), ("other", vec![1])])
            .select_prefix("module.");
        assert_eq!(dict.keys().collect::<Vec<_>>(), vec!["conv1.weight"]);
    }
}
