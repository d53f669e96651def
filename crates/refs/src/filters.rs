//! containerd's list filter language (`pkg/filters`): parse once, match many.
//!
//! A filter string is a comma-separated list of selectors, all of which must
//! match (AND); several strings given together match when any one does (OR):
//!
//! ```text
//! selectors := selector ("," selector)*
//! selector  := fieldpath [operator value]
//! fieldpath := field ("." field)*
//! field     := quoted | [A-Za-z0-9_]+
//! operator  := "==" | "!=" | "~="
//! value     := quoted | [^\s,]+
//! quoted    := "…" with Go escapes; after "~=" also /…/ and |…|
//! ```
//!
//! A selector without operator tests that the field is present. `==` needs
//! the field present and equal; `!=` compares the field's value (empty when
//! absent), so an absent field is "not equal"; `~=` is an unanchored regular
//! expression search over the value.
//!
//! The scanner and parser follow containerd's state machine, so errors name
//! the same position and read the same:
//! `filters: parse error: [labels. >|||< foo|==x]: invalid quote encountered`.
//! One deliberate difference: containerd compiles a `~=` expression lazily and
//! an invalid one silently matches nothing; here it is a parse error at the
//! value, and expressions are compiled with a size limit
//! ([`REGEX_SIZE_LIMIT`]) so a hostile filter cannot exhaust memory.
//!
//! ```
//! use imgstore_refs::filters::{Adaptor, Filter};
//!
//! struct Named(&'static str);
//! impl Adaptor for Named {
//!     fn field(&self, path: &[String]) -> Option<&str> {
//!         (path[0] == "name").then_some(self.0)
//!     }
//! }
//!
//! let filter = Filter::parse_all(["name==busybox", "name~=^alp"])?;
//! assert!(filter.matches(&Named("busybox")));
//! assert!(filter.matches(&Named("alpine")));
//! assert!(!filter.matches(&Named("debian")));
//!
//! let err = Filter::parse("name==foo,").unwrap_err();
//! assert_eq!(err.to_string(), "filters: parse error: [name==foo,]: expected field or quoted");
//! # Ok::<(), imgstore_refs::filters::FilterError>(())
//! ```

use std::fmt;

use regex::{Regex, RegexBuilder};

/// The compiled size limit of one `~=` expression (bytes of program); larger
/// expressions are refused when the filter is parsed.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Something a [`Filter`] can look at: maps a field path to a value.
pub trait Adaptor {
    /// The value at `path` (never empty: a filter path has at least one
    /// field), or `None` when the field is not present. `Some("")` is a
    /// present, empty value.
    fn field(&self, path: &[String]) -> Option<&str>;
}

/// How a [`Selector`] compares a field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// No operator: the field must be present.
    Present,
    /// `==`: present and equal.
    Equal,
    /// `!=`: the value (empty when absent) differs.
    NotEqual,
    /// `~=`: the regular expression matches somewhere in the value (empty when absent).
    Matches,
}

impl fmt::Display for Operator {
    /// containerd's names: `?`, `==`, `!=`, `~=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Present => "?",
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
            Operator::Matches => "~=",
        })
    }
}

/// One `fieldpath [operator value]` test.
#[derive(Debug, Clone)]
pub struct Selector {
    fieldpath: Vec<String>,
    operator: Operator,
    value: String,
    regex: Option<Regex>,
}

impl Selector {
    /// The field path, unquoted: `labels."a.b"` is `["labels", "a.b"]`.
    pub fn fieldpath(&self) -> &[String] {
        &self.fieldpath
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The value, unquoted (empty for [`Operator::Present`]).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// True when the selector holds for `target`.
    pub fn matches<A: Adaptor + ?Sized>(&self, target: &A) -> bool {
        let field = target.field(&self.fieldpath);
        match self.operator {
            Operator::Present => field.is_some(),
            Operator::Equal => field == Some(self.value.as_str()),
            Operator::NotEqual => field.unwrap_or("") != self.value,
            Operator::Matches => self
                .regex
                .as_ref()
                .is_some_and(|re| re.is_match(field.unwrap_or(""))),
        }
    }
}

/// A parsed filter: any of its alternatives (filter strings), each a list of
/// selectors that must all match. The empty filter matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `None` inside: an empty string, which matches everything.
    alternatives: Vec<Option<Vec<Selector>>>,
}

