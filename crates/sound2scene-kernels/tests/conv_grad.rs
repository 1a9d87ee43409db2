//! The convolution's gradients against their definitions, on the edge shapes of the forward
//! tests, and with non-finite inputs.

mod common;

use common::{conv2d_grads_reference, max_rel_diff, normal};
use sound2scene_kernels::cpu::conv::ConvGeometry;
use sound2scene_kernels::cpu::conv_grad::{
    GEMM_MIN_CHANNELS, input_grad, weight_grad, weight_grad_direct_with, weight_grad_gemm,
    weight_grad_with,
};
use sound2scene_kernels::cpu::simd::Isa;
use sound2scene_kernels::cpu::winograd::{weight_grad_winograd, weight_grad_winograd_with};

/// f32 sums of up to a few thousand products of N(0, 1) values.
const TOL: f64 = 5e-4;

fn shapes() -> Vec<ConvGeometry> {
    vec![
        ConvGeometry::square(1, 3, 5, [7, 9], 3, 1, 1),
        ConvGeometry::square(3, 5, 4, [8, 8], 3, 1, 1),
        ConvGeometry::square(1, 16, 8, [11, 29], 3, 1, 0),
        ConvGeometry::square(2, 7, 9, [13, 17], 3, 2, 1),
        ConvGeometry::square(2, 4, 6, [10, 10], 3, 2, 0),
        ConvGeometry::square(3, 6, 13, [9, 12], 1, 2, 0),
        ConvGeometry::square(1, 1, 8, [21, 40], 7, 2, 3),
        ConvGeometry::square(2, 3, 2, [4, 4], 3, 1, 1),
        // Enough channels for `weight_grad` to take Winograd.
        ConvGeometry::square(2, 40, 36, [12, 13], 3, 1, 1),
    ]
}

#[test]
fn gradients_match_their_definitions() {
    for (i, g) in shapes().into_iter().enumerate() {
        let x = normal(g.input_len(), 3 * i as u64);
        let w = normal(g.weight_len(), 3 * i as u64 + 1);
        let dy = normal(g.output_len(), 3 * i as u64 + 2);
        let (dx_ref, dw_ref) = conv2d_grads_reference(&x, &w, &dy, &g);
        let mut dx = vec![f32::NAN; g.input_len()];
        input_grad(&w, &dy, &g, &mut dx);
        let err = max_rel_diff(&dx, &dx_ref);
        assert!(err < TOL, "{g:?}: input gradient max relative error {err}");
        for isa in Isa::available() {
            let mut dw = vec![f32::NAN; g.weight_len()];
            weight_grad_with(isa, &x, &dy, &g, &mut dw);
            let err = max_rel_diff(&dw, &dw_ref);
            assert!(
                err < TOL,
                "{isa:?} {g:?}: weight gradient max relative error {err}"
            );
        }
    }
}

#[test]
fn non_finite_inputs_reach_exactly_the_weights_that_read_them() {
    // Stride 2 without padding leaves the last column of a 10-wide input unread: a NaN there
    // must not reach any weight; a NaN the windows read reaches the taps that read it.
    let g = ConvGeometry::square(1, 2, 3, [7, 10], 3, 2, 0);
    let mut x = normal(g.input_len(), 90);
    x[9] = f32::NAN; // channel 0, row 0, column 9: read by no window
    x[70 + 2 * 10 + 4] = f32::INFINITY; // channel 1, row 2, column 4
    let w = normal(g.weight_len(), 91);
    let dy = normal(g.output_len(), 92);
    let (_, dw_ref) = conv2d_grads_reference(&x, &w, &dy, &g);
    for isa in Isa::available() {
        let mut dw = vec![0.0; g.weight_len()];
        weight_grad_with(isa, &x, &dy, &g, &mut dw);
        for (i, (&ours, &reference)) in dw.iter().zip(&dw_ref).enumerate() {
            if reference.is_finite() {
                let err = (ours as f64 - reference).abs() / reference.abs().max(1.0);
                assert!(
                    err < TOL,
                    "{isa:?}: weight {i} is {ours}, expected {reference}"
                );
            } else {
                assert!(
                    !ours.is_finite(),
                    "{isa:?}: weight {i} is {ours}, expected {reference}"
                );
            }
        }
        assert!(dw.iter().any(|v| v.is_finite()) && dw.iter().any(|v| !v.is_finite()));
    }
}

