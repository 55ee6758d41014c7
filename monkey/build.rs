//! Decides whether the hooks are compiled in: only on Linux with glibc and
//! dynamic linking. With static glibc the link fails (a second
//! `getaddrinfo`) or `dlsym(RTLD_NEXT, ..)` finds nothing to forward to;
//! musl would need raw syscalls to forward; on macOS only the program's own
//! calls would bind (two-level namespace). Elsewhere the crate builds
//! without hooks and `patch_all()` returns a clear error.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(greenlet_hooks)");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if linux_gnu && !static_crt {
        println!("cargo::rustc-cfg=greenlet_hooks");
    }
}
