//! The public tensor functions on Flex (the kernels) against the same layers from Burn's
//! standard operations, forward and backward, on odd shapes: sizes not divisible by the tiles,
//! batch 1 and 3, padding 0 and 1, strides 1 and 2, kernels 1, 3 and 7.

use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor, Tolerance};
use sound2scene_kernels::{Fused, conv2d, conv2d_fused};

/// The kernels accumulate in another order than Burn's im2col + GEMM.
fn tolerance() -> Tolerance<f32> {
    Tolerance::absolute(2e-4).set_relative(2e-4)
}

/// Random values. Tests share Burn's one random generator, so a test draws each tensor once
/// and gives both sides of a comparison the same copy.
fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// `(batch, c_in, c_out, [h, w], kernel, stride, padding)`
type Case = (usize, usize, usize, [usize; 2], usize, usize, usize);

const CASES: [Case; 7] = [
    (1, 3, 5, [7, 9], 3, 1, 1),
    (3, 5, 7, [8, 8], 3, 1, 1),
    (1, 8, 6, [11, 29], 3, 1, 0),
    (2, 7, 9, [13, 17], 3, 2, 1),
    (3, 6, 13, [9, 12], 1, 2, 0),
    (1, 2, 8, [21, 40], 7, 2, 3),
    (2, 4, 4, [4, 5], 1, 1, 0),
];

#[test]
fn fused_convolution_matches_burns_operations() {
    let device = Device::flex();
    for &(b, ci, co, [h, w], k, s, p) in &CASES {
        let x = random([b, ci, h, w], &device);
        let weight = random([co, ci, k, k], &device);
        let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let y = burn_conv2d(x.clone(), weight.clone(), None, options.clone());
        let [_, _, ho, wo] = y.dims();
        let residual = random([b, co, ho, wo], &device);
        let fused = Fused::new()
            .with_input_affine_per_image(random([b, ci], &device), random([b, ci], &device))
            .with_input_relu()
            .with_scale(random([co], &device))
            .with_shift(random([co], &device))
            .with_residual(residual)
            .with_relu();
        let ours = conv2d_fused(x.clone(), weight.clone(), fused.clone(), options.clone());
        let theirs = fused.compose(x, |x| burn_conv2d(x, weight, None, options));
        ours.into_data()
            .assert_approx_eq::<f32>(&theirs.into_data(), tolerance());
    }
}

