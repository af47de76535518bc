//! `cargo bench`: the performance table of issue 7. Each line runs against a baseline
//! measured in the same run (these machines are shared and noisy) and prints the ratio.
//! Set `KANDY_BENCH_ONLY=burst|intake|cache` to run one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod burst;
mod cache;
mod intake;

/// One line of the table.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub baseline: String,
    pub measured: String,
    pub ratio: f64,
    pub target: &'static str,
    pub ok: bool,
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let only = std::env::var("KANDY_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let dir = tempfile::tempdir_in(std::env::var_os("KANDY_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    if wanted("burst") {
        rows.extend(runtime.block_on(burst::run(dir.path())));
    }
    if wanted("intake") {
        rows.push(intake::run(dir.path()));
    }
    if wanted("cache") {
        rows.extend(runtime.block_on(cache::run()));
    }
    println!("\n| benchmark | baseline | measured | ratio | target | |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {} | {} |",
            r.name,
            r.baseline,
            r.measured,
            r.ratio,
            r.target,
            if r.ok { "ok" } else { "MISSED" }
        );
    }
}
