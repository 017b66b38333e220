//! A minimal pickle reader for CIFAR-10's python batches (no Python at run time).
//!
//! The official `cifar-10-batches-py` files are Python-2 `cPickle` dumps (protocol 2) of a dict
//! `{'batch_label': str, 'labels': [int], 'data': numpy uint8 [N, 3072], 'filenames': [str]}`.
//! The numpy array is pickled as `numpy.core.multiarray._reconstruct(...)` + `BUILD` with the
//! state tuple `(version, shape, dtype, is_fortran, raw_bytes)`. This VM understands the opcodes
//! such a file (and the same dict re-pickled by Python 3, protocols 2-5) uses, builds values
//! without executing anything, and [`cifar_batch`] pulls `data` and `labels` out of them.
//!
//! A pickle is a program, so a hostile one is bounded: values nest at most [`MAX_DEPTH`] deep
//! (dropping a value nested 100 000 deep overflows the stack; a CIFAR batch nests 6), and the
//! memo's copies may create at most as many values as the pickle has bytes (copying a list of
//! two copies of itself 40 times is 2^40 values from 300 bytes).

use std::collections::HashMap;
use std::rc::Rc;

use schemas::cifar::PIXEL_BYTES;

/// A pickled value. Calls (`REDUCE`) and `BUILD` are kept as data, never executed.
// A faithful tree of everything the pickle holds; the CIFAR reader reads only `labels` and
// `data`, so some payloads (bools, floats, call arguments) are parsed but never read.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Python-2 `str`, Python-3 `bytes` or `str` (as UTF-8): all just bytes here.
    Bytes(Rc<Vec<u8>>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Call(Box<Value>, Vec<Value>),
    Built(Box<Value>, Box<Value>),
    Mark,
}

