//! `GET /api/live`: live pictures over a WebSocket.
//!
//! The client sends one text message with its settings
//! (`{"sample_rate": 48000, "channels": 1, "hop_secs": 0.5, ...}`), then binary messages of
//! little-endian `f32` interleaved PCM; the server answers `{"type": "ready", ...}` and then
//! `{"type": "frame", "index", "time_secs", "images": [data URLs], "skipped"}` every hop. A
//! text message `{"gain_db": 6}` changes the volume from the next hop on. When the networks
//! are busy as a hop comes due, the session keeps only the newest window and counts the hops it
//! dropped (`skipped`), so a slow machine lags by at most one hop instead of falling behind.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sound2scene_audio::{AudioError, SlidingWindow};
use sound2scene_infer::limits::check_gain_db;
use sound2scene_infer::{LiveSettings, LiveState};
use tokio::sync::oneshot;

use crate::api::data_url;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest WebSocket message accepted, in bytes (a second of 48 kHz stereo is 384 KiB).
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// A session that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(60);

/// The first message of a session.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    sample_rate: u32,
    #[serde(default = "one")]
    channels: u16,
    hop_secs: Option<f32>,
    window_secs: Option<f32>,
    smoothing: Option<f32>,
    count: Option<usize>,
    seed: Option<u64>,
    gain_db: Option<f32>,
}

fn one() -> u16 {
    1
}

/// A change while streaming.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    gain_db: f32,
}

/// Upgrade to a live session, or 503 when the server has as many as it takes.
pub async fn live(State(app): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let Ok(session) = app.live_sessions.clone().try_acquire_owned() else {
        return ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "the server already has {} live sessions; try again later",
                app.config.live_sessions
            ),
        }
        .into_response();
    };
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |mut socket| async move {
            let outcome = run(&app, &mut socket).await;
            // The slot is free before the client hears that its session ended, so that a client
            // that reconnects at once is not refused by its own last session.
            drop(session);
            if let Err(e) = outcome {
                let _ = socket.send(text(&error_message(&e))).await;
            }
            let _ = socket.send(Message::Close(None)).await;
        })
}

