//! A printable description of an architecture (`ncsn model-info`): one row per top-level
//! module, in the order of Tables 2–3, with output shape and parameter count.

use std::fmt;

use schemas::config::Config;
use tch::nn::VarStore;
use tch::Device;

use super::layers::ResSpec;
use super::{build_net, parameter_count, parameters_by_module, plan, ModelError, Plan};

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The authors' module name (`res2`, `refine1`).
    pub module: String,
    pub what: String,
    /// Output `[C, H, W]`.
    pub out: [i64; 3],
    pub params: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub plan: Plan,
    pub rows: Vec<Row>,
    pub parameters: i64,
    pub sigmas: Vec<f64>,
}

fn res_text(b: &ResSpec, norm: &str) -> String {
    let mut s = format!(
        "{norm}ResBlock{}, {}",
        if b.down { " down" } else { "" },
        b.cout
    );
    if let Some(d) = b.dilation {
        s += &format!(" dilation {d}");
    }
    s
}

/// Builds the model on the CPU (weights are initialised, then dropped) to count parameters
/// exactly as the authors' `model.parameters()` would.
pub fn summarize(cfg: &Config) -> Result<Summary, ModelError> {
    let plan = plan(cfg)?;
    let vs = VarStore::new(Device::Cpu);
    tch::no_grad(|| build_net(&vs.root(), cfg))?;
    let by_module = parameters_by_module(&vs);
    let count = |m: &str| by_module.get(m).copied().unwrap_or(0);
    let (c, ngf, size) = (plan.channels, plan.ngf, plan.image_size);
    let norm = if plan.conditional() { "Cond" } else { "" };
    let mut rows = vec![Row {
        module: "begin_conv".into(),
        what: format!("3x3 Conv2D, {ngf}"),
        out: [ngf, size, size],
        params: count("begin_conv"),
    }];
    let sizes = plan.stage_sizes();
    for (s, &hw) in plan.stages.iter().zip(&sizes) {
        let blocks: Vec<String> = s.blocks.iter().map(|b| res_text(b, norm)).collect();
        rows.push(Row {
            module: s.res_name.into(),
            what: blocks.join(" + "),
            out: [s.blocks[s.blocks.len() - 1].cout, hw, hw],
            params: count(s.res_name),
        });
    }
    for (s, &hw) in plan.stages.iter().zip(&sizes).rev() {
        let ins: Vec<String> = s.refine.in_planes.iter().map(i64::to_string).collect();
        rows.push(Row {
            module: s.refine_name.into(),
            what: format!(
                "{norm}RefineBlock, {} (inputs {})",
                s.refine.features,
                ins.join(" + ")
            ),
            out: [s.refine.features, hw, hw],
            params: count(s.refine_name),
        });
    }
    rows.push(Row {
        module: "normalizer".into(),
        what: format!("{norm}InstanceNorm++, {}", plan.act.name()),
        out: [ngf, size, size],
        params: count("normalizer"),
    });
    rows.push(Row {
        module: "end_conv".into(),
        what: format!(
            "3x3 Conv2D, {c}{}",
            if plan.conditional() {
                ""
            } else {
                "; / sigma_y (Technique 3)"
            }
        ),
        out: [c, size, size],
        params: count("end_conv"),
    });
    Ok(Summary {
        rows,
        parameters: parameter_count(&vs),
        sigmas: cfg.sigmas(),
        plan,
    })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        writeln!(
            f,
            "{} ({}, `model.arch: {}`), ngf {}, input {}x{}x{}",
            p.arch.class_name(),
            p.arch.table(),
            p.arch.name(),
            p.ngf,
            p.channels,
            p.image_size,
            p.image_size
        )?;
        if let (Some(first), Some(last)) = (self.sigmas.first(), self.sigmas.last()) {
            writeln!(
                f,
                "noise levels: {} geometric, sigma {} .. {}{}",
                self.sigmas.len(),
                *first as f32,
                *last as f32,
                if p.arch.conditional() {
                    " (CondInstanceNorm++ embeddings, one row per level)"
                } else {
                    ""
                }
            )?;
        }
        writeln!(f)?;
        let w = self.rows.iter().map(|r| r.what.len()).max().unwrap_or(0);
        writeln!(
            f,
            "{:<11} {:<w$}  {:>16}  {:>12}",
            "module", "block", "output", "params"
        )?;
        for r in &self.rows {
            let out = format!("{}x{}x{}", r.out[0], r.out[1], r.out[2]);
            writeln!(
                f,
                "{:<11} {:<w$}  {:>16}  {:>12}",
                r.module,
                r.what,
                out,
                group(r.params)
            )?;
        }
        write!(f, "total trainable parameters: {}", group(self.parameters))
    }
}

/// 466451 → "466,451".
pub fn group(n: i64) -> String {
    let digits: Vec<char> = n.abs().to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|c| c.iter().collect())
        .collect();
    let out = groups.join(",");
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(466_451), "466,451");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