/// Stride-1 shapes with enough channels for the matrix products: kernels 1, 3 and 5, padding
/// 0 to 2, maps from 4 × 4 (more pad than map) to wide ones, batch 1 to 5.
fn gemm_shapes() -> Vec<ConvGeometry> {
    vec![
        ConvGeometry::square(1, 8, 8, [7, 9], 3, 1, 1),
        ConvGeometry::square(5, 16, 24, [4, 4], 3, 1, 1),
        ConvGeometry::square(2, 9, 17, [5, 13], 1, 1, 0),
        ConvGeometry::square(3, 12, 10, [6, 11], 3, 1, 2),
        ConvGeometry::square(2, 20, 8, [9, 30], 5, 1, 2),
        ConvGeometry::square(4, 64, 64, [16, 16], 3, 1, 1),
    ]
}

#[test]
fn weight_gradient_by_matrix_products_matches_its_definition() {
    for (i, g) in gemm_shapes().into_iter().enumerate() {
        assert!(g.c_in.min(g.c_out) >= GEMM_MIN_CHANNELS);
        let x = normal(g.input_len(), 40 + 3 * i as u64);
        let w = normal(g.weight_len(), 41 + 3 * i as u64);
        let dy = normal(g.output_len(), 42 + 3 * i as u64);
        let (_, dw_ref) = conv2d_grads_reference(&x, &w, &dy, &g);
        let mut dw = vec![f32::NAN; g.weight_len()];
        assert!(weight_grad_gemm(&x, &dy, &g, &mut dw), "{g:?}");
        let err = max_rel_diff(&dw, &dw_ref);
        assert!(err < TOL, "{g:?}: weight gradient max relative error {err}");
        for isa in Isa::available() {
            let mut dw = vec![f32::NAN; g.weight_len()];
            weight_grad_direct_with(isa, &x, &dy, &g, &mut dw);
            let err = max_rel_diff(&dw, &dw_ref);
            assert!(
                err < TOL,
                "{isa:?} {g:?}: direct kernel max relative error {err}"
            );
        }
    }
}

#[test]
fn non_finite_values_take_the_exact_kernel_and_leave_nothing_behind() {
    // A NaN at the left edge of a row is read by no window's right column: the matrix
    // products would spread it there (0 · NaN), so they refuse such inputs and
    // `weight_grad` takes the register-tile kernel. The buffers over 2 MiB they filled go
    // back to the pool, and their next, smaller, finite call must not see its NaNs.
    let g = ConvGeometry::square(8, 16, 16, [64, 64], 3, 1, 0);
    let mut x = normal(g.input_len(), 60);
    x[5 * 64] = f32::NAN; // image 0, channel 0, row 5, column 0
    let dy = normal(g.output_len(), 61);
    let mut dw = vec![0.0; g.weight_len()];
    assert!(!weight_grad_gemm(&x, &dy, &g, &mut dw));
    weight_grad(&x, &dy, &g, &mut dw);
    let w = normal(g.weight_len(), 62);
    let (_, dw_ref) = conv2d_grads_reference(&x, &w, &dy, &g);
    for (i, (&ours, &reference)) in dw.iter().zip(&dw_ref).enumerate() {
        assert_eq!(
            ours.is_nan(),
            reference.is_nan(),
            "weight {i}: {ours} vs {reference}"
        );
    }
    assert!(dw.iter().any(|v| v.is_nan()) && dw.iter().any(|v| v.is_finite()));
    let g = ConvGeometry::square(7, 16, 16, [60, 62], 3, 1, 1);
    let x = normal(g.input_len(), 63);
    let dy = normal(g.output_len(), 64);
    let (_, dw_ref) = conv2d_grads_reference(&x, &w, &dy, &g);
    let mut dw = vec![f32::NAN; g.weight_len()];
    assert!(weight_grad_gemm(&x, &dy, &g, &mut dw));
    let err = max_rel_diff(&dw, &dw_ref);
    assert!(
        err < 5e-3,
        "{g:?}: weight gradient max relative error {err}"
    );
}

