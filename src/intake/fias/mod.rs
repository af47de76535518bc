//! The direct FIAS link to the PMS (fias.md): framing, records to events, and the TCP
//! session that commits each record's events before it reads on.
//!
//! - `frame`: STX/ETX framing, a record's type and fields (pure).
//! - `records`: what each record means, and the resync that becomes one `sync` (pure).
//! - `link`: the TCP session, in server or client mode; commits and wakes the sync loop.
//! - `sim`: a FIAS PMS on this machine, for tests and labs.

pub mod frame;
pub mod link;
pub mod records;
pub mod sim;

pub use link::run;

use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, FiasMode};
use crate::store::{Store, StoreError};
use crate::sync::Reload;

/// Starts the FIAS link as a task of its own, with its own store connection, when
/// `[fias]` asks for one. It ends when `stop` changes; it wakes `committed` after each
/// commit, as the spool intake does.
pub fn spawn(
    config: &Config,
    reload: &Reload,
    committed: &Arc<Notify>,
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, StoreError> {
    if config.fias.mode == FiasMode::Off {
        return Ok(None);
    }
    let store = Store::open(&config.store_path())?;
    Ok(Some(tokio::spawn(run(reload.clone(), store, committed.clone(), stop))))
}
