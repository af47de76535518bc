//! The direct FIAS link to the PMS (fias.md): framing, records to events, and the TCP
//! session that commits each record's events before it reads on.
//!
//! - `frame`: STX/ETX framing, a record's type and fields (pure).
//! - `records`: what each record means, and the resync that becomes one `sync` (pure).

pub mod frame;
pub mod records;