fn text(value: &serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn error_message(e: &ApiError) -> serde_json::Value {
    serde_json::json!({ "type": "error", "error": e.message })
}

/// A hop's pictures on their way back from the inference thread, with the stream's state.
type InFlight =
    oneshot::Receiver<Result<(Box<LiveState>, Result<Vec<String>, ApiError>), ApiError>>;

async fn run(app: &AppState, socket: &mut WebSocket) -> Result<(), ApiError> {
    let start = match tokio::time::timeout(IDLE, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Start>(&t).map_err(|e| {
            ApiError::bad_request(format!(
                "the first message must be the settings, e.g. {{\"sample_rate\": 48000, \
                 \"channels\": 1}}: {e}"
            ))
        })?,
        Ok(Some(Ok(_))) => {
            return Err(ApiError::bad_request(
                "the first message must be the settings as JSON text",
            ));
        }
        _ => return Ok(()),
    };
    let defaults = LiveSettings::default();
    let settings = LiveSettings {
        window_secs: start.window_secs,
        hop_secs: start.hop_secs.unwrap_or(defaults.hop_secs),
        smoothing: start.smoothing.unwrap_or(defaults.smoothing),
        count: start.count.unwrap_or(defaults.count),
        seed: start.seed.unwrap_or(defaults.seed),
        z_var: defaults.z_var,
        gain_db: start.gain_db.unwrap_or(defaults.gain_db),
    };
    if start.sample_rate == 0 || start.sample_rate > sound2scene_audio::MAX_SAMPLE_RATE {
        return Err(ApiError::bad_request(format!(
            "sample_rate must be from 1 to {} Hz, got {}",
            sound2scene_audio::MAX_SAMPLE_RATE,
            start.sample_rate
        )));
    }
    if !(1..=8).contains(&start.channels) {
        return Err(ApiError::bad_request(format!(
            "channels must be from 1 to 8, got {}",
            start.channels
        )));
    }
    if settings.count > app.config.max_count {
        return Err(ApiError::bad_request(format!(
            "count must be at most {}, got {}",
            app.config.max_count, settings.count
        )));
    }
    let permit = app.worker.try_permit()?;
    let state = app
        .worker
        .run(permit, move |pipeline| Ok(pipeline.live_state(&settings)?))
        .await?;
    let mut window: SlidingWindow = state.sliding_window()?;
    let (window_samples, hop_samples) = state.window_and_hop();
    let rate = f64::from(window.rate());
    socket
        .send(text(&serde_json::json!({
            "type": "ready",
            "hop_secs": hop_samples as f64 / rate,
            "window_secs": window_samples as f64 / rate,
            "sample_rate": window.rate(),
        })))
        .await
        .map_err(|_| ApiError::bad_request("the client left"))?;

    let mut state = Some(Box::new(state));
    let mut in_flight: Option<(InFlight, f64)> = None;
    let mut due: Option<(Vec<f32>, f64)> = None;
    let mut gain_db = start.gain_db.unwrap_or(0.0);
    let (mut index, mut skipped) = (0u64, 0u64);
    let mut samples = Vec::new();
    loop {
        // Start the due hop when the last one is back.
        if due.is_some()
            && state.is_some()
            && let (Some((hop_window, time)), Some(mut idle_state)) = (due.take(), state.take())
        {
            idle_state.set_gain_db(gain_db)?;
            match app.worker.try_permit() {
                Ok(permit) => {
                    let (reply, answer) = oneshot::channel();
                    let worker = app.worker.clone();
                    tokio::spawn(async move {
                        let result = worker
                            .run(permit, move |pipeline| {
                                let mut live_state = idle_state;
                                let images = pipeline
                                    .live_step(&mut live_state, &hop_window)
                                    .map_err(ApiError::from)
                                    .and_then(|i| i.iter().map(data_url).collect());
                                Ok((live_state, images))
                            })
                            .await;
                        let _ = reply.send(result);
                    });
                    in_flight = Some((answer, time));
                }
                Err(_) => {
                    skipped += 1;
                    state = Some(idle_state);
                }
            }
        }
        let message = tokio::select! {
            back = async { (&mut in_flight.as_mut().expect("polled only when in flight").0).await },
                if in_flight.is_some() =>
            {
                let (_, time) = in_flight.take().expect("in flight");
                let (back_state, images) =
                    back.map_err(|_| ApiError::internal("the inference thread has stopped"))??;
                state = Some(back_state);
                let frame = serde_json::json!({
                    "type": "frame",
                    "index": index,
                    "time_secs": time,
                    "images": images?,
                    "skipped": skipped,
                });
                index += 1;
                if socket.send(text(&frame)).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            message = tokio::time::timeout(IDLE, socket.recv()) => message,
        };
        let message = match message {
            Err(_) => return Err(ApiError::bad_request("no sound for 60 s; closing")),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Ok(()),
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Binary(bytes) => {
                if !bytes.len().is_multiple_of(4) {
                    return Err(ApiError::bad_request(format!(
                        "a sound message must be little-endian f32 samples; {} bytes is not",
                        bytes.len()
                    )));
                }
                samples.clear();
                samples.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                window.push(&samples, start.sample_rate, start.channels, |hop, time| {
                    if due.is_some() {
                        skipped += 1;
                    }
                    due = Some((hop.to_vec(), time));
                    Ok::<(), AudioError>(())
                })?;
            }
            Message::Text(t) => {
                let change: Change = serde_json::from_str(&t).map_err(|e| {
                    ApiError::bad_request(format!(
                        "a text message while streaming must be {{\"gain_db\": number}}: {e}"
                    ))
                })?;
                if let Err(e) = check_gain_db("gain_db", change.gain_db) {
                    let refused = error_message(&ApiError::from(e));
                    if socket.send(text(&refused)).await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                gain_db = change.gain_db;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return Ok(()),
        }
    }
}
