//! The world's "Inception": a narrow ResNet trained on the procedural world's real frames to
//! say which of the eight [`SoundClass`]es a picture shows.
//!
//! Frames show zero, one or two sources, so the head is multi-label: eight logits, each a
//! sigmoid "this class is visible" trained with binary cross-entropy against the frame's ground
//! truth ([`sound2scene_synth::FrameTruth`]). The pooled trunk output is the feature that FID is
//! computed in; the logits, read as a softmax over the eight classes, give the Inception Score
//! and the top class.
//!
//! Training draws frames on the fly from a [`World`] (clip `k` of a step is clip
//! `step · batch + k`, never repeated), deterministically from the seed. Three quarters of the
//! frames (by default) are taken where a source is on screen, the rest anywhere in the clip.
//! Half of the frames (by default) are blurred by a down-and-up resize and every frame gets a
//! little pixel noise, so the classifier also judges soft, noisy generated pictures.
//!
//! Files: burnpack with the metadata `sound2scene.network = "world_classifier"` and
//! `sound2scene.config` = [`WorldClassifierConfig`] as JSON (the same keys as the networks of
//! [`sound2scene_models::burnpack`]).

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::store::burn_pack::Reader as BurnpackReader;
use burn::store::{BurnpackStore, FloatCastAdapter, ModuleSnapshot};
use burn::tensor::activation::relu;
use burn::tensor::{DType, Device, Tensor, TensorData};
use image::RgbImage;
use image::imageops::FilterType;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

// Burn's `Config` derive names `Result` unqualified: keep the std one in scope.
use crate::{Result as EvalResult, WorldEvalError};
use sound2scene_models::burnpack::{CONFIG_KEY, NETWORK_KEY};
use sound2scene_models::resnet::{BlockKind, ResNet, ResNetConfig};
use sound2scene_synth::{SoundClass, World, WorldConfig};
use sound2scene_train::error::Cause;
use sound2scene_train::init::seeded;

/// Number of classes the classifier scores (every [`SoundClass`]).
pub const CLASSES: usize = SoundClass::ALL.len();
/// The value of `sound2scene.network` in a classifier's burnpack file.
pub const NETWORK_NAME: &str = "world_classifier";
/// Sigmoid probability above which a class counts as visible.
pub const PRESENT_THRESHOLD: f64 = 0.5;
/// Images per forward pass when classifying.
const CHUNK: usize = 64;

/// Architecture of the [`WorldClassifier`].
#[derive(Config, Debug)]
pub struct WorldClassifierConfig {
    /// The trunk: basic blocks `[1, 1, 1, 1]` of base width 8 on RGB (64-wide feature).
    #[config(default = "ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1]).with_base_width(8)")]
    pub resnet: ResNetConfig,
    /// Side in pixels of the square input; other pictures are resized to it (bilinear,
    /// antialiased).
    #[config(default = 64)]
    pub image_size: usize,
}

impl WorldClassifierConfig {
    /// Width of the feature (the pooled trunk output).
    pub fn feature_dim(&self) -> usize {
        self.resnet.out_channels()
    }

    /// A randomly initialized network (trunk as [`ResNetConfig::init`], head as
    /// `nn.Linear`'s default).
    pub fn init_net(&self, device: &Device) -> ClassifierNet {
        ClassifierNet {
            resnet: self.resnet.init(device),
            head: LinearConfig::new(self.feature_dim(), CLASSES).init(device),
        }
    }
}

/// The network: ResNet trunk, global max pool, linear head to the eight class logits.
#[derive(Module, Debug)]
pub struct ClassifierNet {
    /// The trunk.
    pub resnet: ResNet,
    /// Linear layer from the feature to the logits.
    pub head: Linear,
}

/// What the network computes for a batch.
#[derive(Debug, Clone)]
pub struct ClassifierOutput {
    /// Max-pooled trunk output, `[batch, feature_dim]` (the FID feature).
    pub feature: Tensor<2>,
    /// Class logits, `[batch, 8]` in [`SoundClass::ALL`] order.
    pub logits: Tensor<2>,
}

impl ClassifierNet {
    /// # Shapes
    /// - `images`: `[batch, 3, size, size]` in `[-1, 1]` (see [`image_values`])
    /// - output: feature `[batch, feature_dim]`, logits `[batch, 8]`
    pub fn forward(&self, images: Tensor<4>) -> ClassifierOutput {
        // [batch, feature_dim, h / 32, w / 32]
        let map = self.resnet.forward_trunk(images);
        let [batch, channels, h, w] = map.dims();
        // Global max pool: "is it anywhere in the picture", which an average would dilute for
        // small objects. [batch, feature_dim]
        let feature = map
            .reshape([batch, channels, h * w])
            .max_dim(2)
            .reshape([batch, channels]);
        // [batch, 8]
        let logits = self.head.forward(feature.clone());
        ClassifierOutput { feature, logits }
    }
}

