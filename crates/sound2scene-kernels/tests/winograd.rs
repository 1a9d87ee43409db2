//! The Winograd F(2×2, 3×3) convolution against the definition (in f64) and against the direct
//! kernel: batch 1 and 3, odd and even and tiny maps, padding 0 to 2, channel counts that are
//! not a multiple of any vector or tile, blocks of tiles that span rows and images, both ways
//! of sharing the work between threads, and every prologue and epilogue.

mod common;

use common::{conv2d_reference, normal};
use sound2scene_kernels::cpu::conv::{
    ConvGeometry, Epilogue, PerChannel, Prologue, conv2d_direct_with, conv2d_with,
};
use sound2scene_kernels::cpu::simd::Isa;
use sound2scene_kernels::cpu::winograd::{MIN_CHANNELS, MIN_TILES, conv2d_winograd_with, prefers};

/// Error allowed, as a fraction of the outputs' scale `max(1, max |want|)`. The outputs are
/// sums of up to 9 · 70 products of N(0, 1) values; the transforms add rounding of their own
/// (the input transform sums up to four inputs, the weight transform halves and sums three,
/// the output transform sums up to nine products), which keeps the error near 1e-6 of the
/// scale. A wrong coefficient in any transform is an error of the order of the outputs.
const TOL: f64 = 1e-4;

/// `max |got − want| / max(1, max |want|)`; infinite where an output is NaN (one never
/// written: the outputs start as NaN) and the wanted value is not.
fn scaled_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            let d = (g as f64 - w).abs();
            if d.is_nan() { f64::INFINITY } else { d }
        })
        .fold(0.0, f64::max)
        / scale
}

/// The shapes: odd and even sizes, tiny maps, padding 0–2, batches whose tiles share blocks.
fn shapes() -> Vec<ConvGeometry> {
    vec![
        ConvGeometry::square(1, 3, 5, [7, 9], 3, 1, 1),
        ConvGeometry::square(3, 5, 4, [8, 8], 3, 1, 1),
        ConvGeometry::square(1, 16, 13, [11, 29], 3, 1, 0),
        ConvGeometry::square(1, 1, 7, [20, 37], 3, 1, 1),
        ConvGeometry::square(3, 70, 13, [9, 11], 3, 1, 1),
        ConvGeometry::square(1, 70, 70, [17, 40], 3, 1, 1),
        ConvGeometry::square(2, 3, 9, [6, 10], 3, 1, 2),
        ConvGeometry::square(1, 2, 3, [1, 1], 3, 1, 1),
        ConvGeometry::square(3, 3, 2, [2, 3], 3, 1, 1),
        ConvGeometry::square(1, 4, 6, [3, 3], 3, 1, 0),
        ConvGeometry::square(1, 3, 14, [1, 1], 3, 1, 2),
        ConvGeometry::square(3, 1, 1, [5, 18], 3, 1, 2),
        // Thousands of tiles: each thread takes blocks of its own (few tiles, as above: the
        // threads share each block).
        ConvGeometry::square(3, 3, 5, [62, 67], 3, 1, 1),
        ConvGeometry::square(1, 70, 7, [65, 75], 3, 1, 1),
        // Few tiles and 16 · 400 · 400 transformed weights (10 MB): `U` is transformed for two
        // groups of output channels in turn, once for the one block.
        ConvGeometry::square(1, 400, 400, [6, 7], 3, 1, 1),
    ]
}

fn run_winograd(
    isa: Isa,
    x: &[f32],
    w: &[f32],
    g: &ConvGeometry,
    prologue: &Prologue,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; g.output_len()];
    conv2d_winograd_with(isa, x, w, g, prologue, epilogue, &mut out);
    out
}

#[test]
fn winograd_matches_the_definition() {
    for isa in Isa::available() {
        for (i, g) in shapes().into_iter().enumerate() {
            let x = normal(g.input_len(), 100 + 2 * i as u64);
            let w = normal(g.weight_len(), 101 + 2 * i as u64);
            let none = (&Prologue::default(), &Epilogue::default());
            let out = run_winograd(isa, &x, &w, &g, none.0, none.1);
            let err = scaled_error(&out, &conv2d_reference(&x, &w, &g));
            assert!(err < TOL, "{isa:?} {g:?}: error {err}");
        }
    }
}

