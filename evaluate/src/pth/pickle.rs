//! The part of Python's pickle machine that a `torch.save`d state_dict needs: protocols 2–5,
//! plain values and containers, `collections.OrderedDict`, torch's persistent storage ids and
//! its `_rebuild_tensor_v2`/`_rebuild_parameter`. Nothing is imported or executed: an unknown
//! callable becomes an opaque value, which is an error only if a tensor is expected there.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The element type of a torch storage (`torch.FloatStorage` → `F32`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    Bf16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    fn from_storage(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Dtype::F64,
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" | "UntypedStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::Bf16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    pub fn kind(self) -> tch::Kind {
        match self {
            Dtype::F64 => tch::Kind::Double,
            Dtype::F32 => tch::Kind::Float,
            Dtype::F16 => tch::Kind::Half,
            Dtype::Bf16 => tch::Kind::BFloat16,
            Dtype::I64 => tch::Kind::Int64,
            Dtype::I32 => tch::Kind::Int,
            Dtype::I16 => tch::Kind::Int16,
            Dtype::I8 => tch::Kind::Int8,
            Dtype::U8 => tch::Kind::Uint8,
            Dtype::Bool => tch::Kind::Bool,
        }
    }
}

/// A storage named by a persistent id: where its bytes are (`key`) and what they hold.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: Dtype,
    /// Elements in the storage.
    pub numel: u64,
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, …)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond i64, as pickle's little-endian two's complement bytes.
    BigInt(Vec<u8>),
    /// A float or a bytes object: read past, never needed by a state_dict.
    Float,
    Str(String),
    Bytes,
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(String, String),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// The result of calling something this reader does not model.
    Opaque(String),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    fn ints(&self) -> Option<Vec<i64>> {
        match self {
            Value::Tuple(t) => t.iter().map(Value::as_int).collect(),
            Value::List(l) => l.borrow().iter().map(Value::as_int).collect(),
            _ => None,
        }
    }

    fn what(&self) -> String {
        match self {
            Value::Global(m, n) => format!("{m}.{n}"),
            Value::Opaque(what) => what.clone(),
            other => format!("{other:?}").chars().take(60).collect(),
        }
    }
}

type PResult<T> = std::result::Result<T, String>;

/// One pickle from `data[pos..]`: its value and the position after its STOP.
pub fn load(data: &[u8], pos: usize) -> PResult<(Value, usize)> {
    let mut m = Machine {
        data,
        pos,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        sealed: HashSet::new(),
    };
    let v = m.run()?;
    Ok((v, m.pos))
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Lists and dicts already put inside another container: never changed again, so a
    /// value's depth is fixed once it is inside something (see [`MAX_DEPTH`]).
    sealed: HashSet<usize>,
}

/// How deep values may nest. A state_dict nests 4 deep; a hostile pickle of 200 000 nested
/// lists would overflow the stack when dropped (or when its depth is measured), so putting a
/// value deeper than this inside a container is an error, and so is changing a list or dict
/// that is already inside another (the only way to grow a value's depth after the check, or to
/// make a cycle).
pub const MAX_DEPTH: usize = 32;

/// Depth of `v` (1 for a scalar) if it is at most `limit`; the recursion never goes deeper.
fn depth_within(v: &Value, limit: usize) -> Option<usize> {
    if limit == 0 {
        return None;
    }
    let max = |items: &mut dyn Iterator<Item = &Value>| -> Option<usize> {
        let mut m = 0;
        for x in items {
            m = m.max(depth_within(x, limit - 1)?);
        }
        Some(1 + m)
    };
    match v {
        Value::Tuple(t) => max(&mut t.iter()),
        Value::List(l) => max(&mut l.borrow().iter()),
        Value::Dict(d) => max(&mut d.borrow().iter().flat_map(|(k, v)| [k, v])),
        _ => Some(1),
    }
}

