//! Decoding audio files (WAV, FLAC, MP3, Ogg Vorbis, AAC in MP4/M4A) with symphonia.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::common::Limit;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::error::{AudioError, Result};
use crate::waveform::Waveform;

/// Highest accepted sample rate in Hz (768 kHz).
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// Most channels accepted in a WAV file's header (checked before the file is parsed further).
pub const MAX_WAV_CHANNELS: u16 = 1024;

/// Sample rate in Hz of the model's input (16 kHz).
pub const MODEL_SAMPLE_RATE: u32 = 16_000;

/// Limits applied while decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Longest accepted audio in seconds (default 600 = 10 minutes). Checked against the track's
    /// declared length before decoding and against the decoded length while decoding.
    pub max_duration_secs: f64,
    /// Largest metadata tag kept, in bytes (default 64 KiB), passed to symphonia's metadata
    /// options. symphonia 0.6.1 does not apply it yet: a tag then costs its size in the file.
    pub max_tag_bytes: usize,
    /// Largest embedded picture kept, in bytes (default 1 MiB), passed to symphonia's metadata
    /// options. symphonia 0.6.1 does not apply it yet: a picture then costs its size in the
    /// file (a FLAC block is at most 16 MiB).
    pub max_visual_bytes: usize,
    /// Most decoded samples kept, all channels counted (default 2^26: 256 MiB as `f32`, ten
    /// minutes of 48 kHz stereo). The duration cap alone does not bound memory: a FLAC frame of
    /// a few dozen bytes can hold 65535 samples on each of 8 channels at 655 kHz, so a file of a
    /// few hundred kilobytes could decode to gigabytes within ten minutes. Exceeding it is
    /// [`AudioError::TooLong`], with the duration this cap allows at the file's rate and
    /// channel count.
    pub max_samples: usize,
    /// Refuse a file whose container declares more audio than it holds (e.g. a WAV cut off
    /// mid-download) with [`AudioError::ShorterThanDeclared`], instead of decoding what is
    /// there with a [`DecodeWarning::Truncated`] (default `false`).
    pub strict_length: bool,
}

/// Audio shorter than declared by more than this many frames (at the lower of the declared and
/// the decoded rate) is reported: lossy codecs end on whole blocks (MP3 1152, AAC 1024, Vorbis
/// up to 2048 frames) and encoders round their declared lengths, so a few blocks of difference
/// are normal.
const TRUNCATION_SLACK_FRAMES: u64 = 4096;

/// Something a decode noticed that did not stop it; [`Decoded`] carries these next to the
/// samples, and the command line prints them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DecodeWarning {
    /// The container declares more audio than the file holds: the samples that are there were
    /// decoded, the rest is missing (e.g. a cut-off download or copy).
    Truncated {
        /// The file.
        path: PathBuf,
        /// Length the container's header declares, in seconds.
        declared_seconds: f64,
        /// Length of the audio decoded from the file, in seconds.
        decoded_seconds: f64,
    },
}

impl std::fmt::Display for DecodeWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated {
                path,
                declared_seconds,
                decoded_seconds,
            } => write!(
                f,
                "{} declares {declared_seconds:.1} s, holds {decoded_seconds:.2} s: the file is \
                 cut off, only what it holds is used (re-export or re-download it)",
                path.display()
            ),
        }
    }
}

/// Decoded audio with what the decode noticed on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The samples.
    pub wave: Waveform,
    /// Problems that did not stop decoding (empty for a sound file).
    pub warnings: Vec<DecodeWarning>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_duration_secs: 600.0,
            max_tag_bytes: 64 * 1024,
            max_visual_bytes: 1024 * 1024,
            max_samples: 1 << 26,
            strict_length: false,
        }
    }
}

