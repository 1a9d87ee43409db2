//! Tests of the alignment losses: parity with the official PyTorch `InfoNCE_with_L2` fixtures,
//! closed-form values, gradient descent behaviour and input validation.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::Array2;
use sound2scene_train::{
    ContrastiveLoss, TrainError, info_nce_cosine_loss, info_nce_l2_loss, l2_loss,
    metrics::read_npy_f64,
};

/// The fixture loss is an `f32` PyTorch value of about `ln 8`; reduction-order rounding in `f32`
/// over 2048-wide dot products stays well below `1e-5` (the parity target from the brief).
const LOSS_TOLERANCE: f64 = 1e-5;

/// Parity target for the audio-feature gradient (max abs over `[8, 2048]`): the largest element
/// is about `2e-4`, so `1e-6` is 0.5% of it, while `f32` rounding of the two computations is
/// orders of magnitude smaller.
const GRAD_TOLERANCE: f64 = 1e-6;

/// Tolerance for comparing an `f32` loss against a closed-form `f64` value of order 1.
const CLOSED_FORM_TOLERANCE: f64 = 1e-5;

fn autodiff_device() -> Device {
    Device::flex().autodiff()
}

fn tensor_from_f64(values: &[f64], shape: [usize; 2], device: &Device) -> Tensor<2> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn tensor_from_array(array: &Array2<f64>, device: &Device) -> Tensor<2> {
    let (rows, cols) = array.dim();
    let values: Vec<f64> = array.iter().copied().collect();
    tensor_from_f64(&values, [rows, cols], device)
}

fn to_vec(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 tensor data")
}

fn scalar(tensor: Tensor<1>) -> f64 {
    f64::from(tensor.into_scalar::<f32>())
}

/// `batch` orthonormal rows of width `dim` (`e_i` scaled by `scale`).
fn scaled_basis(batch: usize, dim: usize, scale: f64) -> Vec<f64> {
    let mut values = vec![0.0; batch * dim];
    for i in 0..batch {
        values[i * dim + i] = scale;
    }
    values
}

#[test]
fn info_nce_l2_matches_official_loss_and_gradient() {
    let (Some(audio_path), Some(image_path), Some(loss_path), Some(grad_path)) = (
        common::fixture("losses/infonce_audio.npy"),
        common::fixture("losses/infonce_image.npy"),
        common::fixture("losses/infonce_l2_loss.npy"),
        common::fixture("losses/infonce_l2_grad_audio.npy"),
    ) else {
        return;
    };
    let audio: Array2<f64> = read_npy_f64(&audio_path).unwrap();
    let image: Array2<f64> = read_npy_f64(&image_path).unwrap();
    let want_loss: ndarray::Array1<f64> = read_npy_f64(&loss_path).unwrap();
    let want_grad: Array2<f64> = read_npy_f64(&grad_path).unwrap();
    assert_eq!(audio.dim(), (8, 2048));
    assert_eq!(want_grad.dim(), audio.dim());

    let device = autodiff_device();
    let audio_t = tensor_from_array(&audio, &device).require_grad();
    let image_t = tensor_from_array(&image, &device);
    let loss = info_nce_l2_loss(audio_t.clone(), image_t).unwrap();
    let grads = loss.backward();
    let got_loss = scalar(loss);
    let got_grad = to_vec(audio_t.grad(&grads).expect("audio gradient"));

    let loss_error = (got_loss - want_loss[0]).abs();
    let grad_error = got_grad
        .iter()
        .zip(want_grad.iter())
        .map(|(&g, &w)| (f64::from(g) - w).abs())
        .fold(0.0, f64::max);
    let grad_scale = want_grad.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    println!(
        "InfoNCE-L2 parity: loss {got_loss} vs {} (abs err {loss_error:.3e}); \
         grad max abs err {grad_error:.3e} (max |grad| {grad_scale:.3e})",
        want_loss[0]
    );
    assert!(loss_error <= LOSS_TOLERANCE, "loss error {loss_error:e}");
    assert!(
        grad_error <= GRAD_TOLERANCE,
        "gradient error {grad_error:e}"
    );
}

