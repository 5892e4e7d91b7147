//! Property-based tests of the three pieces of the HTTP edge that decide what a request may touch:
//! the path decoder (`storage::path`), the Range parser and the conditional-request logic
//! (`http::conditional`).
//!
//! Invariants checked (each property below names the one it checks):
//!
//! 1. **No decoded path ever escapes its mount.** Whatever string arrives (percent-encoded
//!    traversal, encoded slashes and backslashes, NUL, invalid UTF-8, the reserved name, overlong
//!    input), a path the decoder accepts has only ordinary segments: joined under a mount's root it
//!    stays under that root with only `Normal` components, and it never names the gateway's own
//!    `.artifact-gateway` area. The decoder accepts exactly the inputs whose decoded segments an
//!    independent model of the rules accepts, and encoding a decoded path decodes to the same path.
//! 2. **A satisfiable range never yields bytes outside the file.** For any `Range` header and any
//!    size, a partial answer is a non-empty `[start, end)` with `end <= size`; `416` comes only
//!    from a single, well-formed range that starts at or past the end (or a suffix of zero bytes,
//!    or any suffix of an empty file); every well-formed single range is answered as RFC 9110
//!    §14.1.2 says; a failing `If-Range` always yields the whole body.
//! 3. **Precedence matches RFC 9110 §13.2.2.** For any combination of `If-Match`,
//!    `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` (lists, weak tags, `*`,
//!    garbage, dates around the modification time, unparsable dates) on any method, for an
//!    existing or a missing artifact, `evaluate` gives what a model written from the RFC's five
//!    steps gives.
//!
//! Cases per run: `CASES` per property (default below; `PROPTEST_CASES` overrides it), so a plain
//! `cargo test --test properties` runs 7 properties × 100,000 = 700,000 generated cases (plus
//! the committed regressions) in about 15 s of CPU; two runs of the suite pass a million. Failing
//! inputs found by any run are recorded in `tests/proptest-regressions/properties.txt` and
//! replayed first by every later run; the committed file holds the seeds that caught a real bug
//! (`bytes=-0`), edges of the models, and deliberately injected decoder, range and precedence bugs
//! while these properties were written.

use std::path::{Component, Path};
use std::time::{Duration, UNIX_EPOCH};

use artifact_gateway::http::conditional::{self, Precondition, RangeDecision};
use artifact_gateway::storage::{ArtifactPath, Meta};
use artifact_gateway::ErrorKind;
use http::{header, HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Generated cases per property and run (overridden by `PROPTEST_CASES`).
const CASES: u32 = 100_000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/properties.txt",
        ))),
        // Shrinking a failure must not take longer than the run itself.
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Paths
// ---------------------------------------------------------------------------------------------

const RESERVED: &str = ".artifact-gateway";

/// Decoded segments an attacker or an odd client might send: traversal, separators, control
/// characters, the reserved name, unicode, and ordinary names.
fn decoded_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("..".to_string()),
        3 => Just(".".to_string()),
        2 => Just(String::new()),
        2 => Just(RESERVED.to_string()),
        1 => Just(format!("{RESERVED}x")),
        1 => Just("...".to_string()),
        1 => Just(".hidden".to_string()),
        1 => Just("a/b".to_string()),
        1 => Just("a\\b".to_string()),
        1 => Just("..\\..".to_string()),
        1 => Just("a\0b".to_string()),
        1 => Just("x\u{7f}".to_string()),
        1 => Just("\u{85}".to_string()),
        1 => Just("é.jar".to_string()),
        1 => Just("a b+c%d".to_string()),
        1 => Just("x".repeat(255)),
        1 => Just("x".repeat(256)),
        6 => "[a-zA-Z0-9._~ -]{1,12}",
        3 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

