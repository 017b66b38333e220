//! The binaries work wherever they are. Copied out of the build tree, `ncsn` runs `--version`,
//! `ingest` and `inspect` with no libtorch at all, and hands `doctor` and `train --help` to
//! `ncsn-torch` beside it, which loads the libtorch the front-end found (the setup's location,
//! `LIBTORCH`, or a `lib/` beside the binaries). Where none is found, a tensor subcommand
//! stops with one line naming every place looked. And `ncsn` itself links no libtorch.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::s;
use testkit::fixtures::{write_cifar, CifarVersion};

const TORCH_BIN: &str = env!("CARGO_BIN_EXE_ncsn-torch");
/// Where the build found libtorch: the clone's `.libtorch/libtorch/lib`.
const BAKED: &str = env!("NCSN_LIBTORCH_LIB");

/// `ncsn` and `ncsn-torch` copied into `prefix/bin`.
fn install(prefix: &Path) -> PathBuf {
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_ncsn"), bin.join("ncsn")).unwrap();
    std::fs::copy(TORCH_BIN, bin.join("ncsn-torch")).unwrap();
    bin.join("ncsn")
}

/// The binary at `exe`, run from `cwd` without the variables cargo sets (LIBTORCH from
/// .cargo/config.toml, LD_LIBRARY_PATH), as from a user's shell.
fn plain(exe: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(exe);
    c.current_dir(cwd)
        .env_remove("LIBTORCH")
        .env_remove("LD_LIBRARY_PATH");
    c
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: Output) -> String {
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// A place that holds no libtorch, given to `ncsn` as the setup's location: a build whose
/// clone has since been deleted.
fn forget_setup_location(c: &mut Command, tmp: &Path) -> PathBuf {
    let gone = tmp.join("deleted-clone/.libtorch/libtorch/lib");
    c.env("NCSN_SETUP_LIBTORCH_LIB", &gone);
    gone
}

/// A 16-image CIFAR-10 dataset ingested by `ncsn` (the light one).
fn tiny_dataset(ncsn: &Path, dir: &Path) -> PathBuf {
    let raw = write_cifar(dir, CifarVersion::Binary, 4).unwrap();
    let out = dir.join("shards");
    let ingest = [
        "ingest",
        "cifar10",
        "--input",
        s(&raw),
        "--out",
        s(&out),
        "--limit",
        "16",
    ];
    ok(plain(ncsn, dir).args(ingest).output().unwrap());
    out
}

#[test]
fn copied_binaries_run_from_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let ncsn = install(&tmp.path().join("prefix"));
    let elsewhere = tmp.path().join("work");
    std::fs::create_dir(&elsewhere).unwrap();

    let version = ok(plain(&ncsn, &elsewhere).arg("--version").output().unwrap());
    assert_eq!(
        version.trim(),
        format!("ncsn {}", env!("CARGO_PKG_VERSION"))
    );

    let data = tiny_dataset(&ncsn, &elsewhere);
    let inspect = ok(plain(&ncsn, &elsewhere)
        .args(["inspect", s(&data)])
        .output()
        .unwrap());
    assert!(inspect.contains("split train  16 images"), "{inspect}");

    // Found at the setup's location, which the copy still knows.
    let doctor = ok(plain(&ncsn, &elsewhere).arg("doctor").output().unwrap());
    assert!(doctor.contains("libtorch  2.11.0"), "{doctor}");
    assert!(
        doctor.contains("found   the setup's location, at build time"),
        "{doctor}"
    );
    let real = Path::new(BAKED).canonicalize().unwrap();
    assert!(
        doctor.contains(&format!("loaded  {}", real.display())),
        "{doctor}"
    );

    // Through LIBTORCH, which then is the one place looked.
    let root = Path::new(BAKED).parent().unwrap();
    let doctor = ok(plain(&ncsn, &elsewhere)
        .arg("doctor")
        .env("LIBTORCH", root)
        .output()
        .unwrap());
    assert!(doctor.contains("found   LIBTORCH"), "{doctor}");

    // The tensor binary's full help, with the command name the user typed.
    let help = ok(plain(&ncsn, &elsewhere)
        .args(["train", "--help"])
        .output()
        .unwrap());
    assert!(help.contains("Usage: ncsn train [OPTIONS]"), "{help}");
    assert!(help.contains("--resume"), "{help}");
}