#[test]
fn upsampling_parts_match_burns_operations() {
    let device = Device::flex();
    let (b, ci, co, h, w) = (3, 5, 7, 5, 6);
    let x = random([b, ci, h, w], &device);
    let weight = random([co, ci, 3, 3], &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let fused = Fused::new()
        .with_input_scale(random([ci], &device))
        .with_input_shift(random([ci], &device))
        .with_input_relu()
        .with_upsampled_input()
        .with_affine_per_image(random([b, co], &device), random([b, co], &device))
        .with_upsampled_residual(random([b, co, h, w], &device));
    let ours = conv2d_fused(x.clone(), weight.clone(), fused.clone(), options.clone());
    assert_eq!(ours.dims(), [b, co, 2 * h, 2 * w]);
    let theirs = fused.compose(x, |x| burn_conv2d(x, weight, None, options));
    ours.into_data()
        .assert_approx_eq::<f32>(&theirs.into_data(), tolerance());
}

#[test]
fn gradients_match_burns_convolution() {
    let device = Device::flex().autodiff();
    for (i, &(b, ci, co, [h, w], k, s, p)) in CASES.iter().enumerate() {
        let x = random([b, ci, h, w], &device);
        let weight = random([co, ci, k, k], &device);
        let bias = random([co], &device);
        let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        // A loss whose gradient differs at every output: Σ y · r.
        let out_dims = burn_conv2d(x.clone(), weight.clone(), None, options.clone()).dims();
        let r = random(out_dims, &device);
        let grads = |kernels: bool| {
            let (x, weight, bias) = (
                x.clone().require_grad(),
                weight.clone().require_grad(),
                bias.clone().require_grad(),
            );
            let y = if kernels {
                conv2d(
                    x.clone(),
                    weight.clone(),
                    Some(bias.clone()),
                    options.clone(),
                )
            } else {
                burn_conv2d(
                    x.clone(),
                    weight.clone(),
                    Some(bias.clone()),
                    options.clone(),
                )
            };
            let g = (y * r.clone()).sum().backward();
            [
                x.grad(&g).expect("x grad").into_data(),
                weight
                    .grad(&g)
                    .expect("weight grad")
                    .reshape([-1])
                    .into_data(),
                bias.grad(&g).expect("bias grad").into_data(),
            ]
        };
        let (ours, theirs) = (grads(true), grads(false));
        for (name, (a, b)) in ["input", "weight", "bias"]
            .iter()
            .zip(ours.iter().zip(&theirs))
        {
            assert_eq!(a.shape(), b.shape(), "case {i}: {name} gradient shape");
            a.assert_approx_eq::<f32>(b, Tolerance::absolute(1e-3).set_relative(1e-3));
        }
    }
}

#[test]
fn other_layouts_and_inputs_without_gradient_are_handled() {
    let device = Device::flex().autodiff();
    // A transposed (non-contiguous) input and a constant weight: only the input's gradient.
    let x = random([2, 9, 6, 3], &device).swap_dims(1, 3).require_grad(); // [2, 3, 6, 9]
    let weight = random([4, 3, 3, 3], &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let ours = conv2d(x.clone(), weight.clone(), None, options.clone());
    let theirs = burn_conv2d(x.clone(), weight, None, options);
    ours.clone()
        .into_data()
        .assert_approx_eq::<f32>(&theirs.clone().into_data(), tolerance());
    let (g_ours, g_theirs) = (ours.sum().backward(), theirs.sum().backward());
    x.grad(&g_ours)
        .expect("input grad")
        .into_data()
        .assert_approx_eq::<f32>(
            &x.grad(&g_theirs).expect("input grad").into_data(),
            tolerance(),
        );
}

#[test]
fn batch_norm_with_batch_statistics_matches_burns_in_value_and_gradients() {
    use burn::tensor::activation::relu;
    use burn::tensor::module::batch_norm_train as burn_batch_norm_train;
    use sound2scene_kernels::batch_norm_train;

    let device = Device::flex().autodiff();
    for (shape, with_residual, with_relu) in [
        ([3, 5, 7, 9], true, true),
        ([2, 4, 6, 5], false, true),
        ([4, 3, 1, 11], true, false),
        ([1, 6, 8, 8], false, false),
    ] {
        let x = random(shape, &device);
        let gamma = random([shape[1]], &device);
        let beta = random([shape[1]], &device);
        let residual = random(shape, &device);
        let r = random(shape, &device);
        let run = |kernels: bool| {
            let (x, gamma, beta, residual) = (
                x.clone().require_grad(),
                gamma.clone().require_grad(),
                beta.clone().require_grad(),
                residual.clone().require_grad(),
            );
            let (y, mean, var) = if kernels {
                let out = batch_norm_train(
                    x.clone(),
                    gamma.clone(),
                    beta.clone(),
                    with_residual.then(|| residual.clone()),
                    1e-5,
                    with_relu,
                );
                (out.output, out.mean, out.variance)
            } else {
                let out = burn_batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
                let mut y = out.output;
                if with_residual {
                    y = y + residual.clone();
                }
                if with_relu {
                    y = relu(y);
                }
                (y, out.mean, out.variance)
            };
            let g = (y.clone() * r.clone()).sum().backward();
            let mut values = vec![
                y.into_data(),
                mean.into_data(),
                var.into_data(),
                x.grad(&g).expect("x grad").into_data(),
                gamma.grad(&g).expect("gamma grad").into_data(),
                beta.grad(&g).expect("beta grad").into_data(),
            ];
            if with_residual {
                values.push(residual.grad(&g).expect("residual grad").into_data());
            }
            values
        };
        let (ours, theirs) = (run(true), run(false));
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a.shape(), b.shape(), "{shape:?}: value {i}");
            a.assert_approx_eq::<f32>(b, Tolerance::absolute(1e-4).set_relative(1e-4));
        }
    }
}

#[test]
fn per_image_batch_norm_matches_normalizing_then_scaling_each_image() {
    use burn::tensor::activation::relu;
    use burn::tensor::module::batch_norm_train as burn_batch_norm_train;
    use sound2scene_kernels::batch_norm_train_per_image;

    let device = Device::flex().autodiff();
    let shape = [3, 5, 6, 7];
    let [b, c, _, _] = shape;
    let x = random(shape, &device);
    let gamma = random([b, c], &device);
    let beta = random([b, c], &device);
    let r = random(shape, &device);
    let run = |kernels: bool| {
        let (x, gamma, beta) = (
            x.clone().require_grad(),
            gamma.clone().require_grad(),
            beta.clone().require_grad(),
        );
        let y = if kernels {
            batch_norm_train_per_image(x.clone(), gamma.clone(), beta.clone(), None, 1e-5, true)
                .output
        } else {
            let ones = Tensor::ones([c], &device);
            let zeros = Tensor::zeros([c], &device);
            let normed = burn_batch_norm_train(x.clone(), ones, zeros, 1e-5).output;
            relu(normed * gamma.clone().reshape([b, c, 1, 1]) + beta.clone().reshape([b, c, 1, 1]))
        };
        let g = (y.clone() * r.clone()).sum().backward();
        [
            y.into_data(),
            x.grad(&g).expect("x grad").into_data(),
            gamma.grad(&g).expect("gamma grad").into_data(),
            beta.grad(&g).expect("beta grad").into_data(),
        ]
    };
    let (ours, theirs) = (run(true), run(false));
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.shape(), b.shape(), "value {i}");
        a.assert_approx_eq::<f32>(b, Tolerance::absolute(1e-4).set_relative(1e-4));
    }
}

