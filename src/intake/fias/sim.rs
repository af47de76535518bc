//! A FIAS PMS on this machine, for tests and labs, in the spirit of `kandy-sim`: it plays
//! the PMS side of the link in either direction (it connects to a link in server mode,
//! or accepts a link in client mode), answers the handshake and link alives, answers a
//! resync request (DR) with DS, a GI per in-house guest and DE from its own database,
//! and sends records, records cut in the middle, and garbage, as it is told.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use encoding_rs::Encoding;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::frame::{self, Deframer, Piece, Record};

/// The PMS's guests: room -> guests, each the fields of its GI (without DA and TI).
type Db = BTreeMap<String, Vec<Vec<(String, String)>>>;

/// A simulated PMS: its database outlives its connections.
#[derive(Debug, Clone)]
pub struct Pms {
    db: Arc<Mutex<Db>>,
    encoding: &'static Encoding,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pms {
    /// A PMS with no guest in house that speaks `encoding`.
    pub fn new(encoding: &'static Encoding) -> Pms {
        Pms {
            db: Arc::default(),
            encoding,
        }
    }

    /// Connects to a link in server mode and starts the link (LS).
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<PmsLink> {
        let stream = TcpStream::connect(addr).await?;
        let link = PmsLink::start(stream, self.clone(), false);
        link.send(&format!("LS|{}", stamp())).await?;
        Ok(link)
    }

    /// Listens for a link in client mode.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<PmsListener> {
        Ok(PmsListener {
            listener: TcpListener::bind(addr).await?,
            pms: self.clone(),
        })
    }

    /// The rooms in house and their guests' fields, as a resync would list them.
    pub fn in_house(&self) -> Db {
        lock(&self.db).clone()
    }

    /// The PMS's database loses a room without telling the link (as a night audit might
    /// correct it): only a resync will.
    pub fn forget(&self, room: &str) {
        lock(&self.db).remove(room);
    }

    /// What the PMS's database makes of a record it sends.
    fn record_sent(&self, r: &Record) {
        let mut db = lock(&self.db);
        let fields: Vec<(String, String)> = r
            .fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "DA" | "TI" | "RO"))
            .cloned()
            .collect();
        let (Some(room), gid) = (r.get("RN").map(String::from), r.get("G#")) else {
            return;
        };
        let same =
            |g: &Vec<(String, String)>| gid.is_some() && g.iter().any(|(k, v)| k == "G#" && Some(v.as_str()) == gid);
        match r.kind.as_str() {
            "GI" => {
                let guests = db.entry(room).or_default();
                match guests.iter_mut().find(|g| same(g)) {
                    Some(g) => *g = fields,
                    None if gid.is_none() => *guests = vec![fields],
                    None => guests.push(fields),
                }
            }
            "GO" => {
                if let Some(guests) = db.get_mut(&room) {
                    guests.retain(|g| gid.is_some() && !same(g));
                    if guests.is_empty() {
                        db.remove(&room);
                    }
                }
            }
            "GC" => {
                let moved = match r.get("RO").filter(|ro| *ro != room) {
                    Some(from) => {
                        let mut left = db.remove(from).unwrap_or_default();
                        let moving: Vec<_> = if gid.is_some() {
                            let (m, stay) = left.into_iter().partition(|g| same(g));
                            left = stay;
                            m
                        } else {
                            std::mem::take(&mut left)
                        };
                        if !left.is_empty() {
                            db.insert(from.to_string(), left);
                        }
                        moving
                    }
                    None => db.remove(&room).unwrap_or_default(),
                };
                let mut guests = moved;
                for g in guests.iter_mut().filter(|g| gid.is_none() || same(g)) {
                    for (k, v) in &fields {
                        match g.iter_mut().find(|(gk, _)| gk == k) {
                            Some(slot) => slot.1 = v.clone(),
                            None => g.push((k.clone(), v.clone())),
                        }
                    }
                }
                if !guests.is_empty() {
                    db.entry(room).or_default().extend(guests);
                }
            }
            _ => {}
        }
    }

    /// The records of a database resync: DS, a GI per guest, DE.
    fn resync_records(&self) -> Vec<String> {
        let mut out = vec![format!("DS|{}", stamp())];
        for guests in lock(&self.db).values() {
            for g in guests {
                let fields: String = g.iter().map(|(k, v)| format!("{k}{v}|")).collect();
                out.push(format!("GI|{fields}"));
            }
        }
        out.push(format!("DE|{}", stamp()));
        out
    }
}

/// A PMS waiting for links in client mode.
#[derive(Debug)]
pub struct PmsListener {
    listener: TcpListener,
    pms: Pms,
}

