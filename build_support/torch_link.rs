// Shared by the build scripts of every package whose binaries or tests link libtorch.
//
// Why: cargo overrides LD_LIBRARY_PATH, so the libtorch directory is baked in as an rpath; and
// without `--no-as-needed -ltorch` the linker drops libtorch.so (no symbol is used from it
// directly), so libtorch_cuda.so never loads and CUDA is never available on a GPU machine.
// `DEP_TCH_LIBTORCH_LIB` is exported by torch-sys (links = "tch") to direct dependents only,
// which is why each such package lists torch-sys itself.
#[allow(dead_code)] // the root package uses link_libtorch_into
fn link_libtorch() {
    link_libtorch_into(&["cargo:rustc-link-arg"], &[]);
}

// The link arguments above, given with each of `instructions` (`cargo:rustc-link-arg-tests`,
// `cargo:rustc-link-arg-bin=NAME`, ...), so that a package can keep a binary free of libtorch;
// `runpath` comes before the libtorch directory (`$ORIGIN/...` entries for a relocatable
// binary).
fn link_libtorch_into(instructions: &[&str], runpath: &[&str]) {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let mut path = runpath.to_vec();
        path.push(&lib);
        for at in instructions {
            println!("{at}=-Wl,-rpath,{}", path.join(":"));
            println!("{at}=-Wl,--no-as-needed");
            println!("{at}=-L{lib}");
            println!("{at}=-ltorch");
        }
        // Lets `ncsn doctor` say which libtorch the binary was linked against, and the `ncsn`
        // front-end look there for it.
        println!("cargo:rustc-env=NCSN_LIBTORCH_LIB={lib}");
    }
}
