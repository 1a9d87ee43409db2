//! The server's errors: [`ServeError`] for starting it, [`ApiError`] for a request, answered as
//! JSON `{"error": "..."}` with the status that says whose fault it is.

use std::net::SocketAddr;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sound2scene_infer::InferError;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The networks did not load.
    #[error("cannot load the model: {0}")]
    Model(#[source] InferError),
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server on that port? try another --addr)"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime or the connection loop failed.
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
    /// A setting is out of range; the message names it.
    #[error("{0}")]
    Config(String),
    /// The inference thread ended before it said whether the model loaded.
    #[error("the inference thread ended while loading the model")]
    WorkerGone,
}

/// A request's failure: the status and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do, for the client.
    pub message: String,
}

impl ApiError {
    /// 400: the request is wrong (a field, the audio, a value out of range).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 503: the work queue is full.
    pub fn busy(waiting: usize) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "the server is busy ({waiting} requests are already queued); try again shortly"
            ),
        }
    }

    /// 504: the request took longer than the server's timeout.
    pub fn timed_out(seconds: f64) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!("the request took longer than {seconds} s and was given up"),
        }
    }

    /// 500: the server failed; the message says what happened.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl From<InferError> for ApiError {
    /// The sound, a value or a combination the client chose is wrong: 400. The networks
    /// failing on a valid request, or the model missing a part: 500.
    fn from(e: InferError) -> Self {
        match e {
            InferError::Audio(_) | InferError::OutOfRange { .. } | InferError::Invalid(_) => {
                Self::bad_request(e.to_string())
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, Json(body)).into_response()
    }
}
