//! SwAV's multi-crop augmentation on `image` crate images, deterministic and parallel.
//!
//! Reference: SwAV `src/multicropdataset.py`. Every crop is made independently: torchvision's
//! `RandomResizedCrop(size, scale)` (aspect ratio in `[3/4, 4/3]`, ten tries, centre-crop
//! fallback) resized with an antialiased bilinear filter, a horizontal flip with probability
//! 1/2, `ColorJitter(0.8, 0.8, 0.8, 0.2)` with probability 0.8 (brightness, contrast,
//! saturation and hue in a random order), `RandomGrayscale(0.2)`, a Gaussian blur with
//! probability 1/2 and σ uniform in `blur_sigma`, then ImageNet normalization. Colour
//! operations work on `f32` values in `[0, 1]` (torchvision works on 8-bit PIL images, so
//! values differ by rounding). The normalization uses the image encoder's
//! [`IMAGENET_MEAN`]/[`IMAGENET_STD`] (SwAV's training script has 0.228 for the red
//! standard deviation; Sound2Scene's feature extraction uses 0.229, which is kept here so the
//! trunk is trained on the input statistics it is later used with).
//!
//! The random draws of crop `v` of the image at position `b` of step `step` come from a
//! ChaCha8 stream seeded by `(seed, step, b, v)` alone ([`crop_seed`]), so a batch is the same
//! whatever the thread count, and a resumed run sees the same crops as an uninterrupted one.

