//! The convolution's gradients against their definitions, on the edge shapes of the forward
//! tests, and with non-finite inputs.

mod common;

use common::{conv2d_grads_reference, max_rel_diff, normal};
use sound2scene_kernels::cpu::conv::ConvGeometry;
use sound2scene_kernels::cpu::conv_grad::{input_grad, weight_grad_with};
use sound2scene_kernels::cpu::simd::Isa;

/// f32 sums of up to a few thousand products of N(0, 1) values.
const TOL: f64 = 5e-4;

fn geometry(
    b: usize,
    ci: usize,
    co: usize,
    hw: [usize; 2],
    k: usize,
    s: usize,
    p: usize,
) -> ConvGeometry {
    ConvGeometry {
        batch: b,
        c_in: ci,
        h_in: hw[0],
        w_in: hw[1],
        c_out: co,
        kernel: [k, k],
        stride: [s, s],
        padding: [p, p],
    }
}

fn shapes() -> Vec<ConvGeometry> {
    vec![
        geometry(1, 3, 5, [7, 9], 3, 1, 1),
        geometry(3, 5, 4, [8, 8], 3, 1, 1),
        geometry(1, 16, 8, [11, 29], 3, 1, 0),
        geometry(2, 7, 9, [13, 17], 3, 2, 1),
        geometry(2, 4, 6, [10, 10], 3, 2, 0),
        geometry(3, 6, 13, [9, 12], 1, 2, 0),
        geometry(1, 1, 8, [21, 40], 7, 2, 3),
        geometry(2, 3, 2, [4, 4], 3, 1, 1),
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
    let g = geometry(1, 2, 3, [7, 10], 3, 2, 0);
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
