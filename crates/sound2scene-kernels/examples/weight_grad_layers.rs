//! Time of the convolution weight gradient on the IC-GAN's layer shapes (batch 32, 64
//! channels, 3 × 3 and 1 × 1, maps 4 to 32), by the matrix products and by the register-tile
//! kernel, fastest of a few runs each, alternating.
//!
//! ```text
//! cargo build --release --workspace --all-targets && target/release/examples/weight_grad_layers
//! ```
//!
//! Prints one line per shape: `32x64x64 16x16 k3: gemm 4.1 ms, direct 5.3 ms`.

use std::time::Instant;

use sound2scene_kernels::cpu::conv::ConvGeometry;
use sound2scene_kernels::cpu::conv_grad::{weight_grad_direct_with, weight_grad_gemm};
use sound2scene_kernels::cpu::simd::Isa;

fn main() {
    let isa = Isa::detect();
    for (hw, k) in [(4, 3), (8, 3), (16, 3), (32, 3), (16, 1), (32, 1)] {
        let g = ConvGeometry {
            batch: 32,
            c_in: 64,
            h_in: hw,
            w_in: hw,
            c_out: 64,
            kernel: [k, k],
            stride: [1, 1],
            padding: [k / 2, k / 2],
        };
        let x: Vec<f32> = (0..g.input_len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let dy: Vec<f32> = (0..g.output_len()).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut dw = vec![0.0; g.weight_len()];
        let (mut gemm, mut direct) = (f64::MAX, f64::MAX);
        for _ in 0..7 {
            let t = Instant::now();
            assert!(weight_grad_gemm(&x, &dy, &g, &mut dw));
            gemm = gemm.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            weight_grad_direct_with(isa, &x, &dy, &g, &mut dw);
            direct = direct.min(t.elapsed().as_secs_f64());
        }
        println!(
            "32x64x64 {hw}x{hw} k{k}: gemm {:.2} ms, direct {:.2} ms",
            1e3 * gemm,
            1e3 * direct
        );
    }
}
