//! The committed OpenAPI document of the admin API is the one the code generates. After changing the API, run
//! `SHIREN_UPDATE_OPENAPI=1 cargo test --test suite openapi::` (or `shiren openapi > openapi/admin.json`).
use std::path::Path;

#[test]
fn committed_openapi_document_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/admin.json");
    let generated = format!("{}\n", shiren::api::admin::spec_json());
    if std::env::var_os("SHIREN_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/admin.json is stale: regenerate it with `SHIREN_UPDATE_OPENAPI=1 cargo test --test suite openapi::`"
    );
    let v: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert!(v["paths"]["/billing/export.csv"].is_object());
    assert!(v["components"]["securitySchemes"].is_object());
}
