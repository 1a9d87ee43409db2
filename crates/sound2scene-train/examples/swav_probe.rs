//! Diagnoses SwAV training on a folder of small images: per-step loss, prediction entropy and
//! gradient norms, then a k-nearest-neighbour probe of the trunk's features against a
//! random-init trunk, on labels from a procedural world's `ground_truth.json`.
//!
//! ```text
//! cargo run -p sound2scene-train --example swav_probe -- CONFIG.json IMAGES_DIR GROUND_TRUTH.json \
//!     [IMAGES] [STEPS] [OPTIMIZER: lars|sgd|adam] [CROPS: config|large]
//! ```

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::Config;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use sound2scene_train::swav::head::SwavNetwork;
use sound2scene_train::swav::images::SwavImages;
use sound2scene_train::swav::sinkhorn::swapped_prediction_loss;
use sound2scene_train::swav::{SwavConfig, init_network};

fn arg(index: usize) -> Option<String> {
    std::env::args().nth(index)
}

/// Squared L2 norm of every gradient, by parameter-name group.
struct GradNorms<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for GradNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.total += f64::from(g.square().sum().into_scalar::<f32>());
        }
    }
}

fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = GradNorms { grads, total: 0.0 };
    module.visit(&mut v);
    v.total.sqrt()
}

