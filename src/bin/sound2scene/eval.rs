//! `sound2scene eval`: metrics on arrays, one `name value` line per result.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use ndarray::Ix2;
use sound2scene::train::metrics::{
    DEFAULT_IS_SPLITS, fid_from_features, inception_score, read_npy_f64, retrieval_recall,
};

/// The metrics `sound2scene eval` computes.
#[derive(Subcommand)]
pub enum EvalCommand {
    /// Fréchet distance between two feature sets (the pytorch-fid formula).
    Fid {
        /// Features of set A, [n, d] .npy.
        #[arg(long)]
        features_a: PathBuf,
        /// Features of set B, [m, d] .npy.
        #[arg(long)]
        features_b: PathBuf,
    },
    /// Inception Score from classifier logits, as BigGAN-PyTorch computes it.
    Is {
        /// Logits [n, classes] .npy.
        #[arg(long)]
        logits: PathBuf,
        /// Number of splits.
        #[arg(long, default_value_t = DEFAULT_IS_SPLITS)]
        splits: usize,
    },
    /// Recall at 1, 5 and 10 of row i of the queries finding row i of the keys (cosine).
    Retrieval {
        /// Queries [n, d] .npy (e.g. audio features).
        #[arg(long)]
        queries: PathBuf,
        /// Keys [n, d] .npy (e.g. image features).
        #[arg(long)]
        keys: PathBuf,
    },
}

/// Compute and print one metric.
pub fn run(command: EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Fid {
            features_a,
            features_b,
        } => {
            let a = read_npy_f64::<Ix2>(&features_a)?;
            let b = read_npy_f64::<Ix2>(&features_b)?;
            println!("fid {:.4}", fid_from_features(a.view(), b.view())?);
        }
        EvalCommand::Is { logits, splits } => {
            let logits = read_npy_f64::<Ix2>(&logits)?;
            let score = inception_score(logits.view(), splits)?;
            println!("is_mean {:.4}", score.mean);
            println!("is_std {:.4}", score.std);
        }
        EvalCommand::Retrieval { queries, keys } => {
            let q = read_npy_f64::<Ix2>(&queries)?;
            let k = read_npy_f64::<Ix2>(&keys)?;
            let r = retrieval_recall(q.view(), k.view())?;
            println!("r_at_1 {:.4}", r.r1);
            println!("r_at_5 {:.4}", r.r5);
            println!("r_at_10 {:.4}", r.r10);
        }
    }
    Ok(())
}
