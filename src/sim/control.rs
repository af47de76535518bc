//! The control API under `/_sim/`, for labs and scripts (tests use the `Sim` handle):
//!
//! | request | does |
//! |---|---|
//! | `GET /_sim/received`, `DELETE /_sim/received` | the log of portal requests; clear it |
//! | `GET /_sim/stats` | requests, logins, users, tokens issued |
//! | `POST /_sim/fail` `{"count":3,"status":503,"retry_after":"120","error":"...","path_contains":"/name"}` | fail the next requests |
//! | `POST /_sim/latency` `{"ms":250}` | wait before every answer |
//! | `POST /_sim/down` `{"mode":"unavailable","retry_after":"30"}` | answer 503 until `/_sim/up` |
//! | `POST /_sim/down` `{"mode":"refuse","secs":30}` | refuse connections for `secs` (this API too) |
//! | `POST /_sim/up` | come back |
//! | `POST /_sim/token` | regenerate the token (a password change in the portal) |
//! | `GET /_sim/users`, `GET/PATCH/PUT/DELETE /_sim/users/{id}` | read, edit as an admin would, create, remove |

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::Shared;
use super::state::{Down, Fault, UserEdit};
use crate::kandy::User;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/received", get(received).delete(clear_received))
        .route("/_sim/stats", get(stats))
        .route("/_sim/fail", post(fail))
        .route("/_sim/latency", post(latency))
        .route("/_sim/down", post(down))
        .route("/_sim/up", post(up))
        .route("/_sim/token", post(token))
        .route("/_sim/users", get(users))
        .route(
            "/_sim/users/{id}",
            get(user).patch(edit_user).put(put_user).delete(remove_user),
        )
}

async fn received(State(sim): State<Arc<Shared>>) -> Response {
    Json(sim.lock().received.iter().cloned().collect::<Vec<_>>()).into_response()
}

async fn clear_received(State(sim): State<Arc<Shared>>) -> StatusCode {
    sim.lock().received.clear();
    StatusCode::NO_CONTENT
}

async fn stats(State(sim): State<Arc<Shared>>) -> Response {
    Json(sim.lock().stats()).into_response()
}

async fn fail(State(sim): State<Arc<Shared>>, Json(f): Json<Fault>) -> Response {
    if !(100..=599).contains(&f.status) {
        return (StatusCode::BAD_REQUEST, "status must be 100 to 599").into_response();
    }
    sim.lock().fault = Some(f);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
struct Latency {
    ms: u64,
}

async fn latency(State(sim): State<Arc<Shared>>, Json(l): Json<Latency>) -> StatusCode {
    sim.lock().latency = Duration::from_millis(l.ms);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct DownRequest {
    mode: Down,
    #[serde(default)]
    secs: Option<u64>,
    #[serde(default)]
    retry_after: Option<String>,
}

async fn down(State(sim): State<Arc<Shared>>, Json(d): Json<DownRequest>) -> Response {
    match d.mode {
        Down::Unavailable => sim.unavailable(d.retry_after),
        Down::Refuse => {
            // This API goes down with the portal, so it cannot be told to come back.
            let Some(secs) = d.secs.filter(|s| *s > 0) else {
                return (
                    StatusCode::BAD_REQUEST,
                    "mode \"refuse\" closes this API too: give \"secs\", after which the portal comes back",
                )
                    .into_response();
            };
            sim.refuse();
            let again = sim.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                again.come_back();
            });
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn up(State(sim): State<Arc<Shared>>) -> StatusCode {
    sim.come_back();
    StatusCode::NO_CONTENT
}

async fn token(State(sim): State<Arc<Shared>>) -> Response {
    let token = sim.lock().new_token();
    Json(json!({ "token": token })).into_response()
}

async fn users(State(sim): State<Arc<Shared>>) -> Response {
    Json(sim.lock().users.clone()).into_response()
}

async fn user(State(sim): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match sim.lock().user_mut(&id) {
        Some(u) => Json(u.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn edit_user(State(sim): State<Arc<Shared>>, Path(id): Path<String>, Json(edit): Json<UserEdit>) -> Response {
    match sim.lock().user_mut(&id) {
        Some(u) => {
            edit.apply(u);
            Json(u.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn put_user(State(sim): State<Arc<Shared>>, Path(id): Path<String>, Json(mut user): Json<User>) -> Response {
    user.user_id = id;
    sim.put_user(user);
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_user(State(sim): State<Arc<Shared>>, Path(id): Path<String>) -> StatusCode {
    if sim.remove_user(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
