//! Reading a PyTorch checkpoint into a key → tensor map of `f32` values.
//!
//! [`StateDict::from_pytorch`] first screens every pickle of the file (a callable that is not
//! a tensor type, such as `os.system`, is refused), then reads every float tensor through
//! burn-store's `pytorch-reader` (ZIP or legacy `torch.save` format), converts it to `f32` and
//! refuses NaN or infinite values unless asked not to. Shapes claiming more memory than
//! [`MAX_EXPANSION`] times the file's size are refused before anything of that size is
//! allocated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pytorch_reader::{DType, PytorchReader};

use crate::error::{Result, WeightsError};

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
    /// [`WeightsError::Io`] when the file cannot be opened, [`WeightsError::Checkpoint`] when
    /// it is not a checkpoint or the reader refuses it (truncated, a storage shorter than its
    /// tensor, a pickle naming a callable that is not a tensor type, such as `os.system`,
    /// tensors larger than [`MAX_EXPANSION`] times the file), [`WeightsError::DType`] for an
    /// integer tensor other than BatchNorm's `num_batches_tracked`, [`WeightsError::NonFinite`]
    /// for NaN or infinite weights unless `options.allow_non_finite`.
    pub fn from_pytorch(
        path: impl AsRef<Path>,
        top_level_key: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Self> {
        let path = path.as_ref();
        let file_len = std::fs::metadata(path)
            .map_err(|source| WeightsError::Io {
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
                return Err(WeightsError::DType {
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
            let bytes = tensor.read().map_err(|e| checkpoint_error(path, e))?;
            let values = to_f32(&bytes, dtype);
            if values.len() != shape.iter().product::<usize>() {
                return Err(checkpoint_error(
                    path,
                    format!(
                        "tensor '{key}' holds {} values for shape {shape:?}",
                        values.len()
                    ),
                ));
            }
            dict.insert(key, StoredTensor { shape, values }, options)?;
        }
        Ok(dict)
    }

    /// Add a tensor, checking its values are finite unless `options` allow otherwise.
    ///
    /// # Errors
    /// [`WeightsError::NonFinite`] for NaN or infinite values.
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
                return Err(WeightsError::NonFinite {
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

    /// Move the values under `key` out, leaving its shape with no values; `None` when there
    /// is no such tensor. For a loader that hands each tensor to a network once instead of
    /// copying it (the released generator is 280 MB of `f32`); [`get`](Self::get) then shows
    /// the shape and an empty `values`.
    pub fn take_values(&mut self, key: &str) -> Option<Vec<f32>> {
        self.tensors
            .get_mut(key)
            .map(|tensor| std::mem::take(&mut tensor.values))
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

fn checkpoint_error(path: &Path, error: impl std::fmt::Display) -> WeightsError {
    WeightsError::Checkpoint {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: &[usize], values: Vec<f32>) -> StoredTensor {
        StoredTensor {
            shape: shape.to_vec(),
            values,
        }
    }

    #[test]
    fn non_finite_weights_are_refused_by_default() {
        let mut dict = StateDict::new("bad.pth");
        let bad = tensor(&[2], vec![1.0, f32::NAN]);
        let err = dict
            .insert("w", bad.clone(), &LoadOptions::default())
            .expect_err("NaN refused");
        assert!(matches!(err, WeightsError::NonFinite { count: 1, .. }));
        assert!(dict.is_empty());
        let allow = LoadOptions {
            allow_non_finite: true,
        };
        dict.insert("w", bad, &allow).expect("allowed on request");
        assert_eq!(dict.len(), 1);
    }

    #[test]
    fn select_prefix_strips_and_filters() {
        let mut dict = StateDict::new("test.pth");
        for key in ["module.conv1.weight", "other"] {
            dict.insert(key, tensor(&[1], vec![0.5]), &LoadOptions::default())
                .expect("finite");
        }
        let dict = dict.select_prefix("module.");
        assert_eq!(dict.keys().collect::<Vec<_>>(), vec!["conv1.weight"]);
    }

    #[test]
    fn take_values_moves_them_out_and_keeps_the_shape() {
        let mut dict = StateDict::new("test.pth");
        dict.insert(
            "w",
            tensor(&[2, 1], vec![1.0, 2.0]),
            &LoadOptions::default(),
        )
        .expect("finite");
        assert_eq!(dict.take_values("w"), Some(vec![1.0, 2.0]));
        assert_eq!(dict.get("w"), Some(&tensor(&[2, 1], Vec::new())));
        assert_eq!(dict.take_values("absent"), None);
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("absent.pth");
        let err = StateDict::from_pytorch(&path, None, &LoadOptions::default())
            .expect_err("no such file");
        match err {
            WeightsError::Io { path: p, .. } => assert_eq!(p, path),
            other => panic!("expected Io, got {other:?}"),
        }
    }
}
