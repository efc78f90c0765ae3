//! The one place HTTP statuses are chosen: [`ApiError`], the error every floor above the store
//! answers with (accounts, hosting, the cluster's forwarding, every route), and [`blocking`],
//! which runs a store call on the blocking pool and answers its failure as one.
//!
//! It imports only `gitcore` (an error may name missing objects), the store (whose failures
//! [`blocking`] answers) and actix-web's types (the error renders itself as a response).
//!
//! Every error a handler can return is an [`ApiError`]; it renders as JSON
//! `{"error": "<sentence for people>", "code": "<stable snake_case tag for programs>"}`. Codes never
//! change once published; messages may be reworded.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answered over HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No repository with this id (or the id is malformed).
    #[error("no repository with id {0:?}")]
    UnknownRepo(String),
    /// The request is malformed; `code` says how.
    #[error("{message}")]
    BadRequest {
        /// What is wrong, for people.
        message: String,
        /// What is wrong, for programs.
        code: &'static str,
    },
    /// No such object (or not of the kind the route serves).
    #[error("{0}")]
    NotFound(String),
    /// No route matches.
    #[error("no such route")]
    NoRoute,
    /// The path exists, but not with this method; the methods it takes.
    #[error("this path takes {0}")]
    MethodNotAllowed(String),
    /// The route needs a work tree and the repository is bare (or hosted).
    #[error("the repository has no work tree")]
    NoWorkTree,
    /// The admin API needs the admin token.
    #[error("this needs the admin token")]
    Unauthorized,
    /// The request is not allowed (e.g. a WebSocket from another site).
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests from one client; try again after this many seconds.
    #[error("too many new repositories from this address; try again in {0} s")]
    RateLimited(u64),
    /// One client used its share of expensive work; try again after this many seconds.
    #[error(
        "this address asked for more expensive work (diffs, blame, highlighting, searches of paths and messages) than its share; try again in {0} s"
    )]
    TooMuchWork(u64),
    /// One client holds as many WebSockets as it may.
    #[error("this address has {0} live connections already; close some and try again")]
    TooManySockets(usize),
    /// Too many sign-in attempts from one client; try again after this many seconds.
    #[error("too many sign-in attempts from this address; try again in {0} s")]
    TooManyAttempts(u64),
    /// The clone queue takes no more from this client (429) or at all (503) now.
    #[error("{0}")]
    QueueFull(String, u16),
    /// The server has no room for another clone; the sentence says which limit.
    #[error("{0}")]
    StorageFull(String),
    /// Serving it would pass the server's memory budget, and every repository in memory is
    /// watched; try again after this many seconds.
    #[error(
        "the server has as many repositories in memory as it can hold, all of them watched; try again in {0} s"
    )]
    Busy(u64),
    /// An error with a status of its own: accounts (sign-in, sessions, plans) and webhooks
    /// (a bad signature, a body too large).
    #[error("{message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// What happened, for people.
        message: String,
        /// What happened, for programs.
        code: &'static str,
    },
    /// The repository exists but cannot be served right now.
    #[error("the repository is not available: {0}")]
    Unavailable(String),
    /// The repository is moving to another server (its owner stopped); try again after this
    /// many seconds.
    #[error("the repository is moving to another server; try again in {0} s")]
    Moving(u64),
    /// The answer needs objects a partial clone does not hold. Routes that build through
    /// `routes::objects::serve` get them fetched and build again; anywhere else it is a 404.
    #[error("object {} is not in this clone", .0.first().map(|i| i.to_hex()).unwrap_or_default())]
    NeedObjects(Vec<gitcore::oid::ObjectId>),
    /// The file contents this needs are still being fetched (202, not an error: the page
    /// retries after `retryAfterMs`).
    #[error("file contents are still being fetched; try again in a moment")]
    Hydrating {
        /// When to ask again.
        retry_after_ms: u64,
    },
}

impl ApiError {
    /// An error with its status, sentence and code.
    pub fn status(status: u16, message: impl Into<String>, code: &'static str) -> Self {
        ApiError::Status {
            status,
            message: message.into(),
            code,
        }
    }