#[test]
fn libtorch_beside_the_binaries_is_found_without_the_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    let ncsn = install(&prefix);
    let real = Path::new(BAKED).canonicalize().unwrap();
    std::os::unix::fs::symlink(&real, prefix.join("lib")).unwrap();
    let mut doctor = plain(&ncsn, tmp.path());
    forget_setup_location(doctor.arg("doctor"), tmp.path());
    let doctor = ok(doctor.output().unwrap());
    assert!(doctor.contains("found   beside the executable"), "{doctor}");
}

#[test]
fn no_libtorch_anywhere_is_one_line_naming_every_place() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    let ncsn = install(&prefix);

    // What needs no tensors does not look.
    let version = ok(plain(&ncsn, tmp.path()).arg("--version").output().unwrap());
    assert!(version.starts_with("ncsn "), "{version}");
    let data = tiny_dataset(&ncsn, tmp.path());
    let mut inspect = plain(&ncsn, tmp.path());
    forget_setup_location(inspect.args(["inspect", s(&data)]), tmp.path());
    ok(inspect.output().unwrap());

    let mut doctor = plain(&ncsn, tmp.path());
    let forgotten = forget_setup_location(doctor.arg("doctor"), tmp.path());
    let forgotten = forgotten.display().to_string();
    let out = doctor.output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success() && stdout.is_empty(),
        "{stdout}{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for place in [
        prefix.join("lib").display().to_string(),
        prefix.join("libtorch/lib").display().to_string(),
        forgotten,
        "LD_LIBRARY_PATH (unset)".into(),
        "scripts/setup.sh".into(),
        "set LIBTORCH".into(),
    ] {
        assert!(stderr.contains(&place), "{place} not in: {stderr}");
    }
    assert!(
        stderr.starts_with("error: `ncsn doctor` needs libtorch 2.11.0 and found none"),
        "{stderr}"
    );

    // A LIBTORCH without it is named as the one place looked.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = plain(&ncsn, tmp.path())
        .args(["train", "--help"])
        .env("LIBTORCH", &empty)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "looked in {} (LIBTORCH: no such directory)",
            empty.join("lib").display()
        )) && stderr.contains("point LIBTORCH at a libtorch 2.11.0 directory, or unset it"),
        "{stderr}"
    );
}

#[test]
fn a_missing_tensor_binary_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let ncsn = tmp.path().join("ncsn");
    std::fs::copy(env!("CARGO_BIN_EXE_ncsn"), &ncsn).unwrap();
    let out = plain(&ncsn, tmp.path()).arg("doctor").output().unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}, which is missing",
            tmp.path().join("ncsn-torch").display()
        )),
        "{stderr}"
    );
}

/// The names in an ELF64 little-endian file's dynamic section that are DT_NEEDED.
fn needed(path: &str) -> Vec<String> {
    let f = std::fs::read(path).unwrap();
    assert!(
        f.starts_with(b"\x7fELF") && f[4] == 2 && f[5] == 1,
        "{path}: not ELF64 LE"
    );
    let u16_at = |o: usize| u16::from_le_bytes(f[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(f[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(f[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    let section = |i: usize| shoff + i * shentsize;
    const SHT_DYNAMIC: usize = 6;
    const DT_NEEDED: usize = 1;
    let dynamic = (0..shnum)
        .map(section)
        .find(|&h| u32_at(h + 4) == SHT_DYNAMIC)
        .unwrap_or_else(|| panic!("{path}: no dynamic section"));
    let strtab = u64_at(section(u32_at(dynamic + 40)) + 24);
    let (start, size) = (u64_at(dynamic + 24), u64_at(dynamic + 32));
    (start..start + size)
        .step_by(16)
        .take_while(|&e| u64_at(e) != 0)
        .filter(|&e| u64_at(e) == DT_NEEDED)
        .map(|e| {
            let name = &f[strtab + u64_at(e + 8)..];
            let end = name.iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&name[..end]).into_owned()
        })
        .collect()
}

#[test]
fn the_front_end_links_no_libtorch() {
    let light = needed(env!("CARGO_BIN_EXE_ncsn"));
    assert!(light.iter().any(|l| l.starts_with("libc.so")), "{light:?}");
    assert!(
        !light
            .iter()
            .any(|l| l.contains("torch") || l.contains("c10")),
        "ncsn needs {light:?}"
    );
    let tensor = needed(TORCH_BIN);
    for lib in ["libtorch_cpu.so", "libtorch.so", "libc10.so"] {
        assert!(
            tensor.iter().any(|l| l == lib),
            "ncsn-torch needs {tensor:?}"
        );
    }
}
