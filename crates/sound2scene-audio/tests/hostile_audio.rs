//! Hostile audio: whatever bytes a file holds, decoding it gives an error or a waveform whose
//! spectrogram is finite, quickly, without a panic and without allocating what the file
//! merely claims.
//!
//! Every malformed input is built here in a temporary directory: headers with lying lengths,
//! seeded random bytes, truncations of the fixtures, a PNG under audio names, silence and NaN.
//! A counting allocator records the largest single allocation each thread makes, so "without
//! allocating it" is measured rather than assumed.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{fixtures_dir, pcm16, require, samples_dir, wav_bytes, wav_bytes_declared};
use sound2scene_audio::{
    AudioError, DecodeOptions, Spectrogram, SpectrogramConfig, Tiling, decode_file,
};

/// Largest single allocation a hostile claim may cause: far below the gigabytes claimed, far
/// above what decoding a 10 s clip takes.
const MAX_ALLOCATION: usize = 64 << 20;
/// A lying length must be caught this fast (nothing of its size is read or allocated).
const FAST: Duration = Duration::from_secs(1);
/// Any one malformed input, decoded and turned into a spectrogram.
const PER_CASE: Duration = Duration::from_secs(2);

/// The system allocator, recording per thread the largest block asked for.
struct PeakAllocator;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = PEAK.try_with(|peak| peak.set(peak.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to `System`; only the size is recorded.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract is passed on to `System` as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// Run `f` on this thread and return its result with the largest allocation it made.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let value = f();
    (value, PEAK.with(Cell::get))
}

/// What decoding one input came to.
enum Outcome {
    /// The decoder refused it.
    Refused(AudioError),
    /// It decoded to this many frames and a finite spectrogram.
    Decoded { frames: usize },
}

/// Decode `path` and compute its spectrogram, catching panics: a panic, a non-finite
/// spectrogram, or taking longer than `limit` fails the test with `case`.
fn decode_case(case: &str, path: &Path, opts: &DecodeOptions, limit: Duration) -> Outcome {
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let wave = match decode_file(path, opts) {
            Ok(wave) => wave,
            Err(e) => return Outcome::Refused(e),
        };
        // The official cut refuses a clip whose ten repetitions are shorter than one segment
        // (under 3.2 ms); filling it to 10 s must still give a finite spectrogram.
        let spec = match Spectrogram::compute(&wave) {
            Ok(spec) => spec,
            Err(AudioError::InvalidArgument(m))
                if wave.frames() as f64 / f64::from(wave.sample_rate) < 0.0032 =>
            {
                assert!(m.contains("fewer than one"), "{case}: {m}");
                let fill = SpectrogramConfig {
                    tiling: Tiling::Fill,
                    ..SpectrogramConfig::default()
                };
                Spectrogram::compute_with(&wave, &fill)
                    .unwrap_or_else(|e| panic!("{case}: decoded but no filled spectrogram: {e}"))
            }
            Err(e) => panic!("{case}: decoded but no spectrogram: {e}"),
        };
        if let Some(v) = spec.data().iter().find(|v| !v.is_finite()) {
            panic!("{case}: spectrogram holds {v}");
        }
        Outcome::Decoded {
            frames: wave.frames(),
        }
    }));
    let elapsed = start.elapsed();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            panic!("{case}: panicked: {detail}");
        }
    };
    assert!(elapsed < limit, "{case}: took {elapsed:?}");
    outcome
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write crafted file");
    path
}

/// One second of a 440 Hz tone, 16-bit mono at 16 kHz.
fn tone_pcm16() -> Vec<u8> {
    let samples: Vec<i16> = (0..16_000)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
        .collect();
    pcm16(&samples)
}

/// A RIFF chunk: id, little-endian `declared` length, body.
fn chunk(id: &[u8; 4], declared: u32, body: &[u8]) -> Vec<u8> {
    [&id[..], &declared.to_le_bytes(), body].concat()
}

/// A WAV file from its chunks (the RIFF length is the true one).
fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    [
        &b"RIFF"[..],
        &(body.len() as u32 + 4).to_le_bytes(),
        b"WAVE",
        &body,
    ]
    .concat()
}

