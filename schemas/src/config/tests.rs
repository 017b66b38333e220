use super::*;

/// The authors' configs/cifar10.yml, verbatim.
const CIFAR10: &str = include_str!("../../tests/authors_configs/cifar10.yml");

fn cifar10() -> Config {
    Config::from_yaml_str(CIFAR10, Path::new("cifar10.yml")).unwrap()
}

#[test]
fn reads_the_authors_cifar10_config() {
    let c = cifar10();
    assert_eq!(c.training.batch_size, 128);
    assert_eq!(c.model.num_classes, 232);
    assert_eq!(c.sampling.step_lr, 6.2e-6);
    assert_eq!(c.sigmas().len(), 232);
    assert_eq!(c.sigmas()[0] as f32, 50.0); // exp(ln 50) in f64 is 49.99999999999999, as in numpy
}

#[test]
fn a_typo_is_an_error_naming_file_and_key() {
    let text = CIFAR10.replace("ema_rate", "ema_rat");
    let err = Config::from_yaml_str(&text, Path::new("my.yml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("my.yml") && err.contains("ema_rat"), "{err}");
}

/// `edit` makes the config invalid: validate names `key` in one line containing `words`.
fn refused(edit: impl FnOnce(&mut Config), key: &str, words: &str) {
    let mut c = cifar10();
    edit(&mut c);
    let err = c.validate().unwrap_err();
    let text = err.to_string();
    assert_eq!(err.key, key, "{text}");
    assert!(text.starts_with(&format!("{key}: ")), "{text}");
    assert!(text.contains(words), "{key}: {text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn value_checks_name_the_key() {
    refused(
        |c| c.optim.beta1 = 1.5,
        "optim.beta1",
        "1.5 is not in [0, 1)",
    );
    refused(|c| c.optim.beta1 = -0.1, "optim.beta1", "not in [0, 1)");
    refused(
        |c| c.model.ema_rate = 1.0,
        "model.ema_rate",
        "1 is not in [0, 1)",
    );
    refused(|c| c.optim.lr = 0.0, "optim.lr", "0 is not > 0");
    refused(|c| c.optim.eps = -1e-8, "optim.eps", "is not > 0");
    refused(|c| c.model.sigma_end = 0.0, "model.sigma_end", "is not > 0");
    refused(
        |c| c.model.sigma_begin = 0.005,
        "model.sigma_begin",
        "is not > model.sigma_end",
    );
    refused(
        |c| c.model.sigma_begin = c.model.sigma_end,
        "model.sigma_begin",
        "is not > model.sigma_end",
    );
    refused(
        |c| c.model.num_classes = 0,
        "model.num_classes",
        "0 is not ≥ 1",
    );
    refused(
        |c| c.sampling.step_lr = 0.0,
        "sampling.step_lr",
        "is not > 0",
    );
    refused(
        |c| c.sampling.n_steps_each = 0,
        "sampling.n_steps_each",
        "≥ 1",
    );
    refused(|c| c.training.batch_size = 0, "training.batch_size", "≥ 1");
    refused(|c| c.sampling.batch_size = 0, "sampling.batch_size", "≥ 1");
    refused(
        |c| c.test.as_mut().unwrap().batch_size = 0,
        "test.batch_size",
        "≥ 1",
    );
    refused(|c| c.data.image_size = 0, "data.image_size", "≥ 1");
    refused(|c| c.model.ngf = 0, "model.ngf", "0 is not in 1..=4096");
    refused(
        |c| c.model.ngf = 100_000_000,
        "model.ngf",
        "not in 1..=4096",
    );
    refused(|c| c.training.n_iters = 0, "training.n_iters", "≥ 1");
    refused(
        |c| c.training.snapshot_freq = 0,
        "training.snapshot_freq",
        "≥ 1",
    );
    refused(|c| c.training.n_epochs = 0, "training.n_epochs", "≥ 1");
}

#[test]
fn nan_and_inf_are_refused_everywhere() {
    refused(
        |c| c.optim.lr = f64::NAN,
        "optim.lr",
        "NaN is not a finite number",
    );
    refused(
        |c| c.optim.eps = f64::INFINITY,
        "optim.eps",
        "inf is not a finite",
    );
    refused(|c| c.optim.beta1 = f64::NAN, "optim.beta1", "finite");
    refused(
        |c| c.optim.weight_decay = f64::NAN,
        "optim.weight_decay",
        "finite",
    );
    refused(|c| c.model.ema_rate = f64::NAN, "model.ema_rate", "finite");
    refused(
        |c| c.model.sigma_begin = f64::INFINITY,
        "model.sigma_begin",
        "finite",
    );
    refused(
        |c| c.model.sigma_end = f64::NAN,
        "model.sigma_end",
        "finite",
    );
    refused(
        |c| c.sampling.step_lr = f64::NAN,
        "sampling.step_lr",
        "finite",
    );
    refused(
        |c| c.training.anneal_power = f64::NEG_INFINITY,
        "training.anneal_power",
        "finite",
    );
    refused(
        |c| c.fast_fid.as_mut().unwrap().step_lr = f64::NAN,
        "fast_fid.step_lr",
        "finite",
    );
    // From the file: YAML's `.nan`, with the file named.
    let text = CIFAR10.replace("lr: 0.0001", "lr: .nan");
    let err = Config::from_yaml_str(&text, Path::new("my.yml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("my.yml: optim.lr: NaN"), "{err}");
}

#[test]
fn values_ncsn_does_not_implement_are_refused() {
    refused(
        |c| c.optim.optimizer = "RMSProp".into(),
        "optim.optimizer",
        r#""RMSProp" is not supported by ncsn"#,
    );
    refused(
        |c| c.optim.weight_decay = 1e-4,
        "optim.weight_decay",
        "use 0.0",
    );
    refused(|c| c.optim.amsgrad = true, "optim.amsgrad", "use false");
    refused(
        |c| c.model.sigma_dist = "uniform".into(),
        "model.sigma_dist",
        "geometric",
    );
    refused(
        |c| c.model.normalization = "BatchNorm".into(),
        "model.normalization",
        "InstanceNorm++",
    );
    refused(|c| c.model.spec_norm = true, "model.spec_norm", "use false");
    refused(|c| c.data.channels = 1, "data.channels", "use 3");
    refused(
        |c| c.sampling.fid = true,
        "sampling.fid",
        "ncsn fid --checkpoint",
    );
    refused(
        |c| c.fast_fid.as_mut().unwrap().ensemble = true,
        "fast_fid.ensemble",
        "use false",
    );
    refused(
        |c| c.fast_fid.as_mut().unwrap().verbose = true,
        "fast_fid.verbose",
        "use false",
    );
    refused(
        |c| c.fast_fid.as_mut().unwrap().num_samples = 1,
        "fast_fid.num_samples",
        "not ≥ 2",
    );
    refused(
        |c| c.fast_fid.as_mut().unwrap().n_steps_each = 0,
        "fast_fid.n_steps_each",
        "not ≥ 1",
    );
    refused(
        |c| c.sampling.data_init = true,
        "sampling.data_init",
        "use false",
    );
    refused(
        |c| c.sampling.final_only = false,
        "sampling.final_only",
        "use true",
    );
    refused(
        |c| c.sampling.inpainting = true,
        "sampling.inpainting",
        "use false",
    );
    refused(
        |c| c.sampling.interpolation = true,
        "sampling.interpolation",
        "--interpolate",
    );
    refused(
        |c| c.training.log_all_sigmas = true,
        "training.log_all_sigmas",
        "use false",
    );
    refused(
        |c| (c.data.rescaled, c.data.logit_transform) = (true, true),
        "data.logit_transform",
        "data.rescaled",
    );
}

#[test]
fn the_stored_copy_in_a_checkpoint_is_validated_too() {
    let mut v = serde_json::to_value(cifar10()).unwrap();
    v["optim"]["beta1"] = serde_json::json!(2.0);
    let err = Config::from_json_value(v, Path::new("ckpt_00000005.json"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err, "ckpt_00000005.json: optim.beta1: 2 is not in [0, 1)",
        "{err}"
    );
}

#[test]
fn written_yaml_reads_back_equal_with_pyyaml_floats() {
    let c = cifar10();
    let text = c.to_yaml();
    assert!(text.contains("  eps: 1.0e-8\n"), "{text}");
    assert!(text.contains("  sigma_begin: 50.0\n"), "{text}");
    assert!(text.contains("  step_lr: 6.2e-6\n"), "{text}");
    assert!(
        text.contains("  normalization: \"InstanceNorm++\"\n"),
        "{text}"
    );
    assert_eq!(
        Config::from_yaml_str(&text, Path::new("back.yml")).unwrap(),
        c
    );
}

#[test]
fn unused_keys_are_those_of_the_authors_other_commands() {
    assert_eq!(
        cifar10().unused_keys(),
        [
            "test.begin_ckpt",
            "test.end_ckpt",
            "sampling.ckpt_id",
            "sampling.num_samples4fid",
            "sampling.n_interpolations",
            "data.num_workers",
        ]
    );
}

#[test]
fn calibration_sets_the_sweeps_sampler_too() {
    let mut c = cifar10();
    let cal: crate::calibration::Calibration = serde_json::from_value(serde_json::json!({
        "schema_version": crate::SCHEMA_VERSION, "sigma_begin": 12.0, "sigma_end": 0.01,
        "num_classes": 7, "n_steps_each": 3, "step_lr": 2e-5, "gamma": 1.5,
        "overlap": 0.5, "dims": 192, "eq4_value": 1.0
    }))
    .unwrap();
    c.apply_calibration(&cal);
    let f = c.fast_fid.as_ref().unwrap();
    assert_eq!((f.step_lr, f.n_steps_each), (2e-5, 3));
    assert_eq!((c.sampling.step_lr, c.sampling.n_steps_each), (2e-5, 3));
}
