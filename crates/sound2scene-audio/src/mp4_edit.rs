//! MP4/M4A edit lists (`moov/trak/edts/elst`), which symphonia 0.6 does not apply.
//!
//! AAC encoders prepend priming samples (typically 1024) and pad the last frame; the container's
//! edit list says which part of the decoded track is the real audio. Without applying it the
//! audio of an `.m4a`/`.mp4` is shifted by the priming delay relative to the source.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Largest `moov` box read into memory (bytes); larger ones are ignored.
const MAX_MOOV_BYTES: u64 = 64 * 1024 * 1024;
/// Largest number of top-level boxes scanned for `moov`.
const MAX_TOP_LEVEL_BOXES: usize = 1024;

/// The part of a decoded track the edit list keeps, in the track's media timescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TrackEdit {
    /// Media time of the first presented sample (priming samples to skip).
    pub skip: u64,
    /// Presented duration, if the edit gives one.
    pub keep: Option<u64>,
    /// Units per second of `skip` and `keep`.
    pub timescale: u32,
}

impl TrackEdit {
    /// Apply to interleaved samples at `rate` Hz with `channels` channels.
    pub fn apply(&self, samples: &mut Vec<f32>, rate: u32, channels: usize) {
        let to_frames = |t: u64| -> usize {
            let f = u128::from(t) * u128::from(rate) / u128::from(self.timescale.max(1));
            usize::try_from(f).unwrap_or(usize::MAX)
        };
        let frames = samples.len() / channels.max(1);
        let skip = to_frames(self.skip).min(frames);
        let keep = self
            .keep
            .map_or(frames - skip, |k| to_frames(k).min(frames - skip));
        samples.truncate((skip + keep) * channels);
        samples.drain(..skip * channels);
    }
}

/// The edit of track `track_id` if `path` is an ISO-BMFF file whose track has a usable edit list.
/// Any parsing problem yields `None` (the audio is then used as decoded).
pub(crate) fn track_edit(path: &Path, track_id: u32) -> Option<TrackEdit> {
    let moov = read_moov(path)?;
    let movie_timescale = boxes(&moov)
        .find(|(t, _)| t == b"mvhd")
        .and_then(|(_, b)| header_timescale(b))?;
    for (typ, trak) in boxes(&moov) {
        if typ != *b"trak" {
            continue;
        }
        let id = boxes(trak)
            .find(|(t, _)| t == b"tkhd")
            .and_then(|(_, b)| tkhd_id(b));
        if id != Some(track_id) {
            continue;
        }
        let media_timescale = boxes(trak)
            .find(|(t, _)| t == b"mdia")
            .and_then(|(_, mdia)| boxes(mdia).find(|(t, _)| t == b"mdhd"))
            .and_then(|(_, b)| header_timescale(b))?;
        let elst = boxes(trak)
            .find(|(t, _)| t == b"edts")
            .and_then(|(_, edts)| boxes(edts).find(|(t, _)| t == b"elst"))?
            .1;
        let (duration, media_time) = first_non_empty_edit(elst)?;
        let keep = (duration > 0).then(|| {
            let k =
                u128::from(duration) * u128::from(media_timescale) / u128::from(movie_timescale);
            u64::try_from(k).unwrap_or(u64::MAX)
        });
        return Some(TrackEdit {
            skip: media_time,
            keep,
            timescale: media_timescale,
        });
    }
    None
}

fn read_moov(path: &Path) -> Option<Vec<u8>> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut pos = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if pos + 8 > len {
            return None;
        }
        f.seek(SeekFrom::Start(pos)).ok()?;
        let mut hdr = [0u8; 16];
        f.read_exact(&mut hdr[..8]).ok()?;
        let mut size = u64::from(u32::from_be_bytes(hdr[..4].try_into().ok()?));
        let mut hdr_len = 8u64;
        if size == 1 {
            f.read_exact(&mut hdr[8..16]).ok()?;
            size = u64::from_be_bytes(hdr[8..16].try_into().ok()?);
            hdr_len = 16;
        } else if size == 0 {
            size = len - pos;
        }
        if size < hdr_len || pos + size > len {
            return None;
        }
        if pos == 0 && &hdr[4..8] != b"ftyp" {
            return None;
        }
        if &hdr[4..8] == b"moov" {
            let body = size - hdr_len;
            if body > MAX_MOOV_BYTES {
                return None;
            }
            let mut buf = vec![0u8; usize::try_from(body).ok()?];
            f.read_exact(&mut buf).ok()?;
            return Some(buf);
        }
        pos += size;
    }
    None
}

