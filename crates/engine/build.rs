//! Builds the pod holder (`holder/holder.c`) as a static executable that the engine carries
//! (see `pods::holder`): Debian's gcc and glibc's static libc, which linking Rust needs anyway.

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let bin = out.join("berth-pod-holder");
    println!("cargo:rerun-if-changed=holder/holder.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg("holder/holder.c")
        .status()
        .unwrap_or_else(|e| panic!("run {cc} for the pod holder: {e} (install gcc)"));
    assert!(
        status.success(),
        "{cc} could not build the pod holder (holder/holder.c)"
    );
}
