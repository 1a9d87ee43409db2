//! The JSON/PNG API: `GET /api/info`, `POST /api/generate`, `POST /api/interpolate`.
//!
//! Uploads are `multipart/form-data`; sounds are decoded from memory (any format the decoder
//! takes) and never touch the file system. Every field is checked and named in the 400 that
//! refuses it.

use std::collections::HashMap;
use std::future::Future;
use std::io::Cursor;
use std::time::Instant;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use image::RgbImage;
use sound2scene_audio::{AudioError, DecodeOptions, Waveform, load_audio_bytes};
use sound2scene_infer::limits::MAX_GAIN_DB;
use sound2scene_infer::visual::grid;
use sound2scene_infer::{
    DrawSettings, Interpolation, Noise, SoundToScene, interpolate, mix_and_gain,
};

use crate::error::ApiError;
use crate::state::AppState;

impl From<AudioError> for ApiError {
    fn from(e: AudioError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// `GET /api/info`: the model and the limits.
pub async fn info(State(app): State<AppState>) -> Json<serde_json::Value> {
    let info = app.worker.info();
    let config = &app.config;
    Json(serde_json::json!({
        "resolution": info.resolution,
        "sample_rate": info.sample_rate,
        "clip_secs": info.clip_secs,
        "limits": {
            "max_upload_bytes": config.max_upload_bytes,
            "max_audio_secs": config.max_audio_secs,
            "max_count": config.max_count,
            "max_steps": config.max_steps,
            "max_gain_db": MAX_GAIN_DB,
        },
        "live": {
            "hop_secs": sound2scene_infer::LiveSettings::default().hop_secs,
            "window_secs": info.clip_secs,
            "smoothing": sound2scene_infer::LiveSettings::default().smoothing,
        },
    }))
}

/// `POST /api/generate`: fields `audio` (file), `mix` (file), `mix_weight` (0..=1, default
/// 0.5), `count` (default 1), `seed` (default 0), `gain_db` (default 0), `format` (`json`,
/// default, or `png`: the grid `sound2scene generate` writes).
pub async fn generate(
    State(app): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let timeout = app.config.timeout;
    within(timeout, async move {
        let permit = app.worker.try_permit()?;
        let mut form = Form::read(
            multipart,
            &["audio", "mix"],
            &["mix_weight", "count", "seed", "gain_db", "format"],
        )
        .await?;
        let audio = form.file("audio")?;
        let mix = form.optional_file("mix");
        let mix_weight = form.number(
            "mix_weight",
            0.5f32,
            |w| (0.0..=1.0).contains(w),
            "from 0 to 1",
        )?;
        let max_count = app.config.max_count;
        let count = form.number(
            "count",
            1usize,
            |c| (1..=max_count).contains(c),
            &format!("a whole number from 1 to {max_count}"),
        )?;
        let seed = form.number("seed", 0u64, |_| true, "a whole number from 0")?;
        let gain_db = form.number(
            "gain_db",
            0.0f32,
            |g| g.abs() <= MAX_GAIN_DB,
            &format!("a number of dB within ±{MAX_GAIN_DB}"),
        )?;
        let png = form.choice("format", &[("json", false), ("png", true)])?;
        let decode = decode_options(app.config.max_audio_secs);
        let started = Instant::now();
        let pictures = app
            .worker
            .run(permit, move |pipeline| {
                let wave = decode_upload(pipeline, audio, &decode)?;
                let audio_secs = wave.duration_secs();
                let other = mix
                    .map(|m| decode_upload(pipeline, m, &decode))
                    .transpose()?;
                let wave = mix_and_gain(
                    wave,
                    other.as_ref().map(|o| (o, mix_weight)),
                    (gain_db != 0.0).then_some(gain_db),
                )?;
                let features = pipeline.audio_features(std::slice::from_ref(&wave))?;
                let settings = DrawSettings {
                    count,
                    ..DrawSettings::default()
                };
                let noise = Noise::Seeded { seed, z_var: 1.0 };
                let drawn = pipeline.draw(features, &noise, &settings, |_, _| {})?;
                Ok(Pictures {
                    images: drawn.images,
                    audio_secs,
                })
            })
            .await?;
        if png {
            let png = encode_png(&grid(&pictures.images, count, 2))?;
            return Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response());
        }
        pictures.into_json(started)
    })
    .await
}

/// `POST /api/interpolate`: fields `a` and `b` (files), `steps` (default 8), `seed` (default
/// 0), `mode` (`slerp`, default, or `lerp`); one picture per step with the same noise.
pub async fn interpolate_sounds(
    State(app): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let timeout = app.config.timeout;
    within(timeout, async move {
        let permit = app.worker.try_permit()?;
        let mut form = Form::read(multipart, &["a", "b"], &["steps", "seed", "mode"]).await?;
        let a = form.file("a")?;
        let b = form.file("b")?;
        let max_steps = app.config.max_steps;
        let steps = form.number(
            "steps",
            8usize,
            |s| (2..=max_steps).contains(s),
            &format!("a whole number from 2 to {max_steps}"),
        )?;
        let seed = form.number("seed", 0u64, |_| true, "a whole number from 0")?;
        let mode = form.choice(
            "mode",
            &[
                ("slerp", Interpolation::Spherical),
                ("lerp", Interpolation::Linear),
            ],
        )?;
        let decode = decode_options(app.config.max_audio_secs);
        let started = Instant::now();
        let pictures = app
            .worker
            .run(permit, move |pipeline| {
                let a = decode_upload(pipeline, a, &decode)?;
                let b = decode_upload(pipeline, b, &decode)?;
                let audio_secs = a.duration_secs().max(b.duration_secs());
                let ends = pipeline.audio_features(&[a, b])?; // [2, dim]
                let rows = interpolate(
                    ends.clone().narrow(0, 0, 1),
                    ends.narrow(0, 1, 1),
                    steps,
                    mode,
                )?;
                let noise = Noise::Seeded { seed, z_var: 1.0 };
                let drawn = pipeline.draw(rows, &noise, &DrawSettings::default(), |_, _| {})?;
                Ok(Pictures {
                    images: drawn.images,
                    audio_secs,
                })
            })
            .await?;
        pictures.into_json(started)
    })
    .await
}

/// A 404 in JSON, naming what there is.
pub async fn not_found() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        message: "no such page; the API is GET /api/info, POST /api/generate, \
                  POST /api/interpolate and GET /api/live (WebSocket)"
            .into(),
    }
}

