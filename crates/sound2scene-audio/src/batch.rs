//! Spectrograms of many files at once, in parallel, and (with the `tensor` feature) as a Burn
//! tensor `[batch, 1, bins, frames]`.

use std::path::Path;

#[cfg(feature = "tensor")]
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::decode::{DecodeOptions, load_audio_with};
use crate::error::{AudioError, Result};
use crate::spectrogram::{Spectrogram, SpectrogramConfig, SpectrogramPlan};

/// Decode each file (mono, resampled to `cfg.sample_rate`) and compute its spectrogram, in
/// parallel. Results keep the order of `paths`; the first failing file (in that order) is
/// returned as the error.
pub fn spectrograms<P: AsRef<Path> + Sync>(
    paths: &[P],
    opts: &DecodeOptions,
    cfg: &SpectrogramConfig,
) -> Result<Vec<Spectrogram>> {
    let plan = SpectrogramPlan::cached(cfg)?;
    let results: Vec<Result<Spectrogram>> = paths
        .par_iter()
        .map(|p| plan.compute(&load_audio_with(p, opts, cfg.sample_rate)?))
        .collect();
    results.into_iter().collect()
}

/// Stack spectrograms of equal shape into a `[batch, 1, bins, frames]` tensor on `device`.
#[cfg(feature = "tensor")]
pub fn to_tensor(specs: &[Spectrogram], device: &Device) -> Result<Tensor<4>> {
    let Some(first) = specs.first() else {
        return Err(AudioError::InvalidArgument(
            "cannot build a batch tensor from zero spectrograms".into(),
        ));
    };
    let [bins, frames] = first.shape();
    if let Some(bad) = specs.iter().find(|s| s.shape() != [bins, frames]) {
        return Err(AudioError::InvalidArgument(format!(
            "spectrograms in a batch must share a shape: {:?} vs {:?}",
            bad.shape(),
            first.shape()
        )));
    }
    let mut data = Vec::with_capacity(specs.len() * bins * frames);
    for s in specs {
        data.extend_from_slice(s.data());
    }
    Ok(Tensor::<4>::from_data(
        TensorData::new(data, [specs.len(), 1, bins, frames]),
        device,
    ))
}

/// Spectrograms of `paths` (decoded with default [`DecodeOptions`]) as a tensor
/// `[paths.len(), 1, cfg.bins(), cfg.frames()]` (`[b, 1, 257, 1004]` by default) on `device`.
#[cfg(feature = "tensor")]
pub fn spectrogram_batch<P: AsRef<Path> + Sync>(
    paths: &[P],
    cfg: &SpectrogramConfig,
    device: &Device,
) -> Result<Tensor<4>> {
    if paths.is_empty() {
        return Err(AudioError::InvalidArgument(
            "spectrogram_batch needs at least one file".into(),
        ));
    }
    to_tensor(
        &spectrograms(paths, &DecodeOptions::default(), cfg)?,
        device,
    )
}