#[test]
fn few_tiles_of_many_channels_take_several_blocks_and_weight_groups() {
    // 120 tiles of 1100 channels in and out: the threads share each block, the blocks'
    // buffers (17 MB) are more than one block may hold, and `U` (77 MB) is transformed ten
    // groups of output channels at a time, anew for every block. Against the direct kernel
    // (the definition in f64 would take minutes at this size).
    let g = ConvGeometry::square(1, 1100, 1100, [12, 40], 3, 1, 1);
    let isa = Isa::detect();
    let x = normal(g.input_len(), 140);
    let w = normal(g.weight_len(), 141);
    let none = (&Prologue::default(), &Epilogue::default());
    let out = run_winograd(isa, &x, &w, &g, none.0, none.1);
    let mut direct = vec![f32::NAN; g.output_len()];
    conv2d_direct_with(isa, &x, &w, &g, none.0, none.1, &mut direct);
    let want: Vec<f64> = direct.iter().map(|&d| d as f64).collect();
    let err = scaled_error(&out, &want);
    assert!(err < TOL, "{g:?}: {err} from the direct kernel");
}

/// The prologue by its definition, `up?(relu?(x · scale + shift))`, on `[batch, c_in, h, w]`
/// (`h`, `w` halved when upsampling).
fn apply_prologue(x: &[f32], g: &ConvGeometry, p: &Prologue) -> Vec<f32> {
    let up = if p.upsample { 2 } else { 1 };
    let (h, w) = (g.h_in / up, g.w_in / up);
    let mut y = vec![0.0f32; g.input_len()];
    for n in 0..g.batch {
        for c in 0..g.c_in {
            let a = p.scale.map_or(1.0, |s| s.get(n, c, g.c_in));
            let b = p.shift.map_or(0.0, |s| s.get(n, c, g.c_in));
            for yy in 0..g.h_in {
                for xx in 0..g.w_in {
                    let v = x[((n * g.c_in + c) * h + yy / up) * w + xx / up] * a + b;
                    y[((n * g.c_in + c) * g.h_in + yy) * g.w_in + xx] =
                        if p.relu { v.max(0.0) } else { v };
                }
            }
        }
    }
    y
}

/// The epilogue by its definition, `relu?(acc · scale + shift + residual)`, in f64.
fn apply_epilogue(acc: &[f64], g: &ConvGeometry, e: &Epilogue) -> Vec<f64> {
    let (ho, wo) = (g.h_out(), g.w_out());
    acc.iter()
        .enumerate()
        .map(|(i, &v)| {
            let (x, y) = (i % wo, i / wo % ho);
            let (c, n) = (i / (wo * ho) % g.c_out, i / (wo * ho * g.c_out));
            let scale = e.scale.map_or(1.0, |s| s.get(n, c, g.c_out)) as f64;
            let shift = e.shift.map_or(0.0, |s| s.get(n, c, g.c_out)) as f64;
            let residual = e.residual.map_or(0.0, |r| {
                if e.residual_upsampled {
                    r[((n * g.c_out + c) * (ho / 2) + y / 2) * (wo / 2) + x / 2]
                } else {
                    r[i]
                }
            }) as f64;
            let v = v * scale + shift + residual;
            if e.relu { v.max(0.0) } else { v }
        })
        .collect()
}

/// Per-channel values drawn from N(0, 1): shared, or one set per image.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
    per_image: bool,
}

impl Affine {
    fn new(batch: usize, channels: usize, per_image: bool, seed: u64) -> Self {
        let len = if per_image {
            batch * channels
        } else {
            channels
        };
        Self {
            scale: normal(len, seed),
            shift: normal(len, seed + 1),
            per_image,
        }
    }

    fn parts(&self) -> (PerChannel<'_>, PerChannel<'_>) {
        if self.per_image {
            (
                PerChannel::per_image(&self.scale),
                PerChannel::per_image(&self.shift),
            )
        } else {
            (
                PerChannel::shared(&self.scale),
                PerChannel::shared(&self.shift),
            )
        }
    }
}