/// Percent-encodes a decoded segment the way different clients do: some characters raw, some
/// escaped, escapes in upper or lower case.
fn encode_segment(seg: &str, choices: &[u8]) -> String {
    let mut out = String::new();
    for (i, ch) in seg.chars().enumerate() {
        let choice = choices.get(i % choices.len().max(1)).copied().unwrap_or(0);
        // `%` must be escaped, `/` must be (it would split), `?`/`#` never reach a path.
        let must = matches!(ch, '%' | '/' | '?' | '#') || ch.is_control() || ch == ' ';
        if must || choice % 3 == 0 {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                if choice % 2 == 0 {
                    out.push_str(&format!("%{b:02X}"));
                } else {
                    out.push_str(&format!("%{b:02x}"));
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// Raw URL paths: encoded segments, stray escapes (`%`, `%2`, `%ZZ`, invalid UTF-8 like `%ff`),
/// doubled and trailing slashes.
fn raw_url_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => (decoded_segment(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(s, c)| encode_segment(&s, &c)),
        1 => Just("%2e%2e".to_string()),
        1 => Just("%2E.".to_string()),
        1 => Just(".%2e".to_string()),
        1 => Just("%2f".to_string()),
        1 => Just("a%2Fb".to_string()),
        1 => Just("%5c..".to_string()),
        1 => Just("%00".to_string()),
        1 => Just("%ff%fe".to_string()),
        1 => Just("%c3".to_string()),
        1 => Just("%".to_string()),
        1 => Just("%2".to_string()),
        1 => Just("%zz".to_string()),
        1 => Just("%252e%252e".to_string()),
    ];
    (
        prop::collection::vec(piece, 0..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(pieces, leading, trailing)| {
            let mut s = pieces.join("/");
            if leading {
                s.insert(0, '/');
            }
            if trailing {
                s.push('/');
            }
            s
        })
}

/// The rules, written again from the module documentation, for decoded segments.
fn model_segment_ok(seg: &str) -> bool {
    !seg.is_empty()
        && seg != "."
        && seg != ".."
        && !seg.contains('/')
        && !seg.contains('\\')
        && !seg.chars().any(char::is_control)
        && seg != RESERVED
        && seg.len() <= 255
}

/// What every accepted path must satisfy: it stays inside any mount root it is joined under.
fn assert_contained(p: &ArtifactPath) -> Result<(), TestCaseError> {
    let s = p.as_str();
    prop_assert!(
        !s.starts_with('/') && !s.ends_with('/'),
        "not relative: {s:?}"
    );
    prop_assert!(s.len() <= 1024);
    let root = Path::new("/srv/mount");
    let mut joined = root.to_path_buf();
    let mut depth = 0usize;
    for seg in p.segments() {
        prop_assert!(
            model_segment_ok(seg),
            "accepted a bad segment {seg:?} in {s:?}"
        );
        joined.push(seg);
        depth += 1;
    }
    prop_assert_eq!(
        p.segments().count(),
        s.split('/').filter(|x| !x.is_empty()).count()
    );
    prop_assert!(joined.starts_with(root), "{joined:?} left {root:?}");
    let below: Vec<_> = joined.strip_prefix(root).unwrap().components().collect();
    prop_assert_eq!(below.len(), depth, "segments split or merged: {:?}", s);
    for c in below {
        prop_assert!(matches!(c, Component::Normal(_)), "{c:?} in {s:?}");
    }
    // Object-store keys: prefix + "/" + path never leaves the prefix either.
    let key = format!("jobs/{s}");
    prop_assert!(key.split('/').all(|k| k != ".." && k != "."));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Invariant 1 for URL paths: an accepted path is contained and round-trips through its
    /// URL encoding; a refused one is refused as `invalid_path`.
    #[test]
    fn url_paths_never_escape_the_mount(raw in raw_url_path()) {
        match ArtifactPath::from_url_path(&raw) {
            Ok(p) => {
                assert_contained(&p)?;
                let again = ArtifactPath::from_url_path(&p.to_url_encoded());
                prop_assert_eq!(again.as_ref().ok(), Some(&p), "re-encoding changed {:?}", raw);
                prop_assert_eq!(ArtifactPath::parse(p.as_str()).ok(), Some(p.clone()));
            }
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidPath),
        }
    }

    /// Invariant 1, exactly: the decoder accepts a URL path if and only if every decoded segment
    /// passes the model's rules (and the whole fits in 1024 bytes), and then yields those segments.
    #[test]
    fn url_decoder_accepts_exactly_the_model(
        segments in prop::collection::vec(decoded_segment(), 1..7),
        choices in prop::collection::vec(any::<u8>(), 1..8),
        dir in any::<bool>(),
    ) {
        let mut raw = segments
            .iter()
            .map(|s| encode_segment(s, &choices))
            .collect::<Vec<_>>()
            .join("/");
        if dir {
            raw.push('/');
        }
        // One trailing `/` marks a directory (it is dropped) and an empty remainder is the root.
        let mut expected: Vec<String> = segments.clone();
        if dir {
            expected.push(String::new());
        }
        if expected.len() >= 2 && expected.last().is_some_and(String::is_empty) {
            expected.pop();
        }
        if expected == [String::new()] {
            expected.clear();
        }
        let expected_ok = expected.iter().all(|s| model_segment_ok(s))
            && expected.join("/").len() <= 1024;
        match ArtifactPath::from_url_path(&raw) {
            Ok(p) => {
                prop_assert!(expected_ok, "accepted {raw:?} = {segments:?}");
                let got: Vec<&str> = p.segments().collect();
                prop_assert_eq!(got, expected.iter().map(String::as_str).collect::<Vec<_>>());
                assert_contained(&p)?;
            }
            Err(e) => {
                prop_assert!(!expected_ok, "refused {raw:?} = {segments:?}: {e}");
                prop_assert_eq!(e.kind(), ErrorKind::InvalidPath);
            }
        }
    }

    /// Invariant 1 for decoded paths (CLI arguments) and for `child`/`parent`: whatever is
    /// accepted is contained; `parent` of a contained path is contained.
    #[test]
    fn decoded_paths_and_children_never_escape(
        segments in prop::collection::vec(decoded_segment(), 0..7),
        extra in decoded_segment(),
    ) {
        let joined = segments.join("/");
        if let Ok(p) = ArtifactPath::parse(&joined) {
            assert_contained(&p)?;
            assert_contained(&p.parent())?;
            match p.child(&extra) {
                Ok(c) => {
                    prop_assert!(model_segment_ok(&extra));
                    assert_contained(&c)?;
                    prop_assert_eq!(c.parent(), p.clone());
                    prop_assert_eq!(c.file_name(), extra.as_str());
                }
                Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidPath),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Ranges
// ---------------------------------------------------------------------------------------------

const LAST_MODIFIED_SECS: u64 = 1_700_000_000;
const ETAG: &str = "v1-abc";

fn meta(size: u64, exists_nanos: u32) -> Meta {
    Meta {
        path: ArtifactPath::parse("jobs/app.jar").unwrap(),
        size,
        last_modified: UNIX_EPOCH + Duration::new(LAST_MODIFIED_SECS, exists_nanos),
        etag: ETAG.into(),
        sha256: None,
        content_type: None,
    }
}

fn headers(pairs: &[(header::HeaderName, String)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            m.append(k.clone(), v);
        }
    }
    m
}

/// Sizes with the edges over-represented.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(0u64),
        2 => Just(1u64),
        6 => 0u64..64,
        2 => 0u64..1_000_000,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
    ]
}

/// Positions near the interesting places, and huge ones.
fn position() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..70,
        1 => 0u64..2_000_000,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
    ]
}

#[derive(Debug, Clone)]
enum Spec {
    FirstLast(u64, u64),
    From(u64),
    Suffix(u64),
}

impl Spec {
    fn render(&self) -> String {
        match self {
            Spec::FirstLast(a, b) => format!("{a}-{b}"),
            Spec::From(a) => format!("{a}-"),
            Spec::Suffix(n) => format!("-{n}"),
        }
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (position(), position()).prop_map(|(a, b)| Spec::FirstLast(a, b)),
        position().prop_map(Spec::From),
        position().prop_map(Spec::Suffix),
    ]
}

/// Any Range header: well-formed single and multiple ranges, other units, case and whitespace
/// variants, numbers that overflow u64, and garbage.
fn any_range_header() -> impl Strategy<Value = String> {
    let unit = prop_oneof![
        8 => Just("bytes"),
        1 => Just("Bytes"),
        1 => Just("BYTES"),
        1 => Just("items"),
        1 => Just(""),
    ];
    let part = prop_oneof![
        8 => spec().prop_map(|s| s.render()),
        1 => Just("99999999999999999999999-".to_string()),
        1 => Just("-99999999999999999999999".to_string()),
        1 => Just("1-99999999999999999999999".to_string()),
        1 => Just("-".to_string()),
        1 => Just(String::new()),
        1 => Just(" 1-2".to_string()),
        1 => Just("1 -2".to_string()),
        1 => Just("--1".to_string()),
        1 => Just("1-2-3".to_string()),
        1 => Just("+1-2".to_string()),
        1 => "[0-9,= -]{0,8}",
    ];
    (
        unit,
        prop::collection::vec(part, 1..4),
        prop_oneof![Just(","), Just(", "), Just(" ,")],
        prop_oneof![4 => Just("="), 1 => Just(" = "), 1 => Just(""), 1 => Just("==")],
    )
        .prop_map(|(unit, parts, sep, eq)| format!("{unit}{eq}{}", parts.join(sep)))
}

/// RFC 9110 §14.1.2 for one well-formed byte-range-spec.
fn model_range(spec: &Spec, size: u64) -> RangeDecision {
    match *spec {
        // `first > last` makes the whole field invalid: ignored.
        Spec::FirstLast(a, b) if a > b => RangeDecision::Full,
        Spec::FirstLast(a, _) | Spec::From(a) if a >= size => RangeDecision::Unsatisfiable,
        Spec::FirstLast(a, b) => RangeDecision::Partial(a..b.min(size - 1) + 1),
        Spec::From(a) => RangeDecision::Partial(a..size),
        // A suffix is satisfiable only when its length is non-zero and the file is not empty.
        Spec::Suffix(0) => RangeDecision::Unsatisfiable,
        Spec::Suffix(_) if size == 0 => RangeDecision::Unsatisfiable,
        Spec::Suffix(n) => RangeDecision::Partial(size - n.min(size)..size),
    }
}

/// If-Range values: the current strong tag, a weak one, another tag, dates at and around the
/// modification time, garbage.
fn if_range_value() -> impl Strategy<Value = (String, bool)> {
    let lm = LAST_MODIFIED_SECS;
    prop_oneof![
        Just((format!("\"{ETAG}\""), true)),
        Just((format!("W/\"{ETAG}\""), false)),
        Just(("\"other\"".to_string(), false)),
        Just((ETAG.to_string(), false)),
        Just((http_date(lm), true)),
        (1u64..5).prop_map(move |d| (http_date(lm - d), false)),
        (1u64..5).prop_map(move |d| (http_date(lm + d), false)),
        Just(("yesterday".to_string(), false)),
    ]
}

fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

proptest! {
    #![proptest_config(config())]

    /// Invariant 2, for any header: a partial answer is non-empty and inside the file; 416 only
    /// for a single well-formed range that cannot be satisfied.
    #[test]
    fn no_range_yields_bytes_outside_the_file(
        size in size(),
        value in any_range_header(),
        nanos in 0u32..1_000_000_000,
    ) {
        let m = meta(size, nanos);
        match conditional::range(&headers(&[(header::RANGE, value.clone())]), &m) {
            RangeDecision::Partial(r) => {
                prop_assert!(r.start < r.end, "empty range {r:?} for {value:?} size {size}");
                prop_assert!(r.end <= size, "range {r:?} past the end for {value:?} size {size}");
            }
            RangeDecision::Unsatisfiable => {
                let single = match http_range_header::parse_range_header(&value) {
                    Ok(p) => p.ranges.len() == 1,
                    // `bytes=-0`: well-formed, never satisfiable.
                    Err(http_range_header::RangeUnsatisfiableError::ZeroSuffix) => !value.contains(','),
                    Err(_) => false,
                };
                prop_assert!(single, "416 for a header that is not one well-formed range: {value:?}");
            }
            RangeDecision::Full => {}
        }
    }

    /// Invariant 2, exactly: each well-formed single range gets what RFC 9110 §14.1.2 says, and a
    /// failing If-Range turns any range into the whole body.
    #[test]
    fn single_ranges_follow_rfc_9110(
        size in size(),
        spec in spec(),
        if_range in prop::option::of(if_range_value()),
    ) {
        let m = meta(size, 0);
        let mut pairs = vec![(header::RANGE, format!("bytes={}", spec.render()))];
        if let Some((v, _)) = &if_range {
            pairs.push((header::IF_RANGE, v.clone()));
        }
        let got = conditional::range(&headers(&pairs), &m);
        let expected = match &if_range {
            Some((_, false)) => RangeDecision::Full,
            _ => model_range(&spec, size),
        };
        prop_assert_eq!(got, expected, "bytes={} size {} if-range {:?}", spec.render(), size, if_range);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Preconditions
// ---------------------------------------------------------------------------------------------

/// One entity-tag list member, tagged with what it is.
#[derive(Debug, Clone)]
enum Tag {
    Current,
    WeakCurrent,
    Other,
    WeakOther,
    /// Not an entity-tag at all (unquoted, half-quoted, empty).
    Junk(&'static str),
}

impl Tag {
    fn render(&self) -> String {
        match self {
            Tag::Current => format!("\"{ETAG}\""),
            Tag::WeakCurrent => format!("W/\"{ETAG}\""),
            Tag::Other => "\"v0-old\"".into(),
            Tag::WeakOther => "W/\"v0-old\"".into(),
            Tag::Junk(s) => (*s).into(),
        }
    }
}

#[derive(Debug, Clone)]
enum TagField {
    Star,
    List(Vec<Tag>),
}

impl TagField {
    fn render(&self) -> String {
        match self {
            TagField::Star => "*".into(),
            TagField::List(tags) => tags.iter().map(Tag::render).collect::<Vec<_>>().join(", "),
        }
    }
    /// RFC 9110 §13.1.1/§13.1.2: does any member match the current tag (strongly or weakly)?
    fn matches(&self, exists: bool, strong: bool) -> bool {
        match self {
            TagField::Star => exists,
            TagField::List(tags) => {
                exists
                    && tags.iter().any(|t| match t {
                        Tag::Current => true,
                        Tag::WeakCurrent => !strong,
                        _ => false,
                    })
            }
        }
    }
}

fn tag_field() -> impl Strategy<Value = TagField> {
    let tag = prop_oneof![
        3 => Just(Tag::Current),
        2 => Just(Tag::WeakCurrent),
        3 => Just(Tag::Other),
        1 => Just(Tag::WeakOther),
        1 => Just(Tag::Junk("v1-abc")),
        1 => Just(Tag::Junk("\"v1-abc")),
        1 => Just(Tag::Junk("\"\"")),
    ];
    prop_oneof![
        1 => Just(TagField::Star),
        4 => prop::collection::vec(tag, 1..4).prop_map(TagField::List),
    ]
}

/// A date field: seconds relative to the modification time, or something unparsable.
#[derive(Debug, Clone)]
enum DateField {
    At(i64),
    Junk,
}

impl DateField {
    fn render(&self) -> String {
        match self {
            DateField::At(d) => http_date((LAST_MODIFIED_SECS as i64 + d) as u64),
            DateField::Junk => "not a date".into(),
        }
    }
}

fn date_field() -> impl Strategy<Value = DateField> {
    prop_oneof![
        6 => (-3i64..=3).prop_map(DateField::At),
        1 => (-100_000i64..100_000).prop_map(DateField::At),
        1 => Just(DateField::Junk),
    ]
}

#[derive(Debug, Clone)]
struct Conditions {
    method: Method,
    exists: bool,
    nanos: u32,
    if_match: Option<TagField>,
    if_unmodified_since: Option<DateField>,
    if_none_match: Option<TagField>,
    if_modified_since: Option<DateField>,
}

fn conditions() -> impl Strategy<Value = Conditions> {
    (
        prop_oneof![
            4 => Just(Method::GET),
            2 => Just(Method::HEAD),
            2 => Just(Method::PUT),
            1 => Just(Method::DELETE),
            1 => Just(Method::POST),
        ],
        prop_oneof![4 => Just(true), 1 => Just(false)],
        prop_oneof![Just(0u32), 1u32..1_000_000_000],
        prop::option::of(tag_field()),
        prop::option::of(date_field()),
        prop::option::of(tag_field()),
        prop::option::of(date_field()),
    )
        .prop_map(|(method, exists, nanos, im, ius, inm, ims)| Conditions {
            method,
            exists,
            nanos,
            if_match: im,
            if_unmodified_since: ius,
            if_none_match: inm,
            if_modified_since: ims,
        })
}

/// RFC 9110 §13.2.2, step by step. Dates compare at one-second resolution (an HTTP-date has no
/// fraction, so the modification time is truncated); an unparsable date is ignored (§13.1.3,
/// §13.1.4), as is a date condition on a missing artifact (it has no modification date).
fn model_precondition(c: &Conditions) -> Precondition {
    let safe = c.method == Method::GET || c.method == Method::HEAD;
    // Step 1: If-Match; false → 412.
    if let Some(f) = &c.if_match {
        if !f.matches(c.exists, true) {
            return Precondition::Failed;
        }
    } else if let Some(DateField::At(d)) = &c.if_unmodified_since {
        // Step 2: If-Unmodified-Since (only without If-Match); modified after the date → 412.
        if c.exists && 0 > *d {
            return Precondition::Failed;
        }
    }
    // Step 3: If-None-Match; false (a weak match) → 304 for GET/HEAD, else 412.
    if let Some(f) = &c.if_none_match {
        if f.matches(c.exists, false) {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if let (true, Some(DateField::At(d))) = (safe, &c.if_modified_since) {
        // Step 4: If-Modified-Since (GET/HEAD, only without If-None-Match); not modified since → 304.
        if c.exists && 0 <= *d {
            return Precondition::NotModified;
        }
    }
    // Step 5 (If-Range) belongs to the range decision.
    Precondition::Proceed
}

proptest! {
    #![proptest_config(config())]

    /// Invariant 3: `evaluate` agrees with the RFC 9110 §13.2.2 model on every combination.
    #[test]
    fn precedence_matches_rfc_9110(c in conditions()) {
        let mut pairs = Vec::new();
        if let Some(f) = &c.if_match {
            pairs.push((header::IF_MATCH, f.render()));
        }
        if let Some(d) = &c.if_unmodified_since {
            pairs.push((header::IF_UNMODIFIED_SINCE, d.render()));
        }
        if let Some(f) = &c.if_none_match {
            pairs.push((header::IF_NONE_MATCH, f.render()));
        }
        if let Some(d) = &c.if_modified_since {
            pairs.push((header::IF_MODIFIED_SINCE, d.render()));
        }
        let m = meta(7, c.nanos);
        let got = conditional::evaluate(&c.method, &headers(&pairs), c.exists.then_some(&m));
        prop_assert_eq!(got, model_precondition(&c), "{:?} {:?}", c, pairs);
    }

    /// Invariant 3, the "ignore" clauses on their own: a later condition never overrides an
    /// earlier one that is present (If-Unmodified-Since is ignored beside If-Match,
    /// If-Modified-Since beside If-None-Match and on methods other than GET/HEAD).
    #[test]
    fn ignored_conditions_change_nothing(c in conditions(), ius in date_field(), ims in date_field()) {
        let m = meta(7, c.nanos);
        let base = |c: &Conditions| {
            let mut pairs = Vec::new();
            if let Some(f) = &c.if_match { pairs.push((header::IF_MATCH, f.render())); }
            if let Some(d) = &c.if_unmodified_since { pairs.push((header::IF_UNMODIFIED_SINCE, d.render())); }
            if let Some(f) = &c.if_none_match { pairs.push((header::IF_NONE_MATCH, f.render())); }
            if let Some(d) = &c.if_modified_since { pairs.push((header::IF_MODIFIED_SINCE, d.render())); }
            conditional::evaluate(&c.method, &headers(&pairs), c.exists.then_some(&m))
        };
        let before = base(&c);
        let mut changed = c.clone();
        if c.if_match.is_some() {
            changed.if_unmodified_since = Some(ius);
        }
        if c.if_none_match.is_some() || !(c.method == Method::GET || c.method == Method::HEAD) {
            changed.if_modified_since = Some(ims);
        }
        prop_assert_eq!(base(&changed), before);
    }
}
