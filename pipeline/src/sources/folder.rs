//! folder (SPEC §3): any directory tree of JPEG/PNG/WebP files, in sorted path order; the
//! shorter side resized to `--resolution` (bilinear), then a center crop to a square. One split,
//! `train` unless `--split` names it.

use std::path::Path;

use super::{file_split, image_files, require_exists, Source};
use crate::transforms::{Filter, Recipe};
use crate::{Error, Result};

pub const DEFAULT_RESOLUTION: u32 = 64;

pub fn open(input: &Path, resolution: Option<u32>, split: Option<&str>) -> Result<Source> {
    require_exists(input)?;
    if !input.is_dir() {
        return Err(Error::format(input, "not a directory"));
    }
    let size = resolution.unwrap_or(DEFAULT_RESOLUTION);
    let files = image_files(input)?;
    if files.is_empty() {
        return Err(Error::format(
            input,
            "no .jpg/.jpeg/.png/.webp files anywhere under this directory",
        ));
    }
    let recipe = Recipe::ResizeCrop {
        size,
        filter: Filter::Bilinear,
    };
    let inputs: Vec<_> = files.iter().map(|(_, p)| p.clone()).collect();
    let splits = vec![file_split(split.unwrap_or("train"), files)];
    Ok(Source::encoded("folder", input, size, recipe, splits).with_inputs(inputs))
}
