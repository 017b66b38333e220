// Shared by the build scripts of every package whose binaries or tests link libtorch.
//
// Why: cargo overrides LD_LIBRARY_PATH, so the libtorch directory is baked in as an rpath; and
// without `--no-as-needed -ltorch` the linker drops libtorch.so (no symbol is used from it
// directly), so libtorch_cuda.so never loads and CUDA is never available on a GPU machine.
// `DEP_TCH_LIBTORCH_LIB` is exported by torch-sys (links = "tch") to direct dependents only,
// which is why each such package lists torch-sys itself.
fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-ltorch");
        // Lets `ncsn doctor` say which libtorch the binary was linked against.
        println!("cargo:rustc-env=NCSN_LIBTORCH_LIB={lib}");
    }
}