/// One combination of prologue and epilogue parts.
#[derive(Debug, Clone, Copy)]
struct Variant {
    in_affine: Option<bool>,
    in_relu: bool,
    upsample: bool,
    out_affine: Option<bool>,
    residual: Option<bool>,
    relu: bool,
}

fn variants() -> Vec<Variant> {
    let plain = Variant {
        in_affine: None,
        in_relu: false,
        upsample: false,
        out_affine: None,
        residual: None,
        relu: false,
    };
    vec![
        Variant {
            in_affine: Some(false),
            ..plain
        },
        Variant {
            in_affine: Some(true),
            in_relu: true,
            ..plain
        },
        Variant {
            upsample: true,
            ..plain
        },
        Variant {
            in_affine: Some(true),
            in_relu: true,
            upsample: true,
            ..plain
        },
        Variant {
            out_affine: Some(false),
            relu: true,
            ..plain
        },
        Variant {
            out_affine: Some(true),
            ..plain
        },
        Variant {
            residual: Some(false),
            relu: true,
            ..plain
        },
        Variant {
            out_affine: Some(false),
            residual: Some(true),
            ..plain
        },
        Variant {
            in_affine: Some(true),
            in_relu: true,
            upsample: true,
            out_affine: Some(true),
            residual: Some(true),
            relu: true,
        },
    ]
}

/// Check one variant on `g` (even sizes where it upsamples) against the definition, and
/// against the direct kernel.
fn check_variant(isa: Isa, g: &ConvGeometry, v: Variant, seed: u64) {
    let up = if v.upsample { 4 } else { 1 };
    let x = normal(g.input_len() / up, seed);
    let w = normal(g.weight_len(), seed + 1);
    let in_affine = v
        .in_affine
        .map(|p| Affine::new(g.batch, g.c_in, p, seed + 2));
    let out_affine = v
        .out_affine
        .map(|p| Affine::new(g.batch, g.c_out, p, seed + 4));
    let residual = v.residual.map(|low| {
        let len = if low {
            g.output_len() / 4
        } else {
            g.output_len()
        };
        normal(len, seed + 6)
    });
    let in_parts = in_affine.as_ref().map(Affine::parts);
    let out_parts = out_affine.as_ref().map(Affine::parts);
    let prologue = Prologue {
        scale: in_parts.map(|p| p.0),
        shift: in_parts.map(|p| p.1),
        relu: v.in_relu,
        upsample: v.upsample,
    };
    let epilogue = Epilogue {
        scale: out_parts.map(|p| p.0),
        shift: out_parts.map(|p| p.1),
        residual: residual.as_deref(),
        residual_upsampled: v.residual == Some(true),
        relu: v.relu,
    };
    let out = run_winograd(isa, &x, &w, g, &prologue, &epilogue);
    let input = apply_prologue(&x, g, &prologue);
    let want = apply_epilogue(&conv2d_reference(&input, &w, g), g, &epilogue);
    let err = scaled_error(&out, &want);
    assert!(err < TOL, "{isa:?} {g:?} {v:?}: error {err}");
    let mut direct = vec![f32::NAN; g.output_len()];
    conv2d_direct_with(isa, &x, &w, g, &prologue, &epilogue, &mut direct);
    let want: Vec<f64> = direct.iter().map(|&d| d as f64).collect();
    let err = scaled_error(&out, &want);
    assert!(
        err < TOL,
        "{isa:?} {g:?} {v:?}: {err} from the direct kernel"
    );
    if v.relu {
        assert!(out.contains(&0.0), "{v:?}: the ReLU clamped nothing");
    }
}

