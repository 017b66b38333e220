//! Parity with pytorch-fid (PyPI `pytorch-fid` 0.3.0 in the project venv) on the same random
//! weights, which scripts/fid_random_weights.py builds with pytorch-fid's own module tree:
//! pool3 features and logits of 20 images of varied sizes, the Fréchet distance of random
//! feature sets against `calculate_frechet_distance`, statistics files both ways, and the
//! Inception Score against a numpy/scipy transcription of the original code.

use std::path::Path;
use std::process::Command;

use evaluate::npz::{NpyData, Npz};
use evaluate::{FeatureExtractor, Moments, Stats};
use shards::Rgb8;
use tch::{Device, Kind, Tensor};
use testkit::python::{py, python, workspace_root};

fn random_weights(out: &Path, legacy: bool) {
    let mut cmd = Command::new(python());
    cmd.arg(workspace_root().join("scripts/fid_random_weights.py"))
        .arg("--out")
        .arg(out)
        .args(["--seed", "1"]);
    if legacy {
        cmd.arg("--legacy");
    }
    let o = cmd.output().expect("running fid_random_weights.py");
    assert!(
        o.status.success(),
        "fid_random_weights.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// 20 images of varied sizes (smaller, equal to and larger than 299, non-square), with
/// smooth gradients, edges and noise so that every layer sees structure.
fn images() -> Vec<Rgb8> {
    let sizes = [
        (32, 32),
        (32, 32),
        (32, 32),
        (64, 64),
        (64, 64),
        (28, 28),
        (17, 45),
        (96, 96),
        (128, 96),
        (299, 299),
        (300, 200),
        (256, 256),
        (75, 120),
        (333, 500),
        (48, 48),
        (160, 90),
        (1, 1),
        (8, 300),
        (211, 211),
        (64, 32),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    sizes
        .iter()
        .enumerate()
        .map(|(k, &(h, w))| {
            let mut data = Vec::with_capacity(h * w * 3);
            for y in 0..h {
                for x in 0..w {
                    for c in 0..3 {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let noise = (state >> 59) as usize; // 0..31
                        let grad = (x * 255 / w.max(1) * (c + 1) + y * 255 / h.max(1)) / (c + 2);
                        let edge = if (x / 7 + y / 5 + k) % 3 == 0 { 60 } else { 0 };
                        data.push(((grad + edge + noise) % 256) as u8);
                    }
                }
            }
            Rgb8 {
                width: w as u32,
                height: h as u32,
                data,
            }
        })
        .collect()
}

fn write_images(path: &Path, ims: &[Rgb8]) {
    let names: Vec<String> = (0..ims.len()).map(|i| format!("img_{i:02}")).collect();
    let shapes: Vec<[usize; 3]> = ims
        .iter()
        .map(|im| [im.height as usize, im.width as usize, 3])
        .collect();
    let arrays: Vec<(&str, &[usize], &[u8])> = ims
        .iter()
        .enumerate()
        .map(|(i, im)| (names[i].as_str(), &shapes[i][..], im.data.as_slice()))
        .collect();
    shards::write_npz_u8(path, &arrays).unwrap();
}

fn read_f32(npz: &mut Npz, name: &str) -> Tensor {
    let a = npz.read(name).unwrap();
    let shape: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    match a.data {
        NpyData::F32(v) => Tensor::from_slice(&v).view(shape.as_slice()),
        NpyData::F64(v) => Tensor::from_slice(&v).view(shape.as_slice()),
        other => panic!("{name} is {}", other.dtype()),
    }
}

/// max |a − b| / max |b|.
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    (a - &b).abs().max().double_value(&[]) / b.abs().max().double_value(&[])
}

/// pytorch-fid's InceptionV3 with the weights at argv[1] (its download replaced by a load of
/// that file), fed each image of the npz at argv[2] the way its ImagePathDataset does.
const PYTORCH_FID_FEATURES: &str = r#"
import sys, numpy as np, torch
from PIL import Image
import torchvision.transforms as TF
import pytorch_fid.inception as pi
weights, images, out = sys.argv[1:4]
sd = torch.load(weights)
pi.load_state_dict_from_url = lambda *a, **k: sd
model = pi.InceptionV3([pi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                       normalize_input=True, use_fid_inception=True).eval()
f = np.load(images)
pool3 = []
with torch.no_grad():
    for name in sorted(f.files):
        x = TF.ToTensor()(Image.fromarray(f[name]).convert('RGB')).unsqueeze(0)
        pool3.append(model(x)[0].squeeze(3).squeeze(2)[0])
    pool3 = torch.stack(pool3)
    logits = pool3 @ sd['fc.weight'].T
np.savez(out, pool3=pool3.numpy(), logits=logits.numpy())
"#;

#[test]
fn features_and_logits_match_pytorch_fid_on_random_weights() {
    let dir = tempfile::tempdir().unwrap();
    let zip_w = dir.path().join("w.pth");
    let legacy_w = dir.path().join("w_legacy.pth");
    random_weights(&zip_w, false);
    random_weights(&legacy_w, true);
    let ims = images();
    let npz = dir.path().join("images.npz");
    write_images(&npz, &ims);
    let out = dir.path().join("ref.npz");
    py(PYTORCH_FID_FEATURES, &[&zip_w, &npz, &out]);
    let mut r = Npz::open(&out).unwrap();
    let (ref_pool3, ref_logits) = (read_f32(&mut r, "pool3"), read_f32(&mut r, "logits"));

    let ex = FeatureExtractor::load(&zip_w, Device::Cpu).unwrap();
    let f = ex.extract_rgb(&ims).unwrap();
    let (p_rel, l_rel) = (rel(&f.pool3, &ref_pool3), rel(&f.logits, &ref_logits));
    eprintln!("pool3 max rel error {p_rel:.2e}, logits {l_rel:.2e} (20 images, 1×1 to 333×500)");
    assert!(p_rel < 1e-4, "pool3 differs from pytorch-fid: {p_rel:e}");
    assert!(l_rel < 1e-4, "logits differ from pytorch-fid: {l_rel:e}");
    // Per image too, so one image's error cannot hide behind another's larger features.
    for i in 0..ims.len() as i64 {
        let e = rel(&f.pool3.get(i), &ref_pool3.get(i));
        assert!(
            e < 1e-4,
            "image {i} ({}×{}): {e:e}",
            ims[i as usize].height,
            ims[i as usize].width
        );
    }

    // The legacy (pre-1.6) serialization of the same weights gives the same network.
    let legacy = FeatureExtractor::load(&legacy_w, Device::Cpu).unwrap();
    assert_eq!(legacy.extract_rgb(&ims).unwrap().pool3, f.pool3);

    // A uniform uint8 NHWC batch (the path of samples and shards) gives the same features.
    let batch = Tensor::from_slice(
        &[
            ims[0].data.clone(),
            ims[1].data.clone(),
            ims[2].data.clone(),
        ]
        .concat(),
    )
    .view([3, 32, 32, 3]);
    let b = ex.extract(&batch).unwrap();
    assert!(rel(&b.pool3, &f.pool3.narrow(0, 0, 3)) < 1e-5);
}

/// Random float32 feature sets (rectified like pool3, skewed, shifted means) written to
/// argv[1], pytorch-fid's statistics of them saved as its `save_fid_stats` does
/// (np.savez_compressed, float64) plus a TTUR-like file with float32 μ, and its FIDs.
const PYTORCH_FID_STATS: &str = r#"
import sys, json, numpy as np
from pytorch_fid.fid_score import calculate_frechet_distance
rng = np.random.default_rng(0)
def features(n, d, mix, a, b):
    z = rng.standard_normal((n, d))
    return np.maximum(z @ (a + mix * b) + 0.5 + mix, 0).astype(np.float32)
sets, out = {}, {}
for tag, n, d, mix in [('big', 2500, 2048, 0.3), ('small', 300, 64, 0.5)]:
    a, b = rng.standard_normal((2, d, d)) / np.sqrt(d)
    sets[f'{tag}_a'], sets[f'{tag}_b'] = features(n, d, 0.0, a, b), features(n, d, mix, a, b)
    st = []
    for k in ['a', 'b']:
        act = sets[f'{tag}_{k}'].astype(np.float64)
        mu, sigma = np.mean(act, axis=0), np.cov(act, rowvar=False)
        np.savez_compressed(f'{sys.argv[2]}/{tag}_{k}.npz', mu=mu, sigma=sigma)
        st.append((mu, sigma))
    np.savez_compressed(f'{sys.argv[2]}/{tag}_a_f32.npz', mu=st[0][0].astype(np.float32),
                        sigma=st[0][1])
    out[tag] = calculate_frechet_distance(st[0][0], st[0][1], st[1][0], st[1][1])
np.savez(sys.argv[1], **sets)
print(json.dumps(out))
"#;

fn stats_of(x: &Tensor) -> Stats {
    let mut m = Moments::new();
    let n = x.size()[0];
    let mut at = 0;
    while at < n {
        let len = 500.min(n - at);
        m.add(&x.narrow(0, at, len));
        at += len;
    }
    m.stats().unwrap()
}

fn number(json: &serde_json::Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {json}"))
}

#[test]
fn frechet_distance_matches_pytorch_fid_and_stats_files_go_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let feats = dir.path().join("features.npz");
    // 2048-d as FID uses it (N > d, Σ of full rank), and 64-d.
    let json = py(PYTORCH_FID_STATS, &[feats.as_path(), dir.path()]);
    let reference: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut f = Npz::open(&feats).unwrap();

    for tag in ["big", "small"] {
        let a = stats_of(&read_f32(&mut f, &format!("{tag}_a")));
        let b = stats_of(&read_f32(&mut f, &format!("{tag}_b")));
        let ours = evaluate::frechet_distance(&a, &b, Device::Cpu).unwrap();
        let want = number(&reference, tag);
        let err = (ours - want).abs() / want.abs();
        eprintln!("{tag}: FID {ours:.10} vs pytorch-fid {want:.10}, rel {err:.1e}");
        assert!(err < 1e-6, "{tag}: {ours} vs {want}");

        // pytorch-fid's files (compressed, float64; and float32 μ) read here give the same.
        let pa = Stats::read_npz(&dir.path().join(format!("{tag}_a.npz"))).unwrap();
        let pb = Stats::read_npz(&dir.path().join(format!("{tag}_b.npz"))).unwrap();
        assert!(rel(&pa.sigma, &a.sigma) < 1e-12 && rel(&pa.mu, &a.mu) < 1e-12);
        let from_files = evaluate::frechet_distance(&pa, &pb, Device::Cpu).unwrap();
        assert!((from_files - want).abs() / want < 1e-6);
        let pa32 = Stats::read_npz(&dir.path().join(format!("{tag}_a_f32.npz"))).unwrap();
        assert!(rel(&pa32.mu, &a.mu) < 1e-6);
    }

    // Our files, read by numpy and scored by pytorch-fid, give our FID.
    let a = stats_of(&read_f32(&mut f, "small_a"));
    let b = stats_of(&read_f32(&mut f, "small_b"));
    let (fa, fb) = (dir.path().join("ours_a.npz"), dir.path().join("ours_b.npz"));
    a.write_npz(&fa).unwrap();
    b.write_npz(&fb).unwrap();
    let theirs: f64 = py(
        r#"
import sys, numpy as np
from pytorch_fid.fid_score import calculate_frechet_distance
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a['mu'].dtype == np.float64 and a['sigma'].shape == (64, 64), a['sigma'].shape
assert int(a['num_images']) == 300
print(repr(float(calculate_frechet_distance(a['mu'], a['sigma'], b['mu'], b['sigma']))))
"#,
        &[&fa, &fb],
    )
    .trim()
    .parse()
    .unwrap();
    let ours = evaluate::frechet_distance(&a, &b, Device::Cpu).unwrap();
    assert!((ours - theirs).abs() / theirs < 1e-6, "{ours} vs {theirs}");
}

/// A numpy/scipy transcription of openai/improved-gan's `get_inception_score` on logits.
const REFERENCE_IS: &str = r#"
import sys, json, numpy as np
from scipy.special import softmax
logits = np.load(sys.argv[1])['logits'].astype(np.float64)
preds = softmax(logits, axis=1)
splits, scores = 10, []
for i in range(splits):
    part = preds[(i * preds.shape[0] // splits):((i + 1) * preds.shape[0] // splits), :]
    kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
    kl = np.mean(np.sum(kl, 1))
    scores.append(np.exp(kl))
print(json.dumps({"mean": float(np.mean(scores)), "std": float(np.std(scores))}))
"#;

#[test]
fn inception_score_matches_the_original_code() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(3);
    // 1003 samples (splits of 100 and 101), 1008 classes, peaked but varied predictions.
    let logits = (Tensor::randn([1003, 1008], (Kind::Float, Device::Cpu)) * 3.0).contiguous();
    let v = Vec::<f64>::try_from(&logits.to_kind(Kind::Double).view(-1)).unwrap();
    let p = dir.path().join("logits.npz");
    shards::write_npz(&p, &[("logits", shards::npy_f64(&[1003, 1008], &v))]).unwrap();
    let json = py(REFERENCE_IS, &[&p]);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ours = evaluate::inception_score(&logits, evaluate::SPLITS).unwrap();
    let (em, es) = (
        (ours.mean - number(&r, "mean")).abs() / number(&r, "mean"),
        (ours.std - number(&r, "std")).abs() / number(&r, "std"),
    );
    eprintln!(
        "IS {:.10} ± {:.10} vs {:.10} ± {:.10} (rel {em:.1e}, {es:.1e})",
        ours.mean,
        ours.std,
        number(&r, "mean"),
        number(&r, "std")
    );
    assert!(em < 1e-10 && es < 1e-8, "{ours:?}");
}
