//! containerd's `pkg/filters/filter_test.go` corpus (PEER_SEMANTICS §6.4),
//! and the image field paths filters see.

use std::collections::BTreeMap;

use imgstore_digest::Digest;
use imgstore_refs::filters::{Adaptor, Filter, FilterError, Operator};
use imgstore_refs::{Descriptor, ImageRecord};

/// An entry of the peer's test corpus.
struct Entry {
    name: &'static str,
    other: &'static str,
    labels: BTreeMap<String, String>,
}

impl Adaptor for Entry {
    fn field(&self, path: &[String]) -> Option<&str> {
        match path[0].as_str() {
            "name" => Some(self.name).filter(|v| !v.is_empty()),
            "other" => Some(self.other).filter(|v| !v.is_empty()),
            "labels" => self.labels.get(&path[1..].join(".")).map(String::as_str),
            _ => None,
        }
    }
}

fn entry(name: &'static str, other: &'static str, labels: &[(&str, &str)]) -> Entry {
    Entry {
        name,
        other,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn corpus() -> Vec<Entry> {
    vec![
        entry("foo", "", &[("foo", "true")]),
        entry("bar", "", &[]),
        entry(
            "foo",
            "",
            &[("foo", "present"), ("more complex label", "present")],
        ),
        entry("bar", "", &[("bar", "true")]),
        entry(
            "fooer",
            "",
            &[(r#"more complex label with \ and ""#, "present")],
        ),
        entry(
            "fooer",
            "",
            &[(r#"more complex label with \ and ".post"#, "present")],
        ),
        entry("baz", "too complex, yo", &[]),
        entry("bazo", "abc", &[]),
        entry("compound", "", &[("foo", "omg_asdf.asdf-qwer")]),
    ]
}

fn matching(filter: &str) -> Vec<usize> {
    let parsed = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    corpus()
        .iter()
        .enumerate()
        .filter(|(_, e)| parsed.matches(*e))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn corpus_filters_match_the_same_entries_as_containerd() {
    let all: Vec<usize> = (0..9).collect();
    let cases: Vec<(&str, Vec<usize>)> = vec![
        ("", all.clone()),
        ("name", all),
        ("labels.foo", vec![0, 2, 8]),
        ("labels.foo,name", vec![0, 2, 8]),
        ("labels.foo==true", vec![0]),
        ("labels.foo==omg_asdf.asdf-qwer", vec![8]),
        ("name==bar", vec![1, 3]),
        ("name!=bar", vec![0, 2, 4, 5, 6, 7, 8]),
        ("name==bar,labels.bar", vec![3]),
        (r#"other=="too complex, yo""#, vec![6]),
        ("other~=[abc]+,name!=foo", vec![6, 7]),
        ("other~=/[abc]+/,name!=foo", vec![6, 7]),
        ("other~=/[abc]{1,2}/,name!=foo", vec![6, 7]),
        (r#"other~=/[abc]{0,1}"\//,name!=foo"#, vec![]),
        ("name==bar,labels.bar==true", vec![3]),
        ("name==bar,labels.bar==wrong", vec![]),
        (r#"name==foo,labels."more complex label""#, vec![2]),
        (
            r#"labels."more complex label with \\ and \""==present"#,
            vec![4],
        ),
        (
            r#"labels."more complex label with \\ and \"".post==present"#,
            vec![5],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(matching(filter), expected, "filter {filter:?}");
    }
}

fn parse_error(filter: &str) -> FilterError {
    Filter::parse(filter).expect_err(filter)
}

#[test]
fn corpus_parse_errors_read_as_containerd_with_the_position_marked() {
    let cases = [
        (
            "labels.|foo|==omg_asdf.asdf-qwer",
            "filters: parse error: [labels. >|||< foo|==omg_asdf.asdf-qwer]: invalid quote encountered",
        ),
        (
            r#"labels.?"more complex label with \\ and \"".post==present"#,
            r#"filters: parse error: [labels. >|?|< "more complex label with \\ and \"".post==present]: expected field or quoted"#,
        ),
        (
            "name==foo,",
            "filters: parse error: [name==foo,]: expected field or quoted",
        ),
        (
            "labels.",
            "filters: parse error: [labels.]: expected field or quoted",
        ),
        (
            "image~=,id?=?fbaq",
            "filters: parse error: [image~= >|,|< id?=?fbaq]: expected value or quoted",
        ),
        (
            "labels.ns/key==value",
            "filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated",
        ),
        (
            "labels.key==/value",
            "filters: parse error: [labels.key== >|/|< value]: quoted literal not terminated",
        ),
    ];
    for (filter, message) in cases {
        assert_eq!(
            parse_error(filter).to_string(),
            message,
            "filter {filter:?}"
        );
    }
}

#[test]
fn error_positions_are_byte_offsets_into_the_input() {
    let err = parse_error("labels.key==/value");
    assert_eq!(err.position(), 12);
    assert_eq!(err.input(), "labels.key==/value");
    assert_eq!(err.message(), "quoted literal not terminated");
    let err = parse_error("labels.");
    assert_eq!(err.position(), 7, "at the end: the input's length");
}

#[test]
fn other_syntax_errors_name_what_was_expected() {
    let cases = [
        (
            "name=foo",
            r#"filters: parse error: [name >|=|< foo]: unsupported operator "=""#,
        ),
        (
            "name foo",
            r#"filters: parse error: [name  >|f|< oo]: expected an operator ("=="|"!="|"~=")"#,
        ),
        (
            "name==a b",
            "filters: parse error: [name==a >| |< b]: unexpected input:  ",
        ),
        (
            r#"labels."\g"==x"#,
            r#"filters: parse error: [labels. >|"|< \g"==x]: illegal escape sequence"#,
        ),
        (
            r#"labels."\xzz"==x"#,
            r#"filters: parse error: [labels. >|"|< \xzz"==x]: illegal numeric escape sequence"#,
        ),
        (
            "name==",
            "filters: parse error: [name==]: expected value or quoted",
        ),
        (
            ",",
            "filters: parse error: [ >|,|< ]: expected field or quoted",
        ),
        (
            "name\0",
            "filters: parse error: [name >|\0|< ]: unexpected null",
        ),
    ];
    for (filter, message) in cases {
        assert_eq!(
            parse_error(filter).to_string(),
            message,
            "filter {filter:?}"
        );
    }
}

#[test]
fn invalid_and_oversized_regular_expressions_are_parse_errors() {
    let err = parse_error("name~=(");
    assert_eq!(err.position(), 6);
    assert!(
        err.message().starts_with("invalid regular expression"),
        "{err}"
    );
    let err = parse_error("name~=/a{1000}{1000}/");
    assert!(err.message().contains("larger than"), "{err}");
}

#[test]
fn separate_strings_are_ored_and_no_strings_match_everything() {
    let filter = Filter::parse_all(["name==foo", "name==bar"]).unwrap();
    let names: Vec<&str> = corpus()
        .into_iter()
        .filter(|e| filter.matches(e))
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["foo", "bar", "foo", "bar"]);
    assert!(Filter::parse_all(Vec::<String>::new()).unwrap().is_always());
    assert!(Filter::parse_all(["name==x", ""]).unwrap().is_always());
    assert!(
        Filter::parse_all(["name==x", "labels."]).is_err(),
        "one bad string fails all"
    );
}

#[test]
fn selectors_expose_their_parts() {
    let filter = Filter::parse(r#"labels."a.b"==c,name,other~=/x/"#).unwrap();
    let selectors = filter.alternatives().next().unwrap();
    assert_eq!(selectors[0].fieldpath(), ["labels", "a.b"]);
    assert_eq!(selectors[0].operator(), Operator::Equal);
    assert_eq!(selectors[0].value(), "c");
    assert_eq!(selectors[1].operator(), Operator::Present);
    assert_eq!(selectors[2].value(), "x");
    let names: Vec<String> = [
        Operator::Present,
        Operator::Equal,
        Operator::NotEqual,
        Operator::Matches,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(names, ["?", "==", "!=", "~="]);
}

fn image() -> ImageRecord {
    let mut target = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        Digest::from_bytes(b"m"),
        3,
    );
    target
        .annotations
        .insert("org.opencontainers.image.ref.name".into(), "1.36".into());
    ImageRecord::new("docker.io/library/busybox:1.36", target)
        .with_label("containerd.io/gc.ref.content", "x")
        .with_label("env", "prod")
}

#[test]
fn image_records_expose_containerds_field_paths() {
    let image = image();
    let digest = image.target.digest.as_str().to_owned();
    let matches = |f: &str| Filter::parse(f).unwrap().matches(&image);
    assert!(matches("name==docker.io/library/busybox:1.36"));
    assert!(matches(&format!("target.digest=={digest}")));
    assert!(matches("target.mediatype~=manifest"));
    assert!(matches("labels.env==prod"));
    assert!(matches(r#"labels."containerd.io/gc.ref.content""#));
    // Unquoted, the `/` opens a quoted literal: containerd refuses it too.
    assert!(Filter::parse("labels.containerd.io/gc.ref.content").is_err());
    assert!(matches(
        "annotations.org.opencontainers.image.ref.name==1.36"
    ));
    assert!(matches(
        r#"annotations."org.opencontainers.image.ref.name"==1.36"#
    ));
    assert!(!matches("target"));
    assert!(!matches("target.size"));
    assert!(!matches("labels.missing"));
    assert!(matches("labels.missing!=x"), "absent reads as empty for !=");
    assert!(!matches("unknown"));
}

#[test]
fn long_hostile_inputs_parse_in_linear_time_without_panicking() {
    let many = vec!["name==x"; 20_000].join(",");
    let start = std::time::Instant::now();
    assert_eq!(
        Filter::parse(&many)
            .unwrap()
            .alternatives()
            .next()
            .unwrap()
            .len(),
        20_000
    );
    let unterminated = format!("labels.\"{}", "\\n".repeat(50_000));
    assert_eq!(
        parse_error(&unterminated).message(),
        "quoted literal not terminated"
    );
    let nested = format!("name~={}", "(".repeat(10_000));
    assert!(Filter::parse(&nested).is_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
