//! How closely G follows its instance feature, on the frames it was trained on: where the
//! bundled model's class accuracy is lost (docs/results.md, "Where the class is lost").
//!
//! ```sh
//! cargo run --release --example gan_conditioning -- --weights DIR --images WORLD/images \
//!     [--discriminator CKPT/discriminator.bpk] [--frames 2000] [--neighbours 3]
//! ```
//! `DIR` is a model directory as `eval-world --weights` takes it (f_V and G are used), and
//! `WORLD` a world written by `sound2scene synth` (the GAN's training images). The world
//! classifier names the classes in each real frame (it is right on 100 % of held-out real
//! frames, docs/results.md); frames where it sees none are not scored. Printed:
//! - G's class accuracy from each frame's own z^V: the share of pictures whose top class is one
//!   of the frame's, overall, per class, and by the frame's object area (pixels of its classes'
//!   colours, [`measure_class_area`]);
//! - the neighbourhood bound: the share of the other frames in each frame's IC-GAN
//!   neighbourhood (its `neighbours − 1` nearest by cosine in f_V, as `train-gan` finds them)
//!   that share a class with it, which a G that drew its neighbourhoods exactly would reach
//!   (overall and, beside G's accuracy, by object area);
//! - for the frames showing two classes, the share of pictures showing both (mixing);
//! - how the picture's top class depends on the inputs: agreement between G(z, h) and
//!   G(z, h') (same noise, another frame's feature), and between G(z, h) and G(z', h) (same
//!   feature, other noise);
//! - with `--discriminator`, D's mean score for real frames with their own feature, with
//!   another frame's feature and for G's pictures, and how often D prefers a real frame's own
//!   feature to that of a frame with other classes, and its mean score for G's pictures of the
//!   frame's class against those of another class (the signal that teaches G the class).

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use sound2scene::BackendKind;
use sound2scene::infer::bundle;
use sound2scene::infer::l2_normalize;
use sound2scene::infer::visual::tensor_to_images;
use sound2scene::models::biggan::{Discriminator, DiscriminatorConfig};
use sound2scene::models::burnpack::{self, NetworkKind};
use sound2scene::synth::{SoundClass, measure_class_area};
use sound2scene::train::gan::{KnnIndex, discover_images, knn_cosine, prepare_image};
use sound2scene::world::{Classified, WorldClassifier, default_classifier_path};

/// Measure how closely G follows its instance feature on training frames.
#[derive(Parser)]
struct Args {
    /// Model directory holding image_encoder.bpk and generator.bpk (and audio_encoder.bpk).
    #[arg(long)]
    weights: std::path::PathBuf,
    /// The GAN's training images (a world's `images/` folder, or any folder of frames).
    #[arg(long)]
    images: std::path::PathBuf,
    /// A discriminator checkpoint (`ckpt-NNNNNN/discriminator.bpk`) to test as well.
    #[arg(long)]
    discriminator: Option<std::path::PathBuf>,
    /// The world classifier (default: assets/models/world-classifier.bpk).
    #[arg(long)]
    classifier: Option<std::path::PathBuf>,
    /// Frames to use, the first in file-name order.
    #[arg(long, default_value_t = 2000)]
    frames: usize,
    /// IC-GAN neighbourhood size (`k_nn`, the frame itself included) for the bound.
    #[arg(long, default_value_t = 3)]
    neighbours: usize,
    /// Seed of G's noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend to run on.
    #[arg(long, default_value = "flex")]
    device: BackendKind,
}

/// Pictures per network call.
const BATCH: usize = 50;

/// Edges of the object-area bins, in pixels of the frame as stored (a 32×32 frame has 1024).
const AREA_BINS: [usize; 6] = [0, 16, 48, 96, 192, usize::MAX];

