include!("../build_support/torch_link.rs");

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    link_libtorch();
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports DEP_TCH_LIBTORCH_LIB"),
    );
    compile_accel_shim(&lib);
    compile_pool_shim(&lib);
    compile_dist_shim(&lib);
}

// A C++ build against the headers of the libtorch that torch-sys links, with the flags torch-sys
// compiles its own shim with (C++17, the libtorch's C++11 ABI: the PyPI wheel's is 1,
// torch-sys's default; LIBTORCH_CXX11_ABI overrides it for both).
fn libtorch_cpp(lib: &Path) -> cc::Build {
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = lib
        .parent()
        .expect("libtorch's lib/ has a parent")
        .join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT");
    build
}

fn compile_accel_shim(lib: &Path) {
    println!("cargo:rerun-if-changed=shim/accel.cpp");
    println!("cargo:rerun-if-changed=shim/guarded.h");
    libtorch_cpp(lib)
        .file("shim/accel.cpp")
        .compile("ncsn_accel");
}

// shim/pool.cpp is a compute kernel: optimised (-O3) whatever the profile, and built with
// OpenMP, which is what makes ATen's inline `at::parallel_for` parallel (without -fopenmp it
// runs the whole range on the calling thread while libtorch's OpenMP workers spin). It then
// calls libgomp, and must call the one libtorch_cpu uses, so that one OpenMP runtime and one
// thread pool serve both: the wheel's copy beside libtorch (`libgomp.so.1`, or an
// auditwheel-renamed `libgomp-<hash>.so.1`), linked by its file name from the libtorch
// directory, which is on the binaries' rpath; a libtorch without one uses the system's, which
// is then the one it loads too.
fn compile_pool_shim(lib: &Path) {
    println!("cargo:rerun-if-changed=shim/pool.cpp");
    libtorch_cpp(lib)
        .opt_level(3)
        .flag("-fopenmp")
        .file("shim/pool.cpp")
        .compile("ncsn_pool");
    let bundled = std::fs::read_dir(lib).ok().and_then(|dir| {
        dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|name| name.starts_with("libgomp") && name.contains(".so"))
    });
    match bundled {
        Some(name) => {
            println!("cargo:rustc-link-search=native={}", lib.display());
            println!("cargo:rustc-link-lib=dylib:+verbatim={name}");
        }
        None => println!("cargo:rustc-link-lib=dylib=gomp"),
    }
}

// shim/dist.cpp (TCPStore, PrefixStore, Gloo) always; shim/dist_nccl.cpp too when the libtorch
// has CUDA (libtorch_cuda.so, which has ProcessGroupNCCL), and then dist.cpp is told so
// (NCSN_DIST_NCCL, which `torchrt::dist::nccl_built` reports). dist.cpp's archive comes first:
// it calls into dist_nccl's. libtorch_cuda.so is not linked (dist_nccl.cpp says why).
fn compile_dist_shim(lib: &Path) {
    for file in ["shim/dist.cpp", "shim/dist_nccl.cpp", "shim/dist_abi.h"] {
        println!("cargo:rerun-if-changed={file}");
    }
    // DEP_TCH_LIBTORCH_LIB may be a symlink (.libtorch/libtorch/lib → the wheel's torch/lib).
    let nccl = lib
        .canonicalize()
        .is_ok_and(|lib| lib.join("libtorch_cuda.so").exists());
    let mut dist = libtorch_cpp(lib);
    if nccl {
        dist.define("NCSN_DIST_NCCL", None);
    }
    dist.file("shim/dist.cpp").compile("ncsn_dist");
    check_no_definitions("libncsn_dist.a");
    if nccl {
        libtorch_cpp(lib)
            .file("shim/dist_nccl.cpp")
            .compile("ncsn_dist_nccl");
        check_no_definitions("libncsn_dist_nccl.a");
    }
}

// The dist shim declares ProcessGroupGloo itself (see shim/dist.cpp), with a layout that is not
// the real one: it may only reference libtorch's symbols of that class (nor of ProcessGroupNCCL),
// never define one (a vtable, typeinfo, destructor or inline member of ours would interpose on
// libtorch's). Instantiations of intrusive_ptr<Options> are fine: they touch only the counts of
// intrusive_ptr_target and the virtual destructor. Skipped, with a warning, where `nm` is
// missing.
fn check_no_definitions(archive: &str) {
    let archive =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(archive);
    let nm = std::env::var("NM").unwrap_or_else(|_| "nm".to_string());
    let listing = match Command::new(&nm)
        .args(["--defined-only", "-C"])
        .arg(&archive)
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            println!(
                "cargo:warning=`{nm}` did not list {}: the shim's symbol check was skipped",
                archive.display()
            );
            return;
        }
    };
    let ours: Vec<&str> = listing
        .lines()
        .filter(|line| {
            // `ADDRESS TYPE NAME`
            let name = line.splitn(3, ' ').nth(2).unwrap_or("");
            ["c10d::ProcessGroupGloo", "c10d::ProcessGroupNCCL"]
                .iter()
                .any(|class| name.starts_with(class) || name.contains(&format!(" for {class}")))
        })
        .collect();
    assert!(
        ours.is_empty(),
        "{} defines symbols of a c10d class that must come from libtorch only:\n{}",
        archive.display(),
        ours.join("\n")
    );
}
