//! Bad input gives a clear `AudioError` naming the file, never a panic. Every crafted file is
//! written by hand into a temporary directory.

mod common;

use std::path::PathBuf;

use common::{f32le, pcm16, temp_dir, wav_bytes, wav_bytes_declared};
use sound2scene_audio::{AudioError, DecodeOptions, decode_file, load_audio};

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// Decode, expect an error, check that its message names the file, and return it.
fn expect_err(path: &std::path::Path, opts: &DecodeOptions) -> AudioError {
    match decode_file(path, opts) {
        Ok(w) => panic!(
            "{} decoded to {} frames, expected an error",
            path.display(),
            w.frames()
        ),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "message does not name the file: {msg}"
            );
            eprintln!("{msg}");
            e
        }
    }
}

fn one_second_pcm16() -> Vec<u8> {
    pcm16(
        &(0..16_000)
            .map(|i| ((i % 100) * 100) as i16)
            .collect::<Vec<_>>(),
    )
}

#[test]
fn missing_file() {
    let dir = temp_dir("missing");
    let e = expect_err(&dir.join("nope.wav"), &DecodeOptions::default());
    assert!(matches!(e, AudioError::NotFound { .. }), "{e:?}");
}

#[test]
fn empty_file() {
    let dir = temp_dir("empty");
    let p = write(&dir, "empty.wav", b"");
    assert!(matches!(
        expect_err(&p, &DecodeOptions::default()),
        AudioError::EmptyFile { .. }
    ));
}

#[test]
fn zero_samples() {
    let dir = temp_dir("zero");
    let p = write(&dir, "zero.wav", &wav_bytes(1, 1, 16_000, 16, &[]));
    let e = expect_err(&p, &DecodeOptions::default());
    assert!(matches!(e, AudioError::NoSamples { .. }), "{e:?}");
}

#[test]
fn truncated_header() {
    let dir = temp_dir("truncated");
    let full = wav_bytes(1, 1, 16_000, 16, &one_second_pcm16());
    let p = write(&dir, "truncated.wav", &full[..24]);
    let e = expect_err(&p, &DecodeOptions::default());
    assert!(matches!(e, AudioError::Truncated { .. }), "{e:?}");
}

#[test]
fn corrupt_header() {
    let dir = temp_dir("corrupt");
    // A fmt chunk of 8 bytes, shorter than the 16 every WAV needs.
    let mut bytes = b"RIFF\x2c\x00\x00\x00WAVEfmt \x08\x00\x00\x00".to_vec();
    bytes.extend_from_slice(&[1, 0, 1, 0, 0x80, 0x3e, 0, 0]);
    bytes.extend_from_slice(b"data\x04\x00\x00\x00\x00\x00\x00\x00");
    let p = write(&dir, "corrupt.wav", &bytes);
    let e = expect_err(&p, &DecodeOptions::default());
    assert!(matches!(e, AudioError::Corrupt { .. }), "{e:?}");
}

#[test]
fn text_file_renamed_wav() {
    let dir = temp_dir("text");
    let text = "These are not the samples you are looking for.\n".repeat(200);
    let p = write(&dir, "notes.wav", text.as_bytes());
    let e = expect_err(&p, &DecodeOptions::default());
    assert!(matches!(e, AudioError::NotAudio { .. }), "{e:?}");
}

#[test]
fn unsupported_codec() {
    let dir = temp_dir("codec");
    // Format tag 0x0055 is MPEG Layer 3 inside WAV, which the WAV reader does not handle.
    let p = write(
        &dir,
        "mp3inwav.wav",
        &wav_bytes(0x0055, 1, 16_000, 16, &one_second_pcm16()),
    );
    let e = expect_err(&p, &DecodeOptions::default());
    assert!(matches!(e, AudioError::UnsupportedCodec { .. }), "{e:?}");
}

#[test]
fn nan_and_inf_in_float_wav() {
    let dir = temp_dir("nonfinite");
    for (name, bad) in [
        ("nan.wav", f32::NAN),
        ("inf.wav", f32::INFINITY),
        ("ninf.wav", f32::NEG_INFINITY),
    ] {
        let mut s = vec![0.1f32; 1000];
        s[700] = bad;
        let p = write(&dir, name, &wav_bytes(3, 1, 16_000, 32, &f32le(&s)));
        match expect_err(&p, &DecodeOptions::default()) {
            AudioError::NonFiniteSample { frame, .. } => assert_eq!(frame, 700),
            e => panic!("{e:?}"),
        }
    }
}

#[test]
fn sample_rate_zero() {
    let dir = temp_dir("rate0");
    let p = write(
        &dir,
        "rate0.wav",
        &wav_bytes(1, 1, 0, 16, &one_second_pcm16()),
    );
    let e = expect_err(&p, &DecodeOptions::default());
    assert!(
        matches!(e, AudioError::InvalidSampleRate { rate: 0, .. }),
        "{e:?}"
    );
}

#[test]
fn sample_rate_above_768k() {
    let dir = temp_dir("ratehigh");
    let p = write(
        &dir,
        "fast.wav",
        &wav_bytes(1, 1, 1_000_000, 16, &one_second_pcm16()),
    );
    let e = expect_err(&p, &DecodeOptions::default());
    assert!(
        matches!(
            e,
            AudioError::InvalidSampleRate {
                rate: 1_000_000,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn declared_six_hours_is_rejected_before_decoding() {
    let dir = temp_dir("long");
    let six_hours_bytes = 6 * 3600 * 16_000 * 2;
    let p = write(
        &dir,
        "long.wav",
        &wav_bytes_declared(1, 1, 16_000, 16, &one_second_pcm16(), six_hours_bytes),
    );
    match expect_err(&p, &DecodeOptions::default()) {
        AudioError::TooLong {
            seconds,
            max_seconds,
            ..
        } => {
            assert!((seconds - 21_600.0).abs() < 1.0, "{seconds}");
            assert_eq!(max_seconds, 600.0);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn undeclared_length_is_capped_while_decoding() {
    let dir = temp_dir("stream");
    // Length fields of 0xFFFFFFFF mean "unknown" (streamed WAV), so only counting can catch it.
    let p = write(
        &dir,
        "stream.wav",
        &wav_bytes_declared(1, 1, 16_000, 16, &one_second_pcm16().repeat(3), u32::MAX),
    );
    let opts = DecodeOptions {
        max_duration_secs: 2.0,
        ..Default::default()
    };
    match expect_err(&p, &opts) {
        AudioError::TooLong { seconds, .. } => assert!(seconds > 2.0 && seconds < 3.0, "{seconds}"),
        e => panic!("{e:?}"),
    }
    // Under the cap the same file decodes fully.
    let w = decode_file(&p, &DecodeOptions::default()).expect("decode streamed wav");
    assert_eq!(w.frames(), 48_000);
}

#[test]
fn errors_also_surface_through_load_audio() {
    let dir = temp_dir("load");
    let p = write(&dir, "empty.wav", b"");
    assert!(matches!(load_audio(&p), Err(AudioError::EmptyFile { .. })));
}

#[test]
fn invalid_cap_is_an_argument_error() {
    let dir = temp_dir("cap");
    let p = write(
        &dir,
        "ok.wav",
        &wav_bytes(1, 1, 16_000, 16, &one_second_pcm16()),
    );
    let opts = DecodeOptions {
        max_duration_secs: f64::NAN,
        ..Default::default()
    };
    assert!(matches!(
        decode_file(&p, &opts),
        Err(AudioError::InvalidArgument(_))
    ));
}