impl PmsListener {
    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next link's connection; the link sends LS first, and the PMS answers it.
    pub async fn accept(&self) -> std::io::Result<PmsLink> {
        let (stream, _) = self.listener.accept().await?;
        Ok(PmsLink::start(stream, self.pms.clone(), true))
    }
}

/// What one connection has seen.
#[derive(Debug, Default)]
struct Seen {
    received: Vec<String>,
    up: bool,
    closed: bool,
    /// Answers nothing any more, as a hung PMS would.
    mute: bool,
}

/// One connection of the PMS with the link.
#[derive(Debug)]
pub struct PmsLink {
    pms: Pms,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    seen: Arc<Mutex<Seen>>,
    reader: JoinHandle<()>,
}

/// `DA...|TI...|` for now, as the simulated PMS stamps its records.
fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    frame::stamp(time::PrimitiveDateTime::new(now.date(), now.time()))
}

impl PmsLink {
    fn start(stream: TcpStream, pms: Pms, answers_ls: bool) -> PmsLink {
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (w, s, p) = (writer.clone(), seen.clone(), pms.clone());
        let reader = tokio::spawn(async move {
            let mut deframer = Deframer::default();
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                for piece in deframer.push(&buf[..n]) {
                    let Piece::Record(bytes) = piece else { continue };
                    let Ok(r) = frame::parse(&bytes, p.encoding) else {
                        continue;
                    };
                    lock(&s).received.push(frame::escape(&bytes, p.encoding));
                    if lock(&s).mute {
                        continue;
                    }
                    let answer = match r.kind.as_str() {
                        "LS" if answers_ls => vec![format!("LS|{}", stamp())],
                        "LA" => {
                            lock(&s).up = true;
                            vec![format!("LA|{}", stamp())]
                        }
                        "DR" => p.resync_records(),
                        _ => Vec::new(),
                    };
                    let bytes: Vec<u8> = answer.iter().flat_map(|a| frame::frame(a, p.encoding)).collect();
                    if !bytes.is_empty() && w.lock().await.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            }
            lock(&s).closed = true;
        });
        PmsLink {
            pms,
            writer,
            seen,
            reader,
        }
    }

    /// Sends one record (`GI|RN101|G#1|GNSmith|`), framed, and keeps the PMS's database
    /// in step with it.
    pub async fn send(&self, text: &str) -> std::io::Result<()> {
        if let Ok(r) = frame::parse(text.as_bytes(), encoding_rs::UTF_8) {
            self.pms.record_sent(&r);
        }
        self.send_raw(&frame::frame(text, self.pms.encoding)).await
    }

    /// Sends bytes as they are: garbage, or framing of one's own.
    pub async fn send_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.lock().await.write_all(bytes).await
    }

    /// Starts a database resync of the PMS's own accord.
    pub async fn resync(&self) -> std::io::Result<()> {
        for r in self.pms.resync_records() {
            self.send(&r).await?;
        }
        Ok(())
    }

    /// Sends the first half of a record, then drops the connection, as a cable pulled
    /// mid-record would. The PMS's database has the record all the same.
    pub async fn cut_in(self, text: &str) -> std::io::Result<()> {
        if let Ok(r) = frame::parse(text.as_bytes(), encoding_rs::UTF_8) {
            self.pms.record_sent(&r);
        }
        let framed = frame::frame(text, self.pms.encoding);
        self.send_raw(&framed[..framed.len() / 2]).await?;
        self.close().await;
        Ok(())
    }

    /// Closes the connection without LE.
    pub async fn close(self) {
        self.reader.abort();
        let _ = self.writer.lock().await.shutdown().await;
    }

    /// From now on the PMS answers nothing on this connection (it still reads).
    pub fn mute(&self) {
        lock(&self.seen).mute = true;
    }

    /// The records received on this connection, control characters escaped.
    pub fn received(&self) -> Vec<String> {
        lock(&self.seen).received.clone()
    }

    /// True once the link's LA was answered: the link is up.
    pub fn up(&self) -> bool {
        lock(&self.seen).up
    }

    /// True once the link closed the connection.
    pub fn closed(&self) -> bool {
        lock(&self.seen).closed
    }

    /// Waits up to `limit` for `cond` on this connection; false when it did not hold.
    pub async fn wait(&self, limit: Duration, cond: impl Fn(&PmsLink) -> bool) -> bool {
        let start = tokio::time::Instant::now();
        while !cond(self) {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// How many received records start with `prefix` (`DR|`, `LA|`).
    pub fn count(&self, prefix: &str) -> usize {
        self.received().iter().filter(|r| r.starts_with(prefix)).count()
    }
}

impl Drop for PmsLink {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