impl Value {
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn dict_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| k.bytes() == Some(key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// How deep values may nest; see the module docs.
pub const MAX_DEPTH: usize = 32;

/// Nesting depth of `v`, 1 for a scalar. Values in the VM are at most [`MAX_DEPTH`] deep, so
/// this recursion is too.
fn depth(v: &Value) -> usize {
    let max = |items: &mut dyn Iterator<Item = &Value>| items.map(depth).max().unwrap_or(0);
    match v {
        Value::List(x) | Value::Tuple(x) => 1 + max(&mut x.iter()),
        Value::Dict(kv) => 1 + max(&mut kv.iter().flat_map(|(k, v)| [k, v])),
        Value::Call(f, args) => 1 + max(&mut std::iter::once(&**f).chain(args)),
        Value::Built(obj, state) => 1 + depth(obj).max(depth(state)),
        _ => 1,
    }
}

/// Number of values in `v`, itself included.
fn size(v: &Value) -> usize {
    let sum = |items: &mut dyn Iterator<Item = &Value>| items.map(size).sum::<usize>();
    match v {
        Value::List(x) | Value::Tuple(x) => 1 + sum(&mut x.iter()),
        Value::Dict(kv) => 1 + sum(&mut kv.iter().flat_map(|(k, v)| [k, v])),
        Value::Call(f, args) => 1 + sum(&mut std::iter::once(&**f).chain(args)),
        Value::Built(obj, state) => 1 + size(obj) + size(state),
        _ => 1,
    }
}

/// Parses a whole pickle into its value tree. The error says which opcode or offset broke.
pub fn parse(data: &[u8]) -> Result<Value, String> {
    let mut vm = Vm {
        data,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        copy_budget: data.len() + (1 << 16),
    };
    vm.run()
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    /// Values the memo may still copy (see the module docs).
    copy_budget: usize,
}

impl Vm<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("truncated pickle at byte {}", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated pickle: unterminated line")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn bytes(&mut self, n: usize) -> Result<Value, String> {
        Ok(Value::Bytes(Rc::new(self.take(n)?.to_vec())))
    }
    fn pop(&mut self) -> Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".into())
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or("pickle MARK missing")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }
    /// Refuses to put `items` inside a container if that would nest deeper than [`MAX_DEPTH`].
    fn nest<'v>(&self, items: impl IntoIterator<Item = &'v Value>) -> Result<(), String> {
        if items.into_iter().any(|v| depth(v) >= MAX_DEPTH) {
            return Err(format!(
                "values nest deeper than {MAX_DEPTH} at byte {} (not a CIFAR-10 batch)",
                self.pos
            ));
        }
        Ok(())
    }

    /// Counts a memo copy of `v` against the copy budget, then makes it.
    fn copy(&mut self, v: &Value) -> Result<Value, String> {
        self.copy_budget = self.copy_budget.checked_sub(size(v)).ok_or_else(|| {
            format!(
                "the memo copies more values than the pickle has bytes at byte {} \
                 (a pickle bomb?)",
                self.pos
            )
        })?;
        Ok(v.clone())
    }

    /// Stores a copy of the top of the stack in memo slot `i`.
    fn memo_put(&mut self, i: u32) -> Result<(), String> {
        let top = self.stack.pop().ok_or("pickle stack underflow")?;
        let copy = self.copy(&top);
        self.stack.push(top);
        self.memo.insert(i, copy?);
        Ok(())
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "pickle stack underflow".into())
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO n
                }
                0x95 => {
                    self.u64()?; // FRAME (protocol 4): a length hint only
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v as i64))
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v as i64))
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(format!("integer of {n} bytes at byte {at}"));
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v))
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.stack.push(Value::Float(v))
                }
                // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE
                b'U' | b'C' | 0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.bytes(n)?;
                    self.stack.push(v)
                }
                // BINSTRING, BINBYTES, BINUNICODE
                b'T' | b'B' | b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.bytes(n)?;
                    self.stack.push(v)
                }
                // BINUNICODE8, BINBYTES8, BYTEARRAY8
                0x8d | 0x8e | 0x96 => {
                    let n = usize::try_from(self.u64()?).map_err(|_| "huge string")?;
                    let v = self.bytes(n)?;
                    self.stack.push(v)
                }
                b']' => self.stack.push(Value::List(vec![])),
                b')' => self.stack.push(Value::Tuple(vec![])),
                b'}' => self.stack.push(Value::Dict(vec![])),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    self.stack.push(Value::List(items))
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    self.stack.push(Value::Tuple(items))
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    self.stack.push(Value::Dict(pairs(items)?))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err("pickle stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.nest(&items)?;
                    self.stack.push(Value::Tuple(items))
                }
                b'a' => {
                    let v = self.pop()?;
                    self.nest([&v])?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        _ => return Err(format!("APPEND to a non-list at byte {at}")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(format!("APPENDS to a non-list at byte {at}")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.nest([&k, &v])?;
                    match self.top()? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(format!("SETITEM on a non-dict at byte {at}")),
                    }
                }
                b'u' => {
                    let items = pairs(self.pop_mark()?)?;
                    self.nest(items.iter().flat_map(|(k, v)| [k, v]))?;
                    match self.top()? {
                        Value::Dict(d) => d.extend(items),
                        _ => return Err(format!("SETITEMS on a non-dict at byte {at}")),
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name))
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let s = |v: &Value| String::from_utf8_lossy(v.bytes().unwrap_or(b"?")).into();
                    self.stack.push(Value::Global(s(&module), s(&name)))
                }
                b'R' => {
                    let args = match self.pop()? {
                        Value::Tuple(t) => t,
                        _ => return Err(format!("REDUCE without an argument tuple at byte {at}")),
                    };
                    let f = self.pop()?;
                    self.nest(std::iter::once(&f).chain(&args))?;
                    self.stack.push(reduce(f, args))
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    let args = match self.pop()? {
                        Value::Tuple(t) => t,
                        _ => return Err(format!("NEWOBJ without an argument tuple at byte {at}")),
                    };
                    let cls = self.pop()?;
                    self.nest(std::iter::once(&cls).chain(&args))?;
                    self.stack.push(Value::Call(Box::new(cls), args))
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    self.nest([&obj, &state])?;
                    self.stack
                        .push(Value::Built(Box::new(obj), Box::new(state)))
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?;
                }
                b'h' | b'j' => {
                    let i = if op == b'h' {
                        self.u8()? as u32
                    } else {
                        self.u32()?
                    };
                    let v = self.memo.remove(&i);
                    let v = v.ok_or_else(|| format!("memo {i} used before it was set"))?;
                    let copy = self.copy(&v);
                    self.memo.insert(i, v);
                    self.stack.push(copy?)
                }
                _ => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{op:02x} at byte {at} (not a CIFAR-10 batch?)"
                    ))
                }
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of dict items".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// Python 3 pickles `bytes` at protocol 2 as `_codecs.encode(str, 'latin1')`: undo that here;
/// every other call stays data.
fn reduce(f: Value, args: Vec<Value>) -> Value {
    if let Value::Global(m, n) = &f {
        if m == "_codecs" && n == "encode" {
            if let Some(Value::Bytes(s)) = args.first() {
                let text = String::from_utf8_lossy(s);
                return Value::Bytes(Rc::new(text.chars().map(|c| c as u32 as u8).collect()));
            }
        }
    }
    Value::Call(Box::new(f), args)
}

