//! Data parallelism for the alignment loop: every batch is cut into shards that run on several
//! devices at once, as PyTorch's `DataParallel` does for the official training script.
//!
//! One step with devices `d_0` (the main device, which holds the weights and the optimizer)
//! and `d_1 … d_{k-1}`:
//!
//! 1. the current encoder is copied to every other device ([`Module::fork`], one copy per step,
//!    so the copies always hold the weights the optimizer just wrote);
//! 2. shard `i` (rows `i·n/k .. (i+1)·n/k` of the batch) runs forward on `d_i`;
//! 3. the shards' features are gathered on `d_0`, where the loss sees the whole batch: the
//!    contrastive loss needs every negative, so each device computing a loss over its own
//!    shard only (as in multi-process DDP without a feature all-gather) would change the
//!    objective;
//! 4. one backward pass carries the gradient back to every device; each copy's gradients are
//!    moved to `d_0` and summed with the main encoder's, giving the gradient of the full-batch
//!    loss.
//!
//! Batch norms normalize each shard with its own statistics (PyTorch's `DataParallel` does the
//! same; SyncBN is a separate module there), and their running statistics, which Burn shares
//! between copies, receive one update per shard.
//!
//! With one device this is exactly the single-device step. Copies may live on the same device
//! (several `flex` copies on the CPU): no faster, but it exercises the same path, which is how
//! the tests check it.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use sound2scene_models::audio_encoder::AudioEncoder;

use crate::error::TrainError;
use crate::loss::ContrastiveLoss;

/// The loss of one batch and the gradients of every parameter of the main encoder.
pub struct ShardedStep {
    /// The full-batch loss (not checked for finiteness).
    pub loss: f64,
    /// Gradients keyed by the main encoder's parameter ids, on the main (plain) device.
    pub grads: GradientsParams,
}

/// Rows `[start, end)` of shard `i` of `k` over `n` rows: sizes differ by at most one.
pub fn shard_rows(n: usize, k: usize, i: usize) -> (usize, usize) {
    (i * n / k, (i + 1) * n / k)
}

/// Runs one data-parallel forward and backward pass of `model` (on the autodiff version of
/// `devices[0]`, tracked) over `spectrograms` (`[n, 1, bins, frames]` row-major, with `shape`)
/// and the image features (`[n, dim]` row-major), with `loss` over the gathered batch.
///
/// `devices` are autodiff devices, the main one first; with more devices than rows the extra
/// devices stay idle. Returns the loss and the summed gradients (see the
/// [module docs](self)); a non-finite loss is returned as it is, for the caller to refuse.
///
/// # Errors
/// [`TrainError::Config`] without a device or when the shapes disagree with the data; the
/// encoder's and the loss's errors.
pub fn forward_backward(
    model: &AudioEncoder,
    devices: &[Device],
    spectrograms: &[f32],
    shape: [usize; 4],
    features: &[f32],
    dim: usize,
    loss: ContrastiveLoss,
) -> Result<ShardedStep, TrainError> {
    let Some(main) = devices.first() else {
        return Err(TrainError::config(
            "data parallelism needs at least one device",
        ));
    };
    let n = shape[0];
    let row = shape[1] * shape[2] * shape[3];
    if n == 0 || spectrograms.len() != n * row || features.len() != n * dim {
        return Err(TrainError::config(format!(
            "a batch of {n} spectrograms of shape {shape:?} and {dim}-wide features holds {} \
             and {} values",
            spectrograms.len(),
            features.len()
        )));
    }
    let k = devices.len().min(n);
    let mut copies = Vec::with_capacity(k - 1);
    let mut outputs = Vec::with_capacity(k);
    for (i, device) in devices.iter().take(k).enumerate() {
        let (start, end) = shard_rows(n, k, i);
        let values = spectrograms[start * row..end * row].to_vec();
        let input = Tensor::<4>::from_data(
            TensorData::new(values, [end - start, shape[1], shape[2], shape[3]]),
            device,
        );
        let feature = if i == 0 {
            model.try_forward(input)?.feature
        } else {
            let copy = model.clone().fork(device);
            let feature = copy.try_forward(input)?.feature.to_device(main);
            copies.push(copy);
            feature
        };
        outputs.push(feature);
    }
    let audio = Tensor::cat(outputs, 0); // [n, out_dim]
    let targets = Tensor::<2>::from_data(TensorData::new(features.to_vec(), [n, dim]), main);
    let loss = loss.compute(audio, targets)?;
    let value = f64::from(loss.clone().inner().into_scalar::<f32>());
    let mut gradients = loss.backward();
    let plain = main.clone().inner();
    let mut sum = GradientsAccumulator::<AudioEncoder>::new();
    sum.accumulate(model, GradientsParams::from_module(&mut gradients, model));
    for copy in &copies {
        let grads = GradientsParams::from_module(&mut gradients, copy).to_device(&plain, copy);
        sum.accumulate(model, grads);
    }
    Ok(ShardedStep {
        loss: value,
        grads: sum.grads(),
    })
}
