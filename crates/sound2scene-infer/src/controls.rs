//! The paper's controls in feature space (Figs. 5–7): interpolation between two sounds,
//! composition of a photo's feature with a sound's, and editing a photo by GAN inversion.
//!
//! Waveform-space controls (mixing sounds, changing the volume) live on
//! [`Waveform`](sound2scene_audio::Waveform): [`Waveform::mix`](sound2scene_audio::Waveform::mix) and
//! [`Waveform::gain_db`](sound2scene_audio::Waveform::gain_db), checked and combined by
//! [`mix_and_gain`](crate::mix_and_gain).

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use image::imageops::FilterType;

use crate::error::{InferError, Result};
use crate::limits::{check_inversion_steps, check_steps};
use crate::pipeline::{SoundToScene, l2_normalize};

/// How to walk between two features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// Straight line: `(1 - t) a + t b`.
    #[default]
    Linear,
    /// Great circle between the directions (spherical linear interpolation), the usual choice
    /// for features that the generator normalizes anyway.
    Spherical,
}

/// `(1 - t) a + t b`, row by row. `a`, `b`: `[n, d]`.
pub fn lerp(a: Tensor<2>, b: Tensor<2>, t: f32) -> Tensor<2> {
    a.mul_scalar(1.0 - t) + b.mul_scalar(t)
}

/// Spherical interpolation between the rows of `a` and `b` (`[n, d]`): the result's direction
/// moves along the great circle from `a`'s to `b`'s at constant angular speed; rows that are
/// (nearly) parallel fall back to [`lerp`]. `t = 0` gives `a` and `t = 1` gives `b`.
pub fn slerp(a: Tensor<2>, b: Tensor<2>, t: f32) -> Tensor<2> {
    let [n, _] = a.dims();
    let device = a.device();
    let cos = (l2_normalize(a.clone()) * l2_normalize(b.clone()))
        .sum_dim(1)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    let mut wa = Vec::with_capacity(n);
    let mut wb = Vec::with_capacity(n);
    for c in cos {
        let omega = c.clamp(-1.0, 1.0).acos();
        let sin = omega.sin();
        if sin.abs() < 1e-6 {
            wa.push(1.0 - t);
            wb.push(t);
        } else {
            wa.push(((1.0 - t) * omega).sin() / sin);
            wb.push((t * omega).sin() / sin);
        }
    }
    let wa = Tensor::<2>::from_data(TensorData::new(wa, [n, 1]), &device);
    let wb = Tensor::<2>::from_data(TensorData::new(wb, [n, 1]), &device);
    a * wa + b * wb
}

/// `steps` features `[steps, d]` from `a` (`[1, d]`) to `b` (`[1, d]`), endpoints included:
/// step `i` is at `t = i / (steps - 1)`.
///
/// # Errors
/// [`InferError::OutOfRange`] when `steps` is outside 2 ..= [`MAX_STEPS`]; [`InferError::Invalid`]
/// when the inputs are not single rows of one width.
///
/// [`MAX_STEPS`]: crate::limits::MAX_STEPS
pub fn interpolate(
    a: Tensor<2>,
    b: Tensor<2>,
    steps: usize,
    mode: Interpolation,
) -> Result<Tensor<2>> {
    let steps = check_steps("interpolation steps", steps)?;
    if a.dims()[0] != 1 || a.dims() != b.dims() {
        return Err(InferError::Invalid(format!(
            "interpolation endpoints must both be [1, d], got {:?} and {:?}",
            a.dims(),
            b.dims()
        )));
    }
    let rows = (0..steps)
        .map(|i| {
            let t = i as f32 / (steps - 1) as f32;
            match mode {
                Interpolation::Linear => lerp(a.clone(), b.clone(), t),
                Interpolation::Spherical => slerp(a.clone(), b.clone(), t),
            }
        })
        .collect();
    Ok(Tensor::cat(rows, 0))
}

/// Compose an image feature with an audio feature (Fig. 6): `(1 - alpha) ẑ^V + alpha ẑ^A`
/// with both unit-normalized first, so `alpha = 0` is the image alone and `alpha = 1` the
/// sound alone. `image`, `audio`: `[n, d]`.
///
/// # Errors
/// [`InferError::Invalid`] for a non-finite `alpha` or different shapes.
pub fn compose(image: Tensor<2>, audio: Tensor<2>, alpha: f32) -> Result<Tensor<2>> {
    if !alpha.is_finite() {
        return Err(InferError::Invalid(format!(
            "alpha must be finite, got {alpha}"
        )));
    }
    if image.dims() != audio.dims() {
        return Err(InferError::Invalid(format!(
            "image feature {:?} and audio feature {:?} differ in shape",
            image.dims(),
            audio.dims()
        )));
    }
    Ok(lerp(l2_normalize(image), l2_normalize(audio), alpha))
}

/// Settings of GAN inversion.
#[derive(Debug, Clone)]
pub struct InversionConfig {
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate for z and the feature.
    pub learning_rate: f32,
    /// Also optimize the conditioning feature, not only z.
    pub optimize_feature: bool,
    /// Weight of the feature term `||f - f0||²` that keeps the optimized feature near its
    /// starting point (the photo's own z^V).
    pub feature_weight: f32,
    /// Seed of the starting noise.
    pub seed: u64,
}

impl Default for InversionConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            learning_rate: 0.05,
            optimize_feature: true,
            feature_weight: 0.1,
            seed: 0,
        }
    }
}