/// A 16-bit mono PCM `fmt ` chunk body at `rate` Hz.
fn fmt_pcm16(rate: u32) -> Vec<u8> {
    [
        &1u16.to_le_bytes()[..],
        &1u16.to_le_bytes(),
        &rate.to_le_bytes(),
        &(rate * 2).to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
    ]
    .concat()
}

/// Headers whose lengths claim gigabytes (or hours) over a body of a second or less: each
/// is an error or a short finite waveform, within a second, with no allocation near the
/// claimed size.
#[test]
fn lying_lengths_fail_fast_without_allocating() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = tone_pcm16();
    let opts = DecodeOptions::default();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // 0xFFFFFFFF bytes of 8-bit mono: 2^32 - 1 frames (also the "length unknown" value).
        (
            "data chunk of 2^32-1 frames",
            wav_bytes_declared(1, 1, 8_000, 8, &body, u32::MAX),
        ),
        (
            "data chunk of 0xFFFFFFF0 bytes",
            wav_bytes_declared(1, 1, 16_000, 16, &body, 0xFFFF_FFF0),
        ),
        (
            "data chunk of 2^31 stereo float frames",
            wav_bytes_declared(3, 2, 16_000, 32, &body, 0xFFFF_FFF8),
        ),
        (
            "LIST chunk of 4 GiB before the data",
            riff(&[
                chunk(b"fmt ", 16, &fmt_pcm16(16_000)),
                chunk(b"LIST", 0xFFFF_FFF0, b"INFOINAM\x05\x00\x00\x00cow\x00\x00"),
                chunk(b"data", body.len() as u32, &body),
            ]),
        ),
        (
            "fmt chunk of 4 GiB",
            riff(&[
                chunk(b"fmt ", 0xFFFF_FFF0, &fmt_pcm16(16_000)),
                chunk(b"data", body.len() as u32, &body),
            ]),
        ),
        (
            "fact chunk claiming 2^32-1 frames",
            riff(&[
                chunk(b"fmt ", 16, &fmt_pcm16(16_000)),
                chunk(b"fact", 4, &u32::MAX.to_le_bytes()),
                chunk(b"data", body.len() as u32, &body),
            ]),
        ),
        (
            "ID3v2 tag of 256 MiB before MPEG frames",
            [
                &b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f"[..],
                b"TIT2\x7f\x7f\x7f\x7f\x00\x00\x03cow",
                &[0xff, 0xfb, 0x90, 0x64],
                &body[..4096],
            ]
            .concat(),
        ),
    ];
    let body_frames = body.len() / 2;
    for (case, bytes) in cases {
        let ext = if case.starts_with("ID3") {
            "mp3"
        } else {
            "wav"
        };
        let path = write(dir.path(), &format!("claim.{ext}"), &bytes);
        let (outcome, peak) = peak_allocation(|| decode_case(case, &path, &opts, FAST));
        assert!(
            peak < MAX_ALLOCATION,
            "{case}: allocated {peak} bytes at once"
        );
        if let Outcome::Decoded { frames } = outcome {
            // Whatever the header said, only what the file holds can come out.
            assert!(
                frames <= bytes.len(),
                "{case}: {frames} frames from {body_frames}"
            );
        }
    }

    // Six hours declared: refused before decoding, against the default 10 minute cap.
    let six_hours = 6 * 3600 * 16_000 * 2;
    let path = write(
        dir.path(),
        "six_hours.wav",
        &wav_bytes_declared(1, 1, 16_000, 16, &body, six_hours),
    );
    let (outcome, peak) = peak_allocation(|| decode_case("six hours", &path, &opts, FAST));
    assert!(peak < MAX_ALLOCATION, "six hours: allocated {peak} bytes");
    match outcome {
        Outcome::Refused(AudioError::TooLong { seconds, .. }) => {
            assert!((seconds - 21_600.0).abs() < 1.0, "{seconds}");
        }
        Outcome::Refused(e) => panic!("six hours: expected TooLong, got {e:?}"),
        Outcome::Decoded { frames } => panic!("six hours: decoded {frames} frames"),
    }
}

