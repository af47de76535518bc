//! kandy-link connects a hotel's property management system (PMS) to Ribbon's Kandy cloud
//! PBX: each room phone's Kandy user shows the guest's name and gets the right call
//! permission. The specification is in `shared/spec/`.
//!
//! Codemap, in the order data flows:
//! - [`config`]: the TOML file, its defaults and checks; secrets that never print.
//! - [`event`]: the PMS events and their validation (pure).
//! - [`room`]: room state and the pure function that applies an event to it.
//! - [`store`]: the durable SQLite store; the only module that speaks SQL.
//! - [`intake`]: the ways events come in (spool directory, command line, FIAS link).
//! - [`directory`]: the extension cache of Kandy users and mailbox matching (pure).
//! - [`names`]: the name a room's Kandy user shows (pure).
//! - [`sync`]: what to send to Kandy for each room, and when.
//! - [`report`]: `status` and `rooms` as operations.md shapes them.
//! - [`daemon`]: `kandy-link run`: one per store; the intake thread and the sync loop.
//! - [`service`]: life under systemd: sd_notify, the watchdog, reload on SIGHUP or a changed file.
//! - [`logging`]: the Kandy log files, their rotation and retention, the debug packet log.
//! - [`kandy`]: everything that speaks to the portal.
//! - [`sim`]: `kandy-sim`, a portal on this machine for labs, tests and benchmarks.
//! - [`demo`]: `kandy-link demo`, the pipeline against a simulated portal.
//! - [`cli`]: the command line; `main` only maps its outcome to an exit status.
//! - [`fault`]: named points where tests make the process abort or stall.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod directory;
pub mod event;
pub mod fault;
pub mod intake;
pub mod kandy;
pub mod logging;
pub mod names;
pub mod report;
pub mod room;
pub mod service;
pub mod sim;
pub mod store;
pub mod sync;
