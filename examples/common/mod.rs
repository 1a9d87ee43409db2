//! What the control examples share: loading the networks named on the command line, or the
//! bundled model when none are named.

use anyhow::{Result, bail};
use sound2scene::infer::bundle;
use sound2scene::{ModelPaths, SoundToScene};

/// The pipeline and the remaining arguments. `args` is either `AUDIO_WEIGHTS GENERATOR
/// [IMAGE_WEIGHTS]` (the last when `image` is set) followed by `rest` arguments, or the `rest`
/// arguments alone, which loads `assets/models/sound2scene-tiny/`; `usage` is the message for
/// any other count.
pub fn load<'a>(
    args: &'a [String],
    image: bool,
    rest: usize,
    usage: &str,
) -> Result<(SoundToScene, &'a [String])> {
    let device = burn::tensor::Device::flex();
    let named = if image { 3 } else { 2 };
    if args.len() == rest {
        let pipeline = bundle::load_pipeline(bundle::default_model_dir(), &device)?;
        return Ok((pipeline, args));
    }
    if args.len() != named + rest {
        bail!("usage: {usage}");
    }
    let paths = ModelPaths {
        audio_encoder: args[0].clone().into(),
        generator: args[1].clone().into(),
        image_encoder: image.then(|| args[2].clone().into()),
    };
    Ok((SoundToScene::load(&paths, &device)?, &args[named..]))
}