/// Metadata costs at most what the file holds. symphonia 0.6.1 takes the tag and picture
/// limits `decode_file` passes but does not apply them (no reader consults them), so a FLAC
/// file with a real 4 MiB picture block and a 1 MiB text tag is read with the picture held
/// once, and a picture block claiming 16 MiB over a short file is an error after at most
/// symphonia's 4 MiB first read buffer.
#[test]
fn oversized_metadata_costs_no_more_than_the_file() {
    let Some(flac) = require(fixtures_dir().join("audio/cow.flac")) else {
        return;
    };
    let bytes = std::fs::read(&flac).expect("read flac");
    let dir = tempfile::tempdir().expect("temp dir");
    // fLaC, then STREAMINFO (type 0, 34 bytes); its header's top bit marks the last block.
    assert_eq!(&bytes[..4], b"fLaC");
    let streaminfo_end = 4 + 4 + 34;
    let mut first = bytes[4..streaminfo_end].to_vec();
    let was_last = first[0] & 0x80 != 0;
    first[0] &= 0x7f;
    let block = |kind: u8, last: bool, body: &[u8]| -> Vec<u8> {
        let len = (body.len() as u32).to_be_bytes();
        [
            &[kind | if last { 0x80 } else { 0 }, len[1], len[2], len[3]][..],
            body,
        ]
        .concat()
    };
    let picture_len = 4 << 20;
    let mut picture = Vec::new();
    picture.extend_from_slice(&3u32.to_be_bytes()); // front cover
    picture.extend_from_slice(&9u32.to_be_bytes());
    picture.extend_from_slice(b"image/png");
    picture.extend_from_slice(&0u32.to_be_bytes()); // description
    picture.extend_from_slice(&[0; 16]); // width, height, depth, colors
    picture.extend_from_slice(&(picture_len as u32).to_be_bytes());
    picture.resize(picture.len() + picture_len, 0x42);
    let comment_len = 1 << 20;
    let mut comment = Vec::new();
    comment.extend_from_slice(&4u32.to_le_bytes());
    comment.extend_from_slice(b"test");
    comment.extend_from_slice(&1u32.to_le_bytes());
    let field = [&b"TITLE="[..], &vec![b'a'; comment_len]].concat();
    comment.extend_from_slice(&(field.len() as u32).to_le_bytes());
    comment.extend_from_slice(&field);
    let big = [
        &bytes[..4],
        &first,
        &block(6, false, &picture),
        &block(4, was_last, &comment),
        &bytes[streaminfo_end..],
    ]
    .concat();
    let path = write(dir.path(), "big_meta.flac", &big);
    let (outcome, peak) = peak_allocation(|| {
        decode_case(
            "FLAC with 4 MiB picture",
            &path,
            &DecodeOptions::default(),
            PER_CASE,
        )
    });
    match outcome {
        Outcome::Decoded { frames } => assert!(frames > 0),
        Outcome::Refused(e) => panic!("FLAC with large metadata: {e}"),
    }
    assert!(
        peak < 2 * picture_len,
        "a {picture_len} byte picture cost a {peak} byte allocation"
    );

    let lying = [
        &bytes[..4],
        &first,
        &[0x86, 0xff, 0xff, 0xff][..],
        &picture[..64],
    ]
    .concat();
    let path = write(dir.path(), "lying_meta.flac", &lying);
    let (outcome, peak) = peak_allocation(|| {
        decode_case(
            "FLAC picture claiming 16 MiB",
            &path,
            &DecodeOptions::default(),
            FAST,
        )
    });
    assert!(
        peak <= 4 << 20,
        "a 16 MiB claim cost a {peak} byte allocation"
    );
    assert!(
        matches!(outcome, Outcome::Refused(_)),
        "a picture-only FLAC decoded"
    );
}

