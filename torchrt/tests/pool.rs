//! `torchrt::pool::max_pool2d_same` against libtorch's `max_pool2d_with_indices`: the same
//! float bits, the same indices and the same gradient bits, on inputs made to be hard for a
//! two-pass kernel (many ties, -inf, NaN, planes smaller than the window) and at one and
//! several threads; and the inputs it does not take go to libtorch unchanged.

use tch::{Device, Kind, Tensor};
use torchrt::pool::{max_pool2d_same, max_pool2d_same_with_indices};

fn libtorch(x: &Tensor, k: i64) -> (Tensor, Tensor) {
    x.max_pool2d_with_indices([k, k], [1, 1], [k / 2, k / 2], [1, 1], false)
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v = Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

/// A batch whose values come from `levels` distinct numbers (so windows hold many equal
/// maxima), with some taps -inf and, if `nan`, some NaN.
fn hard_input(shape: [i64; 4], levels: i64, nan: bool, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    let x = Tensor::randint(levels, shape, (Kind::Float, Device::Cpu)) - (levels / 2) as f64;
    let u = Tensor::rand(shape, (Kind::Float, Device::Cpu));
    let x = x.where_self(&u.ge(0.05), &Tensor::from(f32::NEG_INFINITY));
    if nan {
        x.where_self(&u.le(0.97), &Tensor::from(f32::NAN))
    } else {
        x
    }
}

const SHAPES: [[i64; 4]; 7] = [
    [2, 3, 8, 8],
    [1, 2, 1, 1],
    [2, 2, 2, 3],
    [1, 3, 4, 4],
    [3, 2, 7, 13],
    [2, 4, 16, 16],
    [1, 1, 33, 5],
];

#[test]
fn values_and_indices_are_libtorchs() {
    for (s, shape) in SHAPES.into_iter().enumerate() {
        for k in [1, 3, 5, 7] {
            for (levels, nan) in [(1 << 20, false), (3, false), (2, true), (5, true)] {
                let x = hard_input(shape, levels, nan, s as i64);
                let (want, want_i) = libtorch(&x, k);
                let (got, got_i) = max_pool2d_same_with_indices(&x, k).unwrap();
                let case = format!("shape {shape:?}, k {k}, {levels} levels, nan {nan}");
                assert_eq!(got.size(), want.size(), "{case}");
                assert_eq!(bits(&got), bits(&want), "values, {case}");
                assert!(got_i.equal(&want_i), "indices, {case}");
                let plain = max_pool2d_same(&x, k).unwrap();
                assert_eq!(bits(&plain), bits(&want), "without autograd, {case}");
            }
        }
    }
}

#[test]
fn gradients_are_libtorchs() {
    for (s, shape) in SHAPES.into_iter().enumerate() {
        for k in [3, 5] {
            for (levels, nan) in [(1 << 20, false), (3, false), (4, true)] {
                let x = hard_input(shape, levels, nan, 100 + s as i64);
                let g = Tensor::randn(shape, (Kind::Float, Device::Cpu));
                let grad = |ours: bool| {
                    let x = x.detach().set_requires_grad(true);
                    let y = if ours {
                        max_pool2d_same(&x, k).unwrap()
                    } else {
                        x.max_pool2d([k, k], [1, 1], [k / 2, k / 2], [1, 1], false)
                    };
                    (&y * &g).sum(Kind::Float).backward();
                    (y.detach(), x.grad())
                };
                let ((y, gx), (y_ref, gx_ref)) = (grad(true), grad(false));
                let case = format!("shape {shape:?}, k {k}, {levels} levels, nan {nan}");
                assert_eq!(bits(&y), bits(&y_ref), "values, {case}");
                assert_eq!(bits(&gx), bits(&gx_ref), "gradient, {case}");
            }
        }
    }
}

#[test]
fn the_result_does_not_depend_on_the_thread_count() {
    // Planes are split between threads; each plane is computed alone, so the split cannot show.
    let x = hard_input([4, 64, 16, 16], 7, true, 7);
    let (want, want_i) = libtorch(&x, 5);
    for threads in [1, 2, 3] {
        tch::set_num_threads(threads);
        let (got, got_i) = max_pool2d_same_with_indices(&x, 5).unwrap();
        assert_eq!(bits(&got), bits(&want), "{threads} threads");
        assert!(got_i.equal(&want_i), "{threads} threads");
    }
}

#[test]
fn other_inputs_are_libtorchs_own_max_pool() {
    let x = Tensor::randn([2, 3, 9, 9], (Kind::Float, Device::Cpu));
    let reference =
        |x: &Tensor, k: i64| x.max_pool2d([k, k], [1, 1], [k / 2, k / 2], [1, 1], false);
    // Not taken by the fast path: channels-last, a strided view, bfloat16, double, an even
    // window (whose output is one larger), a 3-d tensor.
    let channels_last = torchrt::accel::to_channels_last(&x).unwrap();
    let strided = x.slice(3, 0, 9, 2);
    let cases: Vec<(&str, Tensor, i64)> = vec![
        ("channels-last", channels_last, 5),
        ("strided", strided, 5),
        ("bfloat16", x.to_kind(Kind::BFloat16), 5),
        ("double", x.to_kind(Kind::Double), 3),
        ("even window", x.shallow_clone(), 4),
        ("3-d", x.get(0), 3),
    ];
    for (what, t, k) in cases {
        assert!(
            max_pool2d_same_with_indices(&t, k).is_err(),
            "{what} is not the fast path's"
        );
        let got = max_pool2d_same(&t, k).unwrap();
        let want = reference(&t, k);
        assert_eq!(got.size(), want.size(), "{what}");
        assert_eq!(got.kind(), want.kind(), "{what}");
        assert_eq!(bits(&got), bits(&want), "{what}");
    }
    // An empty batch is libtorch's empty result; an empty plane libtorch's refusal.
    let empty = Tensor::zeros([0, 3, 9, 9], (Kind::Float, Device::Cpu));
    assert!(max_pool2d_same_with_indices(&empty, 5).is_err());
    assert_eq!(max_pool2d_same(&empty, 5).unwrap().size(), vec![0, 3, 9, 9]);
    let flat = Tensor::zeros([2, 3, 0, 9], (Kind::Float, Device::Cpu));
    let e = max_pool2d_same(&flat, 5).unwrap_err();
    assert!(
        e.0.contains("0 dim batch size"),
        "libtorch's own error: {e}"
    );
    // A 1-d tensor is refused by libtorch, as an error (no abort).
    let e = max_pool2d_same(&x.get(0).get(0).get(0), 5).unwrap_err();
    assert!(e.0.contains("3D or 4D"), "libtorch's own error: {e}");
}
