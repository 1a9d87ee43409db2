//! Building networks strictly from a checkpoint's state dict.
//!
//! Loading goes in two steps, in the manner of candle's `VarBuilder`:
//! 1. [`StateDict::from_pytorch`] (from `sound2scene-weights`, re-exported here) reads every
//!    float tensor of a `.pth` file (ZIP or legacy `torch.save` format, through burn-store's
//!    `pytorch-reader`), converts it to `f32` and refuses NaN or infinite values unless asked
//!    not to.
//! 2. Each network's `load` function asks a [`WeightLoader`] for the tensors it needs by their
//!    PyTorch key and shape. The loader records every missing, unused and mis-shaped key, and
//!    [`WeightLoader::finish`] turns a non-empty record into one [`ModelError::Mismatch`] that
//!    lists them all, so a wrong checkpoint is explained in one message.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
pub use sound2scene_weights::state_dict::{
    EXPANSION_SLACK, LoadOptions, MAX_EXPANSION, StateDict, StoredTensor,
};

use crate::error::{ModelError, Result};

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
            Source::Borrowed(dict) => dict
                .get(key)
                .expect("the caller found the key")
                .values
                .clone(),
            Source::Owned(dict) => dict.take_values(key).expect("the caller found the key"),
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
}
