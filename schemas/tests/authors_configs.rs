//! Every config of the authors' repository (`configs/*.yml` of ermongroup/ncsnv2, copied
//! verbatim into tests/authors_configs/) loads: users bring these files.

use std::path::PathBuf;

use schemas::config::Config;

#[test]
fn the_authors_seven_configs_load() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/authors_configs");
    let mut names = vec![];
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            let c = Config::read(&p).unwrap_or_else(|e| panic!("{e}"));
            // What ncsn writes back reads the same.
            let again = Config::from_yaml_str(&c.to_yaml(), &p).unwrap();
            assert_eq!(again, c, "{}", p.display());
            names.push(p.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "bedroom",
            "celeba",
            "church",
            "cifar10",
            "ffhq",
            "ncsn_original",
            "tower"
        ]
    );
}

#[test]
fn ncsn_original_keeps_its_dequantisation_and_no_ema() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/authors_configs/ncsn_original.yml");
    let c = Config::read(&p).unwrap();
    assert!(c.data.uniform_dequantization && !c.model.ema && !c.sampling.denoise);
    assert_eq!(
        c.unused_keys(),
        [
            "sampling.ckpt_id",
            "sampling.num_samples4fid",
            "data.num_workers"
        ]
    );
}
