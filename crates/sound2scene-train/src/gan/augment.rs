//! Differentiable augmentation of D's input (DiffAugment, Zhao et al., NeurIPS 2020), the
//! official IC-GAN's `--DiffAugment` option: every image D scores, real or generated, in the D
//! step and in the G step, goes through the same kind of random transformation, so D cannot
//! memorize a small training set while G still learns the un-augmented images. Reference:
//! IC-GAN `BigGAN_PyTorch/diffaugment_utils.py`.
//!
//! The random parameters are drawn on the host from the step's stream ([`draw`]), so a
//! resumed run repeats them; [`apply`] turns them into tensor operations that gradients flow
//! through.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One transformation of a DiffAugment policy, applied in the order the policy lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augmentation {
    /// Brightness (add U(−½, ½)), saturation (scale the deviation from the pixel's channel
    /// mean by U(0, 2)) and contrast (scale the deviation from the image mean by U(½, 1½)).
    Color,
    /// Shift by up to ⅛ of the side in each direction (whole pixels), zeros shifted in.
    Translation,
    /// Zero a square of half the side centred at a uniform position (clipped at the border).
    Cutout,
}

/// The random parameters of one image's augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AugmentDraw {
    /// Added to every pixel (`Color`).
    pub brightness: f32,
    /// Factor on the deviation from the per-pixel channel mean (`Color`).
    pub saturation: f32,
    /// Factor on the deviation from the image mean (`Color`).
    pub contrast: f32,
    /// Shift `(rows, columns)` in pixels; output pixel `(y, x)` reads input `(y + dy, x + dx)`
    /// (`Translation`).
    pub shift: (i32, i32),
    /// Centre `(row, column)` of the zeroed square (`Cutout`).
    pub cutout_centre: (i32, i32),
}

/// The largest shift of `Translation` at side `side`: ⅛ of it, rounded.
fn max_shift(side: usize) -> i32 {
    ((side as f64) * 0.125 + 0.5) as i32
}

/// The side of `Cutout`'s square at image side `side`: half of it, rounded.
fn cutout_side(side: usize) -> i32 {
    ((side as f64) * 0.5 + 0.5) as i32
}

