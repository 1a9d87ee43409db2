//! The ranges inference accepts, and the checks that name what is allowed.
//!
//! Every bound keeps a run's time and memory in proportion to what was asked: pictures are
//! drawn [`DrawSettings::batch_size`](crate::DrawSettings::batch_size) rows at a time, so the
//! memory is flat in the count, the candidates and the steps, and the bounds keep the time
//! finite. Each check takes `what`, the name the caller's user knows the setting by (a CLI
//! passes its flag, `--count`), and returns [`InferError::OutOfRange`] with that name, the
//! allowed range and the value given.

use crate::error::{InferError, Result};

/// Most pictures per feature row (`--count`).
pub const MAX_COUNT: usize = 10_000;
/// Most candidates per picture in best-of-k (`--rerank`).
pub const MAX_RERANK: usize = 1_000;
/// Most rows of an interpolation, endpoints included (`--steps`).
pub const MAX_STEPS: usize = 1_000;
/// Largest gain change in dB, either way (`--gain-db`, `--gains`): ±60 dB is a factor of 1000
/// in amplitude, beyond which a clip is silence or clipped noise.
pub const MAX_GAIN_DB: f32 = 60.0;
/// Most generator rows per forward pass (`--batch-size`).
pub const MAX_BATCH_SIZE: usize = 4_096;
/// Most Adam steps of a GAN inversion (`edit --steps`): each step is a forward and a backward
/// pass of G, and the inversion keeps one error per step.
pub const MAX_INVERSION_STEPS: usize = 10_000;
/// Most pictures per hop of a live stream: every hop draws them all.
pub const MAX_LIVE_COUNT: usize = 16;
/// Shortest hop of a live stream in seconds: 20 pictures a second at most.
pub const MIN_HOP_SECS: f32 = 0.05;

fn out_of_range(what: &str, allowed: impl Into<String>, got: impl ToString) -> InferError {
    InferError::OutOfRange {
        what: what.to_string(),
        allowed: allowed.into(),
        got: got.to_string(),
    }
}

/// `count` pictures per row: 1 ..= [`MAX_COUNT`].
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range.
pub fn check_count(what: &str, count: usize) -> Result<usize> {
    if (1..=MAX_COUNT).contains(&count) {
        Ok(count)
    } else {
        Err(out_of_range(
            what,
            format!("at least 1 and at most {MAX_COUNT}"),
            count,
        ))
    }
}

/// `k` candidates per picture: 1 (a single draw) ..= [`MAX_RERANK`].
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range.
pub fn check_rerank(what: &str, k: usize) -> Result<usize> {
    if (1..=MAX_RERANK).contains(&k) {
        Ok(k)
    } else {
        Err(out_of_range(
            what,
            format!("at least 1 (1 draws once) and at most {MAX_RERANK}"),
            k,
        ))
    }
}

/// `steps` interpolation rows, endpoints included: 2 ..= [`MAX_STEPS`].
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range.
pub fn check_steps(what: &str, steps: usize) -> Result<usize> {
    if (2..=MAX_STEPS).contains(&steps) {
        Ok(steps)
    } else {
        Err(out_of_range(
            what,
            format!("at least 2 (both endpoints) and at most {MAX_STEPS}"),
            steps,
        ))
    }
}

/// `steps` Adam steps of a GAN inversion: 1 ..= [`MAX_INVERSION_STEPS`].
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range.
pub fn check_inversion_steps(what: &str, steps: usize) -> Result<usize> {
    if (1..=MAX_INVERSION_STEPS).contains(&steps) {
        Ok(steps)
    } else {
        Err(out_of_range(
            what,
            format!("at least 1 and at most {MAX_INVERSION_STEPS}"),
            steps,
        ))
    }
}

/// The weight of a mixed-in sound: in `[0, 1]` (the first sound gets `1 - weight`).
///
/// # Errors
/// [`InferError::OutOfRange`] outside `[0, 1]` or not finite.
pub fn check_mix_weight(what: &str, weight: f32) -> Result<f32> {
    if (0.0..=1.0).contains(&weight) {
        Ok(weight)
    } else {
        Err(out_of_range(
            what,
            "in [0, 1] (the share of the mixed-in sound; the first sound gets 1 - W)",
            weight,
        ))
    }
}

