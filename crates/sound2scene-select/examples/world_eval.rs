//! Mines a procedural-world dataset (`sound2scene synth --layout vggsound`) with a trained
//! localizer and prints the selection and localization metrics against its ground truth, as
//! JSON — the measurement of docs/results.md ("Pair selection") without the CLI.
//!
//! `cargo run -p sound2scene-select --example world_eval -- DATA WEIGHTS OUT.json
//! [contrastive|c-av] [HEATMAP_DIR]`

use std::path::PathBuf;

use burn::tensor::Device;
use sound2scene_select::metrics::world_ground_truth;
use sound2scene_select::mine::{MineOptions, Scoring};
use sound2scene_select::train::{fnv_hex, resolve_weights};
use sound2scene_select::{discover_videos, load_localizer, mine};
use sound2scene_synth::DatasetTruth;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, weights, out, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: world_eval DATA WEIGHTS OUT.json [contrastive|c-av] [HEATMAP_DIR]".into(),
        );
    };
    let data = PathBuf::from(data);
    let device = Device::default();
    let (model, config) = load_localizer(weights.as_ref(), &device)?;
    let fingerprint = fnv_hex(&std::fs::read(resolve_weights(weights.as_ref())?)?);
    let truth: DatasetTruth =
        serde_json::from_str(&std::fs::read_to_string(data.join("ground_truth.json"))?)?;
    let ground = world_ground_truth(&truth);
    let listing = discover_videos(&data.join("frames"), &data.join("audios"))?;
    let opts = MineOptions {
        fps: truth.config.fps as f32,
        truth: Some(ground),
        scoring: if rest.first().map(String::as_str) == Some("c-av") {
            Scoring::CAv
        } else {
            Scoring::Contrastive
        },
        heatmaps: rest.get(1).map(PathBuf::from),
        ..MineOptions::default()
    };
    let summary = mine(
        &model,
        &config,
        &listing.videos,
        out.as_ref(),
        &fingerprint,
        &opts,
        &device,
    )?;
    println!("{}", serde_json::to_string_pretty(&summary.report)?);
    Ok(())
}
