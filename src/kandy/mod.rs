//! Everything that speaks to the Kandy portal (kandy-api.md).

pub mod classify;
pub mod sign;
pub mod template;