#[test]
fn info_nce_l2_of_aligned_orthonormal_features_has_closed_form() {
    // audio == image == orthonormal rows (scaled, to exercise normalisation): D = 0 on the
    // diagonal and sqrt(2) elsewhere, so each CE term is ln(1 + (B - 1) exp(-sqrt 2)).
    let (batch, dim) = (6, 10);
    let device = autodiff_device();
    let audio =
        tensor_from_f64(&scaled_basis(batch, dim, 3.0), [batch, dim], &device).require_grad();
    let image = tensor_from_f64(&scaled_basis(batch, dim, 0.5), [batch, dim], &device);
    let loss = info_nce_l2_loss(audio.clone(), image).unwrap();
    let grads = loss.backward();
    let want = (1.0 + (batch as f64 - 1.0) * (-(2.0_f64).sqrt()).exp()).ln();
    let got = scalar(loss);
    assert!(
        (got - want).abs() < CLOSED_FORM_TOLERANCE,
        "{got} vs {want}"
    );
    let grad = to_vec(audio.grad(&grads).expect("audio gradient"));
    assert!(
        grad.iter().all(|g| g.is_finite()),
        "zero-distance pairs must give a finite gradient"
    );
}

#[test]
fn info_nce_cosine_of_aligned_orthonormal_features_has_closed_form() {
    // Logits are 1 on the diagonal and 0 elsewhere: each CE term is ln(1 + (B - 1) / e).
    let (batch, dim) = (5, 7);
    let device = Device::flex();
    let audio = tensor_from_f64(&scaled_basis(batch, dim, 2.0), [batch, dim], &device);
    let image = tensor_from_f64(&scaled_basis(batch, dim, 1.0), [batch, dim], &device);
    let got = scalar(info_nce_cosine_loss(audio, image).unwrap());
    let want = (1.0 + (batch as f64 - 1.0) * (-1.0_f64).exp()).ln();
    assert!(
        (got - want).abs() < CLOSED_FORM_TOLERANCE,
        "{got} vs {want}"
    );
}

#[test]
fn l2_loss_is_mean_squared_error() {
    let device = Device::flex();
    let audio = tensor_from_f64(&[1.0, 2.0, 3.0, 4.0], [2, 2], &device);
    let image = tensor_from_f64(&[1.0, 0.0, 3.0, 7.0], [2, 2], &device);
    // Squared differences 0, 4, 0, 9 averaged over 4 elements.
    let got = scalar(l2_loss(audio, image).unwrap());
    assert!((got - 13.0 / 4.0).abs() < CLOSED_FORM_TOLERANCE, "{got}");
}

#[test]
fn contrastive_loss_enum_dispatches_and_defaults_to_info_nce_l2() {
    assert_eq!(ContrastiveLoss::default(), ContrastiveLoss::InfoNceL2);
    let device = Device::flex();
    let (batch, dim) = (4, 8);
    let audio = tensor_from_f64(
        &common::pseudo_random(1, batch * dim),
        [batch, dim],
        &device,
    );
    let image = tensor_from_f64(
        &common::pseudo_random(2, batch * dim),
        [batch, dim],
        &device,
    );
    let cases = [
        (
            ContrastiveLoss::InfoNceL2,
            info_nce_l2_loss(audio.clone(), image.clone()),
        ),
        (ContrastiveLoss::L2, l2_loss(audio.clone(), image.clone())),
        (
            ContrastiveLoss::InfoNceCosine,
            info_nce_cosine_loss(audio.clone(), image.clone()),
        ),
    ];
    for (kind, direct) in cases {
        let via_enum = scalar(kind.compute(audio.clone(), image.clone()).unwrap());
        assert_eq!(via_enum, scalar(direct.unwrap()), "{kind:?}");
    }
}