#[test]
fn resampling_by_two_matches_burns_operations_with_gradients() {
    use burn::tensor::module::avg_pool2d;
    use burn::tensor::ops::AvgPoolOptions;
    use sound2scene_kernels::{avg_pool2x, upsample2x};

    let device = Device::flex().autodiff();
    let x = random([2, 3, 6, 10], &device);
    let r_up = random([2, 3, 12, 20], &device);
    let r_pool = random([2, 3, 3, 5], &device);
    let run = |kernels: bool| {
        let x = x.clone().require_grad();
        let (up, pooled) = if kernels {
            (upsample2x(x.clone()), avg_pool2x(x.clone()))
        } else {
            let [b, c, h, w] = x.dims();
            let up = x
                .clone()
                .reshape([b, c, h, 1, w, 1])
                .expand([b, c, h, 2, w, 2])
                .reshape([b, c, 2 * h, 2 * w]);
            (up, avg_pool2d(x.clone(), AvgPoolOptions::new([2, 2])))
        };
        let loss = (up.clone() * r_up.clone()).sum() + (pooled.clone() * r_pool.clone()).sum();
        let g = loss.backward();
        [
            up.into_data(),
            pooled.into_data(),
            x.grad(&g).expect("x grad").into_data(),
        ]
    };
    let (ours, theirs) = (run(true), run(false));
    for (a, b) in ours.iter().zip(&theirs) {
        a.assert_approx_eq::<f32>(b, tolerance());
    }
}

#[test]
fn max_pooling_matches_burns_without_and_with_gradients() {
    use burn::tensor::module::max_pool2d as burn_max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    use sound2scene_kernels::max_pool2d;

    // (shape, kernel, stride, padding): ResNet's stem pool on odd and even sizes, windows
    // wider than the stride, a window as large as the padded input.
    let cases: [([usize; 4], usize, usize, usize); 5] = [
        ([1, 3, 13, 20], 3, 2, 1),
        ([2, 4, 8, 9], 3, 2, 1),
        ([3, 2, 7, 7], 2, 2, 0),
        ([1, 5, 6, 11], 3, 1, 1),
        ([2, 1, 2, 3], 3, 1, 2),
    ];
    for (shape, k, s, p) in cases {
        let options = MaxPoolOptions::new([k, k])
            .with_stride([s, s])
            .with_padding([p, p]);
        let x = random(shape, &Device::flex());
        let ours = max_pool2d(x.clone(), [k, k], [s, s], [p, p]);
        let theirs = burn_max_pool2d(x, options.clone());
        ours.into_data().assert_eq(&theirs.into_data(), true);

        // On an autodiff device the gradient reaches each window's maximum.
        let device = Device::flex().autodiff();
        let x = random(shape, &device);
        let run = |kernels: bool| {
            let x = x.clone().require_grad();
            let y = if kernels {
                max_pool2d(x.clone(), [k, k], [s, s], [p, p])
            } else {
                burn_max_pool2d(x.clone(), options.clone())
            };
            let g = y.clone().sum().backward();
            [y.into_data(), x.grad(&g).expect("x grad").into_data()]
        };
        for (a, b) in run(true).iter().zip(&run(false)) {
            a.assert_eq(b, true);
        }
    }
}

#[test]
fn max_pooling_keeps_a_nan_in_its_window_as_pytorch_does() {
    use sound2scene_kernels::max_pool2d;

    let mut values = vec![0.0f32; 25];
    values[6] = f32::NAN; // row 1, column 1
    values[24] = 9.0; // row 4, column 4
    let x = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(values, [1, 1, 5, 5]),
        &Device::flex(),
    );
    let y = max_pool2d(x, [3, 3], [2, 2], [1, 1]).into_data();
    let y: Vec<f32> = y.try_to_vec::<f32>().expect("f32 values");
    // Windows (rows, columns): 0 → 0..2, 1 → 1..4, 2 → 3..5.
    assert!(y[0].is_nan() && y[1].is_nan() && y[3].is_nan() && y[4].is_nan());
    assert_eq!((y[2], y[5], y[6], y[7]), (0.0, 0.0, 0.0, 0.0));
    assert_eq!(y[8], 9.0);
}