use burn::config::Config;
use image::RgbImage;
use image::imageops::{self, FilterType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sound2scene_models::image_encoder::{IMAGENET_MEAN, IMAGENET_STD};

use crate::error::TrainError;
use crate::init::splitmix;

/// Crop side of SwAV's large crops at ImageNet resolution.
pub const OFFICIAL_LARGE: usize = 224;
/// Crop side of SwAV's small crops at ImageNet resolution.
pub const OFFICIAL_SMALL: usize = 96;

/// The multi-crop augmentation (SwAV `--nmb_crops 2 6 --size_crops 224 96 --min_scale_crops
/// 0.14 0.05 --max_scale_crops 1 0.14` and `multicropdataset.py`'s colour distortion).
#[derive(Config, Debug)]
pub struct MultiCropConfig {
    /// Side S of the large crops in pixels (224 official).
    #[config(default = 224)]
    pub large_size: usize,
    /// Number of large crops (2 official); they come first.
    #[config(default = 2)]
    pub large_count: usize,
    /// Area fraction range of the large crops (`[0.14, 1]`).
    #[config(default = "[0.14, 1.0]")]
    pub large_scale: [f64; 2],
    /// Side s of the small crops in pixels (96 official).
    #[config(default = 96)]
    pub small_size: usize,
    /// Number of small crops (6 official; 0 for none).
    #[config(default = 6)]
    pub small_count: usize,
    /// Area fraction range of the small crops (`[0.05, 0.14]`).
    #[config(default = "[0.05, 0.14]")]
    pub small_scale: [f64; 2],
    /// Probability of a horizontal flip.
    #[config(default = 0.5)]
    pub flip_probability: f64,
    /// Probability of applying the colour jitter.
    #[config(default = 0.8)]
    pub jitter_probability: f64,
    /// Brightness factor range `[1 − b, 1 + b]`.
    #[config(default = 0.8)]
    pub brightness: f64,
    /// Contrast factor range `[1 − c, 1 + c]`.
    #[config(default = 0.8)]
    pub contrast: f64,
    /// Saturation factor range `[1 − s, 1 + s]`.
    #[config(default = 0.8)]
    pub saturation: f64,
    /// Hue shift range `[−h, h]` (fraction of a turn).
    #[config(default = 0.2)]
    pub hue: f64,
    /// Probability of converting to grayscale.
    #[config(default = 0.2)]
    pub grayscale_probability: f64,
    /// Probability of a Gaussian blur.
    #[config(default = 0.5)]
    pub blur_probability: f64,
    /// Range of the blur's standard deviation in pixels (`[0.1, 2.0]` at 224).
    #[config(default = "[0.1, 2.0]")]
    pub blur_sigma: [f64; 2],
}

impl MultiCropConfig {
    /// The official settings scaled to large crops of `size` pixels: small crops of
    /// `round(size · 96 / 224)` (at least 1) and blur σ scaled by `size / 224`.
    pub fn for_resolution(size: usize) -> Self {
        let ratio = size as f64 / OFFICIAL_LARGE as f64;
        let small = ((size * OFFICIAL_SMALL) as f64 / OFFICIAL_LARGE as f64).round() as usize;
        let [lo, hi] = Self::new().blur_sigma;
        Self::new()
            .with_large_size(size)
            .with_small_size(small.max(1))
            .with_blur_sigma([lo * ratio, hi * ratio])
    }

    /// Multi-crop for small images (32–64 pixels) with little in them: large crops of `size`
    /// pixels over `[0.3, 1]` of the image, 4 small crops of `size / 2` over `[0.1, 0.3]`,
    /// SimCLR's colour distortion at strength 0.5 (`ColorJitter(0.4, 0.4, 0.4, 0.1)`) and
    /// grayscale with probability 0.1; blur as [`Self::for_resolution`].
    ///
    /// The official strength (scales down to 5 % of the image, `ColorJitter(0.8, 0.8, 0.8,
    /// 0.2)`, grayscale 0.2) leaves two crops of a 32-pixel image with a few flat colours
    /// almost nothing in common: a random trunk cannot predict one view's codes from the other,
    /// the swapped-prediction loss is then lowest for uniform predictions, and the run
    /// collapses to loss `ln K` before the trunk learns anything (see [`super`]).
    pub fn low_resolution(size: usize) -> Self {
        Self::for_resolution(size)
            .with_large_scale([0.3, 1.0])
            .with_small_count(4)
            .with_small_size((size / 2).max(1))
            .with_small_scale([0.1, 0.3])
            .with_brightness(0.4)
            .with_contrast(0.4)
            .with_saturation(0.4)
            .with_hue(0.1)
            .with_grayscale_probability(0.1)
    }

    /// Crops per image, `large_count + small_count`.
    pub fn crops(&self) -> usize {
        self.large_count + self.small_count
    }

    /// Side and area range of crop `v` (large crops first).
    pub fn crop_geometry(&self, v: usize) -> (usize, [f64; 2]) {
        if v < self.large_count {
            (self.large_size, self.large_scale)
        } else {
            (self.small_size, self.small_scale)
        }
    }

    pub(crate) fn check(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::config(m));
        if self.large_count == 0 || self.large_size == 0 {
            return bad("multi-crop needs at least one large crop of at least 1 pixel".into());
        }
        if self.crops() < 2 {
            return bad("SwAV needs at least two crops per image".into());
        }
        if self.small_count > 0 && self.small_size == 0 {
            return bad("small crops need a size of at least 1 pixel".into());
        }
        for (name, [lo, hi]) in [
            ("large_scale", self.large_scale),
            ("small_scale", self.small_scale),
        ] {
            if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
                return bad(format!(
                    "{name} must satisfy 0 < min <= max <= 1, got [{lo}, {hi}]"
                ));
            }
        }
        let [s_lo, s_hi] = self.blur_sigma;
        if !(s_lo > 0.0 && s_lo <= s_hi && s_hi.is_finite()) {
            return bad(format!(
                "blur_sigma must satisfy 0 < min <= max, got [{s_lo}, {s_hi}]"
            ));
        }
        let probabilities = [
            self.flip_probability,
            self.jitter_probability,
            self.grayscale_probability,
            self.blur_probability,
        ];
        if probabilities.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return bad("augmentation probabilities must lie in [0, 1]".into());
        }
        let jitter = [self.brightness, self.contrast, self.saturation];
        if jitter.iter().any(|j| !(0.0..=1.0).contains(j)) || !(0.0..=0.5).contains(&self.hue) {
            return bad("jitter strengths must lie in [0, 1] and the hue in [0, 0.5]".into());
        }
        Ok(())
    }
}

/// The crops of one training step, ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct CropBatch {
    /// Data-set indices of the B images, in batch order.
    pub indices: Vec<usize>,
    /// Side S of the large crops.
    pub large_size: usize,
    /// Number L of large crops per image.
    pub large_count: usize,
    /// The large crops, normalized, crop-major: `[L · B, 3, S, S]` (crop `v` of image `b` at
    /// row `v · B + b`).
    pub large: Vec<f32>,
    /// Side s of the small crops.
    pub small_size: usize,
    /// Number N of small crops per image.
    pub small_count: usize,
    /// The small crops, crop-major: `[N · B, 3, s, s]` (empty when N is 0).
    pub small: Vec<f32>,
}

impl CropBatch {
    /// Images in the batch, B.
    pub fn batch(&self) -> usize {
        self.indices.len()
    }
}

/// The seed of the random stream of crop `crop` of the image at batch position `position` in
/// optimizer step `step` (1-based) of a run seeded with `seed`.
pub fn crop_seed(seed: u64, step: u64, position: usize, crop: usize) -> u64 {
    let mut h = splitmix(seed ^ 0x5377_6176_4372_6f70);
    for x in [step, position as u64, crop as u64] {
        h = splitmix(h ^ splitmix(x));
    }
    h
}