/// Run a request's work, answering 504 when it takes longer than `timeout` (reading the body
/// included) and the error's JSON when it fails.
async fn within(
    timeout: std::time::Duration,
    work: impl Future<Output = Result<Response, ApiError>>,
) -> Response {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::timed_out(timeout.as_secs_f64()).into_response(),
    }
}

fn decode_options(max_audio_secs: f64) -> DecodeOptions {
    DecodeOptions {
        max_duration_secs: max_audio_secs,
        ..DecodeOptions::default()
    }
}

/// Decode an uploaded sound to the pipeline's rate, mono.
fn decode_upload(
    pipeline: &SoundToScene,
    upload: Upload,
    options: &DecodeOptions,
) -> Result<Waveform, ApiError> {
    let rate = pipeline.spectrogram_config().sample_rate;
    Ok(load_audio_bytes(upload.bytes, &upload.label, options, rate)?.wave)
}

/// An uploaded file: its bytes and the name it is called by in messages.
pub(crate) struct Upload {
    label: String,
    bytes: Vec<u8>,
}

/// The pictures of a request and the length of its sound.
struct Pictures {
    images: Vec<RgbImage>,
    audio_secs: f64,
}

impl Pictures {
    fn into_json(self, started: Instant) -> Result<Response, ApiError> {
        let (width, height) = self.images.first().map_or((0, 0), |i| i.dimensions());
        let images = self
            .images
            .iter()
            .map(data_url)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(serde_json::json!({
            "images": images,
            "width": width,
            "height": height,
            "audio_secs": self.audio_secs,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        }))
        .into_response())
    }
}

/// A picture as PNG bytes, encoded as `image` saves a `.png` file.
pub(crate) fn encode_png(image: &RgbImage) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| ApiError::internal(format!("cannot encode a picture as PNG: {e}")))?;
    Ok(bytes.into_inner())
}