/// A gain in dB: within ±[`MAX_GAIN_DB`].
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range or not finite.
pub fn check_gain_db(what: &str, db: f32) -> Result<f32> {
    if (-MAX_GAIN_DB..=MAX_GAIN_DB).contains(&db) {
        Ok(db)
    } else {
        Err(out_of_range(
            what,
            format!("within ±{MAX_GAIN_DB} dB"),
            format!("{db} dB"),
        ))
    }
}

/// Generator rows per forward pass: 1 ..= [`MAX_BATCH_SIZE`].
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range.
pub fn check_batch_size(what: &str, rows: usize) -> Result<usize> {
    if (1..=MAX_BATCH_SIZE).contains(&rows) {
        Ok(rows)
    } else {
        Err(out_of_range(
            what,
            format!("at least 1 and at most {MAX_BATCH_SIZE}"),
            rows,
        ))
    }
}

/// The default generator rows per forward pass at `resolution` pixels a side: 64 at 32×32,
/// a quarter as many per doubling of the side, at least 1. The generator's activations grow
/// with the picture's area, so this keeps a batch at roughly the same memory (about 50 MB on
/// the CPU for the bundled model).
pub fn default_batch_size(resolution: usize) -> usize {
    let area = resolution.max(1).saturating_mul(resolution.max(1));
    (64 * 32 * 32 / area).clamp(1, 64)
}

/// Pictures per hop of a live stream: 1 ..= [`MAX_LIVE_COUNT`].
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range.
pub fn check_live_count(what: &str, count: usize) -> Result<usize> {
    if (1..=MAX_LIVE_COUNT).contains(&count) {
        Ok(count)
    } else {
        Err(out_of_range(
            what,
            format!("at least 1 and at most {MAX_LIVE_COUNT}"),
            count,
        ))
    }
}

/// A live stream's window and hop in seconds: the window (`None`: the model's clip length)
/// from [`MIN_HOP_SECS`] to `max_window_secs` (the model's clip length), the hop from
/// [`MIN_HOP_SECS`] to the window.
///
/// # Errors
/// [`InferError::OutOfRange`] naming `window` or `hop`.
pub fn check_live_timing(
    window_secs: Option<f32>,
    hop_secs: f32,
    max_window_secs: f64,
) -> Result<()> {
    let window = match window_secs {
        Some(w) => {
            if !(w.is_finite() && f64::from(w) <= max_window_secs && w >= MIN_HOP_SECS) {
                return Err(out_of_range(
                    "window",
                    format!("from {MIN_HOP_SECS} s to {max_window_secs} s (the model's clip)"),
                    w,
                ));
            }
            f64::from(w)
        }
        None => max_window_secs,
    };
    if !(hop_secs.is_finite() && hop_secs >= MIN_HOP_SECS && f64::from(hop_secs) <= window) {
        return Err(out_of_range(
            "hop",
            format!("from {MIN_HOP_SECS} s to the window ({window} s)"),
            hop_secs,
        ));
    }
    Ok(())
}

/// Temporal smoothing of a live stream's feature: in `[0, 1)`.
///
/// # Errors
/// [`InferError::OutOfRange`] outside that range.
pub fn check_smoothing(what: &str, smoothing: f32) -> Result<f32> {
    if (0.0..1.0).contains(&smoothing) {
        Ok(smoothing)
    } else {
        Err(out_of_range(
            what,
            "at least 0 (no smoothing) and below 1",
            smoothing,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_is_allowed() {
        let err = check_count("--count", 0).expect_err("0 pictures");
        assert_eq!(
            err.to_string(),
            "--count must be at least 1 and at most 10000, got 0"
        );
        assert!(check_mix_weight("w", f32::NAN).is_err());
        assert!(check_gain_db("g", f32::INFINITY).is_err());
        assert_eq!(check_gain_db("g", -60.0).ok(), Some(-60.0));
    }

    #[test]
    fn default_batches_shrink_with_the_area() {
        assert_eq!(default_batch_size(32), 64);
        assert_eq!(default_batch_size(64), 16);
        assert_eq!(default_batch_size(128), 4);
        assert_eq!(default_batch_size(512), 1);
    }
}