/// The result of inverting an image into G.
#[derive(Debug, Clone)]
pub struct Inversion {
    /// The optimized noise `[1, dim_z]`.
    pub z: Tensor<2>,
    /// The optimized (unit-norm) feature `[1, dim]`.
    pub feature: Tensor<2>,
    /// Pixel mean squared error (images in `[-1, 1]`) before step 1 and after each step:
    /// `steps + 1` values.
    pub errors: Vec<f32>,
}

/// An image as G's target: resized to G's resolution, `[1, 3, res, res]` in `[-1, 1]`.
fn target_tensor(image: &RgbImage, resolution: usize, device: &burn::tensor::Device) -> Tensor<4> {
    let resized = image::imageops::resize(
        image,
        resolution as u32,
        resolution as u32,
        FilterType::Triangle,
    );
    let plane = resolution * resolution;
    let mut values = vec![0.0f32; 3 * plane];
    for (i, px) in resized.pixels().enumerate() {
        for c in 0..3 {
            values[c * plane + i] = px.0[c] as f32 / 127.5 - 1.0;
        }
    }
    Tensor::from_data(
        TensorData::new(values, [1, 3, resolution, resolution]),
        device,
    )
}

/// One Adam update of `param` with gradient `grad` at step `t` (1-based).
struct Adam {
    m: Tensor<2>,
    v: Tensor<2>,
}

impl Adam {
    fn new(like: &Tensor<2>) -> Self {
        Self {
            m: like.zeros_like(),
            v: like.zeros_like(),
        }
    }

    fn step(&mut self, param: Tensor<2>, grad: Tensor<2>, lr: f32, t: i32) -> Tensor<2> {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        const EPS: f32 = 1e-8;
        self.m = self.m.clone().mul_scalar(B1) + grad.clone().mul_scalar(1.0 - B1);
        self.v = self.v.clone().mul_scalar(B2) + grad.powi_scalar(2).mul_scalar(1.0 - B2);
        let m_hat = self.m.clone().div_scalar(1.0 - B1.powi(t));
        let v_hat = self.v.clone().div_scalar(1.0 - B2.powi(t));
        param - m_hat.mul_scalar(lr) / v_hat.sqrt().add_scalar(EPS)
    }
}

impl SoundToScene {
    /// Invert `image` into G (Fig. 7's first step): optimize z and, optionally, the feature with
    /// Adam on the pixel MSE plus `feature_weight · ||f − f0||²`, starting from `feature`
    /// (`[1, dim]`, e.g. the photo's z^V) and noise from `config.seed`. `progress` is called
    /// after each step with the step number and the pixel error.
    ///
    /// # Errors
    /// [`InferError::OutOfRange`] for steps outside 1 ..=
    /// [`MAX_INVERSION_STEPS`](crate::limits::MAX_INVERSION_STEPS); [`InferError::Invalid`] for
    /// a feature that is not `[1, d]`.
    pub fn invert(
        &self,
        image: &RgbImage,
        feature: Tensor<2>,
        config: &InversionConfig,
        mut progress: impl FnMut(usize, f32),
    ) -> Result<Inversion> {
        check_inversion_steps("inversion steps", config.steps)?;
        if feature.dims()[0] != 1 {
            return Err(InferError::Invalid(format!(
                "inversion needs a [1, d] feature, got {:?}",
                feature.dims()
            )));
        }
        let device = self.device().clone().autodiff();
        let generator = self.generator_ref().clone().fork(&device).freeze();
        let resolution = self.generator_config().resolution;
        let target = target_tensor(image, resolution, &device);
        let f0 = l2_normalize(feature).to_device(&device).detach();
        let mut z = self.noise(1, config.seed, 1.0)?.to_device(&device).detach();
        let mut f = f0.clone();
        let (mut adam_z, mut adam_f) = (Adam::new(&z), Adam::new(&f));
        let mut errors = Vec::with_capacity(config.steps + 1);
        for step in 0..=config.steps {
            let zg = z.clone().autodiff().require_grad();
            let fg = f.clone().autodiff().require_grad();
            let output = generator.forward(zg.clone(), l2_normalize(fg.clone()));
            let pixel = (output - target.clone()).powi_scalar(2).mean();
            errors.push(pixel.clone().into_scalar::<f32>());
            if step == config.steps {
                break;
            }
            let regular = (fg.clone() - f0.clone())
                .powi_scalar(2)
                .sum()
                .mul_scalar(config.feature_weight);
            let grads = (pixel + regular).backward();
            let t = step as i32 + 1;
            if let Some(gz) = zg.grad(&grads) {
                z = adam_z.step(z, gz, config.learning_rate, t).detach();
            }
            if config.optimize_feature
                && let Some(gf) = fg.grad(&grads)
            {
                f = adam_f.step(f, gf, config.learning_rate, t).detach();
            }
            progress(step + 1, *errors.last().unwrap_or(&f32::NAN));
        }
        let out_device = self.device();
        Ok(Inversion {
            z: z.to_device(out_device),
            feature: l2_normalize(f).to_device(out_device),
            errors,
        })
    }

    /// Edit an inverted image by a sound difference (Fig. 7): move its feature along
    /// `z^A(loud) − z^A(quiet)` by `strength` and redraw with the same z. Returns
    /// `[1, 3, H, W]` in `[-1, 1]`.
    ///
    /// # Errors
    /// Those of [`generate_tensor`](Self::generate_tensor).
    pub fn edit(
        &self,
        inversion: &Inversion,
        quiet: Tensor<2>,
        loud: Tensor<2>,
        strength: f32,
    ) -> Result<Tensor<4>> {
        let direction = l2_normalize(loud) - l2_normalize(quiet);
        let feature = inversion.feature.clone() + direction.mul_scalar(strength);
        self.generate_tensor(feature, inversion.z.clone())
    }
}
