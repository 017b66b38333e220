include!("../build_support/torch_link.rs");

fn main() {
    link_libtorch();
    compile_accel_shim();
}

// torchrt/shim/accel.cpp against the headers of the libtorch that torch-sys links, with the
// flags torch-sys compiles its own shim with (C++17, the libtorch's C++11 ABI: the PyPI wheel's
// is 1, torch-sys's default; LIBTORCH_CXX11_ABI overrides it for both).
fn compile_accel_shim() {
    println!("cargo:rerun-if-changed=shim/accel.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = std::path::PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports DEP_TCH_LIBTORCH_LIB"),
    );
    let include = lib
        .parent()
        .expect("libtorch's lib/ has a parent")
        .join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("shim/accel.cpp")
        .compile("ncsn_accel");
}
