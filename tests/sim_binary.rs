//! The real `kandy-sim` binary: it starts, prints the `[kandy]` block, and refuses a
//! hand-made request with a bad signature with 401 `bad_signature`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

/// Kills the simulator this test started, even when the test fails.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn kandy_sim_runs_and_refuses_a_bad_signature() {
    let port = free_port();
    let mut sim = Started(
        Command::new(env!("CARGO_BIN_EXE_kandy-sim"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--users", "50"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // It prints the block a link needs, once it listens.
    let mut block = String::new();
    for line in BufReader::new(sim.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        block.push_str(&line);
        block.push('\n');
        if line.starts_with("use_nonce") {
            break;
        }
    }
    assert!(block.contains("[kandy]"), "{block}");
    assert!(
        block.contains(&format!("api_base_url = \"http://127.0.0.1:{port}/api/v1\"")),
        "{block}"
    );
    assert!(block.contains("allow_insecure_http = true"), "{block}");
    assert!(block.contains("hmac = "), "{block}");

    let ts = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let request = format!(
        "GET /api/v1/groups/hotel-42/users?page=1&pageSize=200 HTTP/1.1\r\n\
         Host: 127.0.0.1:{port}\r\n\
         X-User-ID: duvoice\r\n\
         X-Group-ID: hotel-42\r\n\
         X-Timestamp: {ts}\r\n\
         X-HMAC: {}\r\n\
         Accept: application/json\r\n\
         Connection: close\r\n\r\n",
        "0".repeat(64)
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains(r#""error":"bad_signature""#), "{answer}");
}
