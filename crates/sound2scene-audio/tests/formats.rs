//! Hand-written WAV files of every PCM flavour decode to the exact expected values.

mod common;

use common::{pcm16, temp_dir, wav_bytes};
use sound2scene_audio::{DecodeOptions, decode_file, load_audio};

fn decode(name: &str, bytes: Vec<u8>) -> sound2scene_audio::Waveform {
    let dir = temp_dir(&format!("fmt-{name}"));
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    decode_file(&p, &DecodeOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn pcm8_is_unsigned_offset_128() {
    let w = decode("u8.wav", wav_bytes(1, 1, 8_000, 8, &[0, 64, 128, 192, 255]));
    assert_eq!(w.sample_rate, 8_000);
    assert_eq!(w.samples, vec![-1.0, -0.5, 0.0, 0.5, 127.0 / 128.0]);
}

#[test]
fn pcm16_scales_by_32768() {
    let w = decode(
        "s16.wav",
        wav_bytes(1, 1, 16_000, 16, &pcm16(&[-32768, -16384, 0, 16384, 32767])),
    );
    assert_eq!(w.samples, vec![-1.0, -0.5, 0.0, 0.5, 32767.0 / 32768.0]);
}

#[test]
fn pcm24_scales_by_2_pow_23() {
    let vals: [i32; 3] = [-8_388_608, 4_194_304, 1];
    let data: Vec<u8> = vals
        .iter()
        .flat_map(|v| v.to_le_bytes()[..3].to_vec())
        .collect();
    let w = decode("s24.wav", wav_bytes(1, 1, 16_000, 24, &data));
    assert_eq!(w.samples, vec![-1.0, 0.5, 1.0 / 8_388_608.0]);
}

#[test]
fn pcm32_scales_by_2_pow_31() {
    let vals: [i32; 3] = [i32::MIN, 1 << 30, -(1 << 29)];
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let w = decode("s32.wav", wav_bytes(1, 1, 16_000, 32, &data));
    assert_eq!(w.samples, vec![-1.0, 0.5, -0.25]);
}

#[test]
fn float32_is_kept_unclipped() {
    let vals = [1.8f32, -0.25, 3.0];
    let w = decode(
        "f32.wav",
        wav_bytes(3, 1, 16_000, 32, &common::f32le(&vals)),
    );
    assert_eq!(w.samples, vals.to_vec());
}

#[test]
fn stereo_is_interleaved_and_load_audio_downmixes() {
    let dir = temp_dir("stereo");
    let p = dir.join("stereo.wav");
    // Left 0.5, right -0.25 at 16 kHz: the mono mix is 0.125.
    let frames: Vec<i16> = [16384i16, -8192].repeat(1600);
    std::fs::write(&p, wav_bytes(1, 2, 16_000, 16, &pcm16(&frames))).expect("write");
    let w = decode_file(&p, &DecodeOptions::default()).expect("decode");
    assert_eq!((w.channels, w.frames()), (2, 1600));
    assert_eq!(&w.samples[..4], &[0.5, -0.25, 0.5, -0.25]);
    let m = load_audio(&p).expect("load");
    assert_eq!((m.channels, m.sample_rate, m.frames()), (1, 16_000, 1600));
    assert!(m.samples.iter().all(|&s| s == 0.125));
}

#[test]
fn load_audio_resamples_to_16k() {
    let dir = temp_dir("resample");
    let p = dir.join("48k.wav");
    let n = 48_000;
    let s: Vec<i16> = (0..n)
        .map(|i| {
            ((2.0 * std::f64::consts::PI * 500.0 * i as f64 / 48_000.0).sin() * 16_000.0) as i16
        })
        .collect();
    std::fs::write(&p, wav_bytes(1, 1, 48_000, 16, &pcm16(&s))).expect("write");
    let w = load_audio(&p).expect("load");
    assert_eq!((w.sample_rate, w.frames()), (16_000, 16_000));
    let expect = |i: usize| {
        (2.0 * std::f64::consts::PI * 500.0 * i as f64 / 16_000.0).sin() * 16_000.0 / 32_768.0
    };
    let err = (100..15_900)
        .map(|i| (f64::from(w.samples[i]) - expect(i)).abs())
        .fold(0.0, f64::max);
    assert!(err < 2e-3, "{err}");
}
