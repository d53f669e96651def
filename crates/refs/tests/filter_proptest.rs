//! Random filters over 1000 stored records, compared with a straightforward
//! evaluation written here from containerd's rules; and the parser never
//! panics on any input.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use imgstore_digest::Digest;
use imgstore_refs::filters::Filter;
use imgstore_refs::{Descriptor, ImageRecord, RefStore};
use imgstore_sqlite::SqliteBackend;
use proptest::prelude::*;

const NS: &str = "prop";

const LABEL_KEYS: &[&str] = &[
    "env",
    "tier",
    "a.b",
    "containerd.io/gc",
    "with space",
    "quo\"te",
    "x",
];
const LABEL_VALUES: &[&str] = &["prod", "dev", "1", "a,b", "x y", "lib/box", "=="];
const MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const NAME_PARTS: &[&str] = &[
    "docker.io/library/busybox",
    "quay.io/app",
    "localhost/x",
    "ghcr.io/a/b",
];
const PATTERNS: &[&str] = &[
    "^docker", "json$", "[0-9]+", "prod|dev", "^$", ".", "a.b", "x y", "manifest",
];

/// The 1000 records, and a store holding them.
struct Fixture {
    _dir: tempfile::TempDir,
    refs: RefStore<SqliteBackend>,
    records: Vec<ImageRecord>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(SqliteBackend::open(dir.path().join("refs.db")).unwrap());
        let refs = RefStore::open(backend).unwrap();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut records = Vec::new();
        for i in 0..1000 {
            let name = format!("{}:{i}", NAME_PARTS[next(NAME_PARTS.len())]);
            let mut target = Descriptor::new(
                MEDIA_TYPES[next(MEDIA_TYPES.len())],
                Digest::from_bytes(format!("{i}").as_bytes()),
                1 + i as i64,
            );
            for _ in 0..next(3) {
                target.annotations.insert(
                    LABEL_KEYS[next(LABEL_KEYS.len())].to_owned(),
                    LABEL_VALUES[next(LABEL_VALUES.len())].to_owned(),
                );
            }
            let mut record = ImageRecord::new(name, target);
            for _ in 0..next(4) {
                record.labels.insert(
                    LABEL_KEYS[next(LABEL_KEYS.len())].to_owned(),
                    LABEL_VALUES[next(LABEL_VALUES.len())].to_owned(),
                );
            }
            records.push(refs.create(NS, record).unwrap());
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Fixture {
            _dir: dir,
            refs,
            records,
        }
    })
}

