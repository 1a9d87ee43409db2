//! A file whose container declares more audio than it holds (a cut-off download or copy) is
//! decoded with a warning that says how much is missing, or refused with `strict_length`.

mod common;

use std::path::{Path, PathBuf};

use common::{fixtures_dir, pcm16, require, samples_dir, wav_bytes};
use sound2scene_audio::{
    AudioError, DecodeOptions, DecodeWarning, decode_file, decode_file_reporting,
    load_audio_reporting,
};

/// A 10 s, 16 kHz mono 16-bit WAV (a 440 Hz tone) and its first 1000 bytes, in `dir`.
fn full_and_cut(dir: &Path) -> (PathBuf, PathBuf) {
    let samples: Vec<i16> = (0..160_000)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8_000.0) as i16)
        .collect();
    let bytes = wav_bytes(1, 1, 16_000, 16, &pcm16(&samples));
    let full = dir.join("full.wav");
    let cut = dir.join("cut.wav");
    std::fs::write(&full, &bytes).expect("write full WAV");
    std::fs::write(&cut, &bytes[..1000]).expect("write cut WAV");
    (full, cut)
}

#[test]
fn a_cut_off_wav_decodes_what_it_holds_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (full, cut) = full_and_cut(dir.path());

    let whole = decode_file_reporting(&full, &DecodeOptions::default()).expect("full file");
    assert_eq!(whole.wave.frames(), 160_000);
    assert!(whole.warnings.is_empty(), "{:?}", whole.warnings);

    let decoded = decode_file_reporting(&cut, &DecodeOptions::default()).expect("cut file");
    // 1000 bytes minus the 44-byte header hold 478 two-byte samples.
    let held = decoded.wave.frames();
    assert!((470..=478).contains(&held), "{held} frames");
    assert_eq!(decoded.warnings.len(), 1, "{:?}", decoded.warnings);
    let DecodeWarning::Truncated {
        path,
        declared_seconds,
        decoded_seconds,
    } = &decoded.warnings[0]
    else {
        panic!("{:?}", decoded.warnings[0]);
    };
    assert_eq!(path, &cut);
    assert!((declared_seconds - 10.0).abs() < 1e-9, "{declared_seconds}");
    assert!((decoded_seconds - held as f64 / 16_000.0).abs() < 1e-9);
    let message = decoded.warnings[0].to_string();
    assert!(
        message.contains("declares 10.0 s, holds 0.03 s"),
        "{message}"
    );
    assert!(message.contains(&cut.display().to_string()), "{message}");

    // The plain decoder returns the same samples; loading for the model keeps the warning.
    assert_eq!(
        decode_file(&cut, &DecodeOptions::default()).expect("cut file"),
        decoded.wave
    );
    let loaded = load_audio_reporting(&cut, &DecodeOptions::default(), 16_000).expect("load");
    assert_eq!(loaded.warnings, decoded.warnings);
}

#[test]
fn strict_length_refuses_a_cut_off_wav() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (full, cut) = full_and_cut(dir.path());
    let strict = DecodeOptions {
        strict_length: true,
        ..DecodeOptions::default()
    };
    assert_eq!(
        decode_file(&full, &strict).expect("full file").frames(),
        160_000
    );
    let err = decode_file(&cut, &strict).expect_err("cut file under strict_length");
    assert!(
        matches!(err, AudioError::ShorterThanDeclared { ref path, .. } if *path == cut),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("declares 10.0 s, holds 0.03 s"),
        "{message}"
    );
    assert!(message.contains(&cut.display().to_string()), "{message}");
}

#[test]
fn complete_files_of_every_format_give_no_warning() {
    // Lossy codecs end on whole blocks and trim encoder delay; none of that is a truncation.
    let strict = DecodeOptions {
        strict_length: true,
        ..DecodeOptions::default()
    };
    let audio = fixtures_dir().join("audio");
    for path in [
        samples_dir().join("inference/cow.wav"),
        audio.join("cow.flac"),
        audio.join("cow.mp3"),
        audio.join("cow.ogg"),
        audio.join("cow.m4a"),
        audio.join("cow_video_44100_stereo.mp4"),
        audio.join("cow_44100_stereo.wav"),
        audio.join("short_500ms.wav"),
    ] {
        let Some(path) = require(path) else {
            continue;
        };
        let decoded = decode_file_reporting(&path, &strict)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            decoded.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            decoded.warnings
        );
    }
}