/// Iterate the child boxes `(type, body)` of a container body; stops at the first malformed box.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let typ: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (hdr, size) = match size {
            1 => {
                let s = u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?);
                (16, usize::try_from(s).ok()?)
            }
            0 => (8, rest.len()),
            s => (8, s),
        };
        if size < hdr {
            return None;
        }
        let body = rest.get(hdr..size)?;
        rest = &rest[size..];
        Some((typ, body))
    })
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Timescale of an `mvhd` or `mdhd` body (version 0 or 1).
fn header_timescale(b: &[u8]) -> Option<u32> {
    let ts = match b.first()? {
        0 => be_u32(b, 12)?,
        1 => be_u32(b, 20)?,
        _ => return None,
    };
    (ts > 0).then_some(ts)
}

fn tkhd_id(b: &[u8]) -> Option<u32> {
    match b.first()? {
        0 => be_u32(b, 12),
        1 => be_u32(b, 20),
        _ => None,
    }
}

/// `(segment_duration, media_time)` of the first edit that is not an empty edit (media_time -1).
fn first_non_empty_edit(b: &[u8]) -> Option<(u64, u64)> {
    let version = *b.first()?;
    let count = be_u32(b, 4)? as usize;
    let entry = if version == 1 { 20 } else { 12 };
    for i in 0..count.min(1024) {
        let at = 8 + i * entry;
        let (duration, media_time) = if version == 1 {
            (be_u64(b, at)?, be_u64(b, at + 8)? as i64)
        } else {
            (
                u64::from(be_u32(b, at)?),
                i64::from(be_u32(b, at + 4)? as i32),
            )
        };
        if media_time >= 0 {
            return Some((duration, media_time as u64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(typ);
        v.extend_from_slice(body);
        v
    }

    /// Version-0 header body with the timescale (or track id) at byte 12.
    fn v0_header(at12: u32) -> Vec<u8> {
        let mut b = vec![0u8; 32];
        b[12..16].copy_from_slice(&at12.to_be_bytes());
        b
    }

    fn elst(entries: &[(u32, i32)]) -> Vec<u8> {
        let mut b = vec![0u8; 4];
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for &(d, m) in entries {
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&m.to_be_bytes());
            b.extend_from_slice(&[0, 1, 0, 0]);
        }
        b
    }

    fn file(edits: &[(u32, i32)]) -> Vec<u8> {
        let trak = [
            mp4_box(b"tkhd", &v0_header(2)),
            mp4_box(b"edts", &mp4_box(b"elst", &elst(edits))),
            mp4_box(b"mdia", &mp4_box(b"mdhd", &v0_header(16_000))),
        ]
        .concat();
        let moov = [mp4_box(b"mvhd", &v0_header(1000)), mp4_box(b"trak", &trak)].concat();
        [
            mp4_box(b"ftyp", b"M4A \0\0\0\0"),
            mp4_box(b"mdat", &[0u8; 100]),
            mp4_box(b"moov", &moov),
        ]
        .concat()
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("s2s-mp4-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_priming_and_duration() {
        // An empty edit first, then 10.008 s (movie timescale 1000) starting at media time 1024.
        let p = write("a.m4a", &file(&[(500, -1), (10_008, 1024)]));
        let e = track_edit(&p, 2).unwrap();
        assert_eq!(
            e,
            TrackEdit {
                skip: 1024,
                keep: Some(160_128),
                timescale: 16_000
            }
        );
        assert_eq!(track_edit(&p, 1), None);
    }

    #[test]
    fn non_mp4_and_garbage_give_none() {
        assert_eq!(track_edit(&write("b.wav", b"RIFF\0\0\0\0WAVE"), 1), None);
        let mut bad = file(&[(10, 0)]);
        bad.truncate(bad.len() - 7);
        assert_eq!(track_edit(&write("c.m4a", &bad), 2), None);
    }

    #[test]
    fn apply_skips_and_keeps_frames() {
        let e = TrackEdit {
            skip: 2,
            keep: Some(3),
            timescale: 8,
        };
        // Stereo, 8 frames at 8 Hz.
        let mut s: Vec<f32> = (0..16).map(|v| v as f32).collect();
        e.apply(&mut s, 8, 2);
        assert_eq!(s, vec![4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let mut short = vec![1.0f32; 2];
        e.apply(&mut short, 8, 1);
        assert!(short.is_empty());
    }
}
