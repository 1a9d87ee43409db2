//! Bytes → a checkpoint file → `StateDict::from_pytorch` and `burnpack::read_header` of
//! `sound2scene-weights`, the readers every loader of `sound2scene-models` goes through.
//! Every outcome must be an error or a state dict of finite values; no panic, no allocation
//! beyond libFuzzer's `-malloc_limit_mb`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sound2scene_weights::burnpack;
use sound2scene_weights::{LoadOptions, StateDict};

/// One scratch directory per fuzzing process.
fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch directory"))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().path().join("input.pth");
    std::fs::write(&path, data).expect("write input");
    if let Ok(dict) = StateDict::from_pytorch(&path, None, &LoadOptions::default()) {
        for key in dict.keys() {
            let tensor = dict.get(key).expect("listed key");
            assert_eq!(tensor.values.len(), tensor.shape.iter().product::<usize>());
            assert!(tensor.values.iter().all(|v| v.is_finite()), "{key}");
        }
    }
    let _ = burnpack::read_header(&path);
});
