//! Helpers shared by the integration tests: fixture lookup and deterministic pseudo-random data.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a fixture file under the fixtures directory, or `None` (with a printed skip) when it
/// is missing outside CI. Under `CI=true` a missing fixture fails the test.
///
/// The directory is `$SOUND2SCENE_FIXTURES`, else `<workspace>/../shared/fixtures`.
pub fn fixture(relative: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("SOUND2SCENE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let path = dir.join(relative);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "fixture {} is missing (CI=true requires it)",
        path.display()
    );
    eprintln!("SKIP: fixture {} is missing", path.display());
    None
}

/// Deterministic values in `[-1, 1)` from a 64-bit linear congruential generator (Knuth's MMIX
/// constants), so tests need no random-number crate.
pub fn pseudo_random(seed: u64, count: usize) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(2862933555777941757)
        .wrapping_add(3037000493);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Relative error `|got - want| / |want|`.
pub fn relative_error(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}
