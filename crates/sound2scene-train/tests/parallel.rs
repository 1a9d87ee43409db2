//! Data parallelism of the alignment step ([`sound2scene_train::parallel`]): a batch cut into
//! shards on several devices gives the loss and the gradient of the whole batch.

mod common;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use sound2scene_models::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use sound2scene_models::resnet::{BlockKind, ResNetConfig};
use sound2scene_train::ContrastiveLoss;
use sound2scene_train::align::init_encoder;
use sound2scene_train::parallel::{ShardedStep, forward_backward, shard_rows};

const SHAPE: [usize; 4] = [4, 1, 24, 20];
const DIM: usize = 16;

/// A width-4 ResNet-18-like audio encoder (one basic block per stage), tracked for autodiff.
fn encoder() -> AudioEncoder {
    let config = AudioEncoderConfig::new()
        .with_resnet(
            ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
                .with_in_channels(1)
                .with_base_width(4),
        )
        .with_out_dim(DIM);
    init_encoder(&config, 5, &Device::flex()).train()
}

fn values(seed: u64, count: usize) -> Vec<f32> {
    common::pseudo_random(seed, count)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// Every parameter's gradient (flattened, in traversal order; empty when it has none).
fn gradients(model: &AudioEncoder, grads: &GradientsParams) -> Vec<(ParamId, Vec<f32>)> {
    struct Collect<'a>(&'a GradientsParams, Vec<(ParamId, Vec<f32>)>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = self.0.get::<D>(param.id).map_or_else(Vec::new, |g| {
                g.into_data()
                    .try_into_vec_as::<f32>()
                    .expect("f32 gradient")
            });
            self.1.push((param.id, values));
        }
    }
    let mut collect = Collect(grads, Vec::new());
    model.visit(&mut collect);
    collect.1
}

#[test]
fn shards_on_several_devices_give_the_full_batch_loss_and_gradient() {
    let model = encoder();
    let device = Device::flex().autodiff();
    // The batch is one half repeated, so that each shard's batch-norm statistics equal those
    // of the whole batch and the sharded step must reproduce the one-device step exactly.
    let [half, c, h, w] = SHAPE;
    let spectrogram = values(1, half * c * h * w);
    let feature = values(2, half * DIM);
    let spectrograms = [spectrogram.clone(), spectrogram].concat();
    let features = [feature.clone(), feature].concat();
    let shape = [2 * half, c, h, w];
    let step = |devices: &[Device]| -> ShardedStep {
        forward_backward(
            &model,
            devices,
            &spectrograms,
            shape,
            &features,
            DIM,
            ContrastiveLoss::InfoNceL2,
        )
        .expect("a step")
    };
    let one = step(std::slice::from_ref(&device));
    let two = step(&[device.clone(), device]);
    assert!(one.loss.is_finite());
    assert!(
        (one.loss - two.loss).abs() < 1e-5,
        "losses {} and {}",
        one.loss,
        two.loss
    );
    let (a, b) = (gradients(&model, &one.grads), gradients(&model, &two.grads));
    assert_eq!(a.len(), b.len());
    let mut compared = 0;
    for ((id, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(
            x.len(),
            y.len(),
            "parameter {id} has a gradient in only one run"
        );
        let scale = x.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let worst = x
            .iter()
            .zip(y)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            worst <= 1e-3 * scale,
            "parameter {id}: gradients differ by {worst} (largest {scale})"
        );
        compared += usize::from(!x.is_empty());
    }
    assert!(compared > 10, "only {compared} parameters had gradients");
}

#[test]
fn shards_are_even_and_idle_devices_are_allowed() {
    let rows: Vec<_> = (0..3).map(|i| shard_rows(5, 3, i)).collect();
    assert_eq!(rows, [(0, 1), (1, 3), (3, 5)]);
    let model = encoder();
    let device = Device::flex().autodiff();
    let [_, c, h, w] = SHAPE;
    // Two rows over three devices: the third stays idle.
    let step = forward_backward(
        &model,
        &[device.clone(), device.clone(), device],
        &values(3, 2 * c * h * w),
        [2, c, h, w],
        &values(4, 2 * DIM),
        DIM,
        ContrastiveLoss::InfoNceL2,
    )
    .expect("a step");
    assert!(step.loss.is_finite());
    assert!(
        forward_backward(
            &model,
            &[],
            &[],
            [0, c, h, w],
            &[],
            DIM,
            ContrastiveLoss::InfoNceL2
        )
        .is_err()
    );
}