/// All crops of a batch of images, computed in parallel (rayon), each from its own
/// [`crop_seed`] stream.
///
/// # Shapes
/// - output: see [`CropBatch`]
///
/// # Errors
/// [`TrainError::Config`] for an invalid configuration; [`TrainError::Data`] for an image
/// without pixels.
pub fn multi_crop_batch(
    images: &[&RgbImage],
    indices: Vec<usize>,
    config: &MultiCropConfig,
    seed: u64,
    step: u64,
) -> Result<CropBatch, TrainError> {
    config.check()?;
    if let Some(position) = images
        .iter()
        .position(|i| i.width() == 0 || i.height() == 0)
    {
        return Err(TrainError::Data {
            path: format!(
                "image #{}",
                indices.get(position).copied().unwrap_or(position)
            )
            .into(),
            reason: "the image has no pixels".into(),
            source: None,
        });
    }
    let batch = images.len();
    let crops: Vec<Vec<f32>> = (0..config.crops() * batch)
        .into_par_iter()
        .map(|job| {
            let (v, b) = (job / batch, job % batch);
            let (size, scale) = config.crop_geometry(v);
            let mut rng = ChaCha8Rng::seed_from_u64(crop_seed(seed, step, b, v));
            augment_crop(images[b], size, scale, config, &mut rng)
        })
        .collect();
    let split = config.large_count * batch;
    let mut large = Vec::with_capacity(split * 3 * config.large_size.pow(2));
    let mut small = Vec::new();
    for (job, crop) in crops.into_iter().enumerate() {
        if job < split {
            large.extend(crop);
        } else {
            small.extend(crop);
        }
    }
    Ok(CropBatch {
        indices,
        large_size: config.large_size,
        large_count: config.large_count,
        large,
        small_size: config.small_size,
        small_count: config.small_count,
        small,
    })
}

