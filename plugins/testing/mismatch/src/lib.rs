//! Test-only: exports `bluegreen:hooks/pre-deploy` with the wrong signature, so
//! the host must refuse it as a world mismatch.

wit_bindgen::generate!({ world: "mismatch", path: "wit" });

struct Mismatch;

impl exports::bluegreen::hooks::pre_deploy::Guest for Mismatch {
    fn handle(name: String) -> String {
        name
    }
}

export!(Mismatch);
