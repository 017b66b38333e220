//! `--device`, spelled the same for every stage: `auto`, `cpu`, `cuda` or `cuda:N`.

use tch::Device;

/// A `--device` value that does not name a usable device; one line, naming the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("--device {0:?}: expected auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error("--device {given}: {visible} CUDA device(s) visible to libtorch (see `ncsn doctor`)")]
    NotVisible { given: String, visible: usize },
}

/// Parses `--device` against the CUDA devices libtorch sees: `auto` is CUDA when there is one,
/// else the CPU; a GPU index that is not visible is refused here rather than deep in a kernel.
pub fn parse_device(s: &str) -> Result<Device, DeviceError> {
    parse_device_among(s, tch::Cuda::device_count().max(0) as usize)
}

/// [`parse_device`] for a machine with `visible` CUDA devices.
pub fn parse_device_among(s: &str, visible: usize) -> Result<Device, DeviceError> {
    let cuda = |i: usize| {
        if i < visible {
            Ok(Device::Cuda(i))
        } else {
            Err(DeviceError::NotVisible {
                given: s.to_string(),
                visible,
            })
        }
    };
    match s {
        "auto" if visible > 0 => Ok(Device::Cuda(0)),
        "auto" | "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => Err(DeviceError::Unknown(s.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_against_the_visible_devices() {
        assert_eq!(parse_device_among("cpu", 2), Ok(Device::Cpu));
        assert_eq!(parse_device_among("auto", 0), Ok(Device::Cpu));
        assert_eq!(parse_device_among("auto", 1), Ok(Device::Cuda(0)));
        assert_eq!(parse_device_among("cuda", 1), Ok(Device::Cuda(0)));
        assert_eq!(parse_device_among("cuda:1", 2), Ok(Device::Cuda(1)));
    }

    #[test]
    fn refusals_are_one_line_naming_the_flag() {
        for (s, visible, want) in [
            (
                "gpu",
                1,
                "--device \"gpu\": expected auto, cpu, cuda or cuda:N",
            ),
            ("cuda:x", 1, "expected auto, cpu, cuda or cuda:N"),
            ("cuda", 0, "--device cuda: 0 CUDA device(s) visible"),
            ("cuda:2", 2, "--device cuda:2: 2 CUDA device(s) visible"),
        ] {
            let e = parse_device_among(s, visible).unwrap_err().to_string();
            assert!(e.contains(want) && !e.contains('\n'), "{s}: {e}");
        }
    }

    #[test]
    fn this_machine_refuses_an_index_past_its_devices() {
        let too_far = format!("cuda:{}", tch::Cuda::device_count());
        assert!(matches!(
            parse_device(&too_far),
            Err(DeviceError::NotVisible { .. })
        ));
        assert!(parse_device("auto").is_ok());
    }
}
