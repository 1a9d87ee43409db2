//! Parity of the front end with the official Python (`scipy.signal.spectrogram`) outputs stored
//! as fixtures, for every supported container/codec.

mod common;

use common::{fixtures_dir, max_abs_diff, pearson, require, samples_dir};
use sound2scene_audio::{
    NpyArray, Spectrogram, SpectrogramConfig, Tiling, load_audio, read_npy_f32,
};

/// The official spectrogram `spec_{name}.npy`, whose shape must be `shape`.
fn reference(name: &str, shape: [usize; 2]) -> Option<NpyArray> {
    let path = require(
        fixtures_dir()
            .join("audio")
            .join(format!("spec_{name}.npy")),
    )?;
    let a = read_npy_f32(path).expect("read reference");
    assert_eq!(a.shape, shape.to_vec(), "spec_{name}.npy");
    Some(a)
}

fn spectrogram_with(path: std::path::PathBuf, cfg: &SpectrogramConfig) -> Option<Spectrogram> {
    let path = require(path)?;
    let wave = load_audio(&path).unwrap_or_else(|e| panic!("{e}"));
    Some(Spectrogram::compute_with(&wave, cfg).unwrap_or_else(|e| panic!("{e}")))
}

fn spectrogram_of(path: std::path::PathBuf) -> Option<Spectrogram> {
    let spec = spectrogram_with(path, &SpectrogramConfig::default())?;
    assert_eq!(spec.shape(), [257, 1004]);
    Some(spec)
}

fn check_exact(input: std::path::PathBuf, name: &str) {
    check_exact_shape(input, name, [257, 1004]);
}

/// Our default front end on `input` against `spec_{name}.npy`: same shape `shape`, max abs
/// difference at most 1e-3.
fn check_exact_shape(input: std::path::PathBuf, name: &str, shape: [usize; 2]) {
    let (Some(ours), Some(theirs)) = (
        spectrogram_with(input, &SpectrogramConfig::default()),
        reference(name, shape),
    ) else {
        return;
    };
    assert_eq!(ours.shape(), shape, "{name}: shape");
    let theirs = theirs.data;
    let d = max_abs_diff(ours.data(), &theirs);
    eprintln!("{name}: max abs diff {d:e}");
    assert!(d <= 1e-3, "{name}: max abs diff {d}");
}

fn check_correlated(file: &str, min_r: f64) {
    let (Some(ours), Some(theirs)) = (
        spectrogram_of(fixtures_dir().join("audio").join(file)),
        reference("cow", [257, 1004]),
    ) else {
        return;
    };
    let r = pearson(ours.data(), &theirs.data);
    eprintln!("{file}: pearson {r:.5}");
    assert!(r >= min_r, "{file}: pearson {r} < {min_r}");
}

#[test]
fn cow_wav_matches_official() {
    check_exact(samples_dir().join("inference/cow.wav"), "cow");
}

#[test]
fn ocean_wav_matches_official() {
    check_exact(samples_dir().join("inference/ocean.wav"), "ocean");
}

#[test]
fn chainsaw_wav_matches_official() {
    check_exact(samples_dir().join("inference/chainsaw.wav"), "chainsaw");
}

#[test]
fn church_wav_matches_official() {
    check_exact(samples_dir().join("inference/church.wav"), "church");
}

#[test]
fn short_clip_is_tiled_like_official() {
    check_exact(
        fixtures_dir().join("audio/short_1300ms.wav"),
        "short_1300ms",
    );
}

#[test]
fn half_second_clip_is_tiled_ten_times_like_official() {
    // np.tile(samples, 10)[:160000] of 8000 samples is 80000 samples: [257, 500], not 1004.
    check_exact_shape(
        fixtures_dir().join("audio/short_500ms.wav"),
        "short_500ms",
        [257, 500],
    );
}

#[test]
fn half_second_clip_fills_ten_seconds_on_request() {
    // Tiling::Fill is the clip repeated by hand to 10 s, then the official recipe.
    let Some(path) = require(fixtures_dir().join("audio/short_500ms.wav")) else {
        return;
    };
    let wave = load_audio(&path).unwrap_or_else(|e| panic!("{e}"));
    let fill = SpectrogramConfig {
        tiling: Tiling::Fill,
        ..SpectrogramConfig::default()
    };
    let filled = Spectrogram::compute_with(&wave, &fill).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(filled.shape(), [257, 1004]);
    let by_hand = Spectrogram::compute(&wave.tile_to(160_000)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        filled == by_hand,
        "Tiling::Fill differs from filling by hand"
    );
}

#[test]
fn loud_float_wav_is_clipped_like_official() {
    check_exact(fixtures_dir().join("audio/loud_float.wav"), "loud_float");
}

#[test]
fn flac_equals_wav() {
    let (Some(flac), Some(wav)) = (
        spectrogram_of(fixtures_dir().join("audio/cow.flac")),
        spectrogram_of(samples_dir().join("inference/cow.wav")),
    ) else {
        return;
    };
    let d = max_abs_diff(flac.data(), wav.data());
    assert!(d <= 1e-5, "flac vs wav: {d}");
}

#[test]
fn stereo_44100_wav_correlates() {
    check_correlated("cow_44100_stereo.wav", 0.99);
}

#[test]
fn ogg_vorbis_correlates() {
    check_correlated("cow.ogg", 0.95);
}

#[test]
fn mp3_correlates() {
    check_correlated("cow.mp3", 0.95);
}

#[test]
fn aac_m4a_correlates() {
    check_correlated("cow.m4a", 0.95);
}

#[test]
fn mp4_video_audio_track_correlates() {
    check_correlated("cow_video_44100_stereo.mp4", 0.95);
}
