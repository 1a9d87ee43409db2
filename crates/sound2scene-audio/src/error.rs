//! The crate's single error type, [`AudioError`].
//!
//! Every variant that concerns a file names the file, says what went wrong and what to do about
//! it, so that the message can be shown to a user as is.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = AudioError> = std::result::Result<T, E>;

/// Everything that can go wrong while decoding, transforming or storing audio.
///
/// Decoding never panics on bad input: each failure mode of a file maps to one variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file does not exist.
    #[error("audio file {path} does not exist; check the path (and the working directory)")]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },

    /// The file exists but could not be opened or read.
    #[error(
        "cannot read audio file {path}: {source}; check its permissions and that it is a regular file"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The file has zero bytes.
    #[error("audio file {path} is empty (0 bytes); re-export or re-download it")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },

    /// No supported container format was recognised (e.g. a text or image file renamed `.wav`).
    #[error(
        "{path} is not a recognised audio file ({detail}); supported are WAV, FLAC, MP3, Ogg Vorbis \
         and AAC in MP4/M4A: convert it, e.g. `ffmpeg -i INPUT -ac 1 -ar 16000 out.wav`"
    )]
    NotAudio {
        /// The file.
        path: PathBuf,
        /// What the demuxer reported.
        detail: String,
    },

    /// The container declares more audio than the file holds (a cut-off download or copy), and
    /// [`DecodeOptions::strict_length`](crate::DecodeOptions::strict_length) asked to refuse
    /// such files.
    #[error(
        "{path} declares {declared_seconds:.1} s, holds {decoded_seconds:.2} s: the file is cut \
         off; re-export or re-download it, or decode without strict_length to use what is there"
    )]
    ShorterThanDeclared {
        /// The file.
        path: PathBuf,
        /// Length the container's header declares, in seconds.
        declared_seconds: f64,
        /// Length of the audio the file holds, in seconds.
        decoded_seconds: f64,
    },

    /// The container was recognised but its header is cut short.
    #[error(
        "{path} is truncated ({detail}); the header ends early, re-export or re-download the file"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What the demuxer reported.
        detail: String,
    },

    /// The container or bitstream is malformed.
    #[error("{path} is corrupt ({detail}); re-export or re-download the file")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the demuxer or decoder reported.
        detail: String,
    },

    /// The file uses a codec or container feature that is not supported.
    #[error(
        "{path} uses an unsupported codec or feature ({detail}); convert it to 16-bit PCM WAV, \
         e.g. `ffmpeg -i INPUT -ac 1 -ar 16000 out.wav`"
    )]
    UnsupportedCodec {
        /// The file.
        path: PathBuf,
        /// What the demuxer or decoder reported.
        detail: String,
    },

    /// The container has no audio track (e.g. a video without sound).
    #[error("{path} has no audio track; use a file that contains sound")]
    NoAudioTrack {
        /// The file.
        path: PathBuf,
    },

    /// The audio track decoded to zero samples.
    #[error(
        "{path} contains no audio samples (zero-length audio); use a file with at least one sample"
    )]
    NoSamples {
        /// The file.
        path: PathBuf,
    },

    /// The declared sample rate is 0 or above [`crate::MAX_SAMPLE_RATE`].
    #[error(
        "{path} declares a sample rate of {rate} Hz, which is invalid (allowed: 1..={max} Hz); \
         the header is probably corrupt, re-export the file"
    )]
    InvalidSampleRate {
        /// The file.
        path: PathBuf,
        /// The declared sample rate in Hz.
        rate: u64,
        /// The largest accepted rate in Hz.
        max: u32,
    },

    /// A decoded sample is NaN or infinite (only possible in floating-point files).
    #[error(
        "{path} contains a non-finite sample ({value}) at frame {frame}; the floating-point data \
         is corrupt, re-export the file"
    )]
    NonFiniteSample {
        /// The file.
        path: PathBuf,
        /// Index of the offending frame (per channel) in the decoded stream.
        frame: u64,
        /// The offending value (NaN, inf or -inf).
        value: f32,
    },

    /// The audio is longer than the configured cap.
    #[error(
        "{path} is {seconds:.1} s long, more than the cap of {max_seconds:.1} s; trim the file or \
         raise `DecodeOptions::max_duration_secs`"
    )]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Declared or decoded-so-far duration in seconds.
        seconds: f64,
        /// The cap in seconds.
        max_seconds: f64,
    },

    /// A decoder panicked; the panic was caught and turned into this error.
    #[error(
        "decoding {path} crashed inside the decoder ({detail}); the file is probably corrupt, re-encode it"
    )]
    DecoderPanic {
        /// The file.
        path: PathBuf,
        /// The panic message.
        detail: String,
    },

    /// Resampling failed.
    #[error("cannot resample from {from_hz} Hz to {to_hz} Hz: {detail}")]
    Resample {
        /// Source rate in Hz.
        from_hz: u32,
        /// Target rate in Hz.
        to_hz: u32,
        /// What went wrong.
        detail: String,
    },

    /// An argument (configuration, gain, offset, mix weights, shapes) is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Reading or writing a `.npy` file failed.
    #[error("npy file {path}: {detail}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What went wrong and what to do.
        detail: String,
        /// The reader's, writer's or ndarray's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}
