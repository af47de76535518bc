//! Pushing rooms' wanted state to Kandy.

pub mod plan;
