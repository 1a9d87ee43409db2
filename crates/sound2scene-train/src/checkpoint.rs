//! Crash-safe training checkpoints: complete sets of files that appear atomically.
//!
//! A checkpoint of step `N` is the directory `OUT/ckpt-00000N` (six digits at least) holding
//! the files a trainer writes (for alignment: `model.bpk`, `optimizer.bpk`, `state.json`) and
//! a `COMPLETE` marker. [`save_checkpoint`] writes them as follows, so that a process killed at
//! any instant leaves the previous complete checkpoint loadable:
//!
//! 1. every file into `OUT/ckpt-00000N.tmp/`, each fsynced;
//! 2. the directory fsynced, renamed to `OUT/ckpt-00000N`, and `OUT` fsynced;
//! 3. `COMPLETE` (JSON: the step, and the size and SHA-256 of every file) written and
//!    fsynced, then the checkpoint directory fsynced;
//! 4. the `OUT/latest` pointer (a text file holding the directory name) replaced atomically
//!    (temporary file, fsync, rename, fsync of `OUT`).
//!
//! Readers trust only the marker: [`latest_complete`] picks the highest-step directory whose
//! `COMPLETE` exists and whose files have the sizes and checksums it records, ignoring `.tmp`
//! directories, directories without a marker and the `latest` pointer itself. A checkpoint whose
//! files changed after it was written (a disk error, an edit) is *damaged*:
//! [`verify_complete`] says which file, [`latest_complete`] falls back to the previous
//! checkpoint, and [`damaged_checkpoints`] lists what was passed over so a trainer can say so.
//! Damaged checkpoints are never deleted automatically. The `best` pointer names the
//! checkpoint with the lowest validation loss; [`prune`] keeps it and the newest `keep_last`
//! checkpoints. A failed save (full disk, read-only directory, …) returns
//! [`TrainError::Checkpoint`] naming the path, and touches no existing checkpoint.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::TrainError;

/// Name of the completion marker inside a checkpoint directory.
pub const COMPLETE_MARKER: &str = "COMPLETE";
/// Pointer file (in the output directory) naming the newest checkpoint.
pub const LATEST_POINTER: &str = "latest";
/// Pointer file (in the output directory) naming the checkpoint with the lowest validation
/// loss.
pub const BEST_POINTER: &str = "best";
/// Prefix of checkpoint directory names.
pub const CHECKPOINT_PREFIX: &str = "ckpt-";
/// Suffix of a checkpoint directory being written.
pub const TMP_SUFFIX: &str = ".tmp";

/// The contents of a `COMPLETE` marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteMarker {
    /// The checkpoint's step.
    pub step: u64,
    /// Size in bytes of every file of the checkpoint, by name.
    pub files: BTreeMap<String, u64>,
    /// SHA-256 of every file of the checkpoint, by name, as lowercase hex (empty in markers
    /// written before checksums were recorded, which are checked by size only).
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

/// The SHA-256 of the file at `path`, as lowercase hex.
fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The directory name of the checkpoint of `step`: `ckpt-000123`.
pub fn checkpoint_name(step: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{step:06}")
}

/// The step of a checkpoint directory name (`ckpt-000123` → 123); `None` for other names,
/// including `.tmp` directories.
pub fn parse_checkpoint_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(CHECKPOINT_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// fsyncs a directory, so that entries created, renamed or removed in it are durable.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the directory.
pub fn fsync_dir(dir: &Path) -> Result<(), TrainError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
        TrainError::checkpoint_caused(dir, format!("cannot sync the directory: {e}"), e)
    })
}

/// Writes `bytes` to `path` and fsyncs it (no atomicity by itself).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut file = File::create(path)
        .map_err(|e| TrainError::checkpoint_caused(path, format!("cannot create: {e}"), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| TrainError::checkpoint_caused(path, format!("cannot write: {e}"), e))
}