/// CRC-8 (polynomial 0x07) of a FLAC frame header.
fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// CRC-16 (polynomial 0x8005) of a FLAC frame.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// A FLAC stream of `frames` frames of 65535 samples on 8 channels at 655350 Hz, every
/// subframe CONSTANT: 34 bytes a frame that decode to 2 MiB of samples.
fn flac_bomb(frames: u32) -> Vec<u8> {
    const BLOCK: u32 = 65_535;
    let mut out = b"fLaC".to_vec();
    out.extend_from_slice(&[0x80, 0, 0, 34]); // last metadata block: STREAMINFO, 34 bytes
    out.extend_from_slice(&(BLOCK as u16).to_be_bytes()); // min block size
    out.extend_from_slice(&(BLOCK as u16).to_be_bytes()); // max block size
    out.extend_from_slice(&[0; 6]); // frame sizes unknown
    // 20 bits sample rate, 3 bits channels - 1, 5 bits bits per sample - 1, 36 bits
    // total samples (0: unknown, so no length is declared up front).
    let packed: u64 = (655_350u64 << 44) | (7 << 41) | (15 << 36);
    out.extend_from_slice(&packed.to_be_bytes());
    out.extend_from_slice(&[0; 16]); // MD5 unknown
    for n in 0..frames {
        // Sync, fixed block size; block size from the header's end, rate from STREAMINFO;
        // 8 independent channels, 16 bits.
        let mut frame = vec![0xff, 0xf8, 0x70, 0x78];
        // The frame number, UTF-8 coded (up to 2^16 here).
        match n {
            0..=0x7f => frame.push(n as u8),
            0x80..=0x7ff => {
                frame.extend_from_slice(&[0xc0 | (n >> 6) as u8, 0x80 | (n & 0x3f) as u8])
            }
            _ => frame.extend_from_slice(&[
                0xe0 | (n >> 12) as u8,
                0x80 | ((n >> 6) & 0x3f) as u8,
                0x80 | (n & 0x3f) as u8,
            ]),
        }
        frame.extend_from_slice(&((BLOCK - 1) as u16).to_be_bytes());
        frame.push(crc8(&frame));
        for _ in 0..8 {
            frame.extend_from_slice(&[0x00, 0x10, 0x00]); // CONSTANT subframe, value 4096
        }
        let crc = crc16(&frame);
        frame.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// A FLAC decompression bomb (0.2 MB that decodes to 10 minutes of 8 channels at 655 kHz,
/// 12 GiB of samples) is stopped by the sample cap with bounded memory, and a small one
/// decodes (so the crafted stream is valid FLAC).
#[test]
fn flac_decompression_bomb_is_capped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let small = write(dir.path(), "small_bomb.flac", &flac_bomb(2));
    match decode_case("2-frame FLAC", &small, &DecodeOptions::default(), PER_CASE) {
        Outcome::Decoded { frames } => assert_eq!(frames, 2 * 65_535),
        Outcome::Refused(e) => panic!("2-frame FLAC: {e}"),
    }
    let bomb = flac_bomb(6_000);
    let path = write(dir.path(), "bomb.flac", &bomb);
    let opts = DecodeOptions {
        max_samples: 1 << 22,
        ..Default::default()
    };
    let (outcome, peak) = peak_allocation(|| decode_case("FLAC bomb", &path, &opts, FAST));
    match outcome {
        Outcome::Refused(AudioError::TooLong { max_seconds, .. }) => {
            let expected = (1u64 << 22) as f64 / 8.0 / 655_350.0;
            assert!((max_seconds - expected).abs() < 1e-6, "{max_seconds}");
        }
        Outcome::Refused(e) => panic!("FLAC bomb: expected TooLong, got {e:?}"),
        Outcome::Decoded { frames } => panic!("FLAC bomb: decoded {frames} frames"),
    }
    assert!(
        peak <= (1 << 22) * 4 + (4 << 20),
        "FLAC bomb: allocated {peak} bytes at once"
    );
    // The default cap holds it to 2^26 samples (256 MiB) as well, rather than 12 GiB.
    assert_eq!(DecodeOptions::default().max_samples, 1 << 26);
}

/// The extensions the decoder accepts.
const EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "m4a", "mp4"];

/// A small deterministic generator (xorshift64*), so the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The opening bytes of each container, so random bodies reach past format detection.
fn magic(ext: &str) -> &'static [u8] {
    match ext {
        "wav" => b"RIFF\xff\xff\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00",
        "flac" => b"fLaC\x00\x00\x00\x22",
        "mp3" => b"\xff\xfb\x90\x64",
        "ogg" => b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
        _ => b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomiso2",
    }
}

