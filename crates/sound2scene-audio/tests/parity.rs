//! Parity of the front end with the official Python (`scipy.signal.spectrogram`) outputs stored
//! as fixtures, for every supported container/codec.

mod common;

use common::{fixtures_dir, max_abs_diff, pearson, require, samples_dir};
use sound2scene_audio::{Spectrogram, load_audio, read_npy_f32};

fn reference(name: &str) -> Option<Vec<f32>> {
    let path = require(
        fixtures_dir()
            .join("audio")
            .join(format!("spec_{name}.npy")),
    )?;
    let a = read_npy_f32(path).expect("read reference");
    assert_eq!(a.shape, vec![257, 1004]);
    Some(a.data)
}

fn spectrogram_of(path: std::path::PathBuf) -> Option<Spectrogram> {
    let path = require(path)?;
    let wave = load_audio(&path).unwrap_or_else(|e| panic!("{e}"));
    let spec = Spectrogram::compute(&wave).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.shape(), [257, 1004]);
    Some(spec)
}

fn check_exact(input: std::path::PathBuf, name: &str) {
    let (Some(ours), Some(theirs)) = (spectrogram_of(input), reference(name)) else {
        return;
    };
    let d = max_abs_diff(ours.data(), &theirs);
    eprintln!("{name}: max abs diff {d:e}");
    assert!(d <= 1e-3, "{name}: max abs diff {d}");
}

fn check_correlated(file: &str, min_r: f64) {
    let (Some(ours), Some(theirs)) = (
        spectrogram_of(fixtures_dir().join("audio").join(file)),
        reference("cow"),
    ) else {
        return;
    };
    let r = pearson(ours.data(), &theirs);
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