/// One augmented crop of `image`: random resized crop to `size × size` with area fraction in
/// `scale`, flip, colour distortion, blur and normalization, drawing from `rng`.
///
/// # Shapes
/// - output: `3 · size · size` values, `[3, size, size]` (R, G, B planes), normalized
pub fn augment_crop(
    image: &RgbImage,
    size: usize,
    scale: [f64; 2],
    config: &MultiCropConfig,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let (left, top, width, height) = random_resized_crop_box(image, scale, rng);
    let region = imageops::crop_imm(image, left, top, width, height).to_image();
    let side = size as u32;
    let mut crop = imageops::resize(&region, side, side, FilterType::Triangle);
    if rng.random::<f64>() < config.flip_probability {
        imageops::flip_horizontal_in_place(&mut crop);
    }
    let plane = size * size;
    // [3, size, size] in [0, 1]
    let mut planes = vec![0.0f32; 3 * plane];
    for (i, pixel) in crop.pixels().enumerate() {
        for c in 0..3 {
            planes[c * plane + i] = f32::from(pixel.0[c]) / 255.0;
        }
    }
    if rng.random::<f64>() < config.jitter_probability {
        color_jitter(&mut planes, plane, config, rng);
    }
    if rng.random::<f64>() < config.grayscale_probability {
        to_grayscale(&mut planes, plane);
    }
    if rng.random::<f64>() < config.blur_probability {
        let [lo, hi] = config.blur_sigma;
        let sigma = rng.random_range(lo..=hi);
        gaussian_blur(&mut planes, size, sigma as f32);
    }
    for c in 0..3 {
        for v in &mut planes[c * plane..(c + 1) * plane] {
            *v = (*v - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    planes
}

/// torchvision `RandomResizedCrop.get_params`: `(left, top, width, height)`.
fn random_resized_crop_box(
    image: &RgbImage,
    scale: [f64; 2],
    rng: &mut ChaCha8Rng,
) -> (u32, u32, u32, u32) {
    let (w, h) = (image.width(), image.height());
    let area = f64::from(w) * f64::from(h);
    let (log_lo, log_hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale[0]..=scale[1]);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw >= 1.0 && ch >= 1.0 && cw <= f64::from(w) && ch <= f64::from(h) {
            let (cw, ch) = (cw as u32, ch as u32);
            let top = rng.random_range(0..=h - ch);
            let left = rng.random_range(0..=w - cw);
            return (left, top, cw, ch);
        }
    }
    // Fallback: the largest centred crop within the aspect-ratio range.
    let ratio = f64::from(w) / f64::from(h);
    let (cw, ch) = if ratio < 3.0 / 4.0 {
        (w, ((f64::from(w) * 4.0 / 3.0).round() as u32).clamp(1, h))
    } else if ratio > 4.0 / 3.0 {
        (((f64::from(h) * 4.0 / 3.0).round() as u32).clamp(1, w), h)
    } else {
        (w, h)
    };
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// ITU-R 601 luma, as torchvision's `rgb_to_grayscale`.
fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// torchvision `ColorJitter`: brightness, contrast, saturation and hue factors drawn
/// uniformly, applied in a random order, each result clamped to `[0, 1]`.
fn color_jitter(planes: &mut [f32], plane: usize, config: &MultiCropConfig, rng: &mut ChaCha8Rng) {
    let factor = |strength: f64, rng: &mut ChaCha8Rng| {
        if strength > 0.0 {
            rng.random_range((1.0 - strength).max(0.0)..=1.0 + strength) as f32
        } else {
            1.0
        }
    };
    let brightness = factor(config.brightness, rng);
    let contrast = factor(config.contrast, rng);
    let saturation = factor(config.saturation, rng);
    let hue = if config.hue > 0.0 {
        rng.random_range(-config.hue..=config.hue) as f32
    } else {
        0.0
    };
    let mut order = [0usize, 1, 2, 3];
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let (r, rest) = planes.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for op in order {
        match op {
            0 => {
                for v in r.iter_mut().chain(g.iter_mut()).chain(b.iter_mut()) {
                    *v = (*v * brightness).clamp(0.0, 1.0);
                }
            }
            1 => {
                let mean = (0..plane).map(|i| luma(r[i], g[i], b[i])).sum::<f32>() / plane as f32;
                for v in r.iter_mut().chain(g.iter_mut()).chain(b.iter_mut()) {
                    *v = (contrast * *v + (1.0 - contrast) * mean).clamp(0.0, 1.0);
                }
            }
            2 => {
                for i in 0..plane {
                    let gray = luma(r[i], g[i], b[i]);
                    for v in [&mut r[i], &mut g[i], &mut b[i]] {
                        *v = (saturation * *v + (1.0 - saturation) * gray).clamp(0.0, 1.0);
                    }
                }
            }
            _ => {
                for i in 0..plane {
                    let (h, s, v) = rgb_to_hsv(r[i], g[i], b[i]);
                    let (nr, ng, nb) = hsv_to_rgb((h + hue).rem_euclid(1.0), s, v);
                    (r[i], g[i], b[i]) = (nr, ng, nb);
                }
            }
        }
    }
}

/// RGB in `[0, 1]` to (hue in `[0, 1)`, saturation, value).
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    let h = if delta <= 0.0 {
        0.0
    } else if max == r {
        ((g - b) / delta).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / delta + 2.0) / 6.0
    } else {
        ((r - g) / delta + 4.0) / 6.0
    };
    (h, s, max)
}

/// (hue in `[0, 1)`, saturation, value) to RGB.
fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let sector = h6.floor();
    let f = h6 - sector;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match (sector as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// Replaces every channel by the luma.
fn to_grayscale(planes: &mut [f32], plane: usize) {
    for i in 0..plane {
        let gray = luma(planes[i], planes[plane + i], planes[2 * plane + i]);
        for c in 0..3 {
            planes[c * plane + i] = gray;
        }
    }
}

/// Separable Gaussian blur of standard deviation `sigma` pixels (kernel radius ⌈3σ⌉, borders
/// repeated) on each `[size, size]` plane.
fn gaussian_blur(planes: &mut [f32], size: usize, sigma: f32) {
    let radius = (3.0 * sigma).ceil().max(1.0) as isize;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|x| (-((x * x) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let weights: Vec<f32> = weights.iter().map(|w| w / total).collect();
    let last = size as isize - 1;
    let mut tmp = vec![0.0f32; size * size];
    for channel in planes.chunks_exact_mut(size * size) {
        for y in 0..size {
            for x in 0..size {
                tmp[y * size + x] = weights
                    .iter()
                    .enumerate()
                    .map(|(k, w)| {
                        let xx = (x as isize + k as isize - radius).clamp(0, last) as usize;
                        w * channel[y * size + xx]
                    })
                    .sum();
            }
        }
        for y in 0..size {
            for x in 0..size {
                channel[y * size + x] = weights
                    .iter()
                    .enumerate()
                    .map(|(k, w)| {
                        let yy = (y as isize + k as isize - radius).clamp(0, last) as usize;
                        w * tmp[yy * size + x]
                    })
                    .sum();
            }
        }
    }
}