/// Decode the first audio track of `path` to interleaved `f32` samples at its native rate and
/// channel count.
///
/// Integer PCM is scaled to `[-1, 1)` (e.g. 16-bit: `x / 32768`); float PCM is kept as is.
/// Encoder delay and padding are removed where the file records them (MP3 gapless info, Ogg
/// and FLAC lengths via symphonia; MP4/M4A edit lists by this crate).
/// Any decoder panic is caught and returned as [`AudioError::DecoderPanic`].
///
/// Warnings (a file shorter than its header declares) are dropped: use
/// [`decode_file_reporting`] to see them, or [`DecodeOptions::strict_length`] to refuse such
/// files.
pub fn decode_file(path: impl AsRef<Path>, opts: &DecodeOptions) -> Result<Waveform> {
    decode_file_reporting(path, opts).map(|d| d.wave)
}

/// [`decode_file`], returning the warnings with the samples.
///
/// # Errors
/// Those of [`decode_file`]; [`AudioError::ShorterThanDeclared`] for a cut-off file when
/// `opts.strict_length` is set.
pub fn decode_file_reporting(path: impl AsRef<Path>, opts: &DecodeOptions) -> Result<Decoded> {
    let path = path.as_ref();
    check_options(opts)?;
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(AudioError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a regular file"),
        });
    }
    if meta.len() == 0 {
        return Err(AudioError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut head = Vec::with_capacity(HEADER_SCREEN_BYTES);
    (&mut file)
        .take(HEADER_SCREEN_BYTES as u64)
        .read_to_end(&mut head)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .map_err(|e| io_error(path, e))?;
    screen_wav_header(path, &head)?;
    guard_panics(path, || decode_source(path, Box::new(file), opts))
}

/// Decode audio held in memory (e.g. an upload), as [`decode_file_reporting`] decodes a file:
/// the same formats, limits and warnings. `name` stands for the file in errors and warnings
/// (e.g. `upload "cow.wav"`), and its extension, if any, is a hint to the format probe; nothing
/// is read from or written to the file system.
///
/// # Errors
/// Those of [`decode_file_reporting`], naming `name`; [`AudioError::EmptyFile`] for no bytes.
pub fn decode_bytes(bytes: Vec<u8>, name: &str, opts: &DecodeOptions) -> Result<Decoded> {
    let path = Path::new(name);
    check_options(opts)?;
    if bytes.is_empty() {
        return Err(AudioError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    screen_wav_header(path, &bytes[..bytes.len().min(HEADER_SCREEN_BYTES)])?;
    guard_panics(path, || {
        decode_source(path, Box::new(std::io::Cursor::new(bytes)), opts)
    })
}

/// [`decode_bytes`], downmixed to mono and resampled to `sample_rate` Hz, as
/// [`load_audio_reporting`] does for a file.
///
/// # Errors
/// Those of [`decode_bytes`] and of resampling.
pub fn load_audio_bytes(
    bytes: Vec<u8>,
    name: &str,
    opts: &DecodeOptions,
    sample_rate: u32,
) -> Result<Decoded> {
    to_model_input(decode_bytes(bytes, name, opts)?, sample_rate)
}

fn check_options(opts: &DecodeOptions) -> Result<()> {
    if !(opts.max_duration_secs.is_finite() && opts.max_duration_secs > 0.0) {
        return Err(AudioError::InvalidArgument(format!(
            "max_duration_secs must be positive, got {}",
            opts.max_duration_secs
        )));
    }
    if opts.max_samples == 0 {
        return Err(AudioError::InvalidArgument(
            "max_samples must be positive".to_string(),
        ));
    }
    Ok(())
}

/// Bytes at the start of a file that [`screen_wav_header`] reads.
const HEADER_SCREEN_BYTES: usize = 64 * 1024;

/// Refuse a WAV file whose `fmt ` chunk (found within `head`, the file's first bytes) declares
/// no channels or more than [`MAX_WAV_CHANNELS`], before symphonia parses it: symphonia 0.6.1
/// computes the block alignment as `channels * (bits / 8)` in `u16`, which overflows for tens
/// of thousands of channels (a panic where overflow checks are on, found by fuzzing), and no
/// real recording has that many. symphonia's probe looks for a format's marker anywhere in the
/// first bytes, not only at the start, so every RIFF/WAVE header within `head` is screened.
/// Anything else, or a `fmt ` chunk beyond `head`, is left to the decoder.
fn screen_wav_header(path: &Path, head: &[u8]) -> Result<()> {
    let riffs = head
        .windows(12)
        .enumerate()
        .filter(|(_, w)| &w[..4] == b"RIFF" && &w[8..] == b"WAVE")
        .map(|(at, _)| at);
    for riff in riffs {
        if let Some(channels) = wav_channels(&head[riff..])
            && (channels == 0 || channels > MAX_WAV_CHANNELS)
        {
            return Err(AudioError::UnsupportedCodec {
                path: path.to_path_buf(),
                detail: format!(
                    "the WAV header declares {channels} channels; 1 to {MAX_WAV_CHANNELS} are \
                     supported"
                ),
            });
        }
    }
    Ok(())
}

/// The channel count of the `fmt ` chunk of the RIFF/WAVE header at the start of `riff`, if
/// the chunk is within `riff`.
fn wav_channels(riff: &[u8]) -> Option<u16> {
    let mut at = 12;
    while at + 8 <= riff.len() {
        let id = &riff[at..at + 4];
        let len = u32::from_le_bytes(riff[at + 4..at + 8].try_into().ok()?);
        if id == b"fmt " {
            let fmt = riff.get(at + 8..at + 12)?;
            return Some(u16::from_le_bytes([fmt[2], fmt[3]]));
        }
        // Chunks are padded to an even length.
        let len = usize::try_from(len).ok()?;
        at = at.checked_add(8)?.checked_add(len)?.checked_add(len & 1)?;
    }
    None
}

/// Run `f`, turning a panic inside it into [`AudioError::DecoderPanic`] for `path`.
fn guard_panics<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(AudioError::DecoderPanic {
                path: path.to_path_buf(),
                detail,
            })
        }
    }
}

