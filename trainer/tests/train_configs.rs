//! Every shipped config parses, builds its model plan and carries the paper's Table 4 / App. B.1
//! values.

use std::path::PathBuf;

use schemas::config::Config;

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

#[test]
fn every_shipped_config_parses_and_plans() {
    let mut n = 0;
    for e in std::fs::read_dir(configs_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            let c = Config::read(&p).unwrap_or_else(|e| panic!("{e}"));
            trainer::models::plan(&c).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(
                c.optim.lr,
                if p.ends_with("demo.yml") { 2e-3 } else { 1e-4 },
                "{}",
                p.display()
            );
            n += 1;
        }
    }
    assert!(
        n >= 7,
        "expected the six paper configs and demo.yml, found {n}"
    );
}

#[test]
fn table_4_values() {
    // name, σ₁, L, T, ε, batch, iterations, image size, Adam eps, architecture
    let rows = [
        (
            "cifar10", 50.0, 232, 5, 6.2e-6, 128, 300_001, 32, 1e-8, "ncsnv2",
        ),
        (
            "celeba", 90.0, 500, 5, 3.3e-6, 128, 210_001, 64, 1e-8, "ncsnv2",
        ),
        (
            "church_outdoor",
            140.0,
            788,
            4,
            4.9e-6,
            128,
            200_001,
            96,
            1e-8,
            "ncsnv2_deeper",
        ),
        (
            "bedroom",
            190.0,
            1086,
            3,
            1.8e-6,
            128,
            150_001,
            128,
            1e-8,
            "ncsnv2_deeper",
        ),
        (
            "tower",
            190.0,
            1086,
            3,
            1.8e-6,
            128,
            150_001,
            128,
            1e-8,
            "ncsnv2_deeper",
        ),
        (
            "ffhq",
            348.0,
            2311,
            3,
            9e-7,
            32,
            80_001,
            256,
            1e-3,
            "ncsnv2_deepest",
        ),
    ];
    for (name, s1, l, t, eps, batch, iters, size, adam_eps, arch) in rows {
        let c = Config::read(&configs_dir().join(format!("{name}.yml"))).unwrap();
        assert_eq!(c.model.sigma_begin, s1, "{name}");
        assert_eq!(c.model.sigma_end, 0.01, "{name}");
        assert_eq!(c.model.num_classes, l, "{name}");
        assert_eq!(c.sampling.n_steps_each, t, "{name}");
        assert_eq!(c.sampling.step_lr, eps, "{name}");
        assert_eq!(c.training.batch_size, batch, "{name}");
        // n_iters is one past the last snapshot, like the authors' configs.
        assert_eq!(c.training.n_iters, iters, "{name}");
        assert_eq!(c.data.image_size, size, "{name}");
        assert_eq!(c.optim.eps, adam_eps, "{name}");
        assert_eq!(c.model.ema_rate, 0.999, "{name}");
        assert_eq!(c.model.ngf, 128, "{name}");
        assert!(c.data.random_flip, "{name}");
        assert_eq!(
            trainer::models::Arch::for_config(&c).unwrap().name(),
            arch,
            "{name}"
        );
    }
}
