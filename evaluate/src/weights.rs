//! Where the FID Inception weights come from: pytorch-fid's published file, which every FID
//! user already has in the torch hub cache (pytorch-fid downloads it there on first use). It
//! cannot be downloaded or shipped here, so its path is an option whose default is that cache.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::inception::{InceptionV3, Params};

/// The file's name, as pytorch-fid's `FID_WEIGHTS_URL` ends.
pub const WEIGHTS_FILE: &str = "pt_inception-2015-12-05-6726825d.pth";

/// Where pytorch-fid downloads it from (`pytorch_fid.inception.FID_WEIGHTS_URL`).
pub const WEIGHTS_URL: &str =
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";

/// torch.hub's cache directory: `$TORCH_HOME`, else `$XDG_CACHE_HOME/torch`, else
/// `~/.cache/torch` (`torch.hub._get_torch_home`).
pub fn torch_home() -> PathBuf {
    if let Some(h) = std::env::var_os("TORCH_HOME").filter(|h| !h.is_empty()) {
        return expand_home(PathBuf::from(h));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("~/.cache"));
    expand_home(cache.join("torch"))
}

fn expand_home(p: PathBuf) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p,
    }
}

/// `$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`, where
/// `torch.hub.load_state_dict_from_url` (and so pytorch-fid) keeps it.
pub fn default_weights_path() -> PathBuf {
    torch_home()
        .join("hub")
        .join("checkpoints")
        .join(WEIGHTS_FILE)
}

/// Loads the FID Inception network from `path`: a `torch.save`d state_dict (`.pth`/`.pt`, as
/// published) or a `.safetensors` file with the same names. A missing file is one line that
/// says where to get it; a file of another network names the first tensor that does not fit.
pub fn load_inception(path: &Path) -> Result<InceptionV3> {
    if !path.is_file() {
        return Err(Error::file(
            path,
            format!(
                "FID Inception weights not found: download {WEIGHTS_URL} into {}/ (where \
                 pytorch-fid keeps it) or pass --weights FILE",
                default_weights_path()
                    .parent()
                    .expect("the default has a directory")
                    .display()
            ),
        ));
    }
    check_hub_hash(path)?;
    let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
        tch::Tensor::read_safetensors(path)
            .map_err(|e| Error::file(path, format!("cannot read safetensors: {e}")))?
    } else {
        crate::pth::read_state_dict(path)?
    };
    InceptionV3::from_params(Params::new(path, tensors))
}

/// The hash prefix a torch hub file name carries (`name-<hex>.ext`, as in
/// `pt_inception-2015-12-05-6726825d.pth`): at least 8 lowercase hex digits after the last `-`.
fn hub_hash_prefix(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = &name[..name.find('.')?];
    let (_, hex) = stem.rsplit_once('-')?;
    (hex.len() >= 8
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| hex.to_string())
}

/// Checks a torch-hub-named file against the sha256 prefix in its name, as
/// `torch.hub.load_state_dict_from_url(check_hash=True)` does on download: a corrupt or partial
/// download of the published weights is refused here instead of giving wrong FIDs.
fn check_hub_hash(path: &Path) -> Result<()> {
    let Some(want) = hub_hash_prefix(path) else {
        return Ok(());
    };
    let (sha, _) = shards::sha256_file(path).map_err(|e| Error::file(path, e.to_string()))?;
    if sha.starts_with(&want) {
        return Ok(());
    }
    Err(Error::file(
        path,
        format!(
            "sha256 {}… does not start with the {want} its name promises (a corrupt or partial \
             download): download {WEIGHTS_URL} again",
            &sha[..12]
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torch_hub_name_is_checked_against_its_hash_prefix() {
        let dir = tempfile::tempdir().unwrap();
        // sha256("abc") = ba7816bf8f01cfea...
        let good = dir.path().join("w-2015-12-05-ba7816bf.pth");
        std::fs::write(&good, b"abc").unwrap();
        check_hub_hash(&good).unwrap();
        let bad = dir.path().join(WEIGHTS_FILE);
        std::fs::write(&bad, b"abc").unwrap();
        let err = load_inception(&bad).unwrap_err().to_string();
        assert!(err.contains("does not start with the 6726825d"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // Names without a hash (or a short numeric suffix) are not checked.
        for name in ["w.pth", "weights-2.pth", "inception.safetensors"] {
            assert_eq!(hub_hash_prefix(Path::new(name)), None, "{name}");
        }
    }

    #[test]
    fn a_missing_file_says_where_to_get_it() {
        let err = load_inception(Path::new("/nonexistent/w.pth"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/nonexistent/w.pth: "), "{err}");
        assert!(err.contains(WEIGHTS_URL), "{err}");
        assert!(err.contains("hub/checkpoints"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn the_default_follows_torch_hub() {
        let p = default_weights_path();
        assert!(p.ends_with(Path::new("hub/checkpoints").join(WEIGHTS_FILE)));
        assert!(!p.starts_with("~"));
    }
}
