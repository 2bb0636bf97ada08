//! `bareboat key`: cosign-compatible key pairs, and where a command's key and its password
//! come from.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_sign::key::KeyPair;
use clap::Subcommand;
use serde::Serialize;

use crate::output::print_json;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Make an ECDSA P-256 key pair, as cosign does: NAME.key (encrypted) and NAME.pub
    #[command(
        after_help = "The password comes from BAREBOAT_KEY_PASSWORD (or cosign's COSIGN_PASSWORD), or is asked for on the terminal.\n\n\
Example:\n  BAREBOAT_KEY_PASSWORD=... bareboat key generate --output-key-prefix release"
    )]
    Generate {
        /// The files' name: NAME.key and NAME.pub
        #[arg(long, default_value = "cosign", value_name = "NAME")]
        output_key_prefix: PathBuf,
    },
    /// Print the public key of a private key (a file, or env://VAR)
    Public {
        /// The private key: a file, or env://VAR for a key held in an environment variable
        #[arg(long, value_name = "KEY")]
        key: String,
    },
}

/// What `key generate` wrote.
#[derive(Serialize)]
struct Generated {
    private_key: PathBuf,
    public_key: PathBuf,
    /// Base64 of the SHA-256 of the public key's DER: how signatures name the key.
    hint: String,
}

pub fn cmd_key(command: KeyCommand, json: bool) -> Result<ExitCode> {
    match command {
        KeyCommand::Generate { output_key_prefix } => {
            let private = with_extension(&output_key_prefix, "key");
            let public = with_extension(&output_key_prefix, "pub");
            for path in [&private, &public] {
                if path.exists() {
                    bail!(
                        "{} exists: bareboat does not overwrite a key\n  hint: move it away, or choose another --output-key-prefix",
                        path.display()
                    );
                }
            }
            let password = password(true)?;
            let pair = KeyPair::generate()?;
            write_new(
                &private,
                pair.encrypted_pem(password.as_bytes())?.as_bytes(),
                0o600,
            )?;
            write_new(&public, pair.public_pem().as_bytes(), 0o644)?;
            let report = Generated {
                private_key: private,
                public_key: public,
                hint: pair.public().hint(),
            };
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "Private key written to {}\nPublic key written to {}",
                    report.private_key.display(),
                    report.public_key.display()
                );
            }
        }
        KeyCommand::Public { key } => {
            let pair = private_key(&key)?;
            print!("{}", pair.public_pem());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `prefix.ext`, keeping any dots the prefix has.
fn with_extension(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Writes a new file with `mode`, never over one that exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// A private key, from a file or `env://VAR`, opened with the password.
pub fn private_key(key: &str) -> Result<KeyPair> {
    let (text, origin) = key_text(key)?;
    let password = password(false)?;
    Ok(KeyPair::from_encrypted_pem(
        &text,
        password.as_bytes(),
        &origin,
    )?)
}

/// The text of the key `key` names, and how errors name it.
pub fn key_text(key: &str) -> Result<(String, String)> {
    if let Some(var) = key.strip_prefix("env://") {
        let text = std::env::var(var)
            .with_context(|| format!("{key}: the environment variable {var} is not set"))?;
        return Ok((text, key.to_string()));
    }
    // A key is a few hundred bytes: anything far larger is not one.
    let file = std::fs::File::open(key).with_context(|| format!("reading the key {key}"))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 64 << 10), &mut text)
        .with_context(|| format!("reading the key {key}: it is not text"))?;
    Ok((text, key.to_string()))
}

/// The key's password: BAREBOAT_KEY_PASSWORD, else COSIGN_PASSWORD, else asked for on the
/// terminal (twice, for a new key), without echo.
fn password(new: bool) -> Result<String> {
    for var in ["BAREBOAT_KEY_PASSWORD", "COSIGN_PASSWORD"] {
        if let Ok(p) = std::env::var(var) {
            return Ok(p);
        }
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password for the key\n  hint: set BAREBOAT_KEY_PASSWORD (or COSIGN_PASSWORD), or run on a terminal to be asked"
        );
    }
    let first = ask("Enter password for private key: ")?;
    if new && ask("Enter password for private key again: ")? != first {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// Asks on the terminal and reads a line with echo off.
fn ask(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let echoing = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if echoing {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echoing {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