/// The classifier's verdict on a set of pictures, on the host.
#[derive(Debug, Clone)]
pub struct Classified {
    /// Features `[n, feature_dim]`.
    pub features: Array2<f64>,
    /// Logits `[n, 8]`.
    pub logits: Array2<f64>,
}

impl Classified {
    /// Number of pictures.
    pub fn len(&self) -> usize {
        self.logits.nrows()
    }

    /// Whether there are no pictures.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class with the largest logit for picture `i`.
    pub fn top_class(&self, i: usize) -> SoundClass {
        let row = self.logits.row(i);
        let best = (0..CLASSES)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        SoundClass::ALL[best]
    }

    /// Sigmoid probability that picture `i` shows `class`.
    pub fn probability(&self, i: usize, class: SoundClass) -> f64 {
        1.0 / (1.0 + (-self.logits[[i, class.index()]]).exp())
    }

    /// The classes of picture `i` above [`PRESENT_THRESHOLD`].
    pub fn present(&self, i: usize) -> Vec<SoundClass> {
        SoundClass::ALL
            .into_iter()
            .filter(|&c| self.probability(i, c) > PRESENT_THRESHOLD)
            .collect()
    }
}

/// The world classifier: the network with its configuration, on one device.
#[derive(Debug, Clone)]
pub struct WorldClassifier {
    net: ClassifierNet,
    config: WorldClassifierConfig,
    device: Device,
}

impl WorldClassifier {
    /// A classifier from a network (in inference mode) and its configuration.
    pub fn new(net: ClassifierNet, config: WorldClassifierConfig, device: &Device) -> Self {
        Self {
            net: net.valid(),
            config,
            device: device.clone(),
        }
    }

    /// A randomly initialized classifier, the same for the same `seed`.
    pub fn init(config: &WorldClassifierConfig, seed: u64, device: &Device) -> Self {
        Self::new(init_net(config, seed, device), config.clone(), device)
    }

    /// The configuration.
    pub fn config(&self) -> &WorldClassifierConfig {
        &self.config
    }

    /// The network.
    pub fn net(&self) -> &ClassifierNet {
        &self.net
    }

    /// Features and logits of `images` (any size; resized to the input side), computed in
    /// chunks of 64.
    ///
    /// # Errors
    /// [`WorldEvalError::Invalid`] for an empty slice or an image without pixels.
    pub fn classify(&self, images: &[RgbImage]) -> EvalResult<Classified> {
        if images.is_empty() {
            return Err(WorldEvalError::Invalid("no images to classify".into()));
        }
        let size = self.config.image_size;
        let dim = self.config.feature_dim();
        let mut features = Vec::with_capacity(images.len() * dim);
        let mut logits = Vec::with_capacity(images.len() * CLASSES);
        for chunk in images.chunks(CHUNK) {
            let mut values = Vec::with_capacity(chunk.len() * 3 * size * size);
            for image in chunk {
                values.extend(image_values(image, size)?);
            }
            let input = Tensor::<4>::from_data(
                TensorData::new(values, [chunk.len(), 3, size, size]),
                &self.device,
            );
            let out = self.net.forward(input);
            features.extend(host(out.feature));
            logits.extend(host(out.logits));
        }
        let n = images.len();
        let shape_error = |what| move |source| WorldEvalError::Shape { what, source };
        Ok(Classified {
            features: Array2::from_shape_vec((n, dim), features)
                .map_err(shape_error("classifier features"))?,
            logits: Array2::from_shape_vec((n, CLASSES), logits)
                .map_err(shape_error("classifier logits"))?,
        })
    }

