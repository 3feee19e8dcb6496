//! Test-only: a component that exports no hook, so the host must refuse it and
//! say which interfaces it expected.

wit_bindgen::generate!({ world: "greeter", path: "wit" });

struct Greeter;

impl exports::example::greeter::greet::Guest for Greeter {
    fn hello() -> String {
        "hello".into()
    }
}

export!(Greeter);
