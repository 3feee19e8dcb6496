//! Golden files for deploy-file errors (as Spin does): each
//! `tests/ui/config/NAME.yaml` has the exact message in `NAME.err`.
//! `BLESS=1 cargo test` rewrites the `.err` files after a deliberate change.

use bluegreen::config::DeployFile;
use std::path::Path;

#[test]
fn deploy_file_errors_match_their_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/config");
    let mut checked = 0;
    let entries = crate::util::sorted_entries(&dir);
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let shown = Path::new("tests/ui/config").join(&name);
        let text = std::fs::read_to_string(path).unwrap();
        let result = DeployFile::parse(&shown, &text);
        if name == "valid.yaml" {
            let file = result.unwrap_or_else(|e| panic!("valid.yaml: {e}"));
            assert_eq!(
                (file.blue(), file.green(), file.route_host()),
                ("shop-blue".into(), "shop-green".into(), "shop")
            );
            continue;
        }
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{name} should be refused"))
            .to_string();
        crate::util::golden(&path.with_extension("err"), &format!("{err}\n"));
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} golden files");
}