/// One CIFAR-10 python batch: `n` images of 3072 bytes (R, G, B planes) and their labels.
#[derive(Debug)]
pub struct CifarBatch {
    pub data: Vec<u8>,
    pub labels: Vec<i32>,
}

/// Extracts `data` (uint8 [N, 3072]) and `labels` from a parsed CIFAR-10 python batch.
pub fn cifar_batch(bytes: &[u8]) -> Result<CifarBatch, String> {
    let root = parse(bytes)?;
    let data = root
        .dict_get("data")
        .ok_or("no `data` entry: not a CIFAR-10 python batch")?;
    let labels = root
        .dict_get("labels")
        .ok_or("no `labels` entry: not a CIFAR-10 python batch")?;
    // ndarray: Built(Call(_reconstruct, ..), Tuple(version, shape, dtype, fortran, raw))
    let (shape, raw) = match data {
        Value::Built(_, state) => match &**state {
            Value::Tuple(t) if t.len() == 5 => (&t[1], &t[4]),
            _ => return Err("`data` is not a pickled numpy array".into()),
        },
        _ => return Err("`data` is not a pickled numpy array".into()),
    };
    let dims: Vec<i64> = match shape {
        Value::Tuple(t) => t
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                _ => Err("`data` shape is not integers".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("`data` has no shape".into()),
    };
    let raw = match raw {
        Value::Bytes(b) => b.clone(),
        _ => return Err("`data` has no raw bytes".into()),
    };
    let px = PIXEL_BYTES as i64;
    if dims.len() != 2 || dims[1] != px || raw.len() as i64 != dims[0] * px {
        return Err(format!(
            "`data` is {dims:?} with {} bytes, expected uint8 [N, {px}]",
            raw.len()
        ));
    }
    let labels: Vec<i32> = match labels {
        Value::List(l) => l
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i as i32),
                _ => Err("`labels` holds a non-integer".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("`labels` is not a list".into()),
    };
    if labels.len() as i64 != dims[0] {
        return Err(format!("{} labels for {} images", labels.len(), dims[0]));
    }
    drop(root);
    // The memo is gone with `root`, so the array bytes are uniquely owned: no copy.
    let data = Rc::try_unwrap(raw).unwrap_or_else(|rc| (*rc).clone());
    Ok(CifarBatch { data, labels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::pickle::write_cifar_batch_py2;

    #[test]
    fn reads_back_a_py2_style_batch() {
        let data: Vec<u8> = (0..3 * 3072).map(|i| (i % 251) as u8).collect();
        let bytes = write_cifar_batch_py2(&data, &[3, 0, 9]);
        let b = cifar_batch(&bytes).unwrap();
        assert_eq!(b.labels, [3, 0, 9]);
        assert_eq!(&b.data[..], &data[..]);
    }

    #[test]
    fn truncated_pickle_is_an_error_not_a_panic() {
        let data = vec![7u8; 3072];
        let bytes = write_cifar_batch_py2(&data, &[1]);
        for cut in [1, 10, 100, bytes.len() - 1] {
            assert!(cifar_batch(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_memo_doubling_bomb_is_refused() {
        // L0 = []; L(k+1) = [Lk, Lk], memoised: 40 levels are 2^40 values from 250 bytes.
        let mut p = vec![0x80, 2, b']', b'q', 0];
        for k in 0..40u8 {
            p.extend([b'(', b'h', k, b'h', k, b'l', b'q', k + 1]);
        }
        p.push(b'.');
        let err = parse(&p).unwrap_err();
        assert!(err.contains("pickle bomb"), "{err}");
    }

    #[test]
    fn nesting_100000_deep_is_refused_not_a_stack_overflow() {
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 100_000));
        p.extend(std::iter::repeat_n(b'a', 99_999));
        p.push(b'.');
        let err = parse(&p).unwrap_err();
        assert!(err.contains("nest deeper than 32"), "{err}");
    }

    #[test]
    fn long1_sign_extends() {
        // LONG1 with 1 byte 0xff is -1; STOP.
        let v = parse(&[0x80, 2, 0x8a, 1, 0xff, b'.']).unwrap();
        assert!(matches!(v, Value::Int(-1)));
    }
}