/// Decode, downmix to mono and resample to 16 kHz: the waveform the model's front end expects.
///
/// Warnings are dropped, as in [`decode_file`]; [`load_audio_reporting`] returns them.
pub fn load_audio(path: impl AsRef<Path>) -> Result<Waveform> {
    load_audio_with(path, &DecodeOptions::default(), MODEL_SAMPLE_RATE)
}

/// Decode with `opts`, downmix to mono and resample to `sample_rate` Hz (warnings dropped).
pub fn load_audio_with(
    path: impl AsRef<Path>,
    opts: &DecodeOptions,
    sample_rate: u32,
) -> Result<Waveform> {
    load_audio_reporting(path, opts, sample_rate).map(|d| d.wave)
}

/// [`load_audio_with`], returning the warnings with the samples.
///
/// # Errors
/// Those of [`decode_file_reporting`] and of resampling.
pub fn load_audio_reporting(
    path: impl AsRef<Path>,
    opts: &DecodeOptions,
    sample_rate: u32,
) -> Result<Decoded> {
    to_model_input(decode_file_reporting(path, opts)?, sample_rate)
}

/// Downmix to mono and resample to `sample_rate`, keeping the warnings.
fn to_model_input(decoded: Decoded, sample_rate: u32) -> Result<Decoded> {
    let mono = decoded.wave.to_mono();
    let wave = if mono.sample_rate == sample_rate {
        mono
    } else {
        mono.resample(sample_rate)?
    };
    Ok(Decoded {
        wave,
        warnings: decoded.warnings,
    })
}

