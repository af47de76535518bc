//! Pushing rooms' wanted state to Kandy (link-behaviour.md, "Pushing to Kandy").
//!
//! - [`plan`]: each field's status (pure); the engine sends the permission first.
//! - [`engine`]: the loop: rooms from the store, requests to the portal, outcomes back.
//! - [`refresh`]: the extension cache refresh, drift, and what follows a refresh.
//! - [`link`]: the link as a whole: up, paused for an unavailable portal, or auth failed.
//! - `writer`: records outcomes on a thread of its own, off the request path.

pub mod engine;
pub mod link;
pub mod plan;
mod refresh;
mod writer;

pub use engine::{Engine, Reload, Stop};
