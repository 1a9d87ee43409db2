//! Milliseconds and GFLOP/s (from the fastest of RUNS runs) of the direct convolution, of the
//! Winograd F(2×2, 3×3) one (3 × 3 stride-1 layers only; its GFLOP/s are "effective": the
//! direct convolution's FLOPs over its time) and of Burn flex's `conv2d` on the layer shapes of
//! f_A (batch 1, `[1, 1, 257, 1004]` input) and G (G_ch 96, batch 1), one line per layer:
//! `name direct_ms winograd_ms flex_ms direct_gflops winograd_gflops flex_gflops
//! direct/winograd`. The direct and Winograd runs alternate, so that a machine's changing load
//! weighs on both alike.
//!
//! ```sh
//! cargo build --release --workspace --locked --example conv_layers
//! target/release/examples/conv_layers [RUNS] [NAME_PREFIX]
//! ```

use std::time::Instant;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use sound2scene_kernels::cpu::conv::{ConvGeometry, Epilogue, Prologue, conv2d_direct_with};
use sound2scene_kernels::cpu::simd::Isa;
use sound2scene_kernels::cpu::winograd::{conv2d_winograd, supports};

/// Milliseconds of one call of `f`.
fn ms(f: &mut dyn FnMut()) -> f64 {
    let s = Instant::now();
    f();
    s.elapsed().as_secs_f64() * 1e3
}

/// The fastest of `runs` calls of each of `fs`, after one warm-up call each; the calls of the
/// functions alternate.
fn min_ms<const N: usize>(runs: usize, mut fs: [&mut dyn FnMut(); N]) -> [f64; N] {
    let mut best = [f64::INFINITY; N];
    for run in 0..=runs {
        for (f, best) in fs.iter_mut().zip(&mut best) {
            let t = ms(*f);
            if run > 0 {
                *best = best.min(t);
            }
        }
    }
    best
}

fn layer(c_in: usize, c_out: usize, hw: [usize; 2], k: usize, s: usize, p: usize) -> ConvGeometry {
    ConvGeometry::square(1, c_in, c_out, hw, k, s, p)
}

fn main() {
    sound2scene_kernels::keep_freed_memory();
    let runs = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    // Only the layers whose name starts with this, when given.
    let only = std::env::args().nth(2);
    let layers = [
        ("fa_stem", layer(1, 64, [257, 1004], 7, 2, 3)),
        ("fa_l1", layer(64, 64, [65, 251], 3, 1, 1)),
        ("fa_l2_s2", layer(64, 128, [65, 251], 3, 2, 1)),
        ("fa_l2", layer(128, 128, [33, 126], 3, 1, 1)),
        ("fa_l3", layer(256, 256, [17, 63], 3, 1, 1)),
        ("fa_l4", layer(512, 512, [9, 32], 3, 1, 1)),
        ("fa_l2_down", layer(64, 128, [65, 251], 1, 2, 0)),
        ("g_b0", layer(1536, 1536, [8, 8], 3, 1, 1)),
        ("g_b1", layer(1536, 768, [16, 16], 3, 1, 1)),
        ("g_b2", layer(768, 384, [32, 32], 3, 1, 1)),
        ("g_b3", layer(384, 192, [64, 64], 3, 1, 1)),
        ("g_b4", layer(192, 96, [128, 128], 3, 1, 1)),
        ("g_b4c2", layer(96, 96, [128, 128], 3, 1, 1)),
        ("g_out", layer(96, 3, [128, 128], 3, 1, 1)),
        // Narrow layers, to place the channel threshold of the Winograd path.
        ("narrow_16", layer(16, 16, [65, 251], 3, 1, 1)),
        ("narrow_24", layer(24, 24, [65, 251], 3, 1, 1)),
        ("narrow_32", layer(32, 32, [65, 251], 3, 1, 1)),
        ("narrow_48", layer(48, 48, [65, 251], 3, 1, 1)),
        ("narrow_16_32", layer(16, 32, [65, 251], 3, 1, 1)),
        ("narrow_32_16", layer(32, 16, [65, 251], 3, 1, 1)),
        // G's first two blocks at batch 8.
        (
            "g8_b0",
            ConvGeometry::square(8, 1536, 1536, [8, 8], 3, 1, 1),
        ),
        (
            "g8_b1",
            ConvGeometry::square(8, 1536, 768, [16, 16], 3, 1, 1),
        ),
        // The bundled model's IC-GAN at 32×32 (G_ch = D_ch = 16), D's batch of 64.
        ("tg_8", ConvGeometry::square(64, 64, 64, [8, 8], 3, 1, 1)),
        ("tg_16", ConvGeometry::square(64, 64, 64, [16, 16], 3, 1, 1)),
        ("tg_32", ConvGeometry::square(64, 64, 64, [32, 32], 3, 1, 1)),
        (
            "tg_sc16",
            ConvGeometry::square(64, 64, 64, [16, 16], 1, 1, 0),
        ),
        ("td_in", ConvGeometry::square(64, 3, 64, [32, 32], 3, 1, 1)),
        ("tg_out", ConvGeometry::square(64, 64, 3, [32, 32], 3, 1, 1)),
        // The alignment loop's f_A at width 8, batch 64.
        ("ta_l1", ConvGeometry::square(64, 8, 8, [65, 251], 3, 1, 1)),
        ("ta_l4", ConvGeometry::square(64, 64, 64, [9, 32], 3, 1, 1)),
    ];
    let device = Device::default();
    for (name, g) in layers {
        if only.as_ref().is_some_and(|p| !name.starts_with(p.as_str())) {
            continue;
        }
        let x = Tensor::<4>::random(
            [g.batch, g.c_in, g.h_in, g.w_in],
            Distribution::Default,
            &device,
        );
        let w = Tensor::<4>::random(
            [g.c_out, g.c_in, g.kernel[0], g.kernel[1]],
            Distribution::Default,
            &device,
        );
        let xs: Vec<f32> = x.to_data().try_to_vec::<f32>().unwrap();
        let ws: Vec<f32> = w.to_data().try_to_vec::<f32>().unwrap();
        let (p, e) = (Prologue::default(), Epilogue::default());
        let mut out = vec![0.0; g.output_len()];
        let mut out_w = vec![0.0; g.output_len()];
        let mut direct = || conv2d_direct_with(Isa::detect(), &xs, &ws, &g, &p, &e, &mut out);
        let mut winograd = || conv2d_winograd(&xs, &ws, &g, &p, &e, &mut out_w);
        let [ours, wino] = if supports(&g) {
            min_ms(runs, [&mut direct, &mut winograd])
        } else {
            [min_ms(runs, [&mut direct])[0], f64::NAN]
        };
        let options = ConvOptions::new(g.stride, g.padding, [1, 1], 1);
        let [flex] = min_ms(
            runs,
            [&mut || {
                let _ = conv2d(x.clone(), w.clone(), None, options.clone()).into_data();
            }],
        );
        let gflop = 2.0 * g.macs() as f64 / 1e9;
        println!(
            "{name:<12}{ours:>9.2}{wino:>9.2}{flex:>9.2}{:>9.1}{:>9.1}{:>9.1}{:>7.2}",
            gflop / ours * 1e3,
            gflop / wino * 1e3,
            gflop / flex * 1e3,
            ours / wino,
        );
    }
}