/// Seeded random files under each extension, bare and behind the container's magic bytes:
/// an error or a finite spectrogram each, within two seconds, never a panic.
#[test]
fn random_bytes_under_every_extension() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng(0x5eed_5eed_5eed);
    let opts = DecodeOptions::default();
    for ext in EXTENSIONS {
        for i in 0..20 {
            let len = 1 + (rng.next() % 8192) as usize;
            let noise = rng.bytes(len);
            let bare = write(dir.path(), &format!("random{i}.{ext}"), &noise);
            decode_case(&format!("random {i} .{ext}"), &bare, &opts, PER_CASE);
            let dressed = [magic(ext), &noise].concat();
            let path = write(dir.path(), &format!("magic{i}.{ext}"), &dressed);
            decode_case(&format!("magic+random {i} .{ext}"), &path, &opts, PER_CASE);
        }
    }
}

/// Every truncation (64 cut points and the first 64 bytes) of a valid file of each format:
/// an error or a finite spectrogram each, within two seconds, never a panic.
#[test]
fn truncated_files_of_every_format() {
    let sources = [
        fixtures_dir().join("audio/cow_44100_stereo.wav"),
        fixtures_dir().join("audio/loud_float.wav"),
        fixtures_dir().join("audio/cow.flac"),
        fixtures_dir().join("audio/cow.mp3"),
        fixtures_dir().join("audio/cow.ogg"),
        fixtures_dir().join("audio/cow.m4a"),
        fixtures_dir().join("audio/cow_video_44100_stereo.mp4"),
        samples_dir().join("inference/cow.wav"),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = DecodeOptions::default();
    for source in sources {
        let Some(source) = require(source) else {
            continue;
        };
        let bytes = std::fs::read(&source).expect("read fixture");
        let name = source.file_name().expect("name").to_string_lossy();
        let ext = source.extension().expect("extension").to_string_lossy();
        let full = decode_case(&name, &source, &opts, PER_CASE);
        assert!(
            matches!(full, Outcome::Decoded { .. }),
            "{name}: the untruncated file must decode"
        );
        let mut cuts: Vec<usize> = (0..64).collect();
        cuts.extend((1..=64).map(|i| bytes.len() * i / 65));
        cuts.sort_unstable();
        cuts.dedup();
        let path = dir.path().join(format!("cut.{ext}"));
        for cut in cuts {
            std::fs::write(&path, &bytes[..cut]).expect("write prefix");
            decode_case(
                &format!("{name} cut at {cut} of {}", bytes.len()),
                &path,
                &opts,
                PER_CASE,
            );
        }
    }
}

/// CRC-32 (IEEE), for the PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & 0u32.wrapping_sub(crc & 1));
        }
    }
    !crc
}

/// Adler-32, for the zlib stream inside the PNG.
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A valid 8x8 grey PNG: signature, IHDR, one IDAT (a stored zlib block), IEND.
fn png() -> Vec<u8> {
    let png_chunk = |kind: &[u8; 4], data: &[u8]| -> Vec<u8> {
        let crc = crc32(&[&kind[..], data].concat());
        [
            &(data.len() as u32).to_be_bytes()[..],
            kind,
            data,
            &crc.to_be_bytes(),
        ]
        .concat()
    };
    let ihdr = [
        &8u32.to_be_bytes()[..],
        &8u32.to_be_bytes(),
        &[8, 0, 0, 0, 0],
    ]
    .concat();
    let raw: Vec<u8> = (0..8)
        .flat_map(|row| std::iter::once(0).chain((0..8).map(move |col| (row * 32 + col) as u8)))
        .collect();
    let len = raw.len() as u16;
    let zlib = [
        &[0x78, 0x01, 0x01][..],
        &len.to_le_bytes(),
        &(!len).to_le_bytes(),
        &raw,
        &adler32(&raw).to_be_bytes(),
    ]
    .concat();
    [
        &b"\x89PNG\r\n\x1a\n"[..],
        &png_chunk(b"IHDR", &ihdr),
        &png_chunk(b"IDAT", &zlib),
        &png_chunk(b"IEND", &[]),
    ]
    .concat()
}

/// A PNG under each audio extension is refused as not audio.
#[test]
fn png_renamed_to_audio_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let image = png();
    assert_eq!(crc32(b"IEND"), 0xAE42_6082, "CRC-32 is the PNG one");
    for ext in EXTENSIONS {
        let path = write(dir.path(), &format!("picture.{ext}"), &image);
        match decode_case(
            &format!("PNG as .{ext}"),
            &path,
            &DecodeOptions::default(),
            PER_CASE,
        ) {
            Outcome::Refused(_) => {}
            Outcome::Decoded { frames } => panic!("PNG as .{ext} decoded to {frames} frames"),
        }
    }
}

