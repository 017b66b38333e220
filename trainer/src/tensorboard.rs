//! TensorBoard scalars: `WORKDIR/tb/events.out.tfevents.<time>.<host>.<pid>`, what the
//! authors' runs log and their users open. The format is small enough to write here: a TFRecord
//! file (each record: length, masked CRC-32C of the length, the bytes, masked CRC-32C of the
//! bytes) of `Event` protobufs, hand-encoded: `wall_time`, `step`, then a `file_version`, a
//! `session_log` or a `Summary` of `{tag, simple_value}` scalars.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends scalar events to a new event file of a directory.
pub struct EventWriter {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl EventWriter {
    /// A new event file in `dir` (created if needed). `resumed_at = Some(step)` (a resumed
    /// run) first writes a `SessionLog START` at `step + 1`: TensorBoard then drops the
    /// scalars of earlier files past `step`, logged by the interrupted run after its last checkpoint,
    /// so the curves continue from the checkpoint like `metrics.jsonl` does.
    pub fn create(dir: &Path, resumed_at: Option<u64>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // TensorFlow's name plus PyTorch's pid suffix; one process that trains twice in one
        // second (a run and its resume, in a library caller) gets `.1`, `.2`, …, which sort
        // after the first file as TensorBoard reads them.
        let base = format!(
            "events.out.tfevents.{secs:010}.{}.{}",
            hostname(),
            std::process::id()
        );
        let mut k = 0u32;
        let (path, file) = loop {
            let path = dir.join(match k {
                0 => base.clone(),
                _ => format!("{base}.{k}"),
            });
            match std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&path)
            {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && k < 1000 => k += 1,
                Err(e) => return Err(e),
            }
        };
        let mut w = Self {
            path,
            file: std::io::BufWriter::new(file),
        };
        // Field 3, file_version: how readers recognise an event file.
        let mut what = vec![];
        bytes_field(&mut what, 3, b"brain.Event:2");
        w.event(0, &what)?;
        if let Some(step) = resumed_at {
            // Field 7, session_log { status: START (1) }, at the first step this run logs:
            // readers keep the earlier events whose step is below it.
            let mut what = vec![];
            bytes_field(&mut what, 7, &[0x08, 0x01]);
            w.event(step + 1, &what)?;
        }
        w.file.flush()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event at `step` holding the scalars `(tag, value)`; flushed, so TensorBoard shows a
    /// running job's progress.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> std::io::Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut summary = vec![];
        for (tag, value) in values {
            // Summary.Value { tag = 1; simple_value = 2 (float) }.
            let mut v = vec![];
            bytes_field(&mut v, 1, tag.as_bytes());
            v.push(2 << 3 | 5);
            v.extend_from_slice(&(*value as f32).to_le_bytes());
            bytes_field(&mut summary, 1, &v);
        }
        // Field 5, summary.
        let mut what = vec![];
        bytes_field(&mut what, 5, &summary);
        self.event(step, &what)?;
        self.file.flush()
    }

    /// Event { wall_time = 1 (double); step = 2 (int64); `what` }, framed as a TFRecord.
    fn event(&mut self, step: u64, what: &[u8]) -> std::io::Result<()> {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut e = vec![1 << 3 | 1];
        e.extend_from_slice(&wall.to_le_bytes());
        e.push(2 << 3);
        varint(&mut e, step);
        e.extend_from_slice(what);
        let len = (e.len() as u64).to_le_bytes();
        self.file.write_all(&len)?;
        self.file.write_all(&masked_crc32c(&len).to_le_bytes())?;
        self.file.write_all(&e)?;
        self.file.write_all(&masked_crc32c(&e).to_le_bytes())
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2): strings, bytes and embedded messages.
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: event records are a few
/// hundred bytes, a table would buy nothing.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's masking of a CRC stored beside the data it covers.
fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: a buffer of `buf.len()` bytes; gethostname NUL-terminates what fits.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).replace(['/', '\\'], "_");
    if ok && !name.is_empty() {
        name
    } else {
        "localhost".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC catalogue's check value of CRC-32C for "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn varints_and_fields_encode_like_protobuf() {
        let mut v = vec![];
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let mut f = vec![];
        bytes_field(&mut f, 1, b"loss");
        assert_eq!(f, [0x0a, 4, b'l', b'o', b's', b's']);
    }
}
