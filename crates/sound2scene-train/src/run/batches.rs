//! Epochs cut into batches: the shuffle and the cut the alignment and selector loops share.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::init::splitmix;

/// The items of epoch `epoch` as batches: `items` shuffled by a ChaCha8 stream seeded from
/// `(seed, epoch)`, then cut by [`batches`].
pub fn epoch_batches(items: &[usize], batch_size: usize, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
    let mut order = items.to_vec();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(splitmix(
        seed ^ splitmix(epoch),
    )));
    batches(&order, batch_size)
}

/// `order` cut into pieces of `batch_size` (at least 1), a final piece of one item joining the
/// previous batch (a contrastive loss needs two examples).
pub fn batches(order: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    if batches.len() > 1 && batches.last().is_some_and(|b| b.len() == 1) {
        let last = batches.pop().unwrap_or_default();
        if let Some(previous) = batches.last_mut() {
            previous.extend(last);
        }
    }
    batches
}
