//! The direct convolution against its definition, on shapes chosen to hit every edge of the
//! tiling: widths that are not a multiple of the vector, channel counts that are not a multiple
//! of the register tile, batch 1 and 3, padding 0 and 1, strides 1 and 2, kernels 1, 3 and 7.

mod common;

use common::{conv2d_reference, max_rel_diff, normal};
use sound2scene_kernels::cpu::conv::{
    ConvGeometry, Epilogue, PerChannel, Prologue, conv2d, conv2d_direct_with,
};
use sound2scene_kernels::cpu::simd::Isa;

/// f32 accumulation over at most a few hundred products of N(0, 1) values.
const TOL: f64 = 1e-4;

fn shapes() -> Vec<ConvGeometry> {
    vec![
        ConvGeometry::square(1, 3, 5, [7, 9], 3, 1, 1),
        ConvGeometry::square(3, 5, 4, [8, 8], 3, 1, 1),
        ConvGeometry::square(1, 16, 8, [11, 29], 3, 1, 0),
        ConvGeometry::square(2, 7, 9, [13, 17], 3, 2, 1),
        ConvGeometry::square(1, 4, 6, [10, 31], 1, 1, 0),
        ConvGeometry::square(3, 6, 13, [9, 12], 1, 2, 0),
        ConvGeometry::square(1, 1, 8, [21, 40], 7, 2, 3),
        ConvGeometry::square(1, 2, 3, [1, 1], 3, 1, 1),
        ConvGeometry::square(2, 3, 2, [4, 4], 3, 1, 1),
        ConvGeometry::square(1, 9, 4, [33, 5], 3, 2, 1),
    ]
}

#[test]
fn direct_convolution_matches_its_definition() {
    for isa in Isa::available() {
        for (i, g) in shapes().into_iter().enumerate() {
            let x = normal(g.input_len(), 2 * i as u64);
            let w = normal(g.weight_len(), 2 * i as u64 + 1);
            let mut out = vec![f32::NAN; g.output_len()];
            conv2d_direct_with(
                isa,
                &x,
                &w,
                &g,
                &Prologue::default(),
                &Epilogue::default(),
                &mut out,
            );
            let err = max_rel_diff(&out, &conv2d_reference(&x, &w, &g));
            assert!(err < TOL, "{isa:?} {g:?}: max relative error {err}");
        }
    }
}

#[test]
fn epilogue_scales_shifts_adds_the_residual_and_clamps() {
    for isa in Isa::available() {
        let g = ConvGeometry::square(2, 6, 7, [9, 19], 3, 1, 1);
        let x = normal(g.input_len(), 40);
        let w = normal(g.weight_len(), 41);
        let scale = normal(g.c_out, 42);
        let shift = normal(g.c_out, 43);
        let residual = normal(g.output_len(), 44);
        let epilogue = Epilogue {
            scale: Some(PerChannel::shared(&scale)),
            shift: Some(PerChannel::shared(&shift)),
            residual: Some(&residual),
            residual_upsampled: false,
            relu: true,
        };
        let mut out = vec![f32::NAN; g.output_len()];
        conv2d_direct_with(isa, &x, &w, &g, &Prologue::default(), &epilogue, &mut out);
        let plane = g.h_out() * g.w_out();
        let expected: Vec<f64> = conv2d_reference(&x, &w, &g)
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / plane) % g.c_out;
                (v * scale[c] as f64 + shift[c] as f64 + residual[i] as f64).max(0.0)
            })
            .collect();
        let err = max_rel_diff(&out, &expected);
        assert!(err < TOL, "{isa:?}: max relative error {err}");
        assert!(out.contains(&0.0), "the ReLU clamped nothing");
    }
}

#[test]
fn non_finite_inputs_propagate_as_in_the_definition() {
    for isa in Isa::available() {
        let g = ConvGeometry::square(1, 3, 4, [6, 10], 3, 1, 1);
        let mut x = normal(g.input_len(), 50);
        x[2 * 10 + 3] = f32::NAN; // channel 0, row 2, column 3
        x[60 + 5 * 10 + 9] = f32::INFINITY; // channel 1, row 5, column 9
        let w = normal(g.weight_len(), 51);
        let mut out = vec![0.0; g.output_len()];
        let relu = Epilogue {
            relu: true,
            ..Epilogue::default()
        };
        conv2d_direct_with(isa, &x, &w, &g, &Prologue::default(), &relu, &mut out);
        let expected = conv2d_reference(&x, &w, &g);
        for (i, (&o, &e)) in out.iter().zip(&expected).enumerate() {
            if e.is_nan() {
                assert!(o.is_nan(), "{isa:?}: output {i} should be NaN, is {o}");
            } else if e.is_infinite() {
                let clamped = if e > 0.0 { f32::INFINITY } else { 0.0 };
                assert_eq!(o, clamped, "{isa:?}: output {i}");
            } else {
                assert!(
                    (o as f64 - e.max(0.0)).abs() < TOL * e.abs().max(1.0),
                    "{isa:?}: output {i}"
                );
            }
        }
        assert!(out.iter().any(|v| v.is_nan()) && out.contains(&f32::INFINITY));
    }
}