#[derive(Debug, Clone)]
enum Field {
    Name,
    Digest,
    MediaType,
    Label(&'static str, bool),
    Annotation(&'static str, bool),
}

#[derive(Debug, Clone)]
enum Test {
    Present,
    Equal(String),
    NotEqual(String),
    Matches(&'static str, bool),
}

#[derive(Debug, Clone)]
struct Selector {
    field: Field,
    test: Test,
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_field_text(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A map key as a path: quoted, or dotted fields when `plain` and possible.
fn key_path(key: &str, plain: bool) -> String {
    if plain && key.split('.').all(is_field_text) {
        key.to_owned()
    } else {
        quote(key)
    }
}

fn value_text(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.starts_with(['"', '/', '|', ',', '.', '=', '!', '~'])
        && value.chars().all(|c| c != ',' && !c.is_whitespace());
    if plain {
        value.to_owned()
    } else {
        quote(value)
    }
}

impl Selector {
    fn render(&self) -> String {
        let field = match &self.field {
            Field::Name => "name".to_owned(),
            Field::Digest => "target.digest".to_owned(),
            Field::MediaType => "target.mediatype".to_owned(),
            Field::Label(k, plain) => format!("labels.{}", key_path(k, *plain)),
            Field::Annotation(k, plain) => format!("annotations.{}", key_path(k, *plain)),
        };
        match &self.test {
            Test::Present => field,
            Test::Equal(v) => format!("{field}=={}", value_text(v)),
            Test::NotEqual(v) => format!("{field}!={}", value_text(v)),
            Test::Matches(p, slashes) if *slashes => {
                format!("{field}~=/{}/", p.replace('/', "\\/"))
            }
            Test::Matches(p, _) => format!("{field}~={}", value_text(p)),
        }
    }

    /// The reference evaluation: containerd's adaptor and operators, spelled out.
    fn holds(&self, record: &ImageRecord) -> bool {
        let value: Option<&str> = match &self.field {
            Field::Name => Some(record.name.as_str()).filter(|n| !n.is_empty()),
            Field::Digest => Some(record.target.digest.as_str()),
            Field::MediaType => Some(record.target.media_type.as_str()),
            Field::Label(k, _) => record.labels.get(*k).map(String::as_str),
            Field::Annotation(k, _) => record.target.annotations.get(*k).map(String::as_str),
        };
        match &self.test {
            Test::Present => value.is_some(),
            Test::Equal(v) => value == Some(v.as_str()),
            Test::NotEqual(v) => value.unwrap_or("") != v,
            Test::Matches(p, _) => regex::Regex::new(p).unwrap().is_match(value.unwrap_or("")),
        }
    }
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(Field::Name),
        Just(Field::Digest),
        Just(Field::MediaType),
        (prop::sample::select(LABEL_KEYS), any::<bool>()).prop_map(|(k, p)| Field::Label(k, p)),
        (prop::sample::select(LABEL_KEYS), any::<bool>())
            .prop_map(|(k, p)| Field::Annotation(k, p)),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let fixture_names = fixture()
        .records
        .iter()
        .take(20)
        .map(|r| r.name.clone())
        .collect::<Vec<_>>();
    prop_oneof![
        prop::sample::select(LABEL_VALUES).prop_map(str::to_owned),
        prop::sample::select(MEDIA_TYPES).prop_map(str::to_owned),
        prop::sample::select(fixture_names),
        "[a-z ,\"\\\\]{1,6}",
    ]
}

fn test() -> impl Strategy<Value = Test> {
    prop_oneof![
        Just(Test::Present),
        value().prop_map(Test::Equal),
        value().prop_map(Test::NotEqual),
        (prop::sample::select(PATTERNS), any::<bool>()).prop_map(|(p, s)| Test::Matches(p, s)),
    ]
}

fn filters() -> impl Strategy<Value = Vec<Vec<Selector>>> {
    let selector = (field(), test()).prop_map(|(field, test)| Selector { field, test });
    prop::collection::vec(prop::collection::vec(selector, 1..4), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn listing_matches_the_reference_evaluation(alternatives in filters()) {
        let fixture = fixture();
        let strings: Vec<String> = alternatives
            .iter()
            .map(|selectors| selectors.iter().map(Selector::render).collect::<Vec<_>>().join(","))
            .collect();
        let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
        let listed: Vec<String> = fixture
            .refs
            .list(NS, &refs)
            .unwrap_or_else(|e| panic!("{strings:?}: {e}"))
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let expected: Vec<String> = fixture
            .records
            .iter()
            .filter(|r| alternatives.is_empty() || alternatives.iter().any(|all| all.iter().all(|s| s.holds(r))))
            .map(|r| r.name.clone())
            .collect();
        prop_assert_eq!(listed, expected, "filters {:?}", strings);
    }

    #[test]
    fn the_parser_never_panics(input in "\\PC{0,40}") {
        let _ = Filter::parse(&input);
    }

    #[test]
    fn the_parser_never_panics_on_filter_like_text(input in "[a-z.,=!~/|\"\\\\ ]{0,30}") {
        let _ = Filter::parse(&input);
    }
}

#[test]
fn fixture_holds_1000_records_with_varied_labels() {
    let fixture = fixture();
    assert_eq!(fixture.records.len(), 1000);
    assert_eq!(fixture.refs.len(NS).unwrap(), 1000);
    let keys: BTreeMap<&str, usize> =
        fixture
            .records
            .iter()
            .flat_map(|r| r.labels.keys())
            .fold(BTreeMap::new(), |mut m, k| {
                *m.entry(k.as_str()).or_default() += 1;
                m
            });
    assert_eq!(keys.len(), LABEL_KEYS.len());
}
