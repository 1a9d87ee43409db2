use realfft::RealFftPlanner;
use std::time::Instant;
fn main() {
    let n = 160_000;
    let nf = 512;
    let hop = 159;
    let frames = 1004;
    let bins = 257;
    let x: Vec<f64> = (0..n)
        .map(|i| ((i as f64) * 0.01).sin() * 0.3 + ((i * 7919 % 1013) as f64) * 1e-4)
        .collect();
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(nf);
    let w: Vec<f64> = (0..nf)
        .map(|i| 0.5 - 0.5 * (i as f64 * 0.01).cos())
        .collect();
    let mut buf = fft.make_input_vec();
    let mut spec = fft.make_output_vec();
    let mut scr = fft.make_scratch_vec();
    let mut out = vec![0f64; frames * bins];
    for rep in 0..40 {
        let t = Instant::now();
        for f in 0..frames {
            let seg = &x[f * hop..f * hop + nf];
            let m = seg.iter().sum::<f64>() / nf as f64;
            for ((b, &s), &ww) in buf.iter_mut().zip(seg).zip(&w) {
                *b = (s - m) * ww;
            }
            fft.process_with_scratch(&mut buf, &mut spec, &mut scr)
                .unwrap();
            for (o, c) in out[f * bins..(f + 1) * bins].iter_mut().zip(&spec) {
                *o = c.norm_sqr() * 1e-3;
            }
        }
        let t1 = t.elapsed();
        let t = Instant::now();
        let mut s = 0.0;
        for v in out.iter_mut() {
            *v = (*v + 1e-7).ln();
            s += *v;
        }
        let t2 = t.elapsed();
        let t = Instant::now();
        let mut o32 = vec![0f32; frames * bins];
        for k in 0..bins {
            for f in 0..frames {
                o32[k * frames + f] = (out[f * bins + k] - s) as f32;
            }
        }
        let t3 = t.elapsed();
        let t = Instant::now();
        let mut lf = vec![0f32; frames * bins];
        for (o, v) in lf.iter_mut().zip(&out) {
            *o = (*v as f32 + 1e-7).ln();
        }
        let t4 = t.elapsed();
        println!(
            "rep {rep}: fft {:?} ln64 {:?} transpose {:?} ln32 {:?} {}",
            t1,
            t2,
            t3,
            t4,
            o32[5] + lf[7]
        );
    }
}
