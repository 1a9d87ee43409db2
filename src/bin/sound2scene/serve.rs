//! `sound2scene serve`: the page, the JSON/PNG API and live pictures over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use sound2scene::infer::ModelPaths;
use sound2scene::infer::bundle::{AUDIO_ENCODER_FILE, GENERATOR_FILE};
use sound2scene_serve::{ServeConfig, Server};

use crate::DeviceArgs;
use crate::common::or_bundled;

/// Arguments of `sound2scene serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; the default is loopback only (port 0 picks a free port, which
    /// is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The audio encoder: sound2scene.pth or a .bpk (default: the bundled model's).
    #[arg(long)]
    audio_weights: Option<PathBuf>,
    /// The generator: an IC-GAN experiment folder or a .bpk (default: the bundled model's).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// Largest upload in MiB.
    #[arg(long, default_value_t = 16)]
    max_upload_mib: usize,
    /// Longest sound in seconds.
    #[arg(long, default_value_t = 60.0)]
    max_audio_secs: f64,
    /// Most pictures per request (at most 16).
    #[arg(long, default_value_t = 16)]
    max_count: usize,
    /// Requests queued or running at once; more are answered 503.
    #[arg(long, default_value_t = 8)]
    queue: usize,
    /// Live sessions at once; more are answered 503.
    #[arg(long, default_value_t = 4)]
    live_sessions: usize,
    /// Longest a request may take in seconds; longer is answered 504.
    #[arg(long, default_value_t = 30.0)]
    timeout_secs: f64,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Load the model, bind the address, print it, and serve until Ctrl-C.
pub fn run(args: ServeArgs) -> Result<()> {
    let model = if args.audio_weights.is_some() || args.generator.is_some() {
        Some(ModelPaths {
            audio_encoder: or_bundled(args.audio_weights.as_deref(), AUDIO_ENCODER_FILE)?,
            generator: or_bundled(args.generator.as_deref(), GENERATOR_FILE)?,
            image_encoder: None,
        })
    } else {
        None
    };
    if !(args.timeout_secs.is_finite() && args.timeout_secs > 0.0 && args.timeout_secs <= 3600.0) {
        anyhow::bail!(
            "--timeout-secs must be more than 0 and at most 3600, got {}",
            args.timeout_secs
        );
    }
    let config = ServeConfig {
        addr: args.addr,
        model,
        device: args.device.device.device()?,
        max_upload_bytes: args.max_upload_mib.saturating_mul(1024 * 1024),
        max_audio_secs: args.max_audio_secs,
        max_count: args.max_count,
        queue: args.queue,
        live_sessions: args.live_sessions,
        timeout: Duration::from_secs_f64(args.timeout_secs),
        ..ServeConfig::default()
    };
    let model = config.model_description();
    if !config.addr.ip().is_loopback() {
        eprintln!(
            "warning: listening on {}, reachable from other machines; the server has no \
             authentication",
            config.addr
        );
    }
    let server = Server::bind(config)?;
    println!("serving {model}");
    println!("listening on http://{}", server.local_addr());
    server.run()?;
    Ok(())
}
