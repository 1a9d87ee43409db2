//! Bytes → `decode_bytes` (the format hint, an extension, picked by the first byte) →
//! `Spectrogram::compute`. Every outcome must be an error or a finite spectrogram. The bytes are
//! decoded from memory, as the server decodes an upload; `decode_file` reads a file and then
//! takes the same path.
//!
//! libFuzzer's panic hook aborts on any panic, including one the decoder would catch and turn
//! into `AudioError::DecoderPanic`, so decoder panics are reported as crashes here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sound2scene_audio::{DecodeOptions, Spectrogram, decode_bytes};

const EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "m4a", "mp4"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ext = EXTENSIONS[usize::from(selector) % EXTENSIONS.len()];
    let name = format!("input.{ext}");
    if let Ok(decoded) = decode_bytes(body.to_vec(), &name, &DecodeOptions::default())
        && let Ok(spec) = Spectrogram::compute(&decoded.wave)
    {
        assert!(
            spec.data().iter().all(|v| v.is_finite()),
            "non-finite spectrogram"
        );
    }
});