    /// Write the classifier to `path` as burnpack (f32), overwriting it.
    ///
    /// # Errors
    /// [`WorldEvalError::Weights`] when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> EvalResult<()> {
        let path = path.as_ref();
        let caused = |reason: String, source: Cause| WorldEvalError::Weights {
            path: path.to_path_buf(),
            reason,
            source: Some(source),
        };
        let config_json = serde_json::to_string(&self.config).map_err(|e| {
            caused(
                format!("the configuration does not serialize: {e}"),
                e.into(),
            )
        })?;
        let mut store = BurnpackStore::from_file(path)
            .auto_extension(false)
            .overwrite(true)
            .metadata(NETWORK_KEY, NETWORK_NAME)
            .metadata(CONFIG_KEY, config_json);
        self.net
            .save_into(&mut store)
            .map_err(|e| caused(format!("cannot write: {e}"), e.into()))
    }

    /// Read a classifier written by [`save`](Self::save) onto `device`; every tensor must fit.
    ///
    /// # Errors
    /// [`WorldEvalError::Weights`] when the file is missing (with how to make one), holds
    /// another network, or its tensors do not fit.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> EvalResult<Self> {
        let path = path.as_ref();
        let weights_error = |reason: String| WorldEvalError::Weights {
            path: path.to_path_buf(),
            reason,
            source: None,
        };
        let caused = |reason: String, source: Cause| WorldEvalError::Weights {
            path: path.to_path_buf(),
            reason,
            source: Some(source),
        };
        if !path.is_file() {
            return Err(weights_error(
                "no such classifier file; train one with `sound2scene train-world-classifier \
                 --out FILE.bpk` or pass --classifier FILE"
                    .into(),
            ));
        }
        let reader = BurnpackReader::from_file(path)
            .map_err(|e| caused(format!("not a burnpack file: {e}"), e.into()))?;
        let metadata = reader.metadata();
        let network = metadata.get(NETWORK_KEY).map(String::as_str);
        if network != Some(NETWORK_NAME) {
            return Err(weights_error(format!(
                "holds {}, not a world classifier",
                network.unwrap_or("no sound2scene network")
            )));
        }
        let config: WorldClassifierConfig = metadata
            .get(CONFIG_KEY)
            .ok_or_else(|| weights_error(format!("no '{CONFIG_KEY}' entry")))
            .and_then(|json| {
                serde_json::from_str(json)
                    .map_err(|e| caused(format!("configuration does not parse: {e}"), e.into()))
            })?;
        let mut net = config.init_net(device);
        let mut store = BurnpackStore::from_file(path)
            .auto_extension(false)
            .with_from_adapter(FloatCastAdapter::to(DType::F32));
        let result = net
            .load_from(&mut store)
            .map_err(|e| caused(e.to_string(), e.into()))?;
        if !result.is_success() || !result.missing.is_empty() || !result.unused.is_empty() {
            return Err(weights_error(format!(
                "tensors do not fit: missing {:?}, unused {:?}, errors {:?}",
                result.missing, result.unused, result.errors
            )));
        }
        Ok(Self::new(net, config, device))
    }
}

/// The values of a tensor on the host, as `f64`.
fn host<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The classifier's input for one picture: resized to `size × size` when it is not (bilinear,
/// antialiased), channel-major, each 8-bit value `v` mapped to `v / 127.5 − 1`.
///
/// # Shapes
/// - output: `3 · size · size` values, `[3, size, size]`
///
/// # Errors
/// [`WorldEvalError::Invalid`] for an image without pixels.
pub fn image_values(image: &RgbImage, size: usize) -> EvalResult<Vec<f32>> {
    if image.width() == 0 || image.height() == 0 {
        return Err(WorldEvalError::Invalid("an image has no pixels".into()));
    }
    let side = size as u32;
    let resized;
    let image = if image.dimensions() == (side, side) {
        image
    } else {
        resized = image::imageops::resize(image, side, side, FilterType::Triangle);
        &resized
    };
    let plane = size * size;
    let mut values = vec![0.0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            values[c * plane + i] = f32::from(pixel.0[c]) / 127.5 - 1.0;
        }
    }
    Ok(values)
}

/// How the classifier is trained.
#[derive(Config, Debug)]
pub struct ClassifierTrainConfig {
    /// The network.
    #[config(default = "WorldClassifierConfig::new()")]
    pub model: WorldClassifierConfig,
    /// Optimizer steps.
    #[config(default = 1200)]
    pub steps: usize,
    /// Frames per step.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Adam learning rate at the start; it decays along a cosine to 5 % of itself.
    #[config(default = 5e-3)]
    pub lr: f64,
    /// Fraction of frames drawn where a source is on screen (the rest anywhere in the clip).
    #[config(default = 0.75)]
    pub object_frame_fraction: f64,
    /// Fraction of frames blurred by resizing down to 16–48 pixels and back up.
    #[config(default = 0.5)]
    pub blur_probability: f64,
    /// Pixel noise: each frame gets Gaussian noise of a standard deviation drawn uniformly in
    /// `[0, max_noise_std]` (in the `[-1, 1]` input units).
    #[config(default = 0.08)]
    pub max_noise_std: f64,
}

