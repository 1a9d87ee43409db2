//! Median forward time of f_A and of G at the released sizes, with random weights, printed as
//! `name milliseconds` lines (`audio_encoder_b1 1031.4`, `generator_b8 10800.2`) for
//! `scripts/compare_speed.py`.
//!
//! ```sh
//! cargo run --release --example time_models -- [--runs 5] [--device flex|wgpu|cuda] \
//!     [--audio-batch 1] [--generator-batch 1 8]
//! ```
//! f_A runs on `[batch, 1, 257, 1004]` spectrograms (10 s clips), G (G_ch 96, 128×128) on
//! `[batch, 120]` noise and `[batch, 2048]` features. Each timing ends when the output has been
//! read back to the host, so GPU backends are timed to completion. `--stages` also times each
//! part of G on its own (`generator_b8_block3_conv1_192x64 41.2`: the batch, the block, the
//! layer, its output channels and side; `generator_b8_linear` for the layers before the
//! blocks), to find the parts that do not scale on a backend; and each part of f_A
//! (`audio_encoder_b1_layer2_block0_128x33 6.1`; `_stem` is the convolution with its batch norm
//! and ReLU, the trunk's time less its max pool and blocks).

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use clap::Parser;
use sound2scene::BackendKind;
use sound2scene::models::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use sound2scene::models::biggan::layers::upsample2x;
use sound2scene::models::biggan::{Generator, GeneratorConfig};

/// Time f_A and G forward passes.
#[derive(Parser)]
struct Args {
    /// Timed runs per network and batch size (after one untimed warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Backend to run on: flex (CPU), wgpu or cuda (the latter two need their cargo feature).
    #[arg(long, default_value = "flex")]
    device: BackendKind,
    /// Batch sizes for f_A.
    #[arg(long, num_args = 1.., default_values_t = [1usize])]
    audio_batch: Vec<usize>,
    /// Batch sizes for G.
    #[arg(long, num_args = 1.., default_values_t = [1usize, 8])]
    generator_batch: Vec<usize>,
    /// Also time each block of f_A and G, and each layer in G's blocks.
    #[arg(long)]
    stages: bool,
}

