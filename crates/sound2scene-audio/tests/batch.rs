//! Batch API: many files in parallel into a `[batch, 1, 257, frames]` Burn tensor.

mod common;

use burn::tensor::Device;
use common::{fixtures_dir, max_abs_diff, require, samples_dir};
use sound2scene_audio::{
    AudioError, Spectrogram, SpectrogramConfig, load_audio, read_npy_f32, spectrogram_batch,
};

#[test]
fn batch_matches_single_files_and_model_input_fixture() {
    let (Some(cow), Some(ocean), Some(reference)) = (
        require(samples_dir().join("inference/cow.wav")),
        require(samples_dir().join("inference/ocean.wav")),
        require(fixtures_dir().join("models/audio_in_cow_ocean.npy")),
    ) else {
        return;
    };
    let device = Device::default();
    let t = spectrogram_batch(&[&cow, &ocean], &SpectrogramConfig::default(), &device)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.dims(), [2, 1, 257, 1004]);
    let got: Vec<f32> = t.into_data().try_to_vec::<f32>().expect("f32 tensor data");
    let n = 257 * 1004;
    for (i, p) in [&cow, &ocean].into_iter().enumerate() {
        let single = Spectrogram::compute(&load_audio(p).unwrap()).unwrap();
        assert_eq!(&got[i * n..(i + 1) * n], single.data());
    }
    let reference = read_npy_f32(reference).expect("read fixture");
    assert_eq!(reference.shape, vec![2, 1, 257, 1004]);
    let d = max_abs_diff(&got, &reference.data);
    assert!(d <= 1e-3, "batch vs official model input: {d}");
}

#[test]
fn batch_duration_follows_config() {
    let Some(cow) = require(samples_dir().join("inference/cow.wav")) else {
        return;
    };
    let cfg = SpectrogramConfig {
        seconds: 4.0,
        ..Default::default()
    };
    let t = spectrogram_batch(&[&cow, &cow, &cow], &cfg, &Device::default()).unwrap();
    assert_eq!(t.dims(), [3, 1, 257, cfg.frames()]);
}

#[test]
fn batch_error_names_the_bad_file() {
    let dir = common::temp_dir("batch");
    let good = dir.join("good.wav");
    std::fs::write(
        &good,
        common::wav_bytes(1, 1, 16_000, 16, &common::pcm16(&[100; 16_000])),
    )
    .unwrap();
    let bad = dir.join("bad.wav");
    std::fs::write(&bad, b"").unwrap();
    let err = spectrogram_batch(
        &[&good, &bad],
        &SpectrogramConfig::default(),
        &Device::default(),
    )
    .expect_err("empty file in batch");
    assert!(
        matches!(err, AudioError::EmptyFile { ref path } if *path == bad),
        "{err:?}"
    );
    let none: [&std::path::Path; 0] = [];
    assert!(spectrogram_batch(&none, &SpectrogramConfig::default(), &Device::default()).is_err());
}