/// Draws the parameters of `count` images of side `side` for `policy` from `rng`. Draws
/// nothing (and leaves `rng` untouched) for an empty policy.
pub fn draw(
    policy: &[Augmentation],
    count: usize,
    side: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<AugmentDraw> {
    if policy.is_empty() {
        return Vec::new();
    }
    let (shift, cut) = (max_shift(side), cutout_side(side));
    let centre_end = side as i32 + (1 - cut % 2);
    (0..count)
        .map(|_| {
            let mut d = AugmentDraw {
                saturation: 1.0,
                contrast: 1.0,
                ..AugmentDraw::default()
            };
            for op in policy {
                match op {
                    Augmentation::Color => {
                        d.brightness = rng.random::<f32>() - 0.5;
                        d.saturation = rng.random::<f32>() * 2.0;
                        d.contrast = rng.random::<f32>() + 0.5;
                    }
                    Augmentation::Translation => {
                        d.shift = (
                            rng.random_range(-shift..=shift),
                            rng.random_range(-shift..=shift),
                        );
                    }
                    Augmentation::Cutout => {
                        d.cutout_centre = (
                            rng.random_range(0..centre_end),
                            rng.random_range(0..centre_end),
                        );
                    }
                }
            }
            d
        })
        .collect()
}

/// Augments `images`, `[batch, channels, side, side]`, with one draw per image, in `policy`'s
/// order. Returns `images` unchanged for an empty policy.
///
/// # Panics
/// When `draws` does not hold one draw per image (the loop draws them together).
pub fn apply(images: Tensor<4>, policy: &[Augmentation], draws: &[AugmentDraw]) -> Tensor<4> {
    if policy.is_empty() {
        return images;
    }
    let [b, _, _, _] = images.dims();
    assert_eq!(draws.len(), b, "one augmentation draw per image");
    policy.iter().fold(images, |x, op| match op {
        Augmentation::Color => color(x, draws),
        Augmentation::Translation => translate(x, draws),
        Augmentation::Cutout => cutout(x, draws),
    })
}

/// One value per image as a `[batch, 1, 1, 1]` tensor.
fn per_image(values: Vec<f32>, device: &Device) -> Tensor<4> {
    let b = values.len();
    Tensor::from_data(TensorData::new(values, [b, 1, 1, 1]), device)
}

/// Brightness, then saturation, then contrast, per image (`Color`).
fn color(x: Tensor<4>, draws: &[AugmentDraw]) -> Tensor<4> {
    let device = x.device();
    let field = |f: fn(&AugmentDraw) -> f32| per_image(draws.iter().map(f).collect(), &device);
    let x = x + field(|d| d.brightness);
    let mean = x.clone().mean_dim(1);
    let x = (x - mean.clone()) * field(|d| d.saturation) + mean;
    let [b, c, h, w] = x.dims();
    let mean = x
        .clone()
        .reshape([b, c * h * w])
        .mean_dim(1)
        .reshape([b, 1, 1, 1]);
    (x - mean.clone()) * field(|d| d.contrast) + mean
}

/// Each image shifted by its draw's `shift`, as one gather from the flattened planes with a
/// zero appended for the pixels shifted in (`Translation`).
fn translate(x: Tensor<4>, draws: &[AugmentDraw]) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let zero_slot = (h * w) as i64;
    let mut index = Vec::with_capacity(b * c * h * w);
    for d in draws {
        let mut plane = Vec::with_capacity(h * w);
        for y in 0..h as i32 {
            for col in 0..w as i32 {
                let (sy, sx) = (y + d.shift.0, col + d.shift.1);
                let inside = (0..h as i32).contains(&sy) && (0..w as i32).contains(&sx);
                plane.push(if inside {
                    i64::from(sy) * w as i64 + i64::from(sx)
                } else {
                    zero_slot
                });
            }
        }
        for _ in 0..c {
            index.extend_from_slice(&plane);
        }
    }
    let index = Tensor::<3, Int>::from_data(TensorData::new(index, [b, c, h * w]), &device);
    let padded = Tensor::cat(
        vec![x.reshape([b, c, h * w]), Tensor::zeros([b, c, 1], &device)],
        2,
    );
    padded.gather(2, index).reshape([b, c, h, w])
}

