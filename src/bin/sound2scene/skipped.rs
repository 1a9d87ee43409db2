//! What the training commands share about samples that cannot be decoded: the flags that set
//! the policy, and the report of what was skipped (printed, and saved as OUT/skipped.json).

use std::path::Path;

use anyhow::{Context, Result};
use sound2scene::train::skip::{DEFAULT_MAX_BAD_FRACTION, SKIPPED_FILE};
use sound2scene::train::{SkipPolicy, SkipReport};

/// How the training commands treat samples that cannot be decoded.
#[derive(clap::Args)]
pub struct SkipArgs {
    /// Stop at the first sample that cannot be decoded instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Stop when more than this fraction of the samples cannot be decoded (a wrong folder or
    /// layout rather than a few broken files).
    #[arg(long, value_name = "FRACTION", default_value_t = DEFAULT_MAX_BAD_FRACTION)]
    max_bad_fraction: f64,
}

impl SkipArgs {
    /// The policy these flags ask for.
    pub fn policy(&self) -> SkipPolicy {
        SkipPolicy {
            strict: self.strict,
            max_bad_fraction: self.max_bad_fraction,
        }
    }
}

/// Writes `report` to OUT/skipped.json.
pub fn save_skip_report(report: &SkipReport, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    report.write(&out.join(SKIPPED_FILE))?;
    Ok(())
}

/// Prints the skipped files with their causes and the totals.
pub fn print_skip_report(report: &SkipReport, out: &Path) {
    for sample in &report.skipped {
        println!("  skipped {sample}");
    }
    println!("{}", report.summary());
    if !report.skipped.is_empty() {
        println!("(listed in {})", out.join(SKIPPED_FILE).display());
    }
}