fn io_error(path: &Path, e: std::io::Error) -> AudioError {
    if e.kind() == std::io::ErrorKind::NotFound {
        AudioError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        AudioError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Map a symphonia error raised while opening the container.
fn open_error(path: &Path, e: SymError) -> AudioError {
    let path = path.to_path_buf();
    match e {
        SymError::Unsupported(msg) if msg.contains("no suitable format reader") => {
            AudioError::NotAudio {
                path,
                detail: "no supported container format found in the file".into(),
            }
        }
        SymError::Unsupported(msg) => AudioError::UnsupportedCodec {
            path,
            detail: msg.to_string(),
        },
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Truncated {
                path,
                detail: "the file ends inside the container header".into(),
            }
        }
        SymError::IoError(source) => AudioError::Io { path, source },
        other => AudioError::Corrupt {
            path,
            detail: other.to_string(),
        },
    }
}

fn stream_error(path: &Path, e: SymError) -> AudioError {
    match e {
        SymError::Unsupported(msg) => AudioError::UnsupportedCodec {
            path: path.to_path_buf(),
            detail: msg.to_string(),
        },
        other => AudioError::Corrupt {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

fn check_rate(path: &Path, rate: u64) -> Result<u32> {
    match u32::try_from(rate) {
        Ok(r) if r > 0 && r <= MAX_SAMPLE_RATE => Ok(r),
        _ => Err(AudioError::InvalidSampleRate {
            path: path.to_path_buf(),
            rate,
            max: MAX_SAMPLE_RATE,
        }),
    }
}

/// The track's declared length in seconds, if it declares one.
fn declared_seconds(track: &Track, rate: Option<u32>) -> Option<f64> {
    if let (Some(frames), Some(rate)) = (track.num_frames, rate) {
        return Some(frames as f64 / f64::from(rate));
    }
    let (dur, tb) = (track.duration?, track.time_base?);
    Some(dur.get() as f64 * f64::from(tb.numer.get()) / f64::from(tb.denom.get()))
}

fn decode_source(
    path: &Path,
    source: Box<dyn MediaSource>,
    opts: &DecodeOptions,
) -> Result<Decoded> {
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let meta_opts = MetadataOptions::default()
        .limit_tag_bytes(Limit::Maximum(opts.max_tag_bytes))
        .limit_visual_bytes(Limit::Maximum(opts.max_visual_bytes));
    let mut format: Box<dyn FormatReader> = symphonia::default::get_probe()
        .probe(&hint, mss, FormatOptions::default(), meta_opts)
        .map_err(|e| open_error(path, e))?;

    let track = format
        .first_track_known_codec(TrackType::Audio)
        .or_else(|| format.first_track(TrackType::Audio))
        .cloned()
        .ok_or_else(|| AudioError::NoAudioTrack {
            path: path.to_path_buf(),
        })?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| AudioError::NoAudioTrack {
            path: path.to_path_buf(),
        })?;
    let declared_rate = match params.sample_rate {
        Some(r) => Some(check_rate(path, u64::from(r))?),
        None => None,
    };
    if let Some(secs) = declared_seconds(&track, declared_rate)
        && secs > opts.max_duration_secs
    {
        return Err(AudioError::TooLong {
            path: path.to_path_buf(),
            seconds: secs,
            max_seconds: opts.max_duration_secs,
        });
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| stream_error(path, e))?;

    let mut samples: Vec<f32> = Vec::new();
    let mut chunk: Vec<f32> = Vec::new();
    let mut spec: Option<(u32, usize)> = None;
    let mut frames: u64 = 0;
    let mut last_decode_error: Option<String> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) | Err(SymError::ResetRequired) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(stream_error(path, e)),
        };
        if packet.track_id != track.id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymError::DecodeError(msg)) => {
                last_decode_error = Some(msg.to_string());
                continue;
            }
            Err(SymError::IoError(e)) => {
                last_decode_error = Some(e.to_string());
                continue;
            }
            Err(e) => return Err(stream_error(path, e)),
        };
        let rate = check_rate(path, u64::from(buf.spec().rate()))?;
        let channels = buf.spec().channels().count();
        match spec {
            None => {
                if channels == 0 || channels > usize::from(u16::MAX) {
                    return Err(AudioError::UnsupportedCodec {
                        path: path.to_path_buf(),
                        detail: format!("{channels} channels"),
                    });
                }
                spec = Some((rate, channels));
            }
            Some(s) if s != (rate, channels) => {
                return Err(AudioError::UnsupportedCodec {
                    path: path.to_path_buf(),
                    detail: format!(
                        "the stream changes from {} Hz/{} ch to {rate} Hz/{channels} ch",
                        s.0, s.1
                    ),
                });
            }
            Some(_) => {}
        }
        buf.copy_to_vec_interleaved(&mut chunk);
        if let Some(i) = chunk.iter().position(|s| !s.is_finite()) {
            return Err(AudioError::NonFiniteSample {
                path: path.to_path_buf(),
                frame: frames + (i / channels) as u64,
                value: chunk[i],
            });
        }
        frames += (chunk.len() / channels) as u64;
        let seconds = frames as f64 / f64::from(rate);
        if seconds > opts.max_duration_secs {
            return Err(AudioError::TooLong {
                path: path.to_path_buf(),
                seconds,
                max_seconds: opts.max_duration_secs,
            });
        }
        let needed = samples.len().saturating_add(chunk.len());
        if needed > opts.max_samples {
            return Err(AudioError::TooLong {
                path: path.to_path_buf(),
                seconds,
                max_seconds: opts.max_samples as f64 / (f64::from(rate) * channels as f64),
            });
        }
        if samples.capacity() < needed {
            // Grow geometrically but never past the cap, so memory stays within it.
            let target = samples
                .capacity()
                .saturating_mul(2)
                .min(opts.max_samples)
                .max(needed);
            samples.reserve_exact(target - samples.len());
        }
        samples.extend_from_slice(&chunk);
    }

    let Some((rate, channels)) = spec else {
        return Err(match last_decode_error {
            Some(detail) => AudioError::Corrupt {
                path: path.to_path_buf(),
                detail,
            },
            None => AudioError::NoSamples {
                path: path.to_path_buf(),
            },
        });
    };
    // Before any edit list trims it: the decoded length against the declared one, in seconds,
    // since a codec may decode at another rate than the container declares (e.g. HE-AAC).
    let mut warnings = Vec::new();
    let declared_seconds = match (track.num_frames, declared_rate) {
        (Some(declared), Some(declared_rate)) => declared as f64 / f64::from(declared_rate),
        _ => 0.0,
    };
    let decoded_seconds = frames as f64 / f64::from(rate);
    let slack_seconds =
        TRUNCATION_SLACK_FRAMES as f64 / f64::from(declared_rate.unwrap_or(rate).min(rate));
    if decoded_seconds + slack_seconds < declared_seconds {
        if opts.strict_length {
            return Err(AudioError::ShorterThanDeclared {
                path: path.to_path_buf(),
                declared_seconds,
                decoded_seconds,
            });
        }
        warnings.push(DecodeWarning::Truncated {
            path: path.to_path_buf(),
            declared_seconds,
            decoded_seconds,
        });
    }
    if let Some(edit) = crate::mp4_edit::track_edit(path, track.id) {
        edit.apply(&mut samples, rate, channels);
    }
    if samples.is_empty() {
        return Err(AudioError::NoSamples {
            path: path.to_path_buf(),
        });
    }
    let wave =
        Waveform::interleaved(samples, rate, channels as u16).map_err(|e| AudioError::Corrupt {
            path: PathBuf::from(path),
            detail: e.to_string(),
        })?;
    Ok(Decoded { wave, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoder_panic_becomes_an_error() {
        let path = Path::new("bad.mp3");
        let r: Result<()> = guard_panics(path, || panic!("index out of bounds in decoder"));
        match r {
            Err(AudioError::DecoderPanic { path: p, detail }) => {
                assert_eq!(p, path);
                assert!(detail.contains("index out of bounds"));
            }
            other => panic!("{other:?}"),
        }
        let formatted: Result<()> = guard_panics(path, || panic!("code {}", 7));
        assert!(
            matches!(formatted, Err(AudioError::DecoderPanic { detail, .. }) if detail == "code 7")
        );
    }
}