/// 3 × 3 stride-1 shapes for Winograd's weight gradient: odd and even sizes (a last tile row
/// or column half outside the map), tiny maps, padding 0 to 2, batch 1 and 3, channel counts
/// that are not a multiple of any vector, and enough tiles for many blocks per thread.
fn winograd_shapes() -> Vec<ConvGeometry> {
    vec![
        ConvGeometry::square(1, 3, 5, [7, 9], 3, 1, 1),
        ConvGeometry::square(3, 5, 4, [8, 8], 3, 1, 1),
        ConvGeometry::square(1, 16, 13, [11, 29], 3, 1, 0),
        ConvGeometry::square(3, 70, 13, [9, 11], 3, 1, 1),
        ConvGeometry::square(2, 3, 9, [6, 10], 3, 1, 2),
        ConvGeometry::square(1, 2, 3, [1, 1], 3, 1, 1),
        ConvGeometry::square(3, 33, 40, [5, 4], 3, 1, 1),
        ConvGeometry::square(6, 24, 20, [45, 47], 3, 1, 1),
    ]
}

#[test]
fn weight_gradient_by_winograd_matches_its_definition() {
    for (i, g) in winograd_shapes().into_iter().enumerate() {
        let x = normal(g.input_len(), 70 + 3 * i as u64);
        let w = normal(g.weight_len(), 71 + 3 * i as u64);
        let dy = normal(g.output_len(), 72 + 3 * i as u64);
        let (_, dw_ref) = conv2d_grads_reference(&x, &w, &dy, &g);
        for isa in Isa::available() {
            let mut dw = vec![f32::NAN; g.weight_len()];
            assert!(
                weight_grad_winograd_with(isa, &x, &dy, &g, &mut dw),
                "{g:?}"
            );
            let err = max_rel_diff(&dw, &dw_ref);
            assert!(
                err < TOL,
                "{isa:?} {g:?}: Winograd weight gradient max relative error {err}"
            );
        }
    }
}

#[test]
fn winograd_weight_gradient_refuses_non_finite_values_and_weight_grad_stays_exact() {
    // The transforms mix a tile's values, so a NaN or an infinity would reach weights whose
    // windows never read it: Winograd refuses, and `weight_grad` takes the exact kernel.
    let g = ConvGeometry::square(2, 40, 40, [20, 22], 3, 1, 0);
    let w = normal(g.weight_len(), 82);
    for (at_input, value) in [(true, f32::NAN), (false, f32::INFINITY)] {
        let mut x = normal(g.input_len(), 80);
        let mut dy = normal(g.output_len(), 81);
        if at_input {
            x[5 * 22] = value; // image 0, channel 0, row 5, column 0
        } else {
            dy[3 * 20 + 7] = value; // image 0, channel 0, row 3, column 7
        }
        let mut dw = vec![0.0; g.weight_len()];
        assert!(!weight_grad_winograd(&x, &dy, &g, &mut dw));
        weight_grad(&x, &dy, &g, &mut dw);
        let (_, dw_ref) = conv2d_grads_reference(&x, &w, &dy, &g);
        for (i, (&ours, &reference)) in dw.iter().zip(&dw_ref).enumerate() {
            let err = (ours as f64 - reference).abs() / reference.abs().max(1.0);
            let same = if reference.is_finite() {
                err < TOL
            } else {
                reference.is_nan() == ours.is_nan() && ours.is_finite() == reference.is_finite()
            };
            assert!(same, "{value}: weight {i} is {ours}, expected {reference}");
        }
        assert!(dw.iter().any(|v| !v.is_finite()) && dw.iter().any(|v| v.is_finite()));
    }
}
