//! GFLOP/s (from the fastest of RUNS runs) of the direct convolution and of Burn flex's `conv2d` on the layer shapes of f_A
//! (batch 1, `[1, 1, 257, 1004]` input) and G (G_ch 96, batch 1), one line per layer:
//! `name ours_ms flex_ms ours_gflops flex_gflops`.
//!
//! ```sh
//! cargo run --release -p sound2scene-kernels --example conv_layers -- [RUNS] [NAME_PREFIX]
//! ```

use std::time::Instant;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use sound2scene_kernels::cpu::conv::{ConvGeometry, Epilogue, Prologue, conv2d as direct};

fn min_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[0]
}

fn layer(c_in: usize, c_out: usize, hw: [usize; 2], k: usize, s: usize, p: usize) -> ConvGeometry {
    batched(1, c_in, c_out, hw, k, s, p)
}

fn batched(
    batch: usize,
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    k: usize,
    s: usize,
    p: usize,
) -> ConvGeometry {
    ConvGeometry {
        batch,
        c_in,
        h_in: hw[0],
        w_in: hw[1],
        c_out,
        kernel: [k, k],
        stride: [s, s],
        padding: [p, p],
    }
}

fn main() {
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
        // The bundled model's IC-GAN at 32×32 (G_ch = D_ch = 16), D's batch of 64.
        ("tg_8", batched(64, 64, 64, [8, 8], 3, 1, 1)),
        ("tg_16", batched(64, 64, 64, [16, 16], 3, 1, 1)),
        ("tg_32", batched(64, 64, 64, [32, 32], 3, 1, 1)),
        ("tg_sc16", batched(64, 64, 64, [16, 16], 1, 1, 0)),
        ("td_in", batched(64, 3, 64, [32, 32], 3, 1, 1)),
        ("tg_out", batched(64, 64, 3, [32, 32], 3, 1, 1)),
        // The alignment loop's f_A at width 8, batch 64.
        ("ta_l1", batched(64, 8, 8, [65, 251], 3, 1, 1)),
        ("ta_l4", batched(64, 64, 64, [9, 32], 3, 1, 1)),
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
        let mut out = vec![0.0; g.output_len()];
        let ours = min_ms(runs, || {
            direct(
                &xs,
                &ws,
                &g,
                &Prologue::default(),
                &Epilogue::default(),
                &mut out,
            )
        });
        let options = ConvOptions::new(g.stride, g.padding, [1, 1], 1);
        let flex = min_ms(runs, || {
            let _ = conv2d(x.clone(), w.clone(), None, options.clone()).into_data();
        });
        let gflop = 2.0 * g.macs() as f64 / 1e9;
        println!(
            "{name:<12}{ours:>9.2}{flex:>9.2}{:>9.1}{:>9.1}",
            gflop / ours * 1e3,
            gflop / flex * 1e3
        );
    }
}