#[test]
fn prologue_maps_clamps_and_upsamples_the_input_per_image() {
    for isa in Isa::available() {
        // The conv sees a 2× upsampled 5 × 7 input; 7 output channels leave a partial block.
        let g = ConvGeometry::square(2, 3, 7, [10, 14], 3, 1, 1);
        let low = normal(g.input_len() / 4, 60);
        let w = normal(g.weight_len(), 61);
        let in_scale = normal(g.batch * g.c_in, 62);
        let in_shift = normal(g.batch * g.c_in, 63);
        let out_scale = normal(g.batch * g.c_out, 64);
        let out_shift = normal(g.c_out, 65);
        let residual = normal(g.output_len() / 4, 66);
        let prologue = Prologue {
            scale: Some(PerChannel::per_image(&in_scale)),
            shift: Some(PerChannel::per_image(&in_shift)),
            relu: true,
            upsample: true,
        };
        let epilogue = Epilogue {
            scale: Some(PerChannel::per_image(&out_scale)),
            shift: Some(PerChannel::shared(&out_shift)),
            residual: Some(&residual),
            residual_upsampled: true,
            relu: false,
        };
        let mut out = vec![f32::NAN; g.output_len()];
        conv2d_direct_with(isa, &low, &w, &g, &prologue, &epilogue, &mut out);

        // The same by hand: transform, upsample, convolve, then the per-image epilogue.
        let (h, wd) = (g.h_in / 2, g.w_in / 2);
        let mut up = vec![0.0f32; g.input_len()];
        for n in 0..g.batch {
            for c in 0..g.c_in {
                let (a, d) = (in_scale[n * g.c_in + c], in_shift[n * g.c_in + c]);
                for y in 0..g.h_in {
                    for x in 0..g.w_in {
                        let v = low[((n * g.c_in + c) * h + y / 2) * wd + x / 2] * a + d;
                        up[((n * g.c_in + c) * g.h_in + y) * g.w_in + x] = v.max(0.0);
                    }
                }
            }
        }
        let (ho, wo) = (g.h_out(), g.w_out());
        let expected: Vec<f64> = conv2d_reference(&up, &w, &g)
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (x, y) = (i % wo, i / wo % ho);
                let (c, n) = (i / (wo * ho) % g.c_out, i / (wo * ho * g.c_out));
                let r = residual[((n * g.c_out + c) * (ho / 2) + y / 2) * (wo / 2) + x / 2];
                v * out_scale[n * g.c_out + c] as f64 + out_shift[c] as f64 + r as f64
            })
            .collect();
        let err = max_rel_diff(&out, &expected);
        assert!(err < TOL, "{isa:?}: max relative error {err}");
    }
}

#[test]
fn long_sums_split_into_chunks_keep_their_partial_sums() {
    // 96 input channels × 9 taps = 864 steps: more than one chunk of the sum.
    for isa in Isa::available() {
        let g = ConvGeometry::square(1, 96, 13, [9, 11], 3, 1, 1);
        let x = normal(g.input_len(), 70);
        let w = normal(g.weight_len(), 71);
        let shift = normal(g.c_out, 72);
        let epilogue = Epilogue {
            shift: Some(PerChannel::shared(&shift)),
            relu: true,
            ..Epilogue::default()
        };
        let mut out = vec![f32::NAN; g.output_len()];
        conv2d_direct_with(isa, &x, &w, &g, &Prologue::default(), &epilogue, &mut out);
        let plane = g.h_out() * g.w_out();
        let expected: Vec<f64> = conv2d_reference(&x, &w, &g)
            .iter()
            .enumerate()
            .map(|(i, &v)| (v + shift[i / plane % g.c_out] as f64).max(0.0))
            .collect();
        let err = max_rel_diff(&out, &expected);
        assert!(err < 4.0 * TOL, "{isa:?}: max relative error {err}");
    }
}

#[test]
fn a_reused_padded_input_leaks_nothing_into_the_next_convolution() {
    // Both padded inputs are over 2 MiB, so the second takes the first's pooled mapping: the
    // NaN rows the first leaves there must all be overwritten (pads included) by the second,
    // smaller and more padded, convolution.
    let first = ConvGeometry::square(4, 32, 8, [66, 66], 3, 1, 1);
    let x = vec![f32::NAN; first.input_len()];
    let w = normal(first.weight_len(), 70);
    let mut out = vec![0.0; first.output_len()];
    conv2d(
        &x,
        &w,
        &first,
        &Prologue::default(),
        &Epilogue::default(),
        &mut out,
    );
    assert!(out.iter().all(|v| v.is_nan()));
    for (i, g) in [
        ConvGeometry::square(5, 32, 8, [60, 57], 3, 1, 2),
        ConvGeometry::square(5, 32, 40, [60, 57], 3, 1, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let x = normal(g.input_len(), 71 + i as u64);
        let w = normal(g.weight_len(), 73 + i as u64);
        let mut out = vec![f32::NAN; g.output_len()];
        conv2d(
            &x,
            &w,
            &g,
            &Prologue::default(),
            &Epilogue::default(),
            &mut out,
        );
        let err = max_rel_diff(&out, &conv2d_reference(&x, &w, &g));
        assert!(err < 1e-3, "{g:?}: max relative error {err}");
    }
}
