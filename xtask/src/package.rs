//! `cargo xtask package`: every publishable crate is ready for crates.io.
//!
//! `cargo package --no-verify` of each crate without `publish = false`
//! (offline: `ci` has fetched every dependency by then, and the registry
//! index is not needed for anything else, so a flaky network cannot fail
//! CI; it takes about a second), then checks of what crates.io shows:
//! each crate's manifest carries a description, the licence, a repository,
//! a readme, keywords and categories, and its package ships the README and
//! both licence texts.

use std::process::Command;

use serde_json::Value;

/// The licence every crate is published under (`LICENSE-MIT`, `LICENSE-APACHE`).
const LICENSE: &str = "MIT OR Apache-2.0";
/// Files every published package must contain.
const SHIPPED: [&str; 3] = ["README.md", "LICENSE-MIT", "LICENSE-APACHE"];

/// Packages every publishable crate and checks its metadata and files.
pub fn run() -> Result<(), String> {
    let metadata = cargo_stdout(&[
        "metadata",
        "--no-deps",
        "--offline",
        "--format-version",
        "1",
    ])?;
    let metadata: Value = serde_json::from_str(&metadata)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let publishable: Vec<&Value> = packages.iter().filter(|p| is_publishable(p)).collect();
    let mut problems: Vec<String> = publishable
        .iter()
        .flat_map(|p| metadata_problems(p))
        .collect();

    let names: Vec<&str> = publishable
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut args = vec!["package", "--no-verify", "--allow-dirty", "--offline"];
    for name in &names {
        args.extend(["--package", name]);
    }
    crate::cargo(&args, &[])?;
    for name in &names {
        let listed = cargo_stdout(&[
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
            "-p",
            name,
        ])?;
        problems.extend(missing_files(name, &listed));
    }

    if problems.is_empty() {
        eprintln!(
            "xtask package: {} crates packaged, metadata complete",
            names.len()
        );
        Ok(())
    } else {
        for p in &problems {
            eprintln!("package: {p}");
        }
        Err(format!("package found {} problems", problems.len()))
    }
}

/// `publish = false` shows in `cargo metadata` as `"publish": []`.
fn is_publishable(package: &Value) -> bool {
    package["publish"]
        .as_array()
        .is_none_or(|registries| !registries.is_empty())
}

/// What a package's manifest lacks for crates.io (its rules: at most five
/// keywords of at most 20 characters).
fn metadata_problems(package: &Value) -> Vec<String> {
    let name = package["name"].as_str().unwrap_or("?");
    let text = |key: &str| package[key].as_str().unwrap_or("").trim().to_owned();
    let list = |key: &str| -> Vec<String> {
        package[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut problems = Vec::new();
    if text("description").is_empty() {
        problems.push(format!("{name}: no description"));
    }
    if text("license") != LICENSE {
        problems.push(format!(
            "{name}: license is {:?}, not {LICENSE:?}",
            text("license")
        ));
    }
    if !text("repository").starts_with("https://") {
        problems.push(format!("{name}: no https repository"));
    }
    if text("readme").is_empty() {
        problems.push(format!("{name}: no readme"));
    }
    let keywords = list("keywords");
    if keywords.is_empty() || keywords.len() > 5 {
        problems.push(format!("{name}: {} keywords (1 to 5)", keywords.len()));
    }
    for keyword in keywords.iter().filter(|k| k.chars().count() > 20) {
        problems.push(format!("{name}: keyword {keyword:?} is over 20 characters"));
    }
    if list("categories").is_empty() {
        problems.push(format!("{name}: no categories"));
    }
    problems
}

/// The `SHIPPED` files absent from `cargo package --list`'s output.
fn missing_files(name: &str, listed: &str) -> Vec<String> {
    SHIPPED
        .iter()
        .filter(|file| !listed.lines().any(|line| line == **file))
        .map(|file| format!("{name}: the package does not ship {file}"))
        .collect()
}

fn cargo_stdout(args: &[&str]) -> Result<String, String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(crate::workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("cargo printed no UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn complete() -> Value {
        json!({
            "name": "imgstore-digest",
            "description": "OCI digests",
            "license": "MIT OR Apache-2.0",
            "repository": "https://github.com/imgstore/imgstore",
            "readme": "../../README.md",
            "keywords": ["oci", "digest"],
            "categories": ["cryptography"],
            "publish": null
        })
    }

    #[test]
    fn complete_metadata_has_no_problems() {
        assert_eq!(metadata_problems(&complete()), Vec::<String>::new());
    }

    #[test]
    fn each_missing_field_is_named() {
        let mut package = complete();
        package["license"] = json!("Apache-2.0");
        package["repository"] = Value::Null;
        package["keywords"] = json!(["a", "b", "c", "d", "e", "f"]);
        package["categories"] = json!([]);
        assert_eq!(
            metadata_problems(&package),
            vec![
                "imgstore-digest: license is \"Apache-2.0\", not \"MIT OR Apache-2.0\"",
                "imgstore-digest: no https repository",
                "imgstore-digest: 6 keywords (1 to 5)",
                "imgstore-digest: no categories",
            ]
        );
    }

    #[test]
    fn long_keywords_are_refused() {
        let mut package = complete();
        package["keywords"] = json!(["a-keyword-of-21-chars"]);
        assert_eq!(
            metadata_problems(&package),
            vec!["imgstore-digest: keyword \"a-keyword-of-21-chars\" is over 20 characters"]
        );
    }

    #[test]
    fn publish_false_is_skipped() {
        assert!(is_publishable(&complete()));
        assert!(!is_publishable(&json!({"publish": []})));
        assert!(is_publishable(&json!({"publish": ["crates-io"]})));
    }

    #[test]
    fn files_missing_from_the_list_are_named() {
        let listed = "Cargo.toml\nLICENSE-MIT\nREADME.md\nsrc/lib.rs\n";
        assert_eq!(
            missing_files("imgstore", listed),
            vec!["imgstore: the package does not ship LICENSE-APACHE"]
        );
    }
}