/// Replaces `path` with `bytes` atomically: a temporary sibling is written and fsynced, renamed
/// over `path`, and the parent directory fsynced. A crash leaves either the old or the new
/// contents.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file that failed.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| TrainError::checkpoint(path, "not a file path"))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = path.with_file_name(tmp_name);
    write_synced(&tmp, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(TrainError::checkpoint_caused(
            path,
            format!("cannot replace: {e}"),
            e,
        ));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fsync_dir(parent)
}

/// Writes a file inside a checkpoint's temporary directory (fsynced later, all at once by
/// [`save_checkpoint`]).
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file, with the I/O error as its source.
pub fn write_plain(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    std::fs::write(path, bytes)
        .map_err(|e| TrainError::checkpoint_caused(path, format!("cannot write: {e}"), e))
}

/// Reads a pointer file (`latest` or `best`) of `out_dir`: the checkpoint directory it names,
/// if the file exists and names one.
pub fn read_pointer(out_dir: &Path, pointer: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(out_dir.join(pointer)).ok()?;
    let name = text.trim();
    parse_checkpoint_name(name).map(|_| out_dir.join(name))
}

/// Points `pointer` (`latest` or `best`) of `out_dir` at the checkpoint directory `target`,
/// atomically.
///
/// # Errors
/// [`TrainError::Checkpoint`] when the pointer cannot be written.
pub fn write_pointer(out_dir: &Path, pointer: &str, target: &Path) -> Result<(), TrainError> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| TrainError::checkpoint(target, "not a checkpoint directory"))?;
    write_file_atomic(&out_dir.join(pointer), format!("{name}\n").as_bytes())
}

/// The marker of `dir` when the checkpoint is complete and undamaged: as [`read_complete`],
/// and every file has the SHA-256 the marker records.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the checkpoint when it is not complete, or the file whose
/// contents no longer match the checksum recorded when it was written.
pub fn verify_complete(dir: &Path) -> Result<CompleteMarker, TrainError> {
    let marker = read_complete(dir).ok_or_else(|| {
        TrainError::checkpoint(
            dir,
            "not a complete checkpoint (no valid COMPLETE marker, or a file of the wrong size)",
        )
    })?;
    for (name, expected) in &marker.sha256 {
        let path = dir.join(name);
        let found = file_sha256(&path).map_err(|e| {
            TrainError::checkpoint_caused(&path, format!("cannot read back: {e}"), e)
        })?;
        if &found != expected {
            return Err(TrainError::checkpoint(
                &path,
                format!(
                    "the file does not match the SHA-256 its checkpoint's COMPLETE recorded \
                     (expected {expected}, found {found}): it changed after it was written \
                     (a disk error or an edit); resume from an earlier checkpoint, or delete \
                     this checkpoint directory"
                ),
            ));
        }
    }
    Ok(marker)
}

/// The checkpoints of `out_dir` that are complete by their marker but damaged (a file no
/// longer matches its recorded checksum), newest first, each with the error that names the
/// file. [`latest_complete`] passes over these; a trainer that resumes reports them.
///
/// # Errors
/// As [`list_complete`].
pub fn damaged_checkpoints(out_dir: &Path) -> Result<Vec<TrainError>, TrainError> {
    let mut damaged: Vec<TrainError> = list_complete(out_dir)?
        .into_iter()
        .filter_map(|(_, dir)| verify_complete(&dir).err())
        .collect();
    damaged.reverse();
    Ok(damaged)
}

/// The marker of `dir` when the checkpoint is complete: `COMPLETE` parses, names the
/// directory's step, and every file it lists exists with the recorded size (checksums are
/// left to [`verify_complete`], which reads every byte).
pub fn read_complete(dir: &Path) -> Option<CompleteMarker> {
    let step = parse_checkpoint_name(dir.file_name()?.to_str()?)?;
    let text = std::fs::read_to_string(dir.join(COMPLETE_MARKER)).ok()?;
    let marker: CompleteMarker = serde_json::from_str(&text).ok()?;
    let sizes_match = marker.files.iter().all(|(name, &size)| {
        std::fs::metadata(dir.join(name))
            .map(|m| m.is_file() && m.len() == size)
            .unwrap_or(false)
    });
    (marker.step == step && sizes_match).then_some(marker)
}