/// The address that identifies a list or dict (not a tuple: those never change).
fn mutable_id(v: &Value) -> Option<usize> {
    match v {
        Value::List(l) => Some(Rc::as_ptr(l) as *const u8 as usize),
        Value::Dict(d) => Some(Rc::as_ptr(d) as *const u8 as usize),
        _ => None,
    }
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> PResult<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or("the pickle ends early (truncated file)")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> PResult<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn line(&mut self) -> PResult<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a text opcode without its newline")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> PResult<Value> {
        if self.marks.last().is_some_and(|&m| m == self.stack.len()) {
            return Err("pop across a MARK".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }

    fn top(&mut self) -> PResult<&mut Value> {
        self.stack
            .last_mut()
            .ok_or_else(|| "stack underflow".into())
    }

    fn pop_mark(&mut self) -> PResult<Vec<Value>> {
        let m = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(m))
    }

    fn string(bytes: &[u8]) -> PResult<Value> {
        String::from_utf8(bytes.to_vec())
            .map(Value::Str)
            .map_err(|_| "a string that is not UTF-8".into())
    }

    fn long(bytes: &[u8]) -> Value {
        if bytes.len() <= 8 {
            let fill = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut b = [fill; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            Value::Int(i64::from_le_bytes(b))
        } else {
            Value::BigInt(bytes.to_vec())
        }
    }

    fn run(&mut self) -> PResult<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO n
                }
                0x95 => {
                    self.take(8)?; // FRAME length: frames are only a buffering hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'}' => self.stack.push(Value::Dict(Default::default())),
                b']' => self.stack.push(Value::List(Default::default())),
                b')' => self.stack.push(Value::Tuple(Rc::new(vec![]))),
                0x8f => self.stack.push(Value::List(Default::default())), // EMPTY_SET
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                        _ => return Err("STACK_GLOBAL of non-strings".into()),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.put(i)?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.put(i)?;
                }
                b'p' => {
                    let i = self.line()?.parse().map_err(|_| "a bad PUT index")?;
                    self.put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.get(i)?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.get(i)?;
                }
                b'g' => {
                    let i = self.line()?.parse().map_err(|_| "a bad GET index")?;
                    self.get(i)?;
                }
                b'X' | b'T' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let v = Self::string(self.take(n)?)?;
                    self.stack.push(v);
                }
                0x8c | b'U' => {
                    let n = self.u8()? as usize;
                    let v = Self::string(self.take(n)?)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.le()?) as usize;
                    let v = Self::string(self.take(n)?)?;
                    self.stack.push(v);
                }
                b'B' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                0x8e => {
                    let n = u64::from_le_bytes(self.le()?) as usize;
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let v = Self::long(self.take(n)?);
                    self.stack.push(v);
                }
                0x8b => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let v = Self::long(self.take(n)?);
                    self.stack.push(v);
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'N' => self.stack.push(Value::None),
                b't' => {
                    let items = self.pop_mark()?;
                    self.admit(&items)?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                        return Err("stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.admit(&items)?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.admit(&items)?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.admit(&items)?;
                    let pairs = pairs(items)?;
                    self.stack.push(Value::Dict(Rc::new(RefCell::new(pairs))));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(pairs(items)?)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(callable, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    self.stack.push(Value::Opaque(cls.what()));
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    self.stack.push(Value::Opaque(cls.what()));
                }
                b'b' => {
                    // BUILD sets attributes (an OrderedDict's `_metadata`): not needed here.
                    self.pop()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_load(&pid)?;
                    self.stack.push(v);
                }
                other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
            }
        }
    }

    fn put(&mut self, i: u32) -> PResult<()> {
        let v = self.top()?.clone(); // containers are shared (Rc), so later edits show
        self.memo.insert(i, v);
        Ok(())
    }

    fn get(&mut self, i: u32) -> PResult<()> {
        let v = self.memo.get(&i).cloned().ok_or("GET of an unset memo")?;
        self.stack.push(v);
        Ok(())
    }

    /// Checks that `items` may go inside a container (not deeper than [`MAX_DEPTH`]) and seals
    /// the lists and dicts among them.
    fn admit<'v>(&mut self, items: impl IntoIterator<Item = &'v Value>) -> PResult<()> {
        for v in items {
            if depth_within(v, MAX_DEPTH).is_none() {
                return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
            }
            if let Some(id) = mutable_id(v) {
                self.sealed.insert(id);
            }
        }
        Ok(())
    }

    /// Errs if the container on top of the stack is already inside another.
    fn check_unsealed(&mut self) -> PResult<()> {
        match mutable_id(self.top()?) {
            Some(id) if self.sealed.contains(&id) => Err(
                "the pickle changes a list or dict already inside another (a recursive \
                 structure, not a state_dict)"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    fn set_items(&mut self, kv: Vec<(Value, Value)>) -> PResult<()> {
        self.admit(kv.iter().flat_map(|(k, v)| [k, v]))?;
        self.check_unsealed()?;
        match self.top()? {
            Value::Dict(d) => {
                d.borrow_mut().extend(kv);
                Ok(())
            }
            // Items set on an object this reader does not model: dropped with it.
            Value::Opaque(_) => Ok(()),
            other => Err(format!("SETITEMS on {}", other.what())),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> PResult<()> {
        self.admit(&items)?;
        self.check_unsealed()?;
        match self.top()? {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            Value::Opaque(_) => Ok(()),
            other => Err(format!("APPENDS on {}", other.what())),
        }
    }
}

fn pairs(items: Vec<Value>) -> PResult<Vec<(Value, Value)>> {
    #[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87; MSRV is 1.85
    if items.len() % 2 != 0 {
        return Err("a dict with an odd number of items".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn tuple(v: &Value) -> PResult<&[Value]> {
    match v {
        Value::Tuple(t) => Ok(t),
        other => Err(format!("expected a tuple, got {}", other.what())),
    }
}

/// torch's persistent id of a storage: `('storage', torch.FloatStorage, key, location, numel
/// [, view_metadata])` (the zip format has five fields, the legacy format six).
fn persistent_load(pid: &Value) -> PResult<Value> {
    let t = tuple(pid)?;
    if t.len() < 5 || t[0].as_str() != Some("storage") {
        return Err(format!(
            "a persistent id that is not a torch storage: {}",
            pid.what()
        ));
    }
    let dtype = match &t[1] {
        Value::Global(_, name) => {
            Dtype::from_storage(name).ok_or_else(|| format!("unknown storage type {name}"))?
        }
        other => return Err(format!("a storage type that is {}", other.what())),
    };
    if t.len() > 5 && !matches!(t[5], Value::None) {
        return Err("a storage view (torch < 0.4 files) is not supported".into());
    }
    let key = match &t[2] {
        Value::Str(s) => s.clone(),
        other => return Err(format!("a storage key that is {}", other.what())),
    };
    let numel = t[4]
        .as_int()
        .filter(|&n| n >= 0)
        .ok_or("a bad storage size")? as u64;
    Ok(Value::Storage(StorageRef { key, dtype, numel }))
}

fn reduce(callable: Value, args: Value) -> PResult<Value> {
    let Value::Global(module, name) = &callable else {
        return Ok(Value::Opaque(callable.what()));
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") | ("builtins", "dict") => {
            let init = tuple(&args)?;
            let items = match init.first() {
                Some(Value::List(l)) => l
                    .borrow()
                    .iter()
                    .map(|kv| {
                        let p = tuple(kv)?;
                        match p {
                            [k, v] => Ok((k.clone(), v.clone())),
                            _ => Err("an OrderedDict item that is not a pair".to_string()),
                        }
                    })
                    .collect::<PResult<Vec<_>>>()?,
                _ => vec![],
            };
            Ok(Value::Dict(Rc::new(RefCell::new(items))))
        }
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            let a = tuple(&args)?;
            let (Some(Value::Storage(storage)), Some(offset), Some(size), Some(stride)) = (
                a.first(),
                a.get(1).and_then(Value::as_int),
                a.get(2).and_then(Value::ints),
                a.get(3).and_then(Value::ints),
            ) else {
                return Err("a _rebuild_tensor_v2 call with unexpected arguments".into());
            };
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset,
                size,
                stride,
            }))
        }
        ("torch._utils", "_rebuild_parameter")
        | ("torch._utils", "_rebuild_parameter_with_state") => tuple(&args)?
            .first()
            .cloned()
            .ok_or_else(|| "an empty _rebuild_parameter call".into()),
        _ => Ok(Value::Opaque(format!("{module}.{name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_protocol_2_dict_of_ints_and_strings() {
        // pickle.dumps({'a': 1, 'bb': -2, 'c': 'x', 'big': 2**70}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x02\x00\x00\x00bbq\x02J\xfe\xff\xff\xffX\x01\x00\x00\x00cq\x03X\x01\x00\x00\x00xq\x04X\x03\x00\x00\x00bigq\x05\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@u.";
        let (v, end) = load(data, 0).unwrap();
        assert_eq!(end, data.len());
        let Value::Dict(d) = v else { panic!() };
        let d = d.borrow();
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].0.as_str(), Some("a"));
        assert_eq!(d[0].1.as_int(), Some(1));
        assert_eq!(d[1].1.as_int(), Some(-2));
        assert_eq!(d[2].1.as_str(), Some("x"));
        assert!(matches!(&d[3].1, Value::BigInt(b) if b.len() == 9));
    }

    #[test]
    fn truncation_and_unknown_opcodes_are_errors() {
        assert!(load(b"\x80\x02}q\x00(X\x05\x00\x00\x00ab", 0)
            .unwrap_err()
            .contains("truncated"));
        assert!(load(b"\x80\x02\xff", 0).unwrap_err().contains("0xff"));
    }

    #[test]
    fn a_deeply_nested_pickle_is_an_error_not_a_stack_overflow() {
        // ']' (EMPTY_LIST) 200 000 times, then 'a' (APPEND) to nest each into the one below.
        let n = 200_000;
        let mut data = b"\x80\x02".to_vec();
        data.extend(std::iter::repeat_n(b']', n));
        data.extend(std::iter::repeat_n(b'a', n - 1));
        data.push(b'.');
        let err = load(&data, 0).unwrap_err();
        assert!(err.contains("deeper than 32"), "{err}");
    }

    #[test]
    fn a_list_changed_after_it_was_nested_or_holding_itself_is_an_error() {
        // x = []; y = [x]; x.append([]): grows y's depth after y's check (the top-down way to
        // nest without bound). Memo 0 holds x.
        let grown = b"\x80\x02]q\x00h\x00\x85q\x01h\x00]a.";
        assert!(load(grown, 0).unwrap_err().contains("already inside"));
        // x = []; x.append(x): a cycle.
        let cycle = b"\x80\x02]q\x00h\x00a.";
        assert!(load(cycle, 0).unwrap_err().contains("already inside"));
        // A value of 32 levels may go inside a container (33 in all); one of 33 may not.
        for (levels, ok) in [(33, true), (34, false)] {
            let mut d = b"\x80\x02".to_vec();
            d.extend(std::iter::repeat_n(b']', levels));
            d.extend(std::iter::repeat_n(b'a', levels - 1));
            d.push(b'.');
            assert_eq!(load(&d, 0).is_ok(), ok, "{levels} levels");
        }
    }
}
