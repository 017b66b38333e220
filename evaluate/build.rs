include!("../build_support/torch_link.rs");

fn main() {
    link_libtorch();
}