#[test]
fn winograd_applies_every_prologue_and_epilogue() {
    // Even output sizes (upsampled residuals need them), odd ones, several blocks per image.
    let even = [
        ConvGeometry::square(3, 7, 13, [10, 14], 3, 1, 1),
        ConvGeometry::square(1, 70, 9, [8, 36], 3, 1, 1),
        ConvGeometry::square(2, 1, 3, [2, 2], 3, 1, 1),
    ];
    let odd = [
        ConvGeometry::square(3, 6, 7, [9, 19], 3, 1, 1),
        ConvGeometry::square(1, 3, 5, [12, 7], 3, 1, 2),
    ];
    for isa in Isa::available() {
        for (i, v) in variants().into_iter().enumerate() {
            for (j, g) in even.iter().chain(&odd).enumerate() {
                let odd_input = g.h_in % 2 == 1 || g.w_in % 2 == 1;
                let odd_output = g.h_out() % 2 == 1 || g.w_out() % 2 == 1;
                if (v.upsample && odd_input) || (v.residual == Some(true) && odd_output) {
                    continue;
                }
                check_variant(isa, g, v, 1000 + 100 * i as u64 + 10 * j as u64);
            }
        }
    }
}

#[test]
fn nan_inputs_reach_the_outputs_that_read_them() {
    for isa in Isa::available() {
        let g = ConvGeometry::square(1, 3, 4, [7, 11], 3, 1, 1);
        let mut x = normal(g.input_len(), 50);
        x[2 * 11 + 3] = f32::NAN; // channel 0, row 2, column 3
        x[77 + 6 * 11 + 10] = f32::NAN; // channel 1, bottom right corner
        let w = normal(g.weight_len(), 51);
        let relu = Epilogue {
            relu: true,
            ..Epilogue::default()
        };
        let out = run_winograd(isa, &x, &w, &g, &Prologue::default(), &relu);
        let want = conv2d_reference(&x, &w, &g);
        for (i, (&o, &e)) in out.iter().zip(&want).enumerate() {
            if e.is_nan() {
                assert!(o.is_nan(), "{isa:?}: output {i} should be NaN, is {o}");
            } else {
                assert!(
                    (o as f64 - e.max(0.0)).abs() < TOL * e.abs().max(1.0),
                    "{isa:?}: output {i} is {o}, want {}",
                    e.max(0.0)
                );
            }
        }
    }
}

#[test]
fn conv2d_takes_winograd_only_where_it_prefers_it() {
    let wide = ConvGeometry::square(2, MIN_CHANNELS, MIN_CHANNELS + 3, [9, 13], 3, 1, 1);
    let narrow = ConvGeometry::square(2, MIN_CHANNELS - 1, MIN_CHANNELS + 3, [9, 13], 3, 1, 1);
    let small = ConvGeometry::square(1, 64, 64, [7, 7], 3, 1, 1);
    let strided = ConvGeometry {
        stride: [2, 2],
        ..wide
    };
    assert!(wide.batch * 5 * 7 >= MIN_TILES && 4 * 4 < MIN_TILES);
    assert!(prefers(&wide) || std::env::var_os("SOUND2SCENE_NO_WINOGRAD").is_some());
    assert!(!prefers(&narrow) && !prefers(&small) && !prefers(&strided));
    for isa in Isa::available() {
        for g in [wide, narrow, small, strided] {
            let x = normal(g.input_len(), 80);
            let w = normal(g.weight_len(), 81);
            let (p, e) = (Prologue::default(), Epilogue::default());
            let mut chosen = vec![f32::NAN; g.output_len()];
            conv2d_with(isa, &x, &w, &g, &p, &e, &mut chosen);
            let mut expected = vec![f32::NAN; g.output_len()];
            if prefers(&g) {
                conv2d_winograd_with(isa, &x, &w, &g, &p, &e, &mut expected);
            } else {
                conv2d_direct_with(isa, &x, &w, &g, &p, &e, &mut expected);
            }
            assert_eq!(chosen, expected, "{isa:?} {g:?}");
        }
    }
}

#[test]
#[should_panic(expected = "3 × 3 kernel of stride 1")]
fn winograd_refuses_strided_convolutions() {
    let g = ConvGeometry {
        stride: [2, 2],
        ..ConvGeometry::square(1, 2, 2, [6, 6], 3, 1, 1)
    };
    let mut out = vec![0.0; g.output_len()];
    let (x, w) = (vec![0.0; g.input_len()], vec![0.0; g.weight_len()]);
    conv2d_winograd_with(
        Isa::detect(),
        &x,
        &w,
        &g,
        &Prologue::default(),
        &Epilogue::default(),
        &mut out,
    );
}
