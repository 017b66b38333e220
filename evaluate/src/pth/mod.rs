//! Reads a state_dict saved with `torch.save` (a `.pth`), with no Python: both of torch's
//! formats, the zip archive (torch ≥ 1.6: `archive/data.pkl` + one file per storage) and the
//! legacy stream (pickles of a magic number, the protocol version, the system info, the object
//! and the storage keys, then each storage's bytes). tch 0.24 cannot read either (its loaders
//! take TorchScript archives and safetensors), and the one file FID users have is such a
//! `.pth`: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` in the torch hub cache.

mod pickle;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::Tensor;

use crate::error::{Error, Result};
use pickle::{StorageRef, TensorRef, Value};

/// torch.serialization's MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format.
const LEGACY_MAGIC: u128 = 0x1950a86a20f9469cfc6c;
const LEGACY_PROTOCOL: i64 = 1001;

/// The named tensors of a `torch.save`d state_dict, in the file's order, on the CPU.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let bad = |msg: String| Error::file(path, msg);
    let (top, storages) = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(&bytes).map_err(bad)?
    } else if bytes.first() == Some(&0x80) {
        read_legacy(&bytes).map_err(bad)?
    } else {
        return Err(Error::file(
            path,
            "not a torch.save file (neither torch's zip archive nor its legacy pickle stream)",
        ));
    };
    state_dict(top, &storages)
        .map_err(|msg| Error::file(path, format!("not a torch state_dict: {msg}")))
}

/// The bytes of each storage, by key.
type Storages = HashMap<String, Vec<u8>>;

fn read_zip(bytes: &[u8]) -> std::result::Result<(Value, Storages), String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("a broken zip archive (truncated?): {e}"))?;
    let pkl = zip
        .file_names()
        .filter(|n| n.ends_with("data.pkl") && n.matches('/').count() == 1)
        .min_by_key(|n| n.len())
        .map(str::to_string)
        .ok_or("a zip archive without <name>/data.pkl: not a torch.save file")?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut read = |name: &str| -> std::result::Result<Option<Vec<u8>>, String> {
        let mut f = match zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let mut out = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut out)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(Some(out))
    };
    if let Some(order) = read(&format!("{prefix}byteorder"))? {
        if order != b"little" {
            return Err("saved on a big-endian machine: not supported".into());
        }
    }
    let data = read(&pkl)?.expect("listed above");
    let (top, _) = pickle::load(&data, 0)?;
    let mut storages = Storages::new();
    for s in &storage_refs(&top) {
        if !storages.contains_key(&s.key) {
            let name = format!("{prefix}data/{}", s.key);
            let b = read(&name)?.ok_or_else(|| format!("storage {name} is missing"))?;
            storages.insert(s.key.clone(), b);
        }
    }
    Ok((top, storages))
}

fn read_legacy(bytes: &[u8]) -> std::result::Result<(Value, Storages), String> {
    let (magic, pos) = pickle::load(bytes, 0)?;
    let magic_ok = match &magic {
        Value::BigInt(b) => {
            b.len() <= 16 && {
                let mut le = [0u8; 16];
                le[..b.len()].copy_from_slice(b);
                u128::from_le_bytes(le) == LEGACY_MAGIC
            }
        }
        _ => false,
    };
    if !magic_ok {
        return Err(
            "a pickle that does not start with torch's magic number: not a torch.save file".into(),
        );
    }
    let (protocol, pos) = pickle::load(bytes, pos)?;
    if protocol.as_int() != Some(LEGACY_PROTOCOL) {
        return Err(format!(
            "legacy protocol {protocol:?}, expected {LEGACY_PROTOCOL}"
        ));
    }
    let (sys_info, pos) = pickle::load(bytes, pos)?;
    if let Value::Dict(d) = &sys_info {
        let little = d
            .borrow()
            .iter()
            .find(|(k, _)| k.as_str() == Some("little_endian"))
            .map(|(_, v)| v.as_int() == Some(1));
        if little == Some(false) {
            return Err("saved on a big-endian machine: not supported".into());
        }
    }
    let (top, pos) = pickle::load(bytes, pos)?;
    let (keys, mut pos) = pickle::load(bytes, pos)?;
    let keys: Vec<String> = match &keys {
        Value::List(l) => l
            .borrow()
            .iter()
            .map(|k| k.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("storage keys that are not strings")?,
        _ => return Err("no list of storage keys after the object".into()),
    };
    let refs = storage_refs(&top);
    let dtypes: HashMap<&str, &StorageRef> = refs.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut storages = Storages::new();
    for key in keys {
        // Each storage: its element count (int64, little-endian), then its bytes.
        let head = bytes
            .get(pos..pos + 8)
            .ok_or("the file ends before a storage (truncated)")?;
        let numel = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        let elem = dtypes.get(key.as_str()).map_or(1, |s| s.dtype.size()) as u64;
        let len = numel
            .checked_mul(elem)
            .filter(|&n| n <= (bytes.len() - pos - 8) as u64)
            .ok_or("the file ends inside a storage (truncated)")? as usize;
        storages.insert(key, bytes[pos + 8..pos + 8 + len].to_vec());
        pos += 8 + len;
    }
    Ok((top, storages))
}

/// Every storage a tensor of the top-level dict refers to.
fn storage_refs(top: &Value) -> Vec<StorageRef> {
    match top {
        Value::Dict(d) => d
            .borrow()
            .iter()
            .filter_map(|(_, v)| match v {
                Value::Tensor(t) => Some(t.storage.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

fn state_dict(
    top: Value,
    storages: &Storages,
) -> std::result::Result<Vec<(String, Tensor)>, String> {
    let Value::Dict(d) = top else {
        return Err("the saved object is not a dict".into());
    };
    let mut out = Vec::new();
    for (k, v) in d.borrow().iter() {
        let name = k.as_str().ok_or("a key that is not a string")?;
        match v {
            Value::Tensor(t) => out.push((name.to_string(), tensor(name, t, storages)?)),
            _ => return Err(format!("entry `{name}` is not a tensor")),
        }
    }
    if out.is_empty() {
        return Err("an empty dict".into());
    }
    Ok(out)
}

fn tensor(name: &str, t: &TensorRef, storages: &Storages) -> std::result::Result<Tensor, String> {
    let s = &t.storage;
    let bytes = storages
        .get(&s.key)
        .ok_or_else(|| format!("`{name}`: storage {} is missing", s.key))?;
    let need = s.numel as usize * s.dtype.size();
    if bytes.len() < need {
        return Err(format!(
            "`{name}`: storage {} holds {} bytes, {need} expected (truncated)",
            s.key,
            bytes.len()
        ));
    }
    if t.size.len() != t.stride.len() || t.offset < 0 || t.size.iter().any(|&n| n < 0) {
        return Err(format!("`{name}`: a bad size/stride"));
    }
    let last = t.offset
        + t.size
            .iter()
            .zip(&t.stride)
            .map(|(&n, &st)| (n - 1).max(0) * st)
            .sum::<i64>();
    if t.size.iter().all(|&n| n > 0) && last >= s.numel as i64 {
        return Err(format!("`{name}`: reaches past the end of its storage"));
    }
    let flat = Tensor::from_data_size(&bytes[..need], &[s.numel as i64], s.dtype.kind());
    Ok(flat.as_strided(&t.size, &t.stride, t.offset).contiguous())
}
