//! Blend a photo's feature with a sound's (Fig. 6), then edit the photo by the difference
//! between a quiet and a loud version of the sound (Fig. 7, GAN inversion).
//!
//! ```sh
//! cargo run --release --example compose_and_edit -- \
//!     [AUDIO_WEIGHTS GENERATOR IMAGE_WEIGHTS] PHOTO.jpg SOUND.wav out.png
//! ```
//! Without the weights the bundled model (with its image encoder) draws.

use anyhow::{Context, Result};
use burn::tensor::Tensor;
use sound2scene::audio::load_audio;
use sound2scene::infer::visual::{labelled_grid, tensor_to_images};
use sound2scene::{InversionConfig, compose};

mod common;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "compose_and_edit [AUDIO_WEIGHTS GENERATOR IMAGE_WEIGHTS] PHOTO SOUND OUT.png";
    let (pipeline, rest) = common::load(&args, true, 3, usage)?;
    let [photo, sound, out] = rest else {
        anyhow::bail!("usage: {usage}");
    };
    let photo = image::open(photo)
        .with_context(|| format!("cannot read {photo}"))?
        .to_rgb8();
    let image_feature = pipeline.image_features(std::slice::from_ref(&photo))?;
    let wave = load_audio(sound)?;
    let audio_feature = pipeline.audio_features(std::slice::from_ref(&wave))?;

    let alphas = [0.0f32, 0.25, 0.5, 0.75, 1.0];
    let blends = alphas
        .iter()
        .map(|a| compose(image_feature.clone(), audio_feature.clone(), *a))
        .collect::<Result<Vec<_>, _>>()?;
    let noise = pipeline.noise(1, 0, 1.0)?.repeat_dim(0, alphas.len());
    let mut images = tensor_to_images(pipeline.generate_tensor(Tensor::cat(blends, 0), noise)?);

    let inversion = pipeline.invert(
        &photo,
        image_feature,
        &InversionConfig::default(),
        |_, _| {},
    )?;
    println!(
        "inversion pixel mse {:.4} -> {:.4}",
        inversion.errors[0],
        inversion.errors[inversion.errors.len() - 1]
    );
    let quiet = pipeline.audio_features(&[wave.gain_db(-12.0)?])?;
    let loud = pipeline.audio_features(&[wave.gain_db(12.0)?])?;
    for strength in [0.0f32, 0.5, 1.0, 1.5, 2.0] {
        images.extend(tensor_to_images(pipeline.edit(
            &inversion,
            quiet.clone(),
            loud.clone(),
            strength,
        )?));
    }
    let labels = ["compose alpha 0 .. 1", "edit strength 0 .. 2"].map(String::from);
    labelled_grid(&images, alphas.len(), &labels)
        .save(out)
        .with_context(|| format!("cannot write {out}"))?;
    println!("wrote {out}");
    Ok(())
}
