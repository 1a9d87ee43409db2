//! Time of the convolution weight gradient on the IC-GAN's layer shapes (batch 32, 16 to 64
//! channels, 3 × 3 and 1 × 1, maps 4 to 32), by the matrix products, by the register-tile
//! kernel and (3 × 3) by Winograd, fastest of a few runs each, alternating.
//!
//! ```text
//! cargo build --release --workspace --all-targets && target/release/examples/weight_grad_layers
//! ```
//!
//! Prints one line per shape (batch × channels in × out): `32x64x64 16x16 k3: gemm 4.1 ms, direct 5.3 ms, winograd 2.0 ms`.

use std::time::Instant;

use sound2scene_kernels::cpu::conv::ConvGeometry;
use sound2scene_kernels::cpu::conv_grad::{weight_grad_direct_with, weight_grad_gemm};
use sound2scene_kernels::cpu::simd::Isa;
use sound2scene_kernels::cpu::winograd::{supports, weight_grad_winograd};

fn main() {
    let isa = Isa::detect();
    let shapes = [16, 32, 64]
        .into_iter()
        .flat_map(|c| [(4, 3, c), (8, 3, c), (16, 3, c), (32, 3, c)])
        .chain([(16, 1, 64), (32, 1, 64)]);
    for (hw, k, c) in shapes {
        let g = ConvGeometry {
            batch: 32,
            c_in: c,
            h_in: hw,
            w_in: hw,
            c_out: c,
            kernel: [k, k],
            stride: [1, 1],
            padding: [k / 2, k / 2],
        };
        let x: Vec<f32> = (0..g.input_len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let dy: Vec<f32> = (0..g.output_len()).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut dw = vec![0.0; g.weight_len()];
        let (mut gemm, mut direct, mut winograd) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..7 {
            let t = Instant::now();
            assert!(weight_grad_gemm(&x, &dy, &g, &mut dw));
            gemm = gemm.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            weight_grad_direct_with(isa, &x, &dy, &g, &mut dw);
            direct = direct.min(t.elapsed().as_secs_f64());
            if supports(&g) {
                let t = Instant::now();
                assert!(weight_grad_winograd(&x, &dy, &g, &mut dw));
                winograd = winograd.min(t.elapsed().as_secs_f64());
            }
        }
        let winograd = if supports(&g) {
            format!(", winograd {:.2} ms", 1e3 * winograd)
        } else {
            String::new()
        };
        println!(
            "32x{c}x{c} {hw}x{hw} k{k}: gemm {:.2} ms, direct {:.2} ms{winograd}",
            1e3 * gemm,
            1e3 * direct
        );
    }
}