impl ClassifierTrainConfig {
    fn validate(&self) -> EvalResult<()> {
        let fraction = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(WorldEvalError::Invalid(format!(
                    "{name} is {v}; it must be in [0, 1]"
                )))
            }
        };
        fraction("object_frame_fraction", self.object_frame_fraction)?;
        fraction("blur_probability", self.blur_probability)?;
        if self.steps == 0 || self.batch_size < 2 {
            return Err(WorldEvalError::Invalid(format!(
                "steps ({}) must be at least 1 and batch_size ({}) at least 2",
                self.steps, self.batch_size
            )));
        }
        let lr_ok = self.lr.is_finite() && self.lr > 0.0;
        let noise_ok = self.max_noise_std.is_finite() && self.max_noise_std >= 0.0;
        if !(lr_ok && noise_ok) {
            return Err(WorldEvalError::Invalid(format!(
                "lr ({}) must be positive and max_noise_std ({}) non-negative",
                self.lr, self.max_noise_std
            )));
        }
        if !(8..=sound2scene_synth::MAX_IMAGE_SIZE as usize).contains(&self.model.image_size) {
            return Err(WorldEvalError::Invalid(format!(
                "image_size is {}; it must be in 8..={}",
                self.model.image_size,
                sound2scene_synth::MAX_IMAGE_SIZE
            )));
        }
        Ok(())
    }
}

/// A network of `config` drawn from `seed`, the same for the same seed: seeded and materialized
/// under the process-wide initialization lock of [`sound2scene_train::init`].
fn init_net(config: &WorldClassifierConfig, seed: u64, device: &Device) -> ClassifierNet {
    seeded(device, seed, |device| config.init_net(device))
}

/// The world the classifier is trained on for `seed`: the default world at the classifier's
/// image size.
fn world_for(seed: u64, image_size: usize) -> EvalResult<World> {
    Ok(World::new(WorldConfig {
        seed,
        clips: 0,
        image_size: image_size as u32,
        ..WorldConfig::default()
    })?)
}

/// Frames of clips `first..first + count` of `world`, one per clip, with their labels
/// `[count, 8]` (1 where the class is visible). A frame is drawn among those that show a source
/// with probability `object_fraction` (when the clip has any), else uniformly.
fn sample_frames(
    world: &World,
    first: usize,
    count: usize,
    object_fraction: f64,
    rng: &mut ChaCha8Rng,
) -> EvalResult<(Vec<RgbImage>, Vec<f32>)> {
    let mut images = Vec::with_capacity(count);
    let mut labels = vec![0.0f32; count * CLASSES];
    for k in 0..count {
        let clip = world.clip(first + k);
        let truth = clip.truth();
        let with_objects: Vec<usize> = truth
            .frames
            .iter()
            .filter(|f| !f.objects.is_empty())
            .map(|f| f.index)
            .collect();
        let index = if !with_objects.is_empty() && rng.random_bool(object_fraction) {
            with_objects[rng.random_range(0..with_objects.len())]
        } else {
            rng.random_range(0..truth.frames.len())
        };
        for object in &truth.frames[index].objects {
            labels[k * CLASSES + object.class.index()] = 1.0;
        }
        images.push(clip.frame(index)?);
    }
    Ok((images, labels))
}

/// Mean binary cross-entropy of `logits` against `targets` (both `[batch, 8]`), computed
/// stably as `max(x, 0) − x·y + log(1 + e^(−|x|))`.
fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let stable = logits.clone().abs().neg().exp().log1p();
    (relu(logits.clone()) - logits * targets + stable).mean()
}

