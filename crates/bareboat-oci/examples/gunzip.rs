//! Decompresses gzip blobs with the decoder bareboat reads layers with (flate2 on zlib-rs,
//! through the same buffering) and prints the seconds each took: the floor that
//! `bench/inspect.sh` sets `inspect` against, since one gzip member decodes only in order.
//!
//! `cargo run --release --example gunzip -p bareboat-oci -- BLOB...`

use std::io::{BufReader, Read};
use std::time::Instant;

use bareboat_oci::blob::STORED_READ;

fn main() -> std::io::Result<()> {
    for path in std::env::args().skip(1) {
        let started = Instant::now();
        let file = BufReader::with_capacity(STORED_READ, std::fs::File::open(&path)?);
        let mut decoder = flate2::bufread::MultiGzDecoder::new(file);
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = decoder.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        println!("{:.3} {total} {path}", started.elapsed().as_secs_f64());
    }
    Ok(())
}
