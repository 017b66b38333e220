//! libtorch works on this machine: a small conv net trains one Adam step on CPU, and its
//! weights survive a safetensors round trip bit for bit.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn net(p: &nn::Path) -> impl Module {
    nn::seq()
        .add(nn::conv2d(
            p / "conv1",
            3,
            8,
            3,
            nn::ConvConfig {
                padding: 1,
                ..Default::default()
            },
        ))
        .add_fn(|x| x.elu())
        .add(nn::conv2d(
            p / "conv2",
            8,
            3,
            3,
            nn::ConvConfig {
                padding: 1,
                ..Default::default()
            },
        ))
}

#[test]
fn forward_backward_adam_and_safetensors_round_trip() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = net(&vs.root());
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();

    let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let target = Tensor::zeros([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let loss0 = (model.forward(&x) - &target).square().mean(Kind::Float);
    let before: Vec<Tensor> = vs.trainable_variables().iter().map(|t| t.copy()).collect();
    opt.backward_step(&loss0);
    let changed = vs
        .trainable_variables()
        .iter()
        .zip(&before)
        .all(|(a, b)| !a.equal(b));
    assert!(changed, "Adam step left a parameter unchanged");
    let loss1 = (model.forward(&x) - &target).square().mean(Kind::Float);
    assert!(
        f64::try_from(&loss1).unwrap() < f64::try_from(&loss0).unwrap(),
        "one Adam step on a fixed batch should lower the loss"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.safetensors");
    vs.save(&file).unwrap();
    let mut vs2 = nn::VarStore::new(Device::Cpu);
    let model2 = net(&vs2.root());
    vs2.load(&file).unwrap();
    assert!(model.forward(&x).equal(&model2.forward(&x)));
    // The names are what PyTorch would call them: the contract for moving weights both ways.
    let mut names: Vec<_> = Tensor::read_safetensors(&file)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight"]
    );
}
