//! Writes the sync loop's outcomes to the store on a thread of its own, so that no
//! commit (and its fsync) ever holds up a request. Batches that queue up while a commit
//! runs are merged: only each room's newest state is written.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::store::{Store, StoreError, SyncRow};

/// The writer's side of the loop.
#[derive(Debug)]
pub struct Writer {
    tx: Option<mpsc::Sender<Vec<SyncRow>>>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
    /// Told when a commit fails: the loop stops and the daemon exits for systemd to
    /// restart it (the outcomes lost are resent, requests being idempotent).
    pub failed: tokio::sync::mpsc::UnboundedReceiver<StoreError>,
}

impl Writer {
    pub fn start(mut store: Store) -> Writer {
        let (tx, rx) = mpsc::channel::<Vec<SyncRow>>();
        let (fail_tx, failed) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut rows: HashMap<String, SyncRow> = first.into_iter().map(|r| (r.room.clone(), r)).collect();
                while let Ok(more) = rx.try_recv() {
                    rows.extend(more.into_iter().map(|r| (r.room.clone(), r)));
                }
                let rows: Vec<SyncRow> = rows.into_values().collect();
                if let Err(e) = store.save_sync(&rows) {
                    tracing::error!("Cannot record outcomes in the store: {e}");
                    let _ = fail_tx.send(e);
                    return Err(StoreError::Io("the sync writer stopped".into()));
                }
            }
            Ok(())
        });
        Writer {
            tx: Some(tx),
            thread: Some(thread),
            failed,
        }
    }

    /// Queues rows for the next commit.
    pub fn send(&self, rows: Vec<SyncRow>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(rows);
        }
    }

    /// Writes what is queued and stops the thread.
    pub async fn finish(&mut self) -> Result<(), StoreError> {
        drop(self.tx.take());
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| StoreError::Io(format!("the sync writer failed: {e}")))?
            .map_err(|_| StoreError::Io("the sync writer panicked".into()))?
    }
}
