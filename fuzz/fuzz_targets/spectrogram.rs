//! Bytes → an audio file (extension picked by the first byte) → `decode_file` →
//! `Spectrogram::compute`. Every outcome must be an error or a finite spectrogram.
//!
//! libFuzzer's panic hook aborts on any panic, including one `decode_file` would catch and
//! turn into `AudioError::DecoderPanic`, so decoder panics are reported as crashes here.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sound2scene_audio::{DecodeOptions, Spectrogram, decode_file};

const EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "m4a", "mp4"];

/// One scratch directory per fuzzing process.
fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch directory"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ext = EXTENSIONS[usize::from(selector) % EXTENSIONS.len()];
    let path = scratch().path().join(format!("input.{ext}"));
    std::fs::write(&path, body).expect("write input");
    if let Ok(wave) = decode_file(&path, &DecodeOptions::default())
        && let Ok(spec) = Spectrogram::compute(&wave)
    {
        assert!(
            spec.data().iter().all(|v| v.is_finite()),
            "non-finite spectrogram"
        );
    }
});
