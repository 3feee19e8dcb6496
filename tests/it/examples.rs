//! The examples deploy as their README says, on a real local platform with
//! real Ruby processes (CI installs ruby, ruby-rack and ruby-webrick). The
//! Rails example has its own module, `rails.rs`.

use crate::deploy::{Fixture, get, text};

#[test]
fn the_rack_app_deploys_and_says_hello() {
    let f = Fixture::example("rack-app", |y| y);
    let out = f.deploy("r1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_colors("r1");
    let (status, body) = get(f.router_port, "rack-app", "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, world!\n"));
}