/// Median wall time of `runs` calls of `f` in milliseconds, after one warm-up call.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> anyhow::Result<()> {
    sound2scene::keep_freed_memory();
    let args = Args::parse();
    let device = args.device.device()?;
    let encoder = AudioEncoderConfig::new().init(&device);
    for &batch in &args.audio_batch {
        let spec = Tensor::<4>::random(
            [batch, 1, 257, 1004],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ms = median_ms(args.runs, || {
            let out = encoder.forward(spec.clone());
            let _ = out.feature.into_data();
        });
        println!("audio_encoder_b{batch} {ms:.1}");
        if args.stages {
            time_audio_stages(&encoder, spec, args.runs);
        }
    }
    let config = GeneratorConfig::new();
    let generator = config.init(&device);
    for &batch in &args.generator_batch {
        let z = Tensor::<2>::random(
            [batch, config.dim_z()],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let feat = Tensor::<2>::random([batch, 2048], Distribution::Normal(0.0, 1.0), &device);
        let ms = median_ms(args.runs, || {
            let _ = generator.forward(z.clone(), feat.clone()).into_data();
        });
        println!("generator_b{batch} {ms:.1}");
        if args.stages {
            time_stages(&generator, z, feat, args.runs);
        }
    }
    Ok(())
}

/// Times f_A's parts on `spec` (`[batch, 1, 257, 1004]`), printing
/// `audio_encoder_b{batch}_{part} ms` lines: the trunk, its max pool, each residual block, the
/// stem (the trunk less those) and the head (average pool, `fc`, ReLU).
fn time_audio_stages(encoder: &AudioEncoder, spec: Tensor<4>, runs: usize) {
    let [batch, ..] = spec.dims();
    let name = |part: String| format!("audio_encoder_b{batch}_{part}");
    let sync = |t: Tensor<4>| {
        let _ = t.into_data();
    };
    let trunk = &encoder.audnet;
    let whole = median_ms(runs, || sync(trunk.forward_trunk(spec.clone())));
    println!("{} {whole:.1}", name("trunk".to_string()));
    // The stem's output shape, from the trunk's first convolution on the input.
    let [_, _, h, w] = spec.dims();
    let stem_shape = [
        batch,
        trunk.conv1.weight.dims()[0],
        h.div_ceil(2),
        w.div_ceil(2),
    ];
    let stem_out = Tensor::<4>::random(stem_shape, Distribution::Normal(0.0, 1.0), &spec.device());
    let pool = median_ms(runs, || sync(trunk.max_pool(stem_out.clone())));
    println!("{} {pool:.1}", name("maxpool".to_string()));
    let mut x = trunk.max_pool(stem_out);
    let mut blocks = 0.0;
    let layers = [&trunk.layer1, &trunk.layer2, &trunk.layer3, &trunk.layer4];
    for (l, layer) in layers.into_iter().enumerate() {
        for (i, block) in layer.iter().enumerate() {
            let ms = median_ms(runs, || sync(block.forward(x.clone())));
            x = block.forward(x);
            let [_, c, r, _] = x.dims();
            println!(
                "{} {ms:.1}",
                name(format!("layer{}_block{i}_{c}x{r}", l + 1))
            );
            blocks += ms;
        }
    }
    println!("{} {:.1}", name("stem".to_string()), whole - pool - blocks);
    let [_, c, r, q] = x.dims();
    let pooled = x.reshape([batch, c, r * q]).mean_dim(2).reshape([batch, c]);
    let head = median_ms(runs, || {
        let _ = burn::tensor::activation::relu(encoder.fc.forward(pooled.clone())).into_data();
    });
    println!("{} {head:.1}", name("fc".to_string()));
}

/// A named part of G's forward pass, run on fixed inputs.
type Part<'a> = (&'static str, Box<dyn Fn() -> Tensor<4> + 'a>);

/// Times each part of G's forward pass on the inputs each part sees in `G(z, feat)`, printing
/// `generator_b{batch}_{part} ms` lines; the parts follow `Generator::try_forward`.
fn time_stages(generator: &Generator, z: Tensor<2>, feat: Tensor<2>, runs: usize) {
    let [batch, _] = z.dims();
    let name = |part: String| format!("generator_b{batch}_{part}");
    let sync4 = |t: Tensor<4>| {
        let _ = t.into_data();
    };
    let sync2 = |t: Tensor<2>| {
        let _ = t.into_data();
    };
    let y = generator
        .shared_feat
        .as_ref()
        .map_or(feat.clone(), |layer| layer.forward(feat.clone()));
    if let Some(layer) = &generator.shared_feat {
        let ms = median_ms(runs, || sync2(layer.forward(feat.clone())));
        println!("{} {ms:.1}", name("shared_feat".to_string()));
    }
    let mut chunks = z.split(generator.z_chunk_size, 1).into_iter();
    let z0 = chunks.next().expect("G's z has a first chunk");
    let ms = median_ms(runs, || sync2(generator.linear.forward(z0.clone())));
    println!("{} {ms:.1}", name("linear".to_string()));
    let ys: Vec<Tensor<2>> = chunks.map(|c| Tensor::cat(vec![y.clone(), c], 1)).collect();
    let bw = generator.bottom_width as i32;
    let mut h = generator
        .linear
        .forward(z0)
        .reshape([batch as i32, -1, bw, bw]);
    for (i, (stage, y)) in generator.blocks.iter().zip(ys).enumerate() {
        let block = &stage.block;
        let a = block.bn1.forward(h.clone(), y.clone());
        let up = if block.upsample {
            upsample2x(a.clone())
        } else {
            a.clone()
        };
        let c1 = block.conv1.forward(up.clone());
        let b2 = block.bn2.forward(c1.clone(), y.clone());
        let parts: [Part<'_>; 6] = [
            ("bn1", Box::new(|| block.bn1.forward(h.clone(), y.clone()))),
            ("upsample", Box::new(|| upsample2x(a.clone()))),
            ("conv1", Box::new(|| block.conv1.forward(up.clone()))),
            ("bn2", Box::new(|| block.bn2.forward(c1.clone(), y.clone()))),
            ("conv2", Box::new(|| block.conv2.forward(b2.clone()))),
            ("whole", Box::new(|| block.forward(h.clone(), y.clone()))),
        ];
        for (part, f) in parts {
            let ms = median_ms(runs, || sync4(f()));
            let [_, c, r, _] = f().dims();
            println!("{} {ms:.1}", name(format!("block{i}_{part}_{c}x{r}")));
        }
        h = block.forward(h, y);
        if let Some(attention) = &stage.attention {
            let ms = median_ms(runs, || sync4(attention.forward(h.clone())));
            println!("{} {ms:.1}", name(format!("block{i}_attention")));
            h = attention.forward(h);
        }
    }
    let ms = median_ms(runs, || {
        sync4(
            generator
                .output_conv
                .forward(generator.output_bn.forward(h.clone())),
        )
    });
    println!("{} {ms:.1}", name("output".to_string()));
}
