//! Everything that speaks to the Kandy portal (kandy-api.md); the only module that
//! speaks HTTP to it.
//!
//! - [`template`]: `{placeholder}` rendering of paths and bodies (pure).
//! - [`sign`]: the string to sign, HMAC-SHA256, nonces (pure but for the CSPRNG).
//! - [`api`]: the four endpoints as `[kandy.api]` spells them (pure).
//! - [`user`]: a Kandy user and a page of the user list, read tolerantly (pure).
//! - [`classify`]: the verdict on an answer, the rows of the spec's table (pure).
//! - [`error`]: `KandyError`, one variant per verdict, in words a technician can act on.
//! - [`token`]: which token to start with, and the store that keeps a login's token.
//! - [`packet`]: the packet log's rendering, secrets redacted.
//! - [`client`]: the client: endpoints, token renewal shared by all requests.
//! - `wire`: one signed attempt, and the one place every request and answer passes.
//! - [`online`]: `kandy-link check-config --online`.

pub mod api;
pub mod classify;
pub mod client;
pub mod error;
pub mod online;
pub mod packet;
pub mod sign;
pub mod template;
pub mod token;
pub mod user;
mod wire;

pub use client::{Client, Hooks, PortalClock, Settings};
pub use error::KandyError;
pub use user::{Page, User};
