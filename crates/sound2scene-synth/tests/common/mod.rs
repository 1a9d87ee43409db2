//! Helpers shared by the integration tests.
#![allow(dead_code)]

use realfft::RealFftPlanner;

/// Energy of `signal` between `lo` and `hi` Hz (sum of |X(f)|² over the band, divided by the
/// length), at 16 kHz.
pub fn band_energy(signal: &[f32], (lo, hi): (f32, f32)) -> f64 {
    let n = signal.len();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut input = signal.to_vec();
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut input, &mut spectrum).expect("fft");
    let hz_per_bin = 16_000.0 / n as f32;
    spectrum
        .iter()
        .enumerate()
        .filter(|(k, _)| {
            let f = *k as f32 * hz_per_bin;
            f >= lo && f < hi
        })
        .map(|(_, c)| f64::from(c.norm_sqr()))
        .sum::<f64>()
        / n as f64
}

/// Root mean square.
pub fn rms(signal: &[f32]) -> f32 {
    if signal.is_empty() {
        return 0.0;
    }
    (signal.iter().map(|x| x * x).sum::<f32>() / signal.len() as f32).sqrt()
}