fn main() -> Result<()> {
    let args = Args::parse();
    if args.frames < 2 || args.neighbours < 2 {
        bail!("--frames and --neighbours must be at least 2");
    }
    let device = args.device.device()?;
    let pipeline = bundle::load_pipeline(&args.weights, &device)?;
    let classifier_path = args.classifier.unwrap_or_else(default_classifier_path);
    let classifier = WorldClassifier::load(&classifier_path, &device)?;

    let pairs = discover_images(&args.images)?;
    let images = pairs
        .iter()
        .take(args.frames)
        .map(|pair| {
            image::open(&pair.image)
                .map(|im| im.to_rgb8())
                .with_context(|| format!("cannot read {}", pair.image.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let n = images.len();
    if n < 2 {
        bail!("{} holds fewer than 2 images", args.images.display());
    }
    let truth = classifier.classify(&images)?;
    let features = batched(n, |s, e| Ok(pipeline.image_features(&images[s..e])?))?;
    let unit = l2_normalize(features.clone());
    // The neighbourhoods IC-GAN trains on (each frame first, then its nearest by cosine).
    let [_, dim] = features.dims();
    let knn = knn_cosine(&host(features.clone()), dim, args.neighbours, &device)?;
    // Frame i is paired with frame (7i + 3) mod n: a fixed shuffle that never pairs a frame
    // with itself when n is even (i = 7i + 3 mod n needs n to divide the odd 6i + 3).
    let other: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
    let other_index = Tensor::<1, Int>::from_data(
        TensorData::new(other.iter().map(|&j| j as i64).collect::<Vec<_>>(), [n]),
        &device,
    );
    let noise = pipeline.noise(n, args.seed, 1.0)?;

    let generate = |feats: &Tensor<2>, z: &Tensor<2>| -> Result<Tensor<4>> {
        batched(n, |s, e| {
            Ok(pipeline.generate_tensor(
                feats.clone().narrow(0, s, e - s),
                z.clone().narrow(0, s, e - s),
            )?)
        })
    };
    let classify = |pictures: Tensor<4>| -> Result<Classified> {
        Ok(classifier.classify(&tensor_to_images(pictures))?)
    };
    let own_pictures = generate(&features, &noise)?;
    let own = classify(own_pictures.clone())?;
    let other_feature = classify(generate(
        &features.clone().select(0, other_index.clone()),
        &noise,
    )?)?;
    let other_noise = classify(generate(
        &features,
        &noise.clone().select(0, other_index.clone()),
    )?)?;

    let scored: Vec<usize> = (0..n).filter(|&i| !truth.present(i).is_empty()).collect();
    println!(
        "{} frames of {}, {} with a class the classifier sees",
        n,
        args.images.display(),
        scored.len()
    );
    let hits = |i: usize| truth.present(i).contains(&own.top_class(i));
    println!(
        "G class accuracy from the frame's own feature   {:.3}",
        share(scored.iter().filter(|&&i| hits(i)).count(), scored.len())
    );
    let per_class: Vec<String> = SoundClass::ALL
        .iter()
        .map(|class| {
            let frames: Vec<usize> = scored
                .iter()
                .copied()
                .filter(|&i| truth.present(i).contains(class))
                .collect();
            let right = frames.iter().filter(|&&i| hits(i)).count();
            format!("{} {:.2}", class.name(), share(right, frames.len()))
        })
        .collect();
    println!("  by class: {}", per_class.join(", "));
    let area = |i: usize| -> usize {
        truth
            .present(i)
            .iter()
            .map(|&class| measure_class_area(&images[i], class))
            .sum()
    };
    let by_area: Vec<String> = AREA_BINS
        .windows(2)
        .map(|bin| {
            let frames: Vec<usize> = scored
                .iter()
                .copied()
                .filter(|&i| (bin[0]..bin[1]).contains(&area(i)))
                .collect();
            let right = frames.iter().filter(|&&i| hits(i)).count();
            let range = if bin[1] == usize::MAX {
                format!("{}+ px", bin[0])
            } else {
                format!("{}–{} px", bin[0], bin[1] - 1)
            };
            format!(
                "{range} {:.2}, bound {:.2} ({} frames)",
                share(right, frames.len()),
                neighbour_share(&knn, &truth, &frames),
                frames.len()
            )
        })
        .collect();
    println!("  by object area: {}", by_area.join(", "));
    println!(
        "neighbourhood bound (k_nn {})                   {:.3}",
        args.neighbours,
        neighbour_share(&knn, &truth, &scored)
    );
    let two: Vec<usize> = scored
        .iter()
        .copied()
        .filter(|&i| truth.present(i).len() == 2)
        .collect();
    let both = two
        .iter()
        .filter(|&&i| {
            let drawn = own.present(i);
            truth.present(i).iter().all(|c| drawn.contains(c))
        })
        .count();
    println!(
        "both classes drawn, frames showing two          {:.3} ({both} of {})",
        share(both, two.len()),
        two.len()
    );
    let agree = |a: &Classified, b: &Classified| {
        share(
            (0..n).filter(|&i| a.top_class(i) == b.top_class(i)).count(),
            n,
        )
    };
    println!(
        "same top class: same noise, other feature       {:.3}",
        agree(&own, &other_feature)
    );
    println!(
        "same top class: same feature, other noise       {:.3}",
        agree(&own, &other_noise)
    );

    if let Some(path) = &args.discriminator {
        let (d, _) = burnpack::load(
            path,
            NetworkKind::Discriminator,
            &device,
            |c: &DiscriminatorConfig, dv| c.init(dv),
        )?;
        let resolution = pipeline.generator_config().resolution;
        let real = real_batch(&images, resolution, &device);
        let unit_other = unit.clone().select(0, other_index);
        let score = |x: &Tensor<4>, h: &Tensor<2>| scores(&d, x, h, n);
        let (with_own, with_other, fake) = (
            score(&real, &unit)?,
            score(&real, &unit_other)?,
            score(&own_pictures, &unit)?,
        );
        let disjoint: Vec<usize> = scored
            .iter()
            .copied()
            .filter(|&i| {
                let theirs = truth.present(other[i]);
                !theirs.is_empty() && !truth.present(i).iter().any(|c| theirs.contains(c))
            })
            .collect();
        let prefers = disjoint
            .iter()
            .filter(|&&i| with_own[i] > with_other[i])
            .count();
        println!(
            "D: real + own feature {:.3}, real + other feature {:.3}, G's picture {:.3}",
            mean(&with_own),
            mean(&with_other),
            mean(&fake)
        );
        println!(
            "D prefers the own feature over another class's  {:.3} ({prefers} of {})",
            share(prefers, disjoint.len()),
            disjoint.len()
        );
        // `own_pictures` are the pictures `own` classified, so `hits` splits them.
        let (right, wrong): (Vec<usize>, Vec<usize>) = scored.iter().partition(|&&i| hits(i));
        let mean_of = |frames: &[usize]| mean(&frames.iter().map(|&i| fake[i]).collect::<Vec<_>>());
        println!(
            "D on G's pictures: of one of the frame's classes {:.3}, of another class {:.3}",
            mean_of(&right),
            mean_of(&wrong)
        );
    }
    Ok(())
}

/// `f(start, end)` over `[0, n)` in chunks of [`BATCH`], concatenated along dimension 0.
fn batched<const D: usize>(
    n: usize,
    mut f: impl FnMut(usize, usize) -> Result<Tensor<D>>,
) -> Result<Tensor<D>> {
    let parts = (0..n)
        .step_by(BATCH)
        .map(|s| f(s, (s + BATCH).min(n)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(parts, 0))
}

/// The frames as D sees them in training: `[n, 3, res, res]` in `[-1, 1]`.
fn real_batch(images: &[image::RgbImage], resolution: usize, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = images
        .iter()
        .flat_map(|im| prepare_image(im, resolution))
        .map(|v| f32::from(v) * (2.0 / 255.0) - 1.0)
        .collect();
    Tensor::from_data(
        TensorData::new(values, [images.len(), 3, resolution, resolution]),
        device,
    )
}

/// D's scores of pictures `x` `[n, 3, res, res]` with unit features `h` `[n, dim]`.
fn scores(d: &Discriminator, x: &Tensor<4>, h: &Tensor<2>, n: usize) -> Result<Vec<f32>> {
    let out = batched(n, |s, e| {
        Ok(d.try_forward(x.clone().narrow(0, s, e - s), h.clone().narrow(0, s, e - s))?)
    })?;
    Ok(host(out))
}

/// Share of the other members of each scored frame's neighbourhood that share a class with it.
fn neighbour_share(knn: &KnnIndex, truth: &Classified, scored: &[usize]) -> f64 {
    let (mut same, mut total) = (0usize, 0usize);
    for &i in scored {
        let classes = truth.present(i);
        for &j in knn.neighbours(i).iter().skip(1) {
            total += 1;
            same += usize::from(
                truth
                    .present(j as usize)
                    .iter()
                    .any(|c| classes.contains(c)),
            );
        }
    }
    share(same, total)
}

fn host<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default()
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn mean(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len().max(1) as f64
}
