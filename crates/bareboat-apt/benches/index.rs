//! Cold index figures: verifying and parsing a compressed `Packages` file, against `xz -dc`
//! decompressing the same file alone, and loading the parsed form back from the cache.
//!
//! `cargo bench -p bareboat-apt --bench index -- PATH/TO/Packages.xz` (bench/apt.sh fetches
//! trixie's amd64 index and runs it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bareboat_apt::cache::sha256_file;
use bareboat_apt::index::{Compression, PackageIndex};

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        eprintln!("usage: cargo bench -p bareboat-apt --bench index -- PATH/TO/Packages.xz");
        std::process::exit(2);
    };
    let path = std::path::PathBuf::from(path);
    let (xz, _) = best_of(3, || {
        Command::new("xz")
            .arg("-dc")
            .arg(&path)
            .stdout(Stdio::null())
            .status()
            .expect("xz runs")
    });
    let (ours, index) = best_of(3, || {
        let _verified = sha256_file(&path).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        PackageIndex::parse(std::io::BufReader::new(f), Compression::Xz, "bench").unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let cached = dir.path().join("index.idx");
    index
        .write_to(std::fs::File::create(&cached).unwrap())
        .unwrap();
    let (warm, loaded) = best_of(5, || PackageIndex::load(&cached).unwrap());
    println!("packages in index:                  {}", loaded.len());
    println!(
        "xz -dc alone:                       {:>7.1} ms",
        xz.as_secs_f64() * 1e3
    );
    println!(
        "bareboat cold (sha256+xz+parse):    {:>7.1} ms  ({:.2}x xz -dc)",
        ours.as_secs_f64() * 1e3,
        ours.as_secs_f64() / xz.as_secs_f64()
    );
    println!(
        "bareboat warm (load parsed form):   {:>7.1} ms  ({:.3}x xz -dc)",
        warm.as_secs_f64() * 1e3,
        warm.as_secs_f64() / xz.as_secs_f64()
    );
}