    /// A 400 with a message and code.
    pub fn bad_request(message: impl Into<String>, code: &'static str) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            code,
        }
    }

    /// A body an extractor could not read, in our words (serde's messages name types and
    /// positions of our code, and echo what was sent): not JSON, not this route's fields, the
    /// wrong content type, or too large.
    pub fn unreadable_json(e: &actix_web::error::JsonPayloadError) -> Self {
        use actix_web::error::JsonPayloadError as J;
        match e {
            J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::status(
                413,
                "the request body is larger than this route takes",
                "payload_too_large",
            ),
            J::ContentType => ApiError::status(
                415,
                "send the body as JSON (Content-Type: application/json)",
                "unsupported_media_type",
            ),
            J::Deserialize(d) if d.is_data() => ApiError::bad_request(
                "the request body's fields are not the ones this route takes (see the API docs)",
                "invalid_body",
            ),
            _ => ApiError::bad_request("the request body is not JSON", "invalid_body"),
        }
    }

    /// A query string that is not this route's parameters, in our words.
    pub fn unreadable_query() -> Self {
        ApiError::bad_request(
            "the query's parameters are not the ones this route takes (see the API docs)",
            "invalid_query",
        )
    }

    /// A path whose parameters are not this route's, in our words.
    pub fn unreadable_path() -> Self {
        ApiError::bad_request("the path's parameters are not valid here", "invalid_path")
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownRepo(_) => "unknown_repo",
            ApiError::BadRequest { code, .. } | ApiError::Status { code, .. } => code,
            ApiError::NoRoute => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::NoWorkTree => "no_work_tree",
            ApiError::NotFound(_) | ApiError::NeedObjects(_) => "object_not_found",
            ApiError::Hydrating { .. } => "hydrating",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unauthorized => "unauthorized",
            ApiError::RateLimited(_) | ApiError::TooManyAttempts(_) | ApiError::TooMuchWork(_) => {
                "rate_limited"
            }
            ApiError::TooManySockets(_) => "too_many_connections",
            ApiError::Unavailable(_) => "repo_unavailable",
            ApiError::Busy(_) => "busy",
            ApiError::Moving(_) => "moving",
            ApiError::StorageFull(_) => "storage_full",
            ApiError::QueueFull(_, 429) => "rate_limited",
            ApiError::QueueFull(..) => "busy",
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: String,
    code: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::UnknownRepo(_)
            | ApiError::NoRoute
            | ApiError::NotFound(_)
            | ApiError::NeedObjects(_)
            | ApiError::NoWorkTree => StatusCode::NOT_FOUND,
            ApiError::Hydrating { .. } => StatusCode::ACCEPTED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited(_)
            | ApiError::TooManyAttempts(_)
            | ApiError::TooManySockets(_)
            | ApiError::TooMuchWork(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy(_) | ApiError::Moving(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::QueueFull(_, 429) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::QueueFull(..) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Status { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Hydrating { retry_after_ms } = self {
            // Not cached: the same URL answers in full once the objects are here.
            return resp
                .insert_header(("Cache-Control", "no-store"))
                .insert_header(("Retry-After", retry_after_ms.div_ceil(1000).to_string()))
                .json(serde_json::json!({
                    "state": "hydrating",
                    "retryAfterMs": retry_after_ms,
                    "error": self.to_string(),
                    "code": self.code(),
                }));
        }
        if let ApiError::RateLimited(secs)
        | ApiError::TooManyAttempts(secs)
        | ApiError::TooMuchWork(secs)
        | ApiError::Busy(secs)
        | ApiError::Moving(secs) = self
        {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        if let ApiError::QueueFull(..) = self {
            resp.insert_header(("Retry-After", "60"));
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            resp.insert_header(("Allow", allow.as_str()));
        }
        resp.json(Body {
            error: self.to_string(),
            code: self.code(),
        })
    }
}

/// Runs a store call on the blocking pool; a failure (of the pool or the query) is 503.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, gitvista_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}
