//! Everything that speaks to the Kandy portal (kandy-api.md).

pub mod template;
