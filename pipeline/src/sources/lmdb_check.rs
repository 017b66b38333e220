//! A structural check of an LMDB's `data.mdb` before liblmdb maps it.
//!
//! liblmdb trusts its file: it maps it and follows page numbers, node offsets and value sizes
//! without bounds checks, so a truncated download (the usual damage) or a corrupt page kills
//! the process with SIGBUS or SIGSEGV, with no file named and no manifest. This reads what a
//! read transaction will touch, with `pread` and bounds checks: both meta pages as
//! `mdb_env_read_header` does, then every branch and leaf page of the main database's B-tree
//! and the extent of every value, each of which must lie inside the file. Overflow pages are
//! not read, only located, so the cost is the tree pages (~1% of an LSUN LMDB). Layout:
//! liblmdb 0.9 `mdb.c` (`MDB_page`, `MDB_node`, `MDB_meta`, `MDB_db`), 64-bit little-endian.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Page header: pgno u64, pad u16, flags u16, lower u16, upper u16.
const PAGE_HEADER: u64 = 16;
/// Node header: lo u16, hi u16, flags u16, ksize u16.
const NODE_HEADER: usize = 8;
const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_META: u16 = 0x08;
const P_LEAF2: u16 = 0x20;
const P_SUBP: u16 = 0x40;
const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
const F_DUPDATA: u16 = 0x04;
const MAGIC: u32 = 0xBEEF_C0DE;
const DATA_VERSION: u32 = 1;
/// liblmdb's cursor stack depth: a deeper tree is an error there too.
const MAX_DEPTH: u32 = 32;
const P_INVALID: u64 = u64::MAX;
/// `MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP`: duplicate-key databases,
/// whose leaves hold sub-pages; LSUN and FFHQ LMDBs have none.
const DUP_FLAGS: u16 = 0x04 | 0x10 | 0x20 | 0x40;

/// The main database as the newest meta page describes it.
struct Meta {
    psize: u64,
    last_pg: u64,
    txnid: u64,
    flags: u16,
    entries: u64,
    root: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

struct Checker {
    file: File,
    len: u64,
    meta: Meta,
    seen: HashSet<u64>,
    entries: u64,
}

/// Checks the LMDB data file at `path`; returns its main database's number of entries, or
/// what is wrong in one line (the caller names the file).
pub(super) fn check(path: &Path) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let meta = pick_meta(&file, len)?;
    if meta.flags & DUP_FLAGS != 0 {
        return Err("the main database has duplicate keys (DUPSORT): not an image LMDB".into());
    }
    let root = meta.root;
    let mut c = Checker {
        file,
        len,
        meta,
        seen: HashSet::new(),
        entries: 0,
    };
    if root != P_INVALID {
        c.page(root, 1)?;
    }
    if c.entries != c.meta.entries {
        return Err(format!(
            "corrupt LMDB: its meta page says {} entries, the tree holds {}",
            c.meta.entries, c.entries
        ));
    }
    Ok(c.entries)
}

/// Both meta pages must be valid; the one with the larger transaction id is used (liblmdb's
/// `mdb_env_read_header` and `mdb_env_pick_meta`).
fn pick_meta(file: &File, len: u64) -> Result<Meta, String> {
    let mut metas = Vec::new();
    let mut off = 0u64;
    for i in 0..2 {
        let mut b = [0u8; 16 + 136];
        if off.checked_add(b.len() as u64).is_none_or(|end| end > len) {
            return Err(format!(
                "not an LMDB or truncated: {len} bytes, too short for meta page {i}"
            ));
        }
        file.read_exact_at(&mut b, off)
            .map_err(|e| format!("meta page {i}: {e}"))?;
        if u16_at(&b, 10) & P_META == 0 || u32_at(&b, 16) != MAGIC {
            return Err(format!("not an LMDB: page {i} is not a meta page"));
        }
        if u32_at(&b, 20) != DATA_VERSION {
            return Err(format!(
                "LMDB data version {}, expected {DATA_VERSION}",
                u32_at(&b, 20)
            ));
        }
        // MDB_meta after the page header: magic, version, address, mapsize, then the free
        // and main MDB_db (48 bytes each: pad u32, flags u16, depth u16, branch, leaf and
        // overflow page counts, entries, root), last_pg, txnid.
        let (free, main) = (16 + 24, 16 + 72);
        let m = Meta {
            psize: u32_at(&b, free) as u64,
            flags: u16_at(&b, main + 4),
            entries: u64_at(&b, main + 32),
            root: u64_at(&b, main + 40),
            last_pg: u64_at(&b, 16 + 120),
            txnid: u64_at(&b, 16 + 128),
        };
        if !m.psize.is_power_of_two() || !(512..=65536).contains(&m.psize) {
            return Err(format!("corrupt LMDB: page size {}", m.psize));
        }
        off = m.psize;
        metas.push(m);
    }
    if metas[0].psize != metas[1].psize {
        return Err("corrupt LMDB: the two meta pages disagree on the page size".into());
    }
    let newer = usize::from(metas[0].txnid < metas[1].txnid);
    Ok(metas.swap_remove(newer))
}

