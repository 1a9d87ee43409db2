//! The three background kinds ([`Background`]): their look and their ambient sound bed.
//!
//! | kind  | look                                                     | bed                                          |
//! |-------|----------------------------------------------------------|----------------------------------------------|
//! | sky   | blue vertical gradient with drifting white clouds        | wind: noise low-passed at 350 Hz with slow swells and a faint gusty whistle |
//! | water | dark blue, deeper at the bottom, with moving light wave stripes | flowing water: noise band-passed around 900 Hz plus rising-pitch bubbles |
//! | field | green grass texture (vertical blades, swaying)           | rain and insects: high-passed hiss, droplet clicks, a pulsed 5–6 kHz trill |
//!
//! No background pixel comes within [`crate::COLOR_TOLERANCE`] of a class colour.

use std::f32::consts::PI;
use std::fmt;
use std::str::FromStr;

use image::{Rgb, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::dsp::{Biquad, SR, Swell, derive_seed, hash01, rng_for, value_noise, white};
use crate::error::SynthError;

/// The kind of scene behind the sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// Open sky: blue gradient with clouds; wind.
    Sky,
    /// A river or lake: dark blue with wave stripes; flowing water.
    Water,
    /// A meadow: green grass; rain and insects.
    Field,
}

impl Background {
    /// All background kinds, in index order.
    pub const ALL: [Background; 3] = [Background::Sky, Background::Water, Background::Field];

    /// Lower-case name (`"sky"`, `"water"`, `"field"`), accepted back by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Background::Sky => "sky",
            Background::Water => "water",
            Background::Field => "field",
        }
    }

    /// Position in [`Background::ALL`] (0–2).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Background {
    type Err = SynthError;

    /// Parses a background name, case-insensitively, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Background::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| SynthError::UnknownName {
                kind: "background",
                name: s.to_string(),
                expected: Background::ALL.map(Background::name).join(", "),
            })
    }
}

fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn smoothstep(lo: f32, hi: f32, x: f32) -> f32 {
    let t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn to_rgb(c: [f32; 3], jitter: f32) -> Rgb<u8> {
    Rgb(c.map(|v| (v + jitter).round().clamp(0.0, 255.0) as u8))
}

/// Paints the background `kind` (texture `seed`, at `time_s` seconds) over all of `img`.
pub(crate) fn paint(kind: Background, seed: u64, time_s: f32, img: &mut RgbImage) {
    let (w, h) = img.dimensions();
    let side = w.max(h).max(1) as f32;
    let jitter_seed = derive_seed(seed, 7);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let u = (x as f32 + 0.5) / side;
        let v = (y as f32 + 0.5) / side;
        let jitter = (hash01(jitter_seed, i64::from(x), i64::from(y)) - 0.5) * 8.0;
        let c = match kind {
            Background::Sky => sky(seed, time_s, u, v),
            Background::Water => water(seed, time_s, u, v),
            Background::Field => field(seed, time_s, u, v),
        };
        *px = to_rgb(c, jitter);
    }
}

fn sky(seed: u64, time_s: f32, u: f32, v: f32) -> [f32; 3] {
    let base = lerp([70.0, 130.0, 210.0], [170.0, 210.0, 245.0], v);
    let drift = 0.02 + 0.02 * hash01(seed, 1, 1);
    let x = u + drift * time_s;
    let fbm = 0.65 * value_noise(seed, x * 4.0, v * 6.0)
        + 0.35 * value_noise(seed ^ 0xC10D, x * 9.0, v * 12.0);
    let cloud = smoothstep(0.5, 0.72, fbm) * (1.0 - smoothstep(0.55, 0.9, v));
    lerp(base, [240.0, 244.0, 250.0], 0.9 * cloud)
}

fn water(seed: u64, time_s: f32, u: f32, v: f32) -> [f32; 3] {
    let base = lerp([30.0, 80.0, 140.0], [15.0, 45.0, 100.0], v);
    let warp = 0.08 * (value_noise(seed, u * 3.0, v * 3.0) - 0.5)
        + 0.04 * (2.0 * PI * (1.5 * u + hash01(seed, 2, 2))).sin();
    let wave = (2.0 * PI * (8.0 * (v + warp) - 0.6 * time_s)).sin();
    lerp(base, [70.0, 120.0, 180.0], smoothstep(0.55, 0.95, wave))
}

