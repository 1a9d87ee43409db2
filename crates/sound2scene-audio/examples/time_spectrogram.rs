//! Prints the median time in ms of N spectrogram computations of one audio file (decoding is
//! done once, before timing).
//!
//! Usage: `time_spectrogram FILE [RUNS=50]`. Set `RAYON_NUM_THREADS=1` for a single-thread
//! measurement. The last line is `median_ms <value>`.

use std::process::ExitCode;
use std::time::Instant;

use sound2scene_audio::{SpectrogramConfig, SpectrogramPlan, load_audio};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: time_spectrogram FILE [RUNS=50]");
        return ExitCode::FAILURE;
    };
    let runs: usize = match args.get(2).map(|s| s.parse()) {
        None => 50,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("RUNS must be a positive integer");
            return ExitCode::FAILURE;
        }
    };
    let wave = match load_audio(path) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = match SpectrogramPlan::new(&SpectrogramConfig::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 3 {
        let t = Instant::now();
        let spec = plan.compute(&wave);
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = spec {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        if i >= 3 {
            times.push(elapsed);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "threads {} runs {runs} min_ms {:.4}",
        rayon::current_num_threads(),
        times[0]
    );
    println!("median_ms {:.4}", times[times.len() / 2]);
    ExitCode::SUCCESS
}