impl Filter {
    /// The filter that matches everything.
    pub fn always() -> Filter {
        Filter::default()
    }

    /// Parses one filter string; `""` matches everything.
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        let alternative = parse_selectors(input)?;
        Ok(Filter {
            alternatives: vec![alternative],
        })
    }

    /// Parses several filter strings into one filter that matches when any of
    /// them does (containerd's `ParseAll`); no strings at all match everything.
    pub fn parse_all<I>(inputs: I) -> Result<Filter, FilterError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let alternatives = inputs
            .into_iter()
            .map(|input| parse_selectors(input.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Filter { alternatives })
    }

    /// True when this filter matches everything without looking.
    pub fn is_always(&self) -> bool {
        self.alternatives.is_empty() || self.alternatives.iter().any(Option::is_none)
    }

    /// The alternatives: each a list of selectors that must all match; an
    /// empty list (from `""`) matches everything.
    pub fn alternatives(&self) -> impl Iterator<Item = &[Selector]> {
        self.alternatives
            .iter()
            .map(|a| a.as_deref().unwrap_or_default())
    }

    /// True when `target` matches.
    pub fn matches<A: Adaptor + ?Sized>(&self, target: &A) -> bool {
        self.alternatives.is_empty()
            || self
                .alternatives
                .iter()
                .any(|alternative| match alternative {
                    None => true,
                    Some(selectors) => selectors.iter().all(|s| s.matches(target)),
                })
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}

/// A filter string that does not parse: where, and why.
///
/// Displays as containerd does: `filters: parse error: [before >|c|< after]: message`,
/// or `filters: parse error: [input]: message` when the problem is at the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filters: parse error: {}", self.located())]
pub struct FilterError {
    input: String,
    position: usize,
    message: String,
}

impl FilterError {
    /// The whole filter string.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Byte offset of the offending character (the input's length when the
    /// input ended too early).
    pub fn position(&self) -> usize {
        self.position
    }

    /// What was wrong, e.g. `expected field or quoted`.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn located(&self) -> String {
        match self
            .input
            .get(self.position..)
            .and_then(|s| s.chars().next())
        {
            Some(c) => {
                let after = self.position + c.len_utf8();
                format!(
                    "[{} >|{}|< {}]: {}",
                    &self.input[..self.position],
                    c,
                    &self.input[after..],
                    self.message
                )
            }
            None => format!("[{}]: {}", self.input, self.message),
        }
    }
}

// ---------------------------------------------------------------------------
// Scanner: containerd's, token for token.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Eof,
    Quoted,
    Value,
    Field,
    Separator,
    Operator,
    /// The scanner's message says why.
    Illegal(&'static str),
    /// A character that starts no token.
    Other(char),
}

struct Scanner<'a> {
    input: &'a str,
    /// Start of the character last read.
    pos: usize,
    /// End of the character last read.
    ppos: usize,
    /// After an operator, the next plain text is a value, not a field.
    value: bool,
    error: &'static str,
}

const NOT_TERMINATED: &str = "quoted literal not terminated";

fn is_field_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '~')
}

fn is_quote_char(c: char) -> bool {
    matches!(c, '/' | '|' | '"')
}

fn is_separator_char(c: char) -> bool {
    matches!(c, ',' | '.')
}

/// Go's `unicode.IsGraphic || IsPunct || ...` less `,` and spaces; control
/// characters stand in for the non-graphic ones.
fn is_value_char(c: char) -> bool {
    c != ',' && !c.is_whitespace() && !c.is_control()
}

fn digit_value(c: Option<char>) -> u32 {
    c.and_then(|c| c.to_digit(16)).unwrap_or(16)
}

