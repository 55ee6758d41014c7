//! Thread affinity is checked by the compiler: greenlet handles and wakers
//! are `!Send`, so moving one to another OS thread does not compile.

#[test]
fn greenlet_bound_types_cannot_cross_threads() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
