//! How long `sound2scene serve` takes to answer: a server on a free loopback port, then
//! `POST /api/generate` with a 4 s clip, one request at a time, and the median and 90th
//! percentile of the round trip (upload, decode, f_A, G, PNG, answer) printed.
//!
//! ```sh
//! cargo run --release --example serve_latency -- [--requests 50] [--count 1]
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use sound2scene_serve::{ServeConfig, Server};

/// Time the server's answers.
#[derive(Parser)]
struct Args {
    /// Timed requests (after three untimed ones).
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// Pictures per request.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// The sound to upload.
    #[arg(long, default_value = "assets/sounds/field_cow.wav")]
    audio: std::path::PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let server = Server::bind(ServeConfig {
        addr: "127.0.0.1:0".parse()?,
        ..ServeConfig::default()
    })?;
    let url = format!("http://{}/api/generate", server.local_addr());
    std::thread::spawn(move || server.run());

    let sound = std::fs::read(&args.audio)?;
    let boundary = "sound2scene-latency";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"count\"\r\n\r\n{}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; \
             filename=\"clip.wav\"\r\n\r\n",
            args.count
        )
        .as_bytes(),
    );
    body.extend_from_slice(&sound);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");

    let agent = ureq::Agent::new_with_defaults();
    let mut times: Vec<Duration> = Vec::with_capacity(args.requests);
    for i in 0..args.requests + 3 {
        let sent = Instant::now();
        let mut answer = agent
            .post(&url)
            .header("Content-Type", &content_type)
            .send(&body[..])?;
        answer.body_mut().read_to_vec()?;
        if i >= 3 {
            times.push(sent.elapsed());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "serve: {} requests of a {:.1} s clip, {} picture(s) each: p50 {:.1} ms, p90 {:.1} ms",
        args.requests,
        sound2scene::audio::load_audio(&args.audio)?.duration_secs(),
        args.count,
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
    );
    Ok(())
}
