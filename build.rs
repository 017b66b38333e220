include!("build_support/torch_link.rs");

// `ncsn` (the front-end) must start without libtorch: only `ncsn-torch` and the tests link it
// (cargo refuses `-examples`/`-benches` instructions while the package has none). The tests'
// RUNPATH gets the `$ORIGIN` entries too, harmlessly. `ncsn-torch` looks beside itself first
// (`<bin>/../lib`, `<bin>/../libtorch/lib`), in the front-end's order (src/libtorch.rs).
fn main() {
    link_libtorch_into(
        &[
            "cargo:rustc-link-arg-bin=ncsn-torch",
            "cargo:rustc-link-arg-tests",
        ],
        &["$ORIGIN/../lib", "$ORIGIN/../libtorch/lib"],
    );
}