fn load_labels(path: &Path, n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("ground truth");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let clips = json["clips"].as_array().expect("clips");
    let mut backgrounds = Vec::new();
    let mut classes = Vec::new();
    for clip in clips.iter().take(n) {
        backgrounds.push(clip["background"].as_str().unwrap_or("").to_string());
        let mut c: Vec<String> = clip["sources"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|x| x["class"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        c.sort();
        classes.push(c);
    }
    (backgrounds, classes)
}

/// Unit-norm trunk features `[n, C]` of the un-augmented images.
fn features(net: &SwavNetwork, images: &[RgbImage], device: &Device) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for chunk in images.chunks(100) {
        let x = net.encoder.preprocess(chunk, device).expect("preprocess");
        let f = net.encoder.forward(x);
        let [n, c] = f.dims();
        let v = f.into_data().try_into_vec_as::<f32>().expect("f32");
        for i in 0..n {
            let row = &v[i * c..(i + 1) * c];
            let mean = row.iter().sum::<f32>() / c as f32;
            let centred: Vec<f32> = row.iter().map(|x| x - mean).collect();
            let norm = centred.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            out.push(centred.iter().map(|x| x / norm).collect());
        }
    }
    out
}

/// Leave-one-out k-NN (k = 5, majority) accuracy of `labels` with cosine similarity, over the
/// items where `labels` is `Some`.
fn knn_accuracy(feats: &[Vec<f32>], labels: &[Option<String>]) -> f64 {
    let (mut right, mut total) = (0usize, 0usize);
    for i in 0..feats.len() {
        let Some(label) = &labels[i] else { continue };
        let mut sims: Vec<(f32, usize)> = (0..feats.len())
            .filter(|&j| j != i && labels[j].is_some())
            .map(|j| {
                let s: f32 = feats[i].iter().zip(&feats[j]).map(|(a, b)| a * b).sum();
                (s, j)
            })
            .collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut votes: std::collections::HashMap<&String, usize> = Default::default();
        for (_, j) in sims.iter().take(5) {
            *votes
                .entry(labels[*j].as_ref().expect("label"))
                .or_default() += 1;
        }
        let best = votes.iter().max_by_key(|(_, c)| **c).map(|(l, _)| *l);
        right += usize::from(best == Some(label));
        total += 1;
    }
    right as f64 / total.max(1) as f64
}

fn probe(name: &str, net: &SwavNetwork, images: &[RgbImage], gt: &Path, device: &Device) {
    let (bg, classes) = load_labels(gt, images.len());
    let feats = features(net, images, device);
    let bg: Vec<Option<String>> = bg.into_iter().map(Some).collect();
    let single: Vec<Option<String>> = classes
        .iter()
        .map(|c| (c.len() == 1).then(|| c[0].clone()))
        .collect();
    println!(
        "probe {name}: 5-NN background accuracy {:.3}, single-object class accuracy {:.3}",
        knn_accuracy(&feats, &bg),
        knn_accuracy(&feats, &single)
    );
}

/// Writes the crops of step 1's first 8 images as a grid (row: image, column: crop; small
/// crops in the top-left corner of their cell).
fn dump_crops(
    set: &SwavImages,
    config: &SwavConfig,
    path: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let crops = set.crops(&config.crops, config.batch_size, config.seed, 1)?;
    let (b, s) = (crops.batch(), crops.large_size);
    let v_total = crops.large_count + crops.small_count;
    let mut grid = RgbImage::new((v_total * s) as u32, (8 * s) as u32);
    for row in 0..8 {
        for v in 0..v_total {
            let (data, side, index) = if v < crops.large_count {
                (&crops.large, s, v * b + row)
            } else {
                (
                    &crops.small,
                    crops.small_size,
                    (v - crops.large_count) * b + row,
                )
            };
            let plane = side * side;
            let base = index * 3 * plane;
            for y in 0..side {
                for x in 0..side {
                    let mut px = [0u8; 3];
                    for c in 0..3 {
                        let mean = sound2scene_models::image_encoder::IMAGENET_MEAN[c];
                        let std = sound2scene_models::image_encoder::IMAGENET_STD[c];
                        let val = data[base + c * plane + y * side + x] * std + mean;
                        px[c] = (val.clamp(0.0, 1.0) * 255.0) as u8;
                    }
                    grid.put_pixel((v * s + x) as u32, (row * s + y) as u32, image::Rgb(px));
                }
            }
        }
    }
    grid.save(path)?;
    println!("batch indices {:?}", &crops.indices[..8]);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config_path = arg(1).expect("config");
    let dir = arg(2).expect("images dir");
    let gt = arg(3).expect("ground truth");
    let n: usize = arg(4).and_then(|a| a.parse().ok()).unwrap_or(512);
    let steps: u64 = arg(5).and_then(|a| a.parse().ok()).unwrap_or(100);
    let optimizer = arg(6).unwrap_or_else(|| "lars".into());
    let crops_mode = arg(7).unwrap_or_else(|| "config".into());
    let mut config = SwavConfig::load(&config_path)?;
    if crops_mode == "large" {
        config.crops = config
            .crops
            .clone()
            .with_small_count(0)
            .with_large_scale([0.5, 1.0]);
    }
    if let Some(b) = std::env::var("BATCH").ok().and_then(|b| b.parse().ok()) {
        config.batch_size = b;
    }
    if let Some(k) = std::env::var("K").ok().and_then(|b| b.parse().ok()) {
        config.prototypes = k;
    }
    if let Some(f) = std::env::var("FEAT").ok().and_then(|b| b.parse().ok()) {
        config.feat_dim = f;
    }
    if let Some(lr) = std::env::var("LR").ok().and_then(|b| b.parse().ok()) {
        config.optimizer.base_lr = lr;
    }
    let images: Vec<RgbImage> = (0..n)
        .map(|i| {
            image::open(Path::new(&dir).join(format!("clip_{i:06}.jpg")))
                .expect("image")
                .to_rgb8()
        })
        .collect();
    let set = SwavImages::in_memory(images.clone())?;
    let device = Device::flex();
    if let Ok(path) = std::env::var("DUMP") {
        dump_crops(&set, &config, &path)?;
    }
    let ad = device.clone().autodiff();
    let random = init_network(&config, &device);
    probe("random init", &random, &images, Path::new(&gt), &device);
    let mut net = init_network(&config, &device).train();
    let mut optim: ModuleOptimizer = match optimizer.as_str() {
        "adam" => AdamConfig::new().init(),
        "sgd" => config
            .optimizer
            .clone()
            .with_lars(false)
            .with_weight_decay(0.0)
            .init(),
        _ => config.optimizer.init(),
    };
    let b = config.batch_size;
    let k = config.prototypes as f64;
    println!("ln K = {:.4}", k.ln());
    for step in 1..=steps {
        let crops = set.crops(&config.crops, b, config.seed, step)?;
        let large = Tensor::<4>::from_data(
            TensorData::new(
                crops.large,
                [crops.large_count * b, 3, crops.large_size, crops.large_size],
            ),
            &ad,
        );
        let small = (crops.small_count > 0).then(|| {
            Tensor::<4>::from_data(
                TensorData::new(
                    crops.small,
                    [crops.small_count * b, 3, crops.small_size, crops.small_size],
                ),
                &ad,
            )
        });
        let mut model = net.clone();
        model.head = model.head.normalize_prototypes();
        let out = model.forward(large, small)?;
        let scores = out.scores;
        let mut settings = config.loss_settings();
        settings.batch = b;
        let loss = swapped_prediction_loss(scores.clone(), &settings)?;
        let value = loss.clone().inner().into_scalar::<f32>();
        // Prediction entropy of crop 0 and the spread of scores over prototypes.
        let s0 = scores.clone().inner().narrow(0, 0, b);
        let p = softmax(s0.clone().div_scalar(config.temperature), 1);
        let entropy = (p.clone() * p.clamp_min(1e-12).log())
            .sum_dim(1)
            .mean()
            .neg()
            .into_scalar::<f32>();
        let spread = s0.var(1).sqrt().mean().into_scalar::<f32>();
        let emb = out.embedding.inner().narrow(0, 0, b);
        let emb_var = emb.var(0).sum().into_scalar::<f32>();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let g_trunk = grad_norm(&model.encoder, &grads);
        let g_proto = grad_norm(&model.head.prototypes, &grads);
        let g_head = grad_norm(&model.head, &grads);
        if step <= config.freeze_prototypes_steps {
            let _ = grads.remove::<2>(model.head.prototypes.weight.id);
        }
        if optimizer == "lars" {
            grads = config.optimizer.adapt(&model, grads);
        }
        let lr = if optimizer == "adam" {
            1e-3
        } else {
            config.optimizer.lr_at(step, config.steps)
        };
        net = optim.step(lr, model, grads);
        if step <= 10 || step % 10 == 0 {
            println!(
                "step {step:4} loss {value:.4} entropy(p0) {entropy:.4} score-std/k {spread:.4} \
                 emb-var/batch {emb_var:.4} |g| trunk {g_trunk:.2e} head {g_head:.2e} proto \
                 {g_proto:.2e}"
            );
        }
    }
    let trained = net.valid();
    probe("trained", &trained, &images, Path::new(&gt), &device);
    Ok(())
}