/// Train a classifier on frames of the world of `seed`, reporting `(step, loss)` after each
/// optimizer step. Deterministic in `seed` on one device.
///
/// # Errors
/// [`WorldEvalError::Invalid`] for a bad configuration, [`WorldEvalError::NonFiniteLoss`] when
/// training diverges.
pub fn train_world_classifier(
    config: &ClassifierTrainConfig,
    seed: u64,
    device: &Device,
    mut on_step: impl FnMut(usize, f64),
) -> EvalResult<WorldClassifier> {
    config.validate()?;
    let size = config.model.image_size;
    let world = world_for(seed, size)?;
    let ad_device = device.clone().autodiff();
    let mut net = init_net(&config.model, seed, device).train();
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let batch = config.batch_size;
    for step in 0..config.steps {
        let (images, labels) = sample_frames(
            &world,
            step * batch,
            batch,
            config.object_frame_fraction,
            &mut rng,
        )?;
        let mut values = Vec::with_capacity(batch * 3 * size * size);
        for image in &images {
            values.extend(augment(image, size, config, &mut rng)?);
        }
        let input =
            Tensor::<4>::from_data(TensorData::new(values, [batch, 3, size, size]), &ad_device);
        let targets = Tensor::<2>::from_data(TensorData::new(labels, [batch, CLASSES]), &ad_device);
        let loss = bce_with_logits(net.forward(input).logits, targets);
        let value = f64::from(loss.clone().inner().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(WorldEvalError::NonFiniteLoss { step });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(cosine_lr(config.lr, step, config.steps), net, grads);
        on_step(step, value);
    }
    Ok(WorldClassifier::new(net, config.model.clone(), device))
}

/// Learning rate at `step` of `steps`: cosine from `lr` down to `lr / 20`.
fn cosine_lr(lr: f64, step: usize, steps: usize) -> f64 {
    let t = step as f64 / steps.max(1) as f64;
    let floor = lr / 20.0;
    floor + (lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

/// A training frame's input values: maybe blurred (down to 16–48 pixels and back up), then
/// Gaussian pixel noise, clamped to `[-1, 1]`.
fn augment(
    image: &RgbImage,
    size: usize,
    config: &ClassifierTrainConfig,
    rng: &mut ChaCha8Rng,
) -> EvalResult<Vec<f32>> {
    let mut values = if rng.random_bool(config.blur_probability) {
        let side = [16u32, 24, 32, 48][rng.random_range(0..4)].min(size as u32);
        let small = image::imageops::resize(image, side, side, FilterType::Triangle);
        let back = image::imageops::resize(&small, size as u32, size as u32, FilterType::Triangle);
        image_values(&back, size)?
    } else {
        image_values(image, size)?
    };
    let std = rng.random::<f64>() * config.max_noise_std;
    if std > 0.0 {
        let normal =
            Normal::new(0.0f32, std as f32).map_err(|source| WorldEvalError::Noise { source })?;
        for v in &mut values {
            *v = (*v + normal.sample(rng)).clamp(-1.0, 1.0);
        }
    }
    Ok(values)
}

/// Accuracy of the classifier on held-out frames.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierAccuracy {
    /// Frames judged.
    pub frames: usize,
    /// Fraction of frames whose eight yes/no verdicts (probability above
    /// [`PRESENT_THRESHOLD`]) all match the ground truth.
    pub exact_match: f64,
    /// Fraction of the `8 · frames` yes/no verdicts that are right.
    pub label_accuracy: f64,
    /// Among frames that show a source: fraction whose top class is one of them (0 without
    /// such frames).
    pub top1_accuracy: f64,
    /// Among frames that show only the background: fraction with no class above the threshold
    /// (0 without such frames).
    pub background_accuracy: f64,
}

/// Judge `classifier` on `frames` clean frames of the world of `world_seed` (one frame per clip
/// `0..frames`, three quarters of them showing a source when the clip has one), rendered at the
/// classifier's input size.
///
/// # Errors
/// [`WorldEvalError::Invalid`] for zero frames; the world's errors.
pub fn evaluate_classifier(
    classifier: &WorldClassifier,
    world_seed: u64,
    frames: usize,
) -> EvalResult<ClassifierAccuracy> {
    if frames == 0 {
        return Err(WorldEvalError::Invalid("no frames to evaluate on".into()));
    }
    let world = world_for(world_seed, classifier.config.image_size)?;
    let mut rng = ChaCha8Rng::seed_from_u64(world_seed ^ 0xE7A1);
    let (mut exact, mut labels_right) = (0usize, 0usize);
    let (mut with_objects, mut top1) = (0usize, 0usize);
    let (mut background, mut background_right) = (0usize, 0usize);
    for start in (0..frames).step_by(CHUNK) {
        let count = CHUNK.min(frames - start);
        let (images, labels) = sample_frames(&world, start, count, 0.75, &mut rng)?;
        let verdict = classifier.classify(&images)?;
        for i in 0..count {
            let truth = &labels[i * CLASSES..(i + 1) * CLASSES];
            let present = verdict.present(i);
            let right = SoundClass::ALL
                .iter()
                .filter(|c| present.contains(c) == (truth[c.index()] > 0.5))
                .count();
            labels_right += right;
            exact += usize::from(right == CLASSES);
            if truth.iter().any(|&t| t > 0.5) {
                with_objects += 1;
                top1 += usize::from(truth[verdict.top_class(i).index()] > 0.5);
            } else {
                background += 1;
                background_right += usize::from(present.is_empty());
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(ClassifierAccuracy {
        frames,
        exact_match: ratio(exact, frames),
        label_accuracy: ratio(labels_right, frames * CLASSES),
        top1_accuracy: ratio(top1, with_objects),
        background_accuracy: ratio(background_right, background),
    })
}