/// Every complete checkpoint directory of `out_dir` as (step, path), by ascending step.
///
/// # Errors
/// [`TrainError::Io`] when `out_dir` exists but cannot be listed. A missing `out_dir` has no
/// checkpoints.
pub fn list_complete(out_dir: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let mut found: Vec<(u64, PathBuf)> = list_named(out_dir)?
        .into_iter()
        .filter(|(_, path)| read_complete(path).is_some())
        .collect();
    found.sort();
    Ok(found)
}

/// Entries of `out_dir` named like a checkpoint (`ckpt-NNNNNN`, not `.tmp`), any state.
fn list_named(out_dir: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let entries = match std::fs::read_dir(out_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TrainError::Io {
                path: out_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(step) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_checkpoint_name)
        {
            found.push((step, path));
        }
    }
    Ok(found)
}

/// The newest complete, undamaged checkpoint of `out_dir` (highest step whose files match
/// their recorded sizes and checksums), if any; damaged newer ones are passed over (see
/// [`damaged_checkpoints`]).
///
/// # Errors
/// As [`list_complete`].
pub fn latest_complete(out_dir: &Path) -> Result<Option<(u64, PathBuf)>, TrainError> {
    Ok(list_complete(out_dir)?
        .into_iter()
        .rev()
        .find(|(_, dir)| verify_complete(dir).is_ok()))
}

/// The checkpoint the `best` pointer names, if the pointer exists and the checkpoint is
/// complete and undamaged.
pub fn best_checkpoint(out_dir: &Path) -> Option<PathBuf> {
    read_pointer(out_dir, BEST_POINTER).filter(|dir| verify_complete(dir).is_ok())
}

/// Writes the checkpoint of `step` in `out_dir` as described in the [module docs](self):
/// `write` puts the checkpoint's files into the directory it is given (a `.tmp` directory);
/// this function fsyncs them, renames the directory into place, writes `COMPLETE` and
/// updates `latest`. Returns the checkpoint directory.
///
/// A complete checkpoint of the same step that already exists is kept as is (`write` is not
/// called); an incomplete directory of that name (left by a crash) is replaced.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the path that could not be written (the `.tmp` directory
/// is removed on a best-effort basis; earlier checkpoints are untouched), or any error of
/// `write`.
pub fn save_checkpoint(
    out_dir: &Path,
    step: u64,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<PathBuf, TrainError> {
    let name = checkpoint_name(step);
    let target = out_dir.join(&name);
    if read_complete(&target).is_some() {
        write_pointer(out_dir, LATEST_POINTER, &target)?;
        return Ok(target);
    }
    let tmp = out_dir.join(format!("{name}{TMP_SUFFIX}"));
    let result = write_tmp_and_rename(out_dir, step, &tmp, &target, write);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    write_pointer(out_dir, LATEST_POINTER, &target)?;
    Ok(target)
}

fn write_tmp_and_rename(
    out_dir: &Path,
    step: u64,
    tmp: &Path,
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).map_err(|e| {
            TrainError::checkpoint_caused(tmp, format!("cannot remove a stale directory: {e}"), e)
        })?;
    }
    std::fs::create_dir(tmp).map_err(|e| {
        TrainError::checkpoint_caused(tmp, format!("cannot create the directory: {e}"), e)
    })?;
    write(tmp)?;

    // fsync every file and record its size and checksum for the marker.
    let mut files = BTreeMap::new();
    let mut sha256 = BTreeMap::new();
    let entries = std::fs::read_dir(tmp).map_err(|e| {
        TrainError::checkpoint_caused(tmp, format!("cannot list the directory: {e}"), e)
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            TrainError::checkpoint_caused(tmp, format!("cannot list the directory: {e}"), e)
        })?;
        let path = entry.path();
        let file = File::open(&path)
            .map_err(|e| TrainError::checkpoint_caused(&path, format!("cannot open: {e}"), e))?;
        file.sync_all()
            .map_err(|e| TrainError::checkpoint_caused(&path, format!("cannot sync: {e}"), e))?;
        let size = file
            .metadata()
            .map_err(|e| TrainError::checkpoint_caused(&path, format!("cannot stat: {e}"), e))?
            .len();
        let name = entry.file_name().to_string_lossy().into_owned();
        let digest = file_sha256(&path).map_err(|e| {
            TrainError::checkpoint_caused(&path, format!("cannot read back: {e}"), e)
        })?;
        files.insert(name.clone(), size);
        sha256.insert(name, digest);
    }
    fsync_dir(tmp)?;

    // An incomplete directory of the same name is a crash leftover.
    if let Ok(meta) = std::fs::symlink_metadata(target) {
        if meta.is_dir() {
            std::fs::remove_dir_all(target).map_err(|e| {
                TrainError::checkpoint_caused(
                    target,
                    format!("cannot remove an incomplete checkpoint: {e}"),
                    e,
                )
            })?;
        } else {
            return Err(TrainError::checkpoint(
                target,
                "a file that is not a checkpoint directory is in the way",
            ));
        }
    }
    std::fs::rename(tmp, target).map_err(|e| {
        TrainError::checkpoint_caused(target, format!("cannot rename {}: {e}", tmp.display()), e)
    })?;
    fsync_dir(out_dir)?;

    let marker = CompleteMarker {
        step,
        files,
        sha256,
    };
    let json = serde_json::to_vec_pretty(&marker)
        .map_err(|e| TrainError::checkpoint_caused(target, e.to_string(), e))?;
    write_synced(&target.join(COMPLETE_MARKER), &json)?;
    fsync_dir(target)
}

