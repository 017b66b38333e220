//! Writing a config as YAML that both YAML 1.2 (serde_yaml, this crate) and YAML 1.1 (PyYAML,
//! the authors' `main.py`) read the same way.
//!
//! serde_yaml writes `eps: 1e-8`; PyYAML's float pattern wants a dot and a signed exponent, so
//! it reads a *string* "1e-8" and `torch.optim.Adam(eps="1e-8")` raises. Here every float is
//! written as `1.0e-8` and every string double-quoted, which both parsers agree on.

use serde_yaml::Value;

use super::Config;

/// `v` spelled so that PyYAML's YAML 1.1 float pattern matches it and it reads back exactly:
/// Rust's shortest round-trip digits, with a `.0` added to a bare mantissa and a sign to the
/// exponent (`1e-8` → `1.0e-8`, `1e20` → `1.0e+20`, `50` → `50.0`).
pub fn pyyaml_float(v: f64) -> String {
    if v.is_nan() {
        return ".nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let s = format!("{v:?}");
    let (mantissa, exponent) = match s.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (s.as_str(), None),
    };
    let mut out = mantissa.to_string();
    if !out.contains('.') {
        out.push_str(".0");
    }
    if let Some(e) = exponent {
        out.push('e');
        if !e.starts_with('-') {
            out.push('+');
        }
        out.push_str(e);
    }
    out
}

pub(super) fn to_yaml(cfg: &Config) -> String {
    let value = serde_yaml::to_value(cfg).expect("configs serialize");
    let mut out = String::new();
    write_block(&value, 0, &mut out);
    out
}

/// A mapping as indented `key: value` lines, nested mappings one level deeper.
fn write_block(value: &Value, indent: usize, out: &mut String) {
    let Value::Mapping(map) = value else {
        out.push_str(&scalar(value));
        out.push('\n');
        return;
    };
    for (k, v) in map {
        out.push_str(&" ".repeat(indent));
        match k {
            // Keys are the field names: plain words.
            Value::String(k) => out.push_str(k),
            _ => out.push_str(&scalar(k)),
        }
        out.push(':');
        match v {
            Value::Mapping(_) => {
                out.push('\n');
                write_block(v, indent + 2, out);
                if indent == 0 {
                    out.push('\n');
                }
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(v));
                out.push('\n');
            }
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => pyyaml_float(f),
            _ => n.to_string(),
        },
        // JSON's double-quoted string is a YAML double-quoted scalar.
        Value::String(s) => serde_json::to_string(s).expect("strings serialize"),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(_) | Value::Tagged(_) => {
            serde_json::to_string(value).expect("values serialize")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_carry_a_dot_and_a_signed_exponent() {
        for (v, want) in [
            (1e-8, "1.0e-8"),
            (0.001, "0.001"),
            (6.2e-6, "6.2e-6"),
            (50.0, "50.0"),
            (0.0, "0.0"),
            (1e20, "1.0e+20"),
            (-2.5e-7, "-2.5e-7"),
            (0.999, "0.999"),
        ] {
            let s = pyyaml_float(v);
            assert_eq!(s, want);
            // YAML 1.2 reads back the same number.
            assert_eq!(serde_yaml::from_str::<f64>(&s).unwrap(), v, "{s}");
        }
    }
}
