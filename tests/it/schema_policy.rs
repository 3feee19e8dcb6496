//! The org policy's schema against the policy's reader, as
//! `schema_corpus.rs` does for the deploy file: the same verdict on valid
//! policies and on each way to get one wrong.

use serde_json::Value;

/// The policy's schema against the policy's reader, the same way.
#[test]
fn the_policy_schema_and_the_policy_reader_agree() {
    let pin = "ab".repeat(32);
    let cases = [
        format!(
            "required_plugins:\n  guard: {{ sha256: {pin}, path: guard.wasm, settings: \
             {{ mode: block, methods: [a, b] }}, allow_http: [candidate], timeout: 2s, \
             memory: 32MiB }}\nrequired_hooks: [migration-safety-check, post-deploy]\n\
             overrides: {{ allowed: false, require_reason: true }}\n\
             migrate: {{ require_rehearsal: true }}\n"
        ),
        "{}\n".into(),
        format!("required_plugins: {{ guard: {{ sha256: {pin}, grant_dirs: [data] }} }}\n"),
        "required_plugins: { guard: { sha256: abc } }\n".into(),
        format!("required_plugins: {{ guard: {{ sha256: {pin}, sha: x }} }}\n"),
        format!("required_plugins: {{ guard: {{ sha256: {pin}, memory: lots }} }}\n"),
        format!("required_plugins: {{ guard: {{ sha256: {pin}, allow_http: ['x:1'] }} }}\n"),
        format!("required_plugins: {{ guard: {{ sha256: {pin}, settings: {{ m: ['a,b'] }} }} }}\n"),
        format!("required_plugins: {{ guard: {{ sha256: {pin}, timeout: soon }} }}\n"),
        "required_plugins: { guard: { path: guard.wasm } }\n".into(),
        "required_hooks: [pre-lunch]\n".into(),
        "overrides: { allowed: maybe }\n".into(),
        "overrides: { allow: false }\n".into(),
        "migrate: { require_rehearsal: true, rehearse: true }\n".into(),
    ];
    let v = jsonschema::validator_for(&bluegreen::config::schema::policy()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let (mut valid, mut invalid) = (0, 0);
    for text in &cases {
        std::fs::write(&path, text).unwrap();
        let reader = bluegreen::config::policy::find(None, Some(&path), None, None);
        let doc: Value = serde_yaml::from_str(text).unwrap();
        let schema: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert_eq!(
            reader.is_ok(),
            schema.is_empty(),
            "{text}: reader {:?}, schema {schema:?}",
            reader.map(|_| ())
        );
        if schema.is_empty() {
            valid += 1
        } else {
            invalid += 1
        }
    }
    assert!(
        valid >= 3 && invalid >= 10,
        "{valid} valid, {invalid} invalid"
    );
}