/// Removes checkpoint leftovers of an interrupted save from `out_dir`: `ckpt-*.tmp`
/// directories and checkpoint directories without a valid `COMPLETE` marker. Returns how many
/// were removed. Only one trainer may use `out_dir` at a time.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming a leftover that cannot be removed.
pub fn remove_incomplete(out_dir: &Path) -> Result<usize, TrainError> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let is_tmp = name
            .strip_suffix(TMP_SUFFIX)
            .is_some_and(|stem| parse_checkpoint_name(stem).is_some());
        let is_incomplete = parse_checkpoint_name(name).is_some() && read_complete(&path).is_none();
        if (is_tmp || is_incomplete) && path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(|e| {
                TrainError::checkpoint_caused(&path, format!("cannot remove a leftover: {e}"), e)
            })?;
            removed += 1;
        }
    }
    if removed > 0 {
        fsync_dir(out_dir)?;
    }
    Ok(removed)
}

/// Deletes complete checkpoints of `out_dir` except the newest `keep_last` and the ones the
/// `best` and `latest` pointers name. Returns the removed directories.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming a directory that cannot be removed.
pub fn prune(out_dir: &Path, keep_last: usize) -> Result<Vec<PathBuf>, TrainError> {
    let complete = list_complete(out_dir)?;
    let keep_from = complete.len().saturating_sub(keep_last);
    let pinned: Vec<PathBuf> = [BEST_POINTER, LATEST_POINTER]
        .iter()
        .filter_map(|p| read_pointer(out_dir, p))
        .collect();
    let mut removed = Vec::new();
    for (i, (_, path)) in complete.into_iter().enumerate() {
        if i >= keep_from || pinned.contains(&path) {
            continue;
        }
        // Remove the marker first: a crash mid-removal leaves an incomplete directory, which
        // readers ignore, never a "complete" one with missing files.
        let marker = path.join(COMPLETE_MARKER);
        std::fs::remove_file(&marker)
            .and_then(|()| std::fs::remove_dir_all(&path))
            .map_err(|e| TrainError::checkpoint_caused(&path, format!("cannot remove: {e}"), e))?;
        removed.push(path);
    }
    if !removed.is_empty() {
        fsync_dir(out_dir)?;
    }
    Ok(removed)
}