/// All-zero audio gives a finite spectrogram (its standard deviation is 0, so the front end
/// must not divide by it), in each sample format.
#[test]
fn silence_gives_a_finite_spectrogram() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("16-bit", wav_bytes(1, 1, 16_000, 16, &[0; 32_000])),
        ("float", wav_bytes(3, 1, 16_000, 32, &[0; 64_000])),
        (
            "stereo 44.1 kHz",
            wav_bytes(1, 2, 44_100, 16, &[0; 176_400]),
        ),
        ("one sample", wav_bytes(1, 1, 16_000, 16, &[0; 2])),
    ];
    for (case, bytes) in cases {
        let path = write(dir.path(), "silence.wav", &bytes);
        match decode_case(case, &path, &DecodeOptions::default(), PER_CASE) {
            Outcome::Decoded { frames } => assert!(frames > 0, "{case}"),
            Outcome::Refused(e) => panic!("{case}: silence refused: {e}"),
        }
    }
}

/// Float WAV files holding NaN or infinite samples are refused, wherever the bad sample is.
#[test]
fn non_finite_samples_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (case, bad, at) in [
        ("NaN first", f32::NAN, 0),
        ("NaN late", f32::NAN, 15_999),
        ("+inf", f32::INFINITY, 8_000),
        ("-inf", f32::NEG_INFINITY, 1),
    ] {
        let mut samples = vec![0.25f32; 16_000];
        samples[at] = bad;
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let path = write(dir.path(), "bad.wav", &wav_bytes(3, 1, 16_000, 32, &data));
        match decode_case(case, &path, &DecodeOptions::default(), PER_CASE) {
            Outcome::Refused(AudioError::NonFiniteSample { frame, .. }) => {
                assert_eq!(frame, at as u64, "{case}");
            }
            Outcome::Refused(e) => panic!("{case}: expected NonFiniteSample, got {e:?}"),
            Outcome::Decoded { .. } => panic!("{case}: decoded"),
        }
    }
}

/// A WAV header declaring 65535 channels of 32-bit PCM (found by fuzzing): symphonia 0.6.1
/// computes the block alignment `channels * 4` in `u16`, which overflows; the header screen
/// refuses it first, from a file and from memory, naming the channel count.
#[test]
fn a_channel_bomb_is_refused_before_the_demuxer_sees_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fmt = [
        &1u16.to_le_bytes()[..],
        &u16::MAX.to_le_bytes(),
        &16_000u32.to_le_bytes(),
        &64_000u32.to_le_bytes(),
        &4u16.to_le_bytes(),
        &32u16.to_le_bytes(),
    ]
    .concat();
    let bytes = riff(&[
        chunk(b"JUNK", 4, &[0; 4]),
        chunk(b"fmt ", 16, &fmt),
        chunk(b"data", 8, &[0; 8]),
    ]);
    let path = write(dir.path(), "bomb.wav", &bytes);
    let from_file = decode_file(&path, &DecodeOptions::default());
    // The demuxer finds a header after leading junk too (the fuzzer's input had one byte).
    let shifted = [&[0x1d][..], &bytes].concat();
    let from_memory =
        sound2scene_audio::decode_bytes(shifted, "bomb.wav", &DecodeOptions::default());
    for result in [from_file.map(|_| ()), from_memory.map(|_| ())] {
        match result {
            Err(AudioError::UnsupportedCodec { detail, .. }) => {
                assert!(detail.contains("65535 channels"), "{detail}");
            }
            other => panic!("a channel bomb must be refused by the header screen: {other:?}"),
        }
    }

    // The screen leaves ordinary files alone, with the fmt chunk after other chunks too.
    let tone = riff(&[
        chunk(b"JUNK", 4, &[0; 4]),
        chunk(b"fmt ", 16, &fmt_pcm16(16_000)),
        chunk(b"data", 32_000, &tone_pcm16()),
    ]);
    let decoded = sound2scene_audio::decode_bytes(tone, "tone.wav", &DecodeOptions::default())
        .expect("a WAV");
    assert_eq!(decoded.wave.frames(), 16_000);
}