/// A picture as a `data:image/png;base64,...` URL.
pub(crate) fn data_url(image: &RgbImage) -> Result<String, ApiError> {
    let png = encode_png(image)?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// The fields of a multipart form, read and checked against the names a route takes.
struct Form {
    files: HashMap<String, Upload>,
    values: HashMap<String, String>,
}

/// Longest text value accepted in a form field, in bytes.
const MAX_VALUE_BYTES: usize = 64;

impl Form {
    async fn read(
        multipart: Result<Multipart, MultipartRejection>,
        file_fields: &[&str],
        value_fields: &[&str],
    ) -> Result<Self, ApiError> {
        let mut multipart = multipart.map_err(|e| {
            ApiError::bad_request(format!(
                "send the fields as multipart/form-data ({})",
                e.body_text()
            ))
        })?;
        let mut form = Form {
            files: HashMap::new(),
            values: HashMap::new(),
        };
        let multipart_error = |e: axum::extract::multipart::MultipartError| ApiError {
            status: e.status(),
            message: format!("cannot read the upload: {}", e.body_text()),
        };
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_string();
            let known =
                file_fields.contains(&name.as_str()) || value_fields.contains(&name.as_str());
            if !known {
                let mut all: Vec<&str> = file_fields.to_vec();
                all.extend(value_fields);
                return Err(ApiError::bad_request(format!(
                    "unknown field {name:?}; the fields are {}",
                    all.join(", ")
                )));
            }
            if form.files.contains_key(&name) || form.values.contains_key(&name) {
                return Err(ApiError::bad_request(format!(
                    "field {name:?} is given twice"
                )));
            }
            if file_fields.contains(&name.as_str()) {
                let label = upload_label(&name, field.file_name());
                let bytes = field.bytes().await.map_err(multipart_error)?;
                if bytes.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "field {name:?} is empty: attach a sound file"
                    )));
                }
                let upload = Upload {
                    label,
                    bytes: bytes.to_vec(),
                };
                form.files.insert(name, upload);
            } else {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                if bytes.len() > MAX_VALUE_BYTES {
                    return Err(ApiError::bad_request(format!(
                        "field {name:?} is {} bytes long; values are at most {MAX_VALUE_BYTES}",
                        bytes.len()
                    )));
                }
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request(format!("field {name:?} is not UTF-8 text"))
                })?;
                form.values.insert(name, text.trim().to_string());
            }
        }
        Ok(form)
    }

    fn file(&mut self, name: &str) -> Result<Upload, ApiError> {
        self.files.remove(name).ok_or_else(|| {
            ApiError::bad_request(format!("field {name:?} is missing: attach a sound file"))
        })
    }

    fn optional_file(&mut self, name: &str) -> Option<Upload> {
        self.files.remove(name)
    }

    /// The option named in field `name`, one of `options` (the first when absent).
    fn choice<T: Copy>(&self, name: &str, options: &[(&str, T)]) -> Result<T, ApiError> {
        let Some(text) = self.values.get(name) else {
            return Ok(options[0].1);
        };
        options
            .iter()
            .find(|(option, _)| option == text)
            .map(|&(_, value)| value)
            .ok_or_else(|| {
                let names: Vec<String> = options.iter().map(|(o, _)| format!("{o:?}")).collect();
                ApiError::bad_request(format!(
                    "field {name:?} must be {}, got {text:?}",
                    names.join(" or ")
                ))
            })
    }

    /// The number in field `name` (`default` when absent), refused unless `ok` holds.
    fn number<T>(
        &self,
        name: &str,
        default: T,
        ok: impl Fn(&T) -> bool,
        allowed: &str,
    ) -> Result<T, ApiError>
    where
        T: std::str::FromStr,
    {
        let Some(text) = self.values.get(name) else {
            return Ok(default);
        };
        match text.parse::<T>() {
            Ok(value) if ok(&value) => Ok(value),
            _ => Err(ApiError::bad_request(format!(
                "field {name:?} must be {allowed}, got {text:?}"
            ))),
        }
    }
}

/// How an upload is called in messages: `upload "cow.wav"`, from the client's file name with
/// any folders and control characters left out (it is a label and a format hint only).
fn upload_label(field: &str, file_name: Option<&str>) -> String {
    let name: String = file_name
        .unwrap_or(field)
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(field)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    format!("upload {name:?}")
}
