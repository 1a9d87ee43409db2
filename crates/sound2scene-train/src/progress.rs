//! Training feedback: the `metrics.jsonl` log and the terminal progress bar.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// File name of the metrics log in a training output directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// What a [`MetricsRecord`] summarizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// One optimizer step.
    Step,
    /// The end of an epoch (with the validation loss).
    Epoch,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// Step or epoch record.
    pub kind: RecordKind,
    /// Optimizer steps done so far (the step just taken for a step record).
    pub step: u64,
    /// The epoch (0-based) the step belongs to, or the epoch that ended.
    pub epoch: u64,
    /// Training loss (nats): of the step, or the mean over the epoch's steps.
    pub loss: Option<f64>,
    /// Mean validation loss (nats); epoch records only, `None` without a validation split.
    pub val_loss: Option<f64>,
    /// Training throughput in examples per second: of the step (data wait included), or of
    /// the epoch.
    pub samples_per_sec: Option<f64>,
    /// Learning rate.
    pub lr: f64,
    /// Wall-clock time of the record, seconds since the Unix epoch.
    pub time: f64,
    /// Epoch records: whether this epoch's checkpoint became `best`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<bool>,
}

impl MetricsRecord {
    /// The record of optimizer step `step` of epoch `epoch` (0-based): its training loss
    /// (nats), throughput (examples per second) and learning rate, timed now.
    pub fn step(step: u64, epoch: u64, loss: f64, samples_per_sec: f64, lr: f64) -> Self {
        Self {
            kind: RecordKind::Step,
            step,
            epoch,
            loss: Some(loss),
            val_loss: None,
            samples_per_sec: Some(samples_per_sec),
            lr,
            time: unix_time(),
            best: None,
        }
    }

    /// The record of the end of epoch `epoch` (0-based) after `step` optimizer steps: its mean
    /// training and validation losses (nats), throughput, learning rate and whether its
    /// checkpoint became `best`, timed now.
    pub fn epoch(
        step: u64,
        epoch: u64,
        loss: f64,
        val_loss: Option<f64>,
        samples_per_sec: f64,
        lr: f64,
        best: bool,
    ) -> Self {
        Self {
            kind: RecordKind::Epoch,
            step,
            epoch,
            loss: Some(loss),
            val_loss,
            samples_per_sec: Some(samples_per_sec),
            lr,
            time: unix_time(),
            best: Some(best),
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An append-only JSON-lines log (one record per line, flushed after each): [`MetricsRecord`]s,
/// or a loop's own records (IC-GAN's).
///
/// A resumed run appends to the same file, so steps after the last checkpoint of an
/// interrupted run can appear twice; the later line is the one of the resumed run.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens (creating if needed) `path` for appending.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TrainError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| TrainError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self { path, file })
    }

    /// Appends one record as a line.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the file.
    pub fn append(&mut self, record: &impl Serialize) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(record).map_err(|e| TrainError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| TrainError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Reads every record of a metrics log (e.g. to plot it).
    ///
    /// # Errors
    /// [`TrainError::Io`] when the file cannot be read or a line does not parse.
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<MetricsRecord>, TrainError> {
        Self::read_as(path)
    }

    /// Reads every record of a log of records of type `R`.
    ///
    /// # Errors
    /// [`TrainError::Io`] when the file cannot be read or a line does not parse.
    pub fn read_as<R: DeserializeOwned>(path: impl AsRef<Path>) -> Result<Vec<R>, TrainError> {
        let path = path.as_ref();
        let io = |source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(io)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| io(std::io::Error::other(e))))
            .collect()
    }
}

/// When to draw a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Only when stderr is a terminal.
    #[default]
    Auto,
    /// Always (e.g. to a terminal that `isatty` does not recognize).
    Always,
    /// Never.
    Never,
}

impl ProgressMode {
    /// Whether a bar should be drawn now.
    pub fn enabled(self) -> bool {
        match self {
            Self::Auto => std::io::stderr().is_terminal(),
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// A step progress bar on stderr showing loss, throughput and ETA, or nothing.
#[derive(Debug)]
pub struct StepBar(Option<ProgressBar>);

impl StepBar {
    /// A bar over `total` steps starting at `done`, if `mode` asks for one.
    pub fn new(mode: ProgressMode, done: u64, total: u64) -> Self {
        if !mode.enabled() {
            return Self(None);
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(done);
        bar.reset_eta();
        Self(Some(bar))
    }

    /// Advances to `step` with a message.
    pub fn update(&self, step: u64, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_position(step);
            bar.set_message(message);
        }
    }

    /// Prints a line above the bar (nothing without a bar).
    pub fn println(&self, line: String) {
        if let Some(bar) = &self.0 {
            bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