impl Checker {
    /// Where a page or value ends past the end of the file: liblmdb would fault there.
    fn past_end(&self, what: String, end: Option<u64>) -> Result<(), String> {
        if end.is_some_and(|e| e <= self.len) {
            return Ok(());
        }
        Err(format!(
            "{what} lies past the end of the file ({} bytes; its meta page says {} pages of \
             {}): truncated (an incomplete download?) or corrupt",
            self.len,
            self.meta.last_pg.saturating_add(1),
            self.meta.psize
        ))
    }

    fn read_page(&self, pgno: u64) -> Result<Vec<u8>, String> {
        let end = (pgno + 1).checked_mul(self.meta.psize);
        self.past_end(format!("page {pgno}"), end)?;
        let mut b = vec![0u8; self.meta.psize as usize];
        self.file
            .read_exact_at(&mut b, pgno * self.meta.psize)
            .map_err(|e| format!("page {pgno}: {e}"))?;
        Ok(b)
    }

    /// A branch or leaf page and, under it, the rest of the tree.
    fn page(&mut self, pgno: u64, depth: u32) -> Result<(), String> {
        let corrupt = |what: String| format!("corrupt LMDB: page {pgno}: {what}");
        if depth > MAX_DEPTH {
            return Err(corrupt(format!("the tree is deeper than {MAX_DEPTH}")));
        }
        // Meta pages 0 and 1 are never tree pages.
        if pgno < 2 || pgno > self.meta.last_pg {
            return Err(corrupt("page number out of range".into()));
        }
        if !self.seen.insert(pgno) {
            return Err(corrupt("reached twice (the tree has a cycle)".into()));
        }
        let b = self.read_page(pgno)?;
        let psize = b.len();
        let (flags, lower, upper) = (
            u16_at(&b, 10),
            u16_at(&b, 12) as usize,
            u16_at(&b, 14) as usize,
        );
        let branch = flags & P_BRANCH != 0;
        if flags & (P_LEAF2 | P_SUBP) != 0 || branch == (flags & P_LEAF != 0) {
            return Err(corrupt(format!(
                "flags {flags:#x}, not a branch or leaf page"
            )));
        }
        let header = PAGE_HEADER as usize;
        if lower < header + 2
            || lower > upper
            || upper > psize
            || !(lower - header).is_multiple_of(2)
        {
            return Err(corrupt(format!("free space {lower}..{upper}")));
        }
        for i in 0..(lower - header) / 2 {
            let off = u16_at(&b, header + 2 * i) as usize;
            let bad = |what: &str| corrupt(format!("node {i}: {what}"));
            if off < upper || off + NODE_HEADER > psize {
                return Err(bad("offset outside the page"));
            }
            let (lo, hi) = (u16_at(&b, off) as u64, u16_at(&b, off + 2) as u64);
            let (nflags, ksize) = (u16_at(&b, off + 4), u16_at(&b, off + 6) as usize);
            let data = off + NODE_HEADER + ksize;
            if data > psize {
                return Err(bad("key runs past the page"));
            }
            if branch {
                self.page(lo | hi << 16 | (nflags as u64) << 32, depth + 1)?;
                continue;
            }
            let dsize = lo | hi << 16;
            if nflags & (F_SUBDATA | F_DUPDATA) != 0 {
                return Err(bad("a sub-database or duplicates, not an image LMDB"));
            }
            if nflags & F_BIGDATA != 0 {
                if data + 8 > psize {
                    return Err(bad("overflow page number runs past the page"));
                }
                let opg = u64_at(&b, data);
                if opg < 2 || opg > self.meta.last_pg {
                    return Err(bad(&format!("overflow page {opg} out of range")));
                }
                let end = (opg * self.meta.psize).checked_add(PAGE_HEADER + dsize);
                self.past_end(format!("the {dsize}-byte value of page {opg}"), end)?;
            } else if data as u64 + dsize > psize as u64 {
                return Err(bad("value runs past the page"));
            }
            self.entries += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lmdb(dir: &Path, n: usize, value: usize) -> std::path::PathBuf {
        let entries: Vec<_> = (0..n)
            .map(|i| (format!("{i:08}").into_bytes(), vec![i as u8; value]))
            .collect();
        testkit::fixtures::write_lmdb(dir, &entries).unwrap();
        dir.join("data.mdb")
    }

    #[test]
    fn a_valid_lmdb_passes_with_its_entry_count() {
        let tmp = tempfile::tempdir().unwrap();
        // Small values live in the leaves, large ones on overflow pages; 300 keys need
        // branch pages.
        assert_eq!(check(&lmdb(&tmp.path().join("a"), 300, 10)).unwrap(), 300);
        assert_eq!(check(&lmdb(&tmp.path().join("b"), 40, 9000)).unwrap(), 40);
    }

    #[test]
    fn truncation_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let data = lmdb(tmp.path(), 40, 9000);
        let bytes = std::fs::read(&data).unwrap();
        // (Pages past the tree's last, such as the free list's, are never read: a cut
        // there is harmless, and passes.)
        for cut in [0, 100, 4096, 8192 + 10, bytes.len() / 3, bytes.len() / 2] {
            std::fs::write(&data, &bytes[..cut]).unwrap();
            assert!(check(&data).is_err(), "cut at {cut}");
        }
        std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
        let err = check(&data).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }
}