/// Each image times a mask that is zero on its draw's square (`Cutout`).
fn cutout(x: Tensor<4>, draws: &[AugmentDraw]) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let cut = cutout_side(h.min(w));
    let mut mask = vec![1.0f32; b * h * w];
    for (i, d) in draws.iter().enumerate() {
        let (top, left) = (d.cutout_centre.0 - cut / 2, d.cutout_centre.1 - cut / 2);
        for y in top.max(0)..(top + cut).min(h as i32) {
            for col in left.max(0)..(left + cut).min(w as i32) {
                mask[i * h * w + y as usize * w + col as usize] = 0.0;
            }
        }
    }
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &x.device());
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(b: usize, c: usize, side: usize, device: &Device) -> Tensor<4> {
        let values: Vec<f32> = (0..b * c * side * side).map(|i| 1.0 + i as f32).collect();
        Tensor::from_data(TensorData::new(values, [b, c, side, side]), device)
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32 tensor")
    }

    #[test]
    fn empty_policy_draws_nothing_and_changes_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(draw(&[], 4, 32, &mut rng).is_empty());
        let next: u64 = rng.random();
        assert_eq!(next, ChaCha8Rng::seed_from_u64(1).random::<u64>());
        let device = Device::default();
        let x = ramp(2, 3, 8, &device);
        assert_eq!(values(apply(x.clone(), &[], &[])), values(x));
    }

    #[test]
    fn translation_moves_pixels_and_shifts_in_zeros() {
        let device = Device::default();
        let x = ramp(1, 2, 8, &device);
        let input = values(x.clone());
        let draw = AugmentDraw {
            shift: (1, -2),
            ..AugmentDraw::default()
        };
        let out = values(apply(x, &[Augmentation::Translation], &[draw]));
        for ch in 0..2 {
            for y in 0..8i32 {
                for col in 0..8i32 {
                    let (sy, sx) = (y + 1, col - 2);
                    let expected = if (0..8).contains(&sy) && (0..8).contains(&sx) {
                        input[ch * 64 + (sy * 8 + sx) as usize]
                    } else {
                        0.0
                    };
                    assert_eq!(
                        out[ch * 64 + (y * 8 + col) as usize],
                        expected,
                        "({y}, {col})"
                    );
                }
            }
        }
    }

    #[test]
    fn cutout_zeroes_a_clipped_half_side_square_in_every_channel() {
        let device = Device::default();
        let x = ramp(2, 3, 8, &device);
        let draws = [
            AugmentDraw {
                cutout_centre: (4, 4),
                ..AugmentDraw::default()
            },
            AugmentDraw {
                cutout_centre: (0, 7),
                ..AugmentDraw::default()
            },
        ];
        let out = values(apply(x, &[Augmentation::Cutout], &draws));
        let zeros_per_image: Vec<usize> = out
            .chunks(3 * 64)
            .map(|image| image.iter().filter(|v| **v == 0.0).count())
            .collect();
        // A 4×4 square: whole in the first image, its rows 0–1 and columns 5–7 in the second.
        assert_eq!(zeros_per_image, [3 * 16, 3 * 2 * 3]);
        assert_eq!(out[2 * 8 + 2], 0.0);
        assert_ne!(out[8 + 2], 0.0);
    }

    #[test]
    fn color_with_neutral_factors_is_the_identity_and_brightness_adds() {
        let device = Device::default();
        let x = ramp(1, 3, 4, &device);
        let neutral = AugmentDraw {
            saturation: 1.0,
            contrast: 1.0,
            ..AugmentDraw::default()
        };
        let input = values(x.clone());
        let same = values(apply(x.clone(), &[Augmentation::Color], &[neutral]));
        let brighter = AugmentDraw {
            brightness: 0.25,
            ..neutral
        };
        let shifted = values(apply(x.clone(), &[Augmentation::Color], &[brighter]));
        let grey = AugmentDraw {
            saturation: 0.0,
            ..neutral
        };
        let desaturated = values(apply(x, &[Augmentation::Color], &[grey]));
        for i in 0..input.len() {
            assert!((same[i] - input[i]).abs() < 1e-4);
            assert!((shifted[i] - input[i] - 0.25).abs() < 1e-4);
            // Without saturation every channel holds the pixel's channel mean.
            let pixel = i % 16;
            let mean = (0..3).map(|c| input[c * 16 + pixel]).sum::<f32>() / 3.0;
            assert!((desaturated[i] - mean).abs() < 1e-4);
        }
    }

    #[test]
    fn draws_stay_in_range_and_gradients_flow_through_every_transformation() {
        let policy = [
            Augmentation::Color,
            Augmentation::Translation,
            Augmentation::Cutout,
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws = draw(&policy, 200, 32, &mut rng);
        assert_eq!(draws.len(), 200);
        for d in &draws {
            assert!((-4..=4).contains(&d.shift.0) && (-4..=4).contains(&d.shift.1));
            assert!((0..33).contains(&d.cutout_centre.0) && (0..33).contains(&d.cutout_centre.1));
            assert!((-0.5..0.5).contains(&d.brightness));
            assert!((0.0..2.0).contains(&d.saturation));
            assert!((0.5..1.5).contains(&d.contrast));
        }
        assert!(draws.iter().any(|d| d.shift.0 == -4) && draws.iter().any(|d| d.shift.1 == 4));

        let device = Device::default().autodiff();
        let x = ramp(2, 3, 32, &device).require_grad();
        let y = apply(x.clone(), &policy, &draws[..2]);
        let grads = y.sum().backward();
        let grad = x.grad(&grads).expect("a gradient for the input");
        let grad = grad.into_data().try_to_vec::<f32>().expect("f32 gradient");
        assert!(grad.iter().all(|g| g.is_finite()));
        assert!(
            grad.iter().any(|g| *g != 0.0),
            "the augmentation passes gradients"
        );
    }
}