#[test]
fn gradient_descent_on_audio_features_decreases_each_loss() {
    let (batch, dim) = (8, 32);
    let device = autodiff_device();
    let image = tensor_from_f64(
        &common::pseudo_random(7, batch * dim),
        [batch, dim],
        &device,
    );
    for (kind, learning_rate) in [
        (ContrastiveLoss::InfoNceL2, 20.0),
        (ContrastiveLoss::InfoNceCosine, 20.0),
        (ContrastiveLoss::L2, 5.0),
    ] {
        let mut audio = tensor_from_f64(
            &common::pseudo_random(11, batch * dim),
            [batch, dim],
            &device,
        )
        .require_grad();
        let mut history = Vec::new();
        for _ in 0..10 {
            let loss = kind.compute(audio.clone(), image.clone()).unwrap();
            let grads = loss.backward();
            history.push(scalar(loss));
            let grad = audio.grad(&grads).expect("audio gradient");
            audio = (audio.detach() - grad.mul_scalar(learning_rate))
                .detach()
                .require_grad();
        }
        println!("{kind:?}: {history:?}");
        assert!(
            history.windows(2).all(|w| w[1] < w[0]),
            "{kind:?} loss did not decrease monotonically: {history:?}"
        );
        assert!(
            history[9] < 0.9 * history[0],
            "{kind:?} loss barely moved: {history:?}"
        );
    }
}

#[test]
fn info_nce_l2_decreases_as_audio_moves_toward_its_image() {
    let (batch, dim) = (8, 64);
    let device = Device::flex();
    let audio: Vec<f64> = common::pseudo_random(3, batch * dim);
    let image: Vec<f64> = common::pseudo_random(4, batch * dim);
    let image_t = tensor_from_f64(&image, [batch, dim], &device);
    let losses: Vec<f64> = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|&t| {
            let mixed: Vec<f64> = audio
                .iter()
                .zip(&image)
                .map(|(a, v)| (1.0 - t) * a + t * v)
                .collect();
            let audio_t = tensor_from_f64(&mixed, [batch, dim], &device);
            scalar(info_nce_l2_loss(audio_t, image_t.clone()).unwrap())
        })
        .collect();
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "loss should fall as audio approaches its image: {losses:?}"
    );
}

#[test]
fn zero_feature_row_gives_finite_loss_and_gradient() {
    let (batch, dim) = (3, 4);
    let device = autodiff_device();
    let mut values = common::pseudo_random(5, batch * dim);
    values[..dim].iter_mut().for_each(|v| *v = 0.0);
    let audio = tensor_from_f64(&values, [batch, dim], &device).require_grad();
    let image = tensor_from_f64(
        &common::pseudo_random(6, batch * dim),
        [batch, dim],
        &device,
    );
    for kind in [ContrastiveLoss::InfoNceL2, ContrastiveLoss::InfoNceCosine] {
        let loss = kind.compute(audio.clone(), image.clone()).unwrap();
        let grads = loss.backward();
        assert!(scalar(loss).is_finite(), "{kind:?}");
        let grad = to_vec(audio.grad(&grads).expect("audio gradient"));
        assert!(grad.iter().all(|g| g.is_finite()), "{kind:?}: {grad:?}");
    }
}

#[test]
fn mismatched_or_empty_features_are_errors() {
    let device = Device::flex();
    let audio = Tensor::<2>::zeros([4, 8], &device);
    let image = Tensor::<2>::zeros([4, 6], &device);
    for kind in [
        ContrastiveLoss::InfoNceL2,
        ContrastiveLoss::L2,
        ContrastiveLoss::InfoNceCosine,
    ] {
        let err = kind.compute(audio.clone(), image.clone()).unwrap_err();
        assert!(matches!(err, TrainError::ShapeMismatch { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("[4, 8]") && message.contains("[4, 6]"),
            "{message}"
        );
    }
    let empty = Tensor::<2>::zeros([0, 8], &device);
    let err = info_nce_l2_loss(empty.clone(), empty).unwrap_err();
    assert!(matches!(err, TrainError::Empty { .. }), "{err}");
}