impl<'a> Scanner<'a> {
    fn new(input: &'a str) -> Scanner<'a> {
        Scanner {
            input,
            pos: 0,
            ppos: 0,
            value: false,
            error: "",
        }
    }

    fn next(&mut self) -> Option<char> {
        self.pos = self.ppos;
        let c = self.input[self.ppos..].chars().next()?;
        self.ppos += c.len_utf8();
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.input[self.ppos..].chars().next()
    }

    fn scan(&mut self) -> (usize, Token, &'a str) {
        let mut ch = self.next();
        let mut pos = self.pos;
        loop {
            let token = match ch {
                None => return (self.pos, Token::Eof, ""),
                Some('\0') => return (self.pos, Token::Illegal("unexpected null"), ""),
                Some(c) if is_quote_char(c) => {
                    if self.scan_quoted(c) {
                        Token::Quoted
                    } else {
                        Token::Illegal(self.error)
                    }
                }
                Some(c) if is_separator_char(c) => {
                    self.value = false;
                    Token::Separator
                }
                Some(c) if is_operator_char(c) => {
                    while self.peek().is_some_and(is_operator_char) {
                        self.next();
                    }
                    self.value = true;
                    Token::Operator
                }
                Some(c) if c.is_whitespace() => {
                    ch = self.next();
                    pos = self.pos;
                    continue;
                }
                Some(_) if self.value => {
                    while self.peek().is_some_and(is_value_char) {
                        self.next();
                    }
                    self.value = false;
                    Token::Value
                }
                Some(c) if is_field_char(c) => {
                    while self.peek().is_some_and(is_field_char) {
                        self.next();
                    }
                    Token::Field
                }
                Some(c) => return (self.pos, Token::Other(c), ""),
            };
            return (pos, token, &self.input[pos..self.ppos]);
        }
    }

    /// Reads up to the closing `quote`; false (with `error` set) when the
    /// literal is unterminated or holds a bad escape.
    fn scan_quoted(&mut self, quote: char) -> bool {
        let mut legal = true;
        let mut ch = self.next();
        while ch != Some(quote) {
            match ch {
                None | Some('\n') | Some('\0') => {
                    self.error = NOT_TERMINATED;
                    return false;
                }
                Some('\\') => {
                    let (next, ok) = self.scan_escape(quote);
                    legal &= ok;
                    ch = next;
                }
                Some(_) => ch = self.next(),
            }
        }
        legal
    }

    fn scan_escape(&mut self, quote: char) -> (Option<char>, bool) {
        let ch = self.next();
        match ch {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => (self.next(), true),
            Some(c) if c == quote => (self.next(), true),
            Some('0'..='7') => self.scan_digits(ch, 8, 3),
            Some('x') => {
                let first = self.next();
                self.scan_digits(first, 16, 2)
            }
            Some('u') => {
                let first = self.next();
                self.scan_digits(first, 16, 4)
            }
            Some('U') => {
                let first = self.next();
                self.scan_digits(first, 16, 8)
            }
            _ => {
                self.error = "illegal escape sequence";
                (ch, false)
            }
        }
    }

    fn scan_digits(
        &mut self,
        mut ch: Option<char>,
        base: u32,
        mut n: usize,
    ) -> (Option<char>, bool) {
        while n > 0 && digit_value(ch) < base {
            ch = self.next();
            n -= 1;
        }
        if n > 0 {
            self.error = "illegal numeric escape sequence";
            return (ch, false);
        }
        (ch, true)
    }
}

// ---------------------------------------------------------------------------
// Parser: containerd's recursive descent, same checks in the same order.

struct Parser<'a> {
    input: &'a str,
    scanner: Scanner<'a>,
}

/// `None` for the empty string (matches everything).
fn parse_selectors(input: &str) -> Result<Option<Vec<Selector>>, FilterError> {
    if input.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        input,
        scanner: Scanner::new(input),
    };
    parser.selectors().map(Some)
}

