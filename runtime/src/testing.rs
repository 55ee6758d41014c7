//! Helpers of this crate's own unit tests.

use proptest::prelude::ProptestConfig;

/// The settings of the model-based property tests (`stack/model.rs`,
/// `timer/model.rs`, `sync/model.rs`): `cases` cases, and no regressions
/// file (proptest would write it into the source tree).
pub(crate) fn model_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
