//! Our Adam (trainer::optim) reproduces one step of PyTorch's `torch.optim.Adam` from the
//! authors' training step in ../shared/reference/ncsnv2-32px: same parameters and gradients in,
//! the post-Adam parameters PyTorch produced out.

use std::path::PathBuf;

use tch::nn::VarStore;
use tch::{Device, Tensor};
use trainer::optim::{Adam, AdamConfig};

fn reference() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/ncsnv2-32px")
}

fn find<'a>(v: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &v.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn one_step_matches_pytorch_adam() {
    let dir = reference();
    assert!(
        dir.is_dir(),
        "reference tensors missing at {}",
        dir.display()
    );
    let params = Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    let step = Tensor::read_safetensors(dir.join("train_step.safetensors")).unwrap();

    let vs = VarStore::new(Device::Cpu);
    let mut names = vec![];
    for (name, t) in &params {
        if name == "sigmas" {
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        let mut p = vs.root();
        for c in &parts[..parts.len() - 1] {
            p = p.sub(*c);
        }
        let _ = p.var_copy(parts[parts.len() - 1], t);
        names.push(name.clone());
    }
    let mut adam = Adam::new(
        &vs,
        AdamConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    );
    // Put the reference gradients on the parameters: backward of a sum of <p, g>.
    let vars = vs.variables();
    let mut surrogate = Tensor::zeros([], (tch::Kind::Float, Device::Cpu));
    for name in &names {
        surrogate += (&vars[name] * find(&step, &format!("grad.{name}"))).sum(tch::Kind::Float);
    }
    adam.zero_grad();
    surrogate.backward();
    adam.step();

    let (mut worst, mut exact) = (0f64, 0usize);
    for name in &names {
        let got = &vars[name];
        let want = find(&step, &format!("param_after_adam.{name}"));
        let diff = (got - want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]).max(1e-12);
        worst = worst.max(diff / scale);
        if got.equal(want) {
            exact += 1;
        }
    }
    eprintln!(
        "{exact} of {} parameters bit-identical; worst relative difference {worst:e}",
        names.len()
    );
    assert!(
        worst < 1e-6,
        "post-Adam parameters differ from PyTorch by {worst:e} (relative)"
    );
    assert_eq!(adam.step, 1);

    // The state round-trips.
    let state = adam.state();
    let mut again = Adam::new(&vs, adam.cfg);
    again.load_state(&state).unwrap();
    assert_eq!(again.step, 1);
    for ((na, a), (nb, b)) in state.iter().zip(again.state()) {
        assert_eq!(na, &nb);
        assert!(a.equal(&b), "{na}");
    }
}