fn field(seed: u64, time_s: f32, u: f32, v: f32) -> [f32; 3] {
    let sway = 0.01 * (1.5 * time_s + 3.0 * v).sin() * (1.0 - v);
    let blades = value_noise(seed, (u + sway) * 40.0, v * 5.0);
    let patches = value_noise(seed ^ 0x6A55, u * 3.0, v * 3.0);
    let c = lerp(
        [35.0, 105.0, 30.0],
        [100.0, 175.0, 70.0],
        0.75 * blades + 0.25 * patches,
    );
    lerp(c, [95.0, 165.0, 80.0], 0.3 * (1.0 - v))
}

/// `n` samples of the ambient bed of `kind` (not yet normalised).
pub(crate) fn ambient(kind: Background, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rng_for(seed, 100 + kind.index() as u64);
    let mut out = vec![0.0f32; n];
    match kind {
        Background::Sky => {
            let swell = Swell::new(&mut rng, 0.05, 0.3);
            let mut lp1 = Biquad::lowpass(350.0, 0.7);
            let mut lp2 = Biquad::lowpass(350.0, 0.7);
            let mut gust = Biquad::bandpass(rng.random_range(500.0..900.0), 4.0);
            for (i, o) in out.iter_mut().enumerate() {
                let s = swell.at(i as f32 / SR);
                let w = white(&mut rng);
                *o = lp2.process(lp1.process(w)) * (0.3 + s) + 0.15 * gust.process(w) * s * s;
            }
        }
        Background::Water => {
            let swell = Swell::new(&mut rng, 0.1, 0.4);
            let mut bp = Biquad::bandpass(900.0, 0.8);
            for (i, o) in out.iter_mut().enumerate() {
                *o = bp.process(white(&mut rng)) * (0.6 + 0.4 * swell.at(i as f32 / SR));
            }
            let mut t = 0.0f32;
            loop {
                t += -(1.0 - rng.random::<f32>()).ln() / 12.0;
                let start = (t * SR) as usize;
                if start >= n {
                    break;
                }
                let f0 = rng.random_range(300.0..1200.0);
                let tau = rng.random_range(0.01..0.03);
                let amp = rng.random_range(0.5..1.5);
                let mut ph = 0.0f32;
                let len = ((5.0 * tau * SR) as usize).min(n - start);
                for (i, o) in out[start..start + len].iter_mut().enumerate() {
                    let dt = i as f32 / SR;
                    ph = (ph + 2.0 * PI * f0 * (1.0 + 0.3 * dt / tau) / SR) % (2.0 * PI);
                    *o += 0.5 * amp * (-dt / tau).exp() * ph.sin();
                }
            }
        }
        Background::Field => {
            let swell = Swell::new(&mut rng, 0.2, 0.8);
            let mut hiss = Biquad::highpass(2500.0, 0.7);
            let mut drops = Biquad::highpass(1500.0, 0.7);
            let insect_f = rng.random_range(5200.0..6000.0);
            let pulse_f = rng.random_range(30.0..45.0);
            let mut drop_left = 0usize;
            for (i, o) in out.iter_mut().enumerate() {
                let t = i as f32 / SR;
                if drop_left == 0 && rng.random_bool(40.0 / f64::from(SR)) {
                    drop_left = (0.003 * SR) as usize;
                }
                let drop = if drop_left > 0 {
                    drop_left -= 1;
                    2.0 * white(&mut rng)
                } else {
                    0.0
                };
                let trill_on = smoothstep(0.45, 0.6, swell.at(t));
                let pulse = (2.0 * PI * pulse_f * t).sin().max(0.0);
                let insect = trill_on * pulse * (2.0 * PI * insect_f * t).sin();
                *o = 0.6 * hiss.process(white(&mut rng)) + drops.process(drop) + 0.25 * insect;
            }
        }
    }
    out
}
