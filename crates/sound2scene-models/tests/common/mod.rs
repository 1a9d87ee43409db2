//! Shared helpers for the integration tests: fixture lookup, `.npy` reading, comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::ArrayD;

/// Fixtures directory: `$SOUND2SCENE_FIXTURES`, else `<workspace>/../shared/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOUND2SCENE_FIXTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// Samples directory: `$SOUND2SCENE_SAMPLES`, else `<fixtures>/../samples`.
pub fn samples_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOUND2SCENE_SAMPLES") {
        return PathBuf::from(dir);
    }
    fixtures_dir().join("../samples")
}

/// `Some(path)` for `<fixtures>/<relative>` if it exists (file or folder). A missing
/// fixture fails the test under `CI=true`; elsewhere the test prints a skip message and
/// should return.
pub fn fixture(relative: &str) -> Option<PathBuf> {
    require(fixtures_dir().join(relative))
}

/// `Some(path)` if it exists; a missing path fails under `CI=true`, else prints "skip: …".
pub fn require(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("required fixture {} is missing (CI=true)", path.display());
    }
    eprintln!("skip: fixture {} not found", path.display());
    None
}

/// A float32 `.npy` file as (shape, row-major values).
pub fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let array: ArrayD<f32> = ndarray_npy::read_npy(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let shape = array.shape().to_vec();
    let values = array.as_standard_layout().iter().copied().collect();
    (shape, values)
}

/// A float32 `.npy` file as a tensor of rank `D` on `device`.
pub fn npy_tensor<const D: usize>(path: &Path, device: &Device) -> Tensor<D> {
    let (shape, values) = read_npy(path);
    assert_eq!(shape.len(), D, "{} has shape {shape:?}", path.display());
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The values of a tensor.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .expect("float tensor")
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Assert `max|got − want| ≤ rel · max(1, max|want|)` and return the error, printing it.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], rel: f32) -> f32 {
    let err = max_abs_diff(got, want);
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    eprintln!("{name}: max|a-b| = {err:.3e} (bound {:.3e})", rel * scale);
    assert!(
        err <= rel * scale,
        "{name}: max|a-b| = {err} exceeds {rel} * {scale}"
    );
    err
}
