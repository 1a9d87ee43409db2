//! The README's control on the shipped model: `sound2scene volume-sweep --audio
//! assets/sounds/field_cow.wav --gains=-12,-6,0,6,12` must draw the cow larger as the whole
//! recording gets louder (the paper's volume claim, as a user runs it).
//!
//! Measured as the CLI does it (each gain applied to the whole waveform, the same noise rows at
//! every gain) on more pictures than the CLI draws, so that the check follows the model and not
//! one noise draw: the cow's colour area averaged over [`PICTURES`] pictures per gain.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use sound2scene::audio::load_audio;
use sound2scene::infer::bundle::{default_model_dir, load_pipeline};
use sound2scene::infer::visual::tensor_to_images;
use sound2scene::synth::{SoundClass, measure_class_area};
use sound2scene::world::spearman::spearman;

/// The README's gains, in dB.
const GAINS: [f32; 5] = [-12.0, -6.0, 0.0, 6.0, 12.0];
/// Pictures per gain (noise rows 0..PICTURES of seed 0, the same at every gain).
const PICTURES: usize = 16;

#[test]
fn the_readme_volume_sweep_draws_the_cow_larger_as_the_recording_gets_louder() {
    let device = Device::default();
    let pipeline = load_pipeline(default_model_dir(), &device).expect("the bundled model loads");
    let sound =
        load_audio(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sounds/field_cow.wav"))
            .expect("the README's sound decodes");
    let waves = GAINS
        .iter()
        .map(|db| sound.gain_db(*db))
        .collect::<Result<Vec<_>, _>>()
        .expect("gains within range");
    let features = pipeline.audio_features(&waves).expect("f_A runs");
    let noise = pipeline.noise(PICTURES, 0, 1.0).expect("noise");
    let areas: Vec<f64> = (0..GAINS.len())
        .map(|g| {
            let feature: Tensor<2> = features.clone().narrow(0, g, 1).repeat_dim(0, PICTURES);
            let pictures = tensor_to_images(
                pipeline
                    .generate_tensor(feature, noise.clone())
                    .expect("G runs"),
            );
            let total: usize = pictures
                .iter()
                .map(|p| measure_class_area(p, SoundClass::Cow))
                .sum();
            total as f64 / PICTURES as f64
        })
        .collect();
    eprintln!("mean cow area per gain {GAINS:?}: {areas:?} px");

    let gains: Vec<f64> = GAINS.iter().map(|g| f64::from(*g)).collect();
    let rho = spearman(&gains, &areas).expect("the areas vary");
    assert!(
        rho >= 0.9,
        "the cow must grow with the gain: Spearman {rho:.2}, areas {areas:?}"
    );
    assert!(
        areas[2] >= 1.0,
        "the cow must be drawn at the sound's own level: {:.1} px at 0 dB",
        areas[2]
    );
    assert!(
        areas[4] >= 1.5 * areas[0].max(1.0),
        "+12 dB must draw the cow clearly larger than -12 dB: {areas:?}"
    );
}
