//! Shared helpers for the integration tests: fixture lookup and hand-made WAV files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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

/// `Some(path)` if it exists. A missing file fails the test under `CI=true`; elsewhere the
/// test prints a skip message and should return.
pub fn require(path: PathBuf) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("required fixture {} is missing (CI=true)", path.display());
    }
    eprintln!("SKIP: fixture {} not found", path.display());
    None
}

/// A fresh per-test temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("s2s-audio-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A canonical 44-byte-header WAV file: `format` 1 = PCM, 3 = IEEE float.
pub fn wav_bytes(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    wav_bytes_declared(format, channels, rate, bits, data, data.len() as u32)
}

/// Like [`wav_bytes`] but the data chunk declares `declared_len` bytes.
pub fn wav_bytes_declared(
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &[u8],
    declared_len: u32,
) -> Vec<u8> {
    let block = channels * bits / 8;
    let mut v = Vec::with_capacity(44 + data.len());
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36u32.saturating_add(declared_len)).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&format.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate.wrapping_mul(u32::from(block))).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&declared_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// 16-bit PCM bytes of the given samples.
pub fn pcm16(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// 32-bit float bytes of the given samples.
pub fn f32le(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Pearson correlation coefficient.
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mb = b.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa.sqrt() * sbb.sqrt())
}