impl<'a> Parser<'a> {
    fn error(&self, position: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            input: self.input.to_owned(),
            position,
            message: message.into(),
        }
    }

    fn selectors(&mut self) -> Result<Vec<Selector>, FilterError> {
        let mut selectors = vec![self.selector()?];
        loop {
            match self.scanner.peek() {
                Some(',') => {
                    let (pos, token, _) = self.scanner.scan();
                    if token != Token::Separator {
                        return Err(self.error(pos, "expected a separator"));
                    }
                    selectors.push(self.selector()?);
                }
                None => return Ok(selectors),
                Some('\0') => return Err(self.error(self.scanner.ppos, "unexpected null")),
                Some(c) => {
                    return Err(self.error(self.scanner.ppos, format!("unexpected input: {c}")));
                }
            }
        }
    }

    fn selector(&mut self) -> Result<Selector, FilterError> {
        let fieldpath = self.fieldpath()?;
        if matches!(self.scanner.peek(), Some(',') | None) {
            return Ok(Selector {
                fieldpath,
                operator: Operator::Present,
                value: String::new(),
                regex: None,
            });
        }
        let operator = self.operator()?;
        let (pos, value) = self.value(operator == Operator::Matches)?;
        let regex = if operator == Operator::Matches {
            let compiled = RegexBuilder::new(&value)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let reason = match e {
                        regex::Error::CompiledTooBig(limit) => {
                            format!("regular expression larger than {limit} bytes when compiled")
                        }
                        other => {
                            let text = other.to_string();
                            let last = text.lines().last().unwrap_or_default().trim();
                            let last = last.strip_prefix("error: ").unwrap_or(last);
                            format!("invalid regular expression: {last}")
                        }
                    };
                    self.error(pos, reason)
                })?;
            Some(compiled)
        } else {
            None
        };
        Ok(Selector {
            fieldpath,
            operator,
            value,
            regex,
        })
    }

    fn fieldpath(&mut self) -> Result<Vec<String>, FilterError> {
        let mut fields = vec![self.field()?];
        while self.scanner.peek() == Some('.') {
            let (pos, token, _) = self.scanner.scan();
            if token != Token::Separator {
                return Err(self.error(pos, "expected a field separator (`.`)"));
            }
            fields.push(self.field()?);
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<String, FilterError> {
        let (pos, token, text) = self.scanner.scan();
        match token {
            Token::Field => Ok(text.to_owned()),
            Token::Quoted => self.unquote(pos, text, false),
            Token::Illegal(message) => Err(self.error(pos, message)),
            _ => Err(self.error(pos, "expected field or quoted")),
        }
    }

    fn operator(&mut self) -> Result<Operator, FilterError> {
        let (pos, token, text) = self.scanner.scan();
        match token {
            Token::Operator => match text {
                "==" => Ok(Operator::Equal),
                "!=" => Ok(Operator::NotEqual),
                "~=" => Ok(Operator::Matches),
                other => Err(self.error(pos, format!("unsupported operator {other:?}"))),
            },
            Token::Illegal(message) => Err(self.error(pos, message)),
            _ => Err(self.error(pos, r#"expected an operator ("=="|"!="|"~=")"#)),
        }
    }

    fn value(&mut self, allow_alternative_quotes: bool) -> Result<(usize, String), FilterError> {
        let (pos, token, text) = self.scanner.scan();
        match token {
            Token::Value | Token::Field => Ok((pos, text.to_owned())),
            Token::Quoted => Ok((pos, self.unquote(pos, text, allow_alternative_quotes)?)),
            Token::Illegal(message) => Err(self.error(pos, message)),
            _ => Err(self.error(pos, "expected value or quoted")),
        }
    }

    fn unquote(
        &self,
        pos: usize,
        text: &str,
        allow_alternatives: bool,
    ) -> Result<String, FilterError> {
        if !allow_alternatives && !text.starts_with('"') {
            return Err(self.error(pos, "invalid quote encountered"));
        }
        unquote(text).map_err(|reason| self.error(pos, format!("unquoting failed: {reason}")))
    }
}

/// Decodes a literal quoted with `"`, `/` or `|` (Go string escapes, and
/// `\` + the quote character for the quote itself).
fn unquote(text: &str) -> Result<String, &'static str> {
    let mut chars = text.chars();
    let quote = chars.next().ok_or("invalid syntax")?;
    if chars.next_back() != Some(quote) || text.len() < 2 {
        return Err("invalid syntax");
    }
    let body = chars.as_str();
    if !body.contains('\\') {
        return Ok(body.to_owned());
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut rest = body.chars();
    while let Some(c) = rest.next() {
        if c == quote || c == '\n' {
            return Err("invalid syntax");
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let escaped = rest.next().ok_or("invalid syntax")?;
        let simple = match escaped {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match escaped {
            '0'..='7' => {
                let mut value = escaped.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let digit = rest
                        .next()
                        .and_then(|d| d.to_digit(8))
                        .ok_or("invalid syntax")?;
                    value = value * 8 + digit;
                }
                out.push(u8::try_from(value).map_err(|_| "invalid syntax")?);
            }
            'x' | 'u' | 'U' => {
                let digits = match escaped {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut value: u32 = 0;
                for _ in 0..digits {
                    let digit = rest
                        .next()
                        .and_then(|d| d.to_digit(16))
                        .ok_or("invalid syntax")?;
                    value = value << 4 | digit;
                }
                if escaped == 'x' {
                    // A single byte, which may not be UTF-8 on its own (checked at the end).
                    out.push(u8::try_from(value).map_err(|_| "invalid syntax")?);
                } else {
                    let c = char::from_u32(value).ok_or("invalid syntax")?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
            _ => return Err("invalid syntax"),
        }
    }
    String::from_utf8(out).map_err(|_| "not valid UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: &str) -> Vec<(usize, Token, String)> {
        let mut scanner = Scanner::new(input);
        let mut out = Vec::new();
        loop {
            let (pos, token, text) = scanner.scan();
            out.push((pos, token, text.to_owned()));
            if token == Token::Eof {
                return out;
            }
        }
    }

    #[test]
    fn scanner_positions_follow_containerd() {
        use Token::*;
        let t = |pos, token, text: &str| (pos, token, text.to_owned());
        assert_eq!(
            tokens("name==value,foo!=bar"),
            vec![
                t(0, Field, "name"),
                t(4, Operator, "=="),
                t(6, Value, "value"),
                t(11, Separator, ","),
                t(12, Field, "foo"),
                t(15, Operator, "!="),
                t(17, Value, "bar"),
                t(20, Eof, ""),
            ]
        );
        assert_eq!(
            tokens("name~=牛,labels.moo=true"),
            vec![
                t(0, Field, "name"),
                t(4, Operator, "~="),
                t(6, Value, "牛"),
                t(9, Separator, ","),
                t(10, Field, "labels"),
                t(16, Separator, "."),
                t(17, Field, "moo"),
                t(20, Operator, "="),
                t(21, Value, "true"),
                t(25, Eof, ""),
            ]
        );
        assert_eq!(
            tokens("foo = bar    "),
            vec![
                t(0, Field, "foo"),
                t(4, Operator, "="),
                t(6, Value, "bar"),
                t(13, Eof, ""),
            ]
        );
        assert_eq!(
            tokens("foo\0bar"),
            vec![
                t(0, Field, "foo"),
                t(3, Illegal("unexpected null"), ""),
                t(4, Field, "bar"),
                t(7, Eof, ""),
            ]
        );
        assert_eq!(
            tokens("labels.containerd.io/key==value"),
            vec![
                t(0, Field, "labels"),
                t(6, Separator, "."),
                t(7, Field, "containerd"),
                t(17, Separator, "."),
                t(18, Field, "io"),
                t(20, Illegal(NOT_TERMINATED), "/key==value"),
                t(31, Eof, ""),
            ]
        );
        assert_eq!(
            tokens("labels.\"containerd.io\nkey\"==value"),
            vec![
                t(0, Field, "labels"),
                t(6, Separator, "."),
                t(7, Illegal(NOT_TERMINATED), "\"containerd.io\n"),
                t(22, Field, "key"),
                t(25, Illegal(NOT_TERMINATED), "\"==value"),
                t(33, Eof, ""),
            ]
        );
        assert_eq!(
            tokens(r#"labels."\g""#)[2],
            t(7, Illegal("illegal escape sequence"), r#""\g""#)
        );
        assert_eq!(
            tokens(r#"labels."\xaz""#)[2],
            t(7, Illegal("illegal numeric escape sequence"), r#""\xaz""#)
        );
        assert_eq!(
            tokens("input~=|foo/bar|,id!=ff")[2],
            t(7, Quoted, "|foo/bar|")
        );
    }

    #[test]
    fn unquote_handles_go_escapes_and_alternative_quotes() {
        assert_eq!(unquote(r#""a\tb\\c\"""#), Ok("a\tb\\c\"".to_owned()));
        assert_eq!(unquote(r"/foo\/bar/"), Ok("foo/bar".to_owned()));
        assert_eq!(unquote(r"|a\|b|"), Ok("a|b".to_owned()));
        assert_eq!(
            unquote(r#""\x41\101\u00e9\U0001F600""#),
            Ok("AAé😀".to_owned())
        );
        assert_eq!(unquote(r#""\777""#), Err("invalid syntax"));
        assert_eq!(unquote(r#""\xff""#), Err("not valid UTF-8"));
    }
}
