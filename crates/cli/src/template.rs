//! Docker's `--format` templates: the part of Go's `text/template` a Docker
//! user writes, over a `serde_json::Value`, with Docker's functions and
//! Docker's `table` formats.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and
//! `{{/* comments */}}`; fields (`.Config.Env`), `.`, `$`, variables
//! (`$x := …`, `$x = …`), string (`"…"`, `` `…` ``), number, `true`/`false`
//! and `nil` literals; pipelines (`a | b`) and parenthesised ones;
//! `if`/`else if`/`else`, `range` (with `$i, $e :=`, `else`), `with`
//! (`else`); Go's functions `and`, `or`, `not`, `len`, `index`, `print`,
//! `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, and Docker's
//! `json`, `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`.
//! Not supported (a parse error names them): `define`, `template`,
//! `block`, `break`, `continue`.
//!
//! Values print as Go's `fmt` prints the `map[string]interface{}` Docker
//! decodes inspect JSON into: lists `[A=1 B=2]`, maps `map[k:v]` with
//! sorted keys (an empty object inside a map, Docker's `struct{}`, as
//! `{}`), a null or missing value `<no value>` (inside a list `<nil>`);
//! `{{json .}}` is Go's compact JSON (`<`, `>`, `&` left as they are,
//! but inside Docker's row objects, which escape them).
//! A field the value lacks prints `<no value>` with [`render`] and is an
//! error (`map has no entry for key "Foo"`) with [`render_inspect`] and
//! [`render_rows`], as in Docker. `index` of a key a map lacks gives `""`
//! (the zero value of the `map[string]string` Docker's labels are).
//!
//! Where Docker formats a typed Go struct, the output can differ, since a
//! `Value` has no Go types: a struct prints as a map (`{{.Config}}`), a
//! null list or map prints `<no value>` where Go prints `[]` or `map[]`,
//! `{{json .}}` writes an object's keys sorted, as Go writes a map's,
//! where Go keeps a struct's field order (except for the structs of the
//! inspect and `system df -v` objects, [`GO_STRUCT_FIELDS`]: `{{json
//! .Config}}` is Docker's), and an error message names `interface {}`/
//! `int64` where Go names the struct's types.
//!
//! [`render`] runs one template on one value (Go's defaults);
//! [`render_inspect`] is `docker inspect -f`; [`render_rows`] does what
//! Docker's formatter does for `images`, `history` and `df` (`table`
//! prefix, `\t`, header row, column alignment).

use std::fmt;

use serde_json::{Number, Value};

/// Why a template could not be parsed or run, in Go's words
/// (`template: :1: function "foo" not defined`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template is not valid.
    Parse {
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Running the template on a value failed.
    Execute {
        /// 1-based line of the action.
        line: usize,
        /// 0-based byte column of the action's node, as Go counts it.
        column: usize,
        /// The node's text (`.Config.Foo`, `index .RepoTags 5`).
        node: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Parse { line, message } => write!(f, "template: :{line}: {message}"),
            TemplateError::Execute {
                line,
                column,
                node,
                message,
            } => write!(
                f,
                "template: :{line}:{column}: executing \"\" at <{node}>: {message}"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Docker 20.10's `images` table (`formatter.defaultImageTableFormat`).
pub const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
/// Docker's `images --digests` table.
pub const IMAGES_TABLE_WITH_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
/// Docker's `-q` format (`images -q`, `history -q`).
pub const QUIET_FORMAT: &str = "{{.ID}}";
/// Docker's `history` table.
pub const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
/// Docker's `history --human=false` table.
pub const HISTORY_TABLE_NOT_HUMAN: &str =
    "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
/// Docker's `system df` table.
pub const DF_TABLE: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
/// Docker's `system df -v` images table (its rows take [`IMAGES_HEADERS`]).
pub const DF_IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.VirtualSize}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";

/// Docker's column titles for `images` (and `system df -v`'s images):
/// `table {{.ID}}` prints `IMAGE ID` above the IDs.
pub const IMAGES_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

/// Docker's column titles for `history`.
pub const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// Docker's column titles for `system df` (the summary rows).
pub const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

/// Runs `template` on `value` as Go's `text/template` with Docker's
/// functions does, as `docker inspect -f` does for one object (without
/// the newline Docker prints after it).
///
/// ```ignore
/// let env = serde_json::json!({"Config": {"Env": ["A=1", "B=2"]}});
/// assert_eq!(render("{{.Config.Env}}", &env)?, "[A=1 B=2]");
/// ```
// Go's defaults, what the tests check the language against; the binary
// runs Docker's typed objects, where a missing field is an error, with
// `render_inspect` and `render_rows`.
#[allow(dead_code)]
pub fn render(template: &str, value: &Value) -> Result<String, TemplateError> {
    let template = Template::parse(template)?;
    let mut out = String::new();
    template.execute(value, Functions::Docker, MissingKey::Print, &mut out)?;
    Ok(out)
}

/// `docker inspect -f`: [`render`], except that a field the value lacks
/// is an error (`map has no entry for key "Foo"`), as Docker runs its
/// templates on inspect JSON (`missingkey=error`).
pub fn render_inspect(template: &str, value: &Value) -> Result<String, TemplateError> {
    let template = Template::parse(template)?;
    let mut out = String::new();
    template.execute(value, Functions::Docker, MissingKey::Error, &mut out)?;
    Ok(out)
}

/// Whether `template` parses, as Docker checks an inspect template before
/// it looks up any object.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    Template::parse(template).map(|_| ())
}

/// Whether a `--format` value is one of Docker's table formats
/// (`table`, `table {{.ID}}\t{{.Size}}`).
pub fn is_table(format: &str) -> bool {
    format.starts_with("table")
}

/// Docker's formatter for a list (`images`, `history`, `df`): the format
/// loses a `table` prefix and surrounding spaces, a literal `\t` or `\n`
/// becomes a tab or newline, each row prints followed by a newline; a
/// table format first prints a header (the template run on `headers`,
/// Docker's titles for each field, with `json`, `lower` and the like
/// leaving titles as they are) and aligns tab-separated columns as Go's
/// `tabwriter` (minimum width 10, padding 3).
///
/// A bare `table` is the caller's default table format; resolve it first.
pub fn render_rows(
    format: &str,
    rows: &[Value],
    headers: &[(&str, &str)],
) -> Result<String, TemplateError> {
    let table = is_table(format);
    let template = Template::parse(&docker_format(format))?;
    let mut body = String::new();
    for row in rows {
        // Docker's rows are Go structs: a field they lack is an error.
        template.execute(row, Functions::Docker, MissingKey::Error, &mut body)?;
        body.push('\n');
    }
    if !table {
        return Ok(body);
    }
    let titles: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(field, title)| ((*field).to_owned(), Value::String((*title).to_owned())))
        .collect();
    let mut text = String::new();
    // Docker ignores a failing header: what printed before the failure stays.
    let _ = template.execute(
        &Value::Object(titles),
        Functions::Header,
        MissingKey::Print,
        &mut text,
    );
    text.push('\n');
    text.push_str(&body);
    Ok(tabwriter(&text))
}

/// The template text Docker's formatter runs for a `--format` value
/// (`formatter.Context.preFormat`): without a `table` prefix and the
/// spaces around it, a literal `\t` or `\n` a tab or newline.
pub fn docker_format(format: &str) -> String {
    let text = if is_table(format) {
        &format["table".len()..]
    } else {
        format
    };
    text.trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// Go's `text/tabwriter` as Docker configures it (`NewWriter(w, 10, 1, 3,
/// ' ', 0)`): tab-terminated cells of consecutive lines form a column as
/// wide as its widest cell plus 3, at least 10; a line's last cell (after
/// its last tab) is not aligned.
pub fn tabwriter(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, &mut out);
    out
}

/// Go's `tabwriter.format`: finds the block of lines that has a cell in
/// the next column, fixes that column's width, and recurses right.
fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = MIN_WIDTH;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
) {
    for (index, cells) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(j) {
                let pad = width.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        // The text after the last newline is the (unterminated) last line.
        if index + 1 < lines.len() {
            out.push('\n');
        }
    }
}

// ---------------------------------------------------------------------------
// Lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte offset in the template.
    pos: usize,
    /// Byte offset just past the token.
    end: usize,
    space_before: bool,
}

/// The template cut into text and actions.
enum Segment {
    Text(String),
    Action { tokens: Vec<Token>, pos: usize },
}

fn line_of(source: &str, pos: usize) -> usize {
    1 + source[..pos.min(source.len())].matches('\n').count()
}

fn parse_error(source: &str, pos: usize, message: impl Into<String>) -> TemplateError {
    TemplateError::Parse {
        line: line_of(source, pos),
        message: message.into(),
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn segments(source: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut out = Vec::new();
    let mut rest_at = 0;
    let mut trim_next_text = false;
    while rest_at <= source.len() {
        let rest = &source[rest_at..];
        let open = rest.find("{{");
        let mut text = &rest[..open.unwrap_or(rest.len())];
        if trim_next_text {
            text = text.trim_start_matches(is_space);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                out.push(Segment::Text(text.to_owned()));
            }
            break;
        };
        let mut at = rest_at + open + 2;
        let after = &source[at..];
        let trim_left = after.starts_with('-') && after[1..].starts_with(is_space);
        if trim_left {
            text = text.trim_end_matches(is_space);
            at += 2;
        }
        if !text.is_empty() {
            out.push(Segment::Text(text.to_owned()));
        }
        let inner = source[at..].trim_start_matches(is_space);
        if inner.starts_with("/*") {
            let comment_at = source.len() - inner.len();
            let close = inner
                .find("*/")
                .ok_or_else(|| parse_error(source, comment_at, "unclosed comment"))?;
            let after = &inner[close + 2..];
            let (trim_right, skip) = if after.starts_with("}}") {
                (false, 2)
            } else if after.starts_with(" -}}") {
                (true, 4)
            } else {
                return Err(parse_error(
                    source,
                    comment_at,
                    "comment ends before closing delimiter",
                ));
            };
            trim_next_text = trim_right;
            rest_at = source.len() - after.len() + skip;
            continue;
        }
        let (tokens, end, trim_right) = lex_action(source, at)?;
        out.push(Segment::Action { tokens, pos: at });
        trim_next_text = trim_right;
        rest_at = end;
    }
    Ok(out)
}

/// Lexes the action starting at `at` (just past `{{` and a trim marker);
/// returns its tokens, the offset past `}}`, and whether it ends `-}}`.
fn lex_action(source: &str, mut at: usize) -> Result<(Vec<Token>, usize, bool), TemplateError> {
    let mut tokens = Vec::new();
    let start = at;
    loop {
        let before = at;
        while let Some(c) = source[at..].chars().next().filter(|c| is_space(*c)) {
            at += c.len_utf8();
        }
        let space_before = at > before;
        let rest = &source[at..];
        if rest.is_empty() {
            return Err(parse_error(source, start, "unclosed action"));
        }
        if space_before && rest.starts_with("-}}") {
            return Ok((tokens, at + 3, true));
        }
        if rest.starts_with("}}") {
            return Ok((tokens, at + 2, false));
        }
        let pos = at;
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or(' ');
        let next = chars.next();
        let (tok, len) = match c {
            '|' => (Tok::Pipe, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            ':' if next == Some('=') => (Tok::Declare, 2),
            '=' => (Tok::Assign, 1),
            '"' => lex_quoted(source, at)?,
            '`' => {
                let close = rest[1..]
                    .find('`')
                    .ok_or_else(|| parse_error(source, at, "unterminated raw quoted string"))?;
                (Tok::Str(rest[1..1 + close].to_owned()), close + 2)
            }
            '\'' => lex_char(source, at)?,
            '$' => {
                let len = 1 + word_len(&rest[1..]);
                (Tok::Var(rest[..len].to_owned()), len)
            }
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => lex_number(source, at)?,
            '.' => {
                let len = word_len(&rest[1..]);
                if len == 0 {
                    (Tok::Dot, 1)
                } else {
                    (Tok::Field(rest[1..1 + len].to_owned()), 1 + len)
                }
            }
            '0'..='9' => lex_number(source, at)?,
            '-' | '+' if next.is_some_and(|n| n.is_ascii_digit() || n == '.') => {
                lex_number(source, at)?
            }
            c if c.is_alphabetic() || c == '_' => {
                let len = word_len(rest);
                let word = &rest[..len];
                let tok = match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(word.to_owned()),
                };
                (tok, len)
            }
            other => {
                return Err(parse_error(
                    source,
                    at,
                    format!("unexpected {other:?} in command"),
                ));
            }
        };
        at += len;
        tokens.push(Token {
            tok,
            pos,
            end: at,
            space_before,
        });
    }
}

fn word_len(text: &str) -> usize {
    text.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(text.len(), |(i, _)| i)
}

fn lex_quoted(source: &str, at: usize) -> Result<(Tok, usize), TemplateError> {
    let rest = &source[at + 1..];
    let mut value = String::new();
    let mut chars = rest.char_indices();
    let unterminated = || parse_error(source, at, "unterminated quoted string");
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(value), i + 2)),
            '\n' => return Err(unterminated()),
            '\\' => {
                let (_, e) = chars.next().ok_or_else(unterminated)?;
                let mut hex = |n: usize| -> Result<char, TemplateError> {
                    let digits: String = (0..n)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    u32::from_str_radix(&digits, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| parse_error(source, at, "invalid syntax"))
                };
                value.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    '\\' => '\\',
                    '"' => '"',
                    'x' => hex(2)?,
                    'u' => hex(4)?,
                    'U' => hex(8)?,
                    _ => return Err(parse_error(source, at, "invalid syntax")),
                });
            }
            c => value.push(c),
        }
    }
    Err(unterminated())
}

fn lex_char(source: &str, at: usize) -> Result<(Tok, usize), TemplateError> {
    let rest = &source[at + 1..];
    let mut chars = rest.chars();
    match (chars.next(), chars.next()) {
        (Some(c), Some('\'')) if c != '\\' && c != '\'' => {
            Ok((Tok::Int(i64::from(u32::from(c))), 2 + c.len_utf8()))
        }
        _ => Err(parse_error(
            source,
            at,
            "unsupported character constant (only 'x')",
        )),
    }
}

fn lex_number(source: &str, at: usize) -> Result<(Tok, usize), TemplateError> {
    let rest = &source[at..];
    let len = rest
        .char_indices()
        .skip(1)
        .find(|(i, c)| {
            let exponent_sign = matches!(c, '+' | '-')
                && rest[..*i].ends_with(['e', 'E'])
                && !rest.starts_with("0x");
            !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || exponent_sign)
        })
        .map_or(rest.len(), |(i, _)| i);
    let text = &rest[..len];
    let bad = || parse_error(source, at, format!("bad number syntax: {text:?}"));
    let (negative, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits.replace('_', "");
    let radix = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ]
    .iter()
    .find_map(|(prefix, radix)| digits.strip_prefix(prefix).map(|d| (d.to_owned(), *radix)));
    let int = match &radix {
        Some((d, radix)) => i64::from_str_radix(d, *radix).ok(),
        None if digits.len() > 1
            && digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            i64::from_str_radix(&digits[1..], 8).ok()
        }
        None => digits.parse::<i64>().ok(),
    };
    if let Some(int) = int {
        return Ok((Tok::Int(if negative { -int } else { int }), len));
    }
    if let (None, Ok(float)) = (&radix, digits.parse::<f64>()) {
        return Ok((Tok::Float(if negative { -float } else { float }), len));
    }
    Err(bad())
}

// ---------------------------------------------------------------------------
// Parsing

/// A parsed template.
struct Template {
    source: String,
    nodes: Vec<Node>,
}

enum Node {
    Text(String),
    Output(Pipeline),
    If {
        condition: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

struct Pipeline {
    /// Declared or assigned variables (`$i, $e := …`).
    variables: Vec<String>,
    /// `=` rather than `:=`.
    assign: bool,
    commands: Vec<CommandNode>,
}

struct CommandNode {
    pos: usize,
    text: String,
    operands: Vec<Operand>,
}

struct Operand {
    pos: usize,
    text: String,
    term: Term,
    fields: Vec<String>,
}

enum Term {
    Dot,
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Function(String),
    Pipeline(Box<Pipeline>),
}

/// How the block being parsed ended.
enum Stop {
    End,
    Else,
    ElseIf(Pipeline),
    Eof,
}

const FUNCTIONS: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

struct Parser<'a> {
    source: &'a str,
    segments: std::vec::IntoIter<Segment>,
    /// Variables in scope, innermost last.
    scope: Vec<String>,
}

impl Template {
    fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parser = Parser {
            source,
            segments: segments(source)?.into_iter(),
            scope: vec!["$".to_owned()],
        };
        let (nodes, stop) = parser.list()?;
        match stop {
            Stop::Eof => Ok(Template {
                source: source.to_owned(),
                nodes,
            }),
            Stop::End => Err(parse_error(source, source.len(), "unexpected {{end}}")),
            Stop::Else | Stop::ElseIf(_) => {
                Err(parse_error(source, source.len(), "unexpected {{else}}"))
            }
        }
    }
}

impl Parser<'_> {
    fn error(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        parse_error(self.source, pos, message)
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of the template.
    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(segment) = self.segments.next() {
            let (tokens, pos) = match segment {
                Segment::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Segment::Action { tokens, pos } => (tokens, pos),
            };
            let keyword = match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident(word)) => word.as_str(),
                _ => "",
            };
            match keyword {
                "end" => {
                    self.expect_alone(&tokens, "end")?;
                    return Ok((nodes, Stop::End));
                }
                "else" => {
                    if matches!(tokens.get(1).map(|t| &t.tok), Some(Tok::Ident(word)) if word == "if")
                    {
                        let pipeline = self.pipeline(&tokens[2..], pos, false)?;
                        return Ok((nodes, Stop::ElseIf(pipeline)));
                    }
                    self.expect_alone(&tokens, "else")?;
                    return Ok((nodes, Stop::Else));
                }
                "if" => {
                    let mark = self.scope.len();
                    let condition = self.pipeline(&tokens[1..], pos, false)?;
                    let node = self.if_rest(condition, pos)?;
                    self.scope.truncate(mark);
                    nodes.push(node);
                }
                "range" | "with" => {
                    let mark = self.scope.len();
                    let pipeline = self.pipeline(&tokens[1..], pos, keyword == "range")?;
                    let (body, otherwise) = self.body_and_else(keyword, pos)?;
                    self.scope.truncate(mark);
                    nodes.push(if keyword == "range" {
                        Node::Range {
                            pipeline,
                            body,
                            otherwise,
                        }
                    } else {
                        Node::With {
                            pipeline,
                            body,
                            otherwise,
                        }
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(self.error(pos, format!("{{{{{keyword}}}}} is not supported")));
                }
                _ => nodes.push(Node::Output(self.pipeline(&tokens, pos, false)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn expect_alone(&self, tokens: &[Token], keyword: &str) -> Result<(), TemplateError> {
        match tokens.get(1) {
            None => Ok(()),
            Some(extra) => Err(self.error(
                extra.pos,
                format!("unexpected {} in {keyword}", self.text(extra)),
            )),
        }
    }

    fn text(&self, token: &Token) -> String {
        format!("{:?}", &self.source[token.pos..token.end])
    }

    /// After `{{if P}}`: the branch, then `{{else if}}`/`{{else}}` branches to `{{end}}`.
    fn if_rest(&mut self, condition: Pipeline, pos: usize) -> Result<Node, TemplateError> {
        let (then, stop) = self.scoped_list()?;
        let otherwise = match stop {
            Stop::End => Vec::new(),
            Stop::Else => self.until_end("if", pos)?,
            Stop::ElseIf(next) => vec![self.if_rest(next, pos)?],
            Stop::Eof => return Err(self.error(self.source.len(), "unexpected EOF")),
        };
        Ok(Node::If {
            condition,
            then,
            otherwise,
        })
    }

    fn body_and_else(
        &mut self,
        keyword: &str,
        pos: usize,
    ) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
        let (body, stop) = self.scoped_list()?;
        match stop {
            Stop::End => Ok((body, Vec::new())),
            Stop::Else => Ok((body, self.until_end(keyword, pos)?)),
            Stop::ElseIf(_) => {
                Err(self.error(pos, format!("unexpected {{{{else if}}}} in {keyword}")))
            }
            Stop::Eof => Err(self.error(self.source.len(), "unexpected EOF")),
        }
    }

    fn until_end(&mut self, keyword: &str, pos: usize) -> Result<Vec<Node>, TemplateError> {
        let (nodes, stop) = self.scoped_list()?;
        match stop {
            Stop::End => Ok(nodes),
            Stop::Eof => Err(self.error(self.source.len(), "unexpected EOF")),
            Stop::Else | Stop::ElseIf(_) => Err(self.error(
                pos,
                format!("expected end; found {{{{else}}}} in {keyword}"),
            )),
        }
    }

    /// A list whose variables go out of scope at its end.
    fn scoped_list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mark = self.scope.len();
        let result = self.list();
        self.scope.truncate(mark);
        result
    }

    fn pipeline(
        &mut self,
        tokens: &[Token],
        pos: usize,
        in_range: bool,
    ) -> Result<Pipeline, TemplateError> {
        let mut variables = Vec::new();
        let mut assign = false;
        let mut rest = tokens;
        // `$x :=`, `$x =`, and in range `$i, $e :=`.
        let declared = match tokens {
            [a, b, ..] if matches!(b.tok, Tok::Declare | Tok::Assign) => Some((vec![a], b, 2)),
            [a, c, b, d, ..]
                if in_range && c.tok == Tok::Comma && matches!(d.tok, Tok::Declare) =>
            {
                Some((vec![a, b], d, 4))
            }
            _ => None,
        };
        if let Some((names, op, skip)) = declared {
            for name in &names {
                let Tok::Var(var) = &name.tok else {
                    return Err(self.error(name.pos, "unexpected token in declaration"));
                };
                variables.push(var.clone());
            }
            assign = op.tok == Tok::Assign;
            rest = &tokens[skip..];
        }
        let commands = self.commands(rest, pos)?;
        for var in &variables {
            if assign {
                if !self.scope.contains(var) {
                    return Err(self.error(pos, format!("undefined variable {var:?}")));
                }
            } else {
                self.scope.push(var.clone());
            }
        }
        Ok(Pipeline {
            variables,
            assign,
            commands,
        })
    }

    fn commands(&self, tokens: &[Token], pos: usize) -> Result<Vec<CommandNode>, TemplateError> {
        let mut commands = Vec::new();
        let mut start = 0;
        let mut depth = 0usize;
        for (i, token) in tokens.iter().enumerate() {
            match token.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| self.error(token.pos, "unexpected right paren"))?;
                }
                Tok::Pipe if depth == 0 => {
                    commands.push(self.command(&tokens[start..i], token.pos)?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if depth > 0 {
            return Err(self.error(pos, "unclosed left paren"));
        }
        commands.push(self.command(&tokens[start..], pos)?);
        Ok(commands)
    }

    fn command(&self, tokens: &[Token], pos: usize) -> Result<CommandNode, TemplateError> {
        let Some(first) = tokens.first() else {
            return Err(self.error(pos, "missing value for command"));
        };
        let mut operands = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let (operand, used) = self.operand(&tokens[i..])?;
            if i > 0 && !tokens[i].space_before && !matches!(tokens[i].tok, Tok::LParen) {
                return Err(self.error(tokens[i].pos, "missing space between arguments"));
            }
            operands.push(operand);
            i += used;
        }
        let last = &tokens[tokens.len() - 1];
        if let [
            Operand {
                term: Term::Nil, ..
            },
        ] = operands.as_slice()
        {
            return Err(self.error(first.pos, "nil is not a command"));
        }
        Ok(CommandNode {
            pos: first.pos,
            text: self.source[first.pos..last.end].to_owned(),
            operands,
        })
    }

    /// One operand: a term and the fields written right after it.
    fn operand(&self, tokens: &[Token]) -> Result<(Operand, usize), TemplateError> {
        let first = &tokens[0];
        let (term, mut used, mut fields) = match &first.tok {
            Tok::Dot => (Term::Dot, 1, Vec::new()),
            Tok::Field(name) => (Term::Dot, 1, vec![name.clone()]),
            Tok::Var(name) => {
                if !self.scope.contains(name) {
                    return Err(self.error(first.pos, format!("undefined variable {name:?}")));
                }
                (Term::Var(name.clone()), 1, Vec::new())
            }
            Tok::Str(s) => (Term::Str(s.clone()), 1, Vec::new()),
            Tok::Int(n) => (Term::Int(*n), 1, Vec::new()),
            Tok::Float(f) => (Term::Float(*f), 1, Vec::new()),
            Tok::Bool(b) => (Term::Bool(*b), 1, Vec::new()),
            Tok::Nil => (Term::Nil, 1, Vec::new()),
            Tok::Ident(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(self.error(first.pos, format!("function {name:?} not defined")));
                }
                (Term::Function(name.clone()), 1, Vec::new())
            }
            Tok::LParen => {
                let mut depth = 0usize;
                let close = tokens
                    .iter()
                    .position(|t| {
                        match t.tok {
                            Tok::LParen => depth += 1,
                            Tok::RParen => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .ok_or_else(|| self.error(first.pos, "unclosed left paren"))?;
                let commands = self.commands(&tokens[1..close], first.pos)?;
                let pipeline = Pipeline {
                    variables: Vec::new(),
                    assign: false,
                    commands,
                };
                (Term::Pipeline(Box::new(pipeline)), close + 1, Vec::new())
            }
            other => {
                return Err(self.error(
                    first.pos,
                    format!("unexpected {} in operand", token_name(other)),
                ));
            }
        };
        // Go places a chain (`.A.B`, `$x.A`, `(…).A`) at its first chained field.
        let mut pos = first.pos;
        while let Some(Token {
            tok: Tok::Field(name),
            space_before: false,
            pos: field_pos,
            ..
        }) = tokens.get(used)
        {
            if pos == first.pos {
                pos = *field_pos;
            }
            if matches!(
                first.tok,
                Tok::Str(_) | Tok::Int(_) | Tok::Float(_) | Tok::Bool(_) | Tok::Nil | Tok::Ident(_)
            ) {
                return Err(self.error(tokens[used].pos, "unexpected . after term"));
            }
            fields.push(name.clone());
            used += 1;
        }
        let end = tokens[used - 1].end;
        Ok((
            Operand {
                pos,
                text: self.source[first.pos..end].to_owned(),
                term,
                fields,
            },
            used,
        ))
    }
}

fn token_name(tok: &Tok) -> &'static str {
    match tok {
        Tok::Pipe => "<|>",
        Tok::RParen => "<)>",
        Tok::Comma => "<,>",
        Tok::Declare => "<:=>",
        Tok::Assign => "<=>",
        _ => "token",
    }
}

// ---------------------------------------------------------------------------
// Execution

/// Which function table a run uses: Docker's, or Docker's header
/// functions (the titles of a table stay as they are).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Functions {
    Docker,
    Header,
}

/// What a field the value lacks gives: Go's `missingkey` option.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MissingKey {
    /// Go's default: the invalid value, printed `<no value>`.
    Print,
    /// `missingkey=error`.
    Error,
}

/// A value during a run; `None` is Go's invalid value (a missing field),
/// which prints `<no value>`.
type Val = Option<Value>;

/// Where an error happened: the node Go names in its message.
struct At<'a> {
    pos: usize,
    text: &'a str,
}

struct Run<'a> {
    source: &'a str,
    functions: Functions,
    missing_key: MissingKey,
    /// The value the template runs on: `$` until a template assigns `$`.
    root: &'a Value,
    variables: Vec<(String, Val)>,
}

impl Template {
    fn execute(
        &self,
        value: &Value,
        functions: Functions,
        missing_key: MissingKey,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        let mut run = Run {
            source: &self.source,
            functions,
            missing_key,
            root: value,
            variables: Vec::new(),
        };
        run.nodes(&self.nodes, &Some(value.clone()), out)
    }
}

impl Run<'_> {
    fn error(&self, at: &At<'_>, message: impl Into<String>) -> TemplateError {
        let before = &self.source[..at.pos.min(self.source.len())];
        let column = match before.rfind('\n') {
            Some(newline) => at.pos - newline - 1,
            None => at.pos,
        };
        TemplateError::Execute {
            line: line_of(self.source, at.pos),
            column,
            node: at.text.to_owned(),
            message: message.into(),
        }
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Val, out: &mut String) -> Result<(), TemplateError> {
        for node in nodes {
            self.node(node, dot, out)?;
        }
        Ok(())
    }

    /// Runs `nodes` with the variables they declare dropped afterwards.
    fn scoped(&mut self, nodes: &[Node], dot: &Val, out: &mut String) -> Result<(), TemplateError> {
        let mark = self.variables.len();
        let result = self.nodes(nodes, dot, out);
        self.variables.truncate(mark);
        result
    }

    fn node(&mut self, node: &Node, dot: &Val, out: &mut String) -> Result<(), TemplateError> {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Output(pipeline) => {
                let value = self.pipeline(pipeline, dot)?;
                if pipeline.variables.is_empty() {
                    out.push_str(&print_value(&value));
                }
            }
            Node::If {
                condition,
                then,
                otherwise,
            } => {
                let mark = self.variables.len();
                let value = self.pipeline(condition, dot)?;
                let branch = if truth(&value) { then } else { otherwise };
                let result = self.scoped(branch, dot, out);
                self.variables.truncate(mark);
                result?;
            }
            Node::With {
                pipeline,
                body,
                otherwise,
            } => {
                let mark = self.variables.len();
                let value = self.pipeline(pipeline, dot)?;
                let result = if truth(&value) {
                    self.scoped(body, &value, out)
                } else {
                    self.scoped(otherwise, dot, out)
                };
                self.variables.truncate(mark);
                result?;
            }
            Node::Range {
                pipeline,
                body,
                otherwise,
            } => self.range(pipeline, body, otherwise, dot, out)?,
        }
        Ok(())
    }

    fn range(
        &mut self,
        pipeline: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Val,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        let value = self.commands(&pipeline.commands, dot)?;
        let items: Vec<(Value, Value)> = match &value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (Value::from(i), item.clone()))
                .collect(),
            Some(Value::Object(map)) => sorted(map)
                .into_iter()
                .map(|(k, v)| (Value::String(k.clone()), v.clone()))
                .collect(),
            Some(other) => {
                let first = &pipeline.commands[0];
                let at = At {
                    pos: first.pos,
                    text: &first.text,
                };
                return Err(self.error(
                    &at,
                    format!(
                        "range can't iterate over {}",
                        print_value(&Some(other.clone()))
                    ),
                ));
            }
        };
        if items.is_empty() {
            return self.scoped(otherwise, dot, out);
        }
        for (key, item) in items {
            let mark = self.variables.len();
            match pipeline.variables.as_slice() {
                [element] => self.variables.push((element.clone(), Some(item.clone()))),
                [index, element] => {
                    self.variables.push((index.clone(), Some(key)));
                    self.variables.push((element.clone(), Some(item.clone())));
                }
                _ => {}
            }
            let result = self.scoped(body, &Some(item), out);
            self.variables.truncate(mark);
            result?;
        }
        Ok(())
    }

    /// Runs a pipeline and binds its variables.
    fn pipeline(&mut self, pipeline: &Pipeline, dot: &Val) -> Result<Val, TemplateError> {
        let value = self.commands(&pipeline.commands, dot)?;
        for name in &pipeline.variables {
            if pipeline.assign {
                match self.variables.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    // `$` is `root` until assigned.
                    None if name == "$" => self.variables.push((name.clone(), value.clone())),
                    None => {}
                }
            } else {
                self.variables.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn commands(&mut self, commands: &[CommandNode], dot: &Val) -> Result<Val, TemplateError> {
        let mut piped: Option<Val> = None;
        for command in commands {
            let value = self.command(command, dot, piped)?;
            // Go digs into an interface{} result, and a nil one becomes its
            // invalid value: a null field prints `<no value>`, not `<nil>`.
            piped = Some(value.filter(|v| !v.is_null()));
        }
        Ok(piped.flatten())
    }

    fn command(
        &mut self,
        command: &CommandNode,
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, TemplateError> {
        let first = &command.operands[0];
        if let (Term::Function(name), true) = (&first.term, first.fields.is_empty()) {
            let at = At {
                pos: command.pos,
                text: &command.text,
            };
            return self.call(name, &command.operands[1..], piped, dot, &at);
        }
        if command.operands.len() > 1 || piped.is_some() {
            let at = At {
                pos: first.pos,
                text: &first.text,
            };
            return Err(match first.fields.last() {
                Some(field) => {
                    self.error(&at, format!("{field} is not a method but has arguments"))
                }
                None => self.error(
                    &at,
                    format!("can't give argument to non-function {}", first.text),
                ),
            });
        }
        self.operand(first, dot)
    }

    fn operand(&mut self, operand: &Operand, dot: &Val) -> Result<Val, TemplateError> {
        let at = At {
            pos: operand.pos,
            text: &operand.text,
        };
        // Fields are looked up by reference and only the value found is
        // copied: a row's fields cost a clone each, not the row's.
        let owned: Val;
        let start = match &operand.term {
            Term::Dot => dot,
            term => {
                owned = self.term(term, dot, &at)?;
                &owned
            }
        };
        let mut value = start.as_ref();
        for field in &operand.fields {
            value = match value {
                None if self.missing_key == MissingKey::Error => {
                    return Err(self.error(&at, format!("nil data; no entry for key {field:?}")));
                }
                None => None,
                Some(Value::Object(map)) => match map.get(field) {
                    None if self.missing_key == MissingKey::Error => {
                        return Err(self.error(&at, format!("map has no entry for key {field:?}")));
                    }
                    found => found,
                },
                Some(Value::Null) => {
                    return Err(self.error(
                        &at,
                        format!("nil pointer evaluating interface {{}}.{field}"),
                    ));
                }
                Some(_) => {
                    return Err(self.error(
                        &at,
                        // Every value inside decoded JSON is an interface{} to Go.
                        format!("can't evaluate field {field} in type interface {{}}"),
                    ));
                }
            };
        }
        Ok(value.cloned())
    }

    /// The value of an operand's term, before its fields.
    fn term(&mut self, term: &Term, dot: &Val, at: &At<'_>) -> Result<Val, TemplateError> {
        Ok(match term {
            Term::Dot => dot.clone(),
            Term::Var(name) => match self.variables.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => value.clone(),
                None if name == "$" => Some(self.root.clone()),
                None => None,
            },
            Term::Str(s) => Some(Value::String(s.clone())),
            Term::Int(n) => Some(Value::from(*n)),
            Term::Float(f) => Some(Number::from_f64(*f).map_or(Value::Null, Value::Number)),
            Term::Bool(b) => Some(Value::Bool(*b)),
            Term::Nil => Some(Value::Null),
            Term::Function(name) => self.call(name, &[], None, dot, at)?,
            Term::Pipeline(pipeline) => self.commands(&pipeline.commands, dot)?,
        })
    }

    fn call(
        &mut self,
        name: &str,
        operands: &[Operand],
        piped: Option<Val>,
        dot: &Val,
        at: &At<'_>,
    ) -> Result<Val, TemplateError> {
        // `and` and `or` stop at the first argument that decides (Go 1.18).
        if name == "and" || name == "or" {
            let count = operands.len() + usize::from(piped.is_some());
            if count == 0 {
                return Err(self.error(
                    at,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = None;
            for operand in operands {
                let value = self.operand(operand, dot)?;
                if truth(&value) == (name == "or") {
                    return Ok(value);
                }
                last = Some(value);
            }
            return Ok(match piped {
                Some(value) => value,
                None => last.flatten(),
            });
        }
        let name_at = At {
            pos: at.pos,
            text: name,
        };
        let mut args = Vec::with_capacity(operands.len() + 1);
        for operand in operands {
            args.push(self.operand(operand, dot)?);
        }
        if let Some(value) = piped {
            args.push(value);
        }
        let header = match self.functions {
            Functions::Header => header_function(name, &args),
            Functions::Docker => None,
        };
        match header.unwrap_or_else(|| function(name, &args)) {
            Ok(value) => Ok(value),
            Err(CallError::Args(message)) => Err(self.error(&name_at, message)),
            Err(CallError::Type(index, message)) => {
                // Go checks each argument as it evaluates it; the piped value
                // comes last, when the last argument is the node in hand.
                let node = operands.get(index).or(operands.last());
                let arg_at = node.map_or(name_at, |o| At {
                    pos: o.pos,
                    text: &o.text,
                });
                Err(self.error(&arg_at, message))
            }
            Err(CallError::Failed(message)) => {
                Err(self.error(at, format!("error calling {name}: {message}")))
            }
        }
    }
}

/// A failed function call, placed where Go places it.
enum CallError {
    /// The wrong number of arguments: at the function's name.
    Args(String),
    /// Argument `.0` has the wrong type: at that argument.
    Type(usize, String),
    /// The function failed: at the whole command.
    Failed(String),
}

fn want_args(name: &str, args: &[Val], want: usize) -> Result<(), CallError> {
    if args.len() == want {
        Ok(())
    } else {
        Err(CallError::Args(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        )))
    }
}

fn want_at_least(name: &str, args: &[Val], want: usize) -> Result<(), CallError> {
    if args.len() >= want {
        Ok(())
    } else {
        Err(CallError::Args(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        )))
    }
}

/// Argument `index` as a string, as Go checks a `string` parameter.
fn string_arg(args: &[Val], index: usize) -> Result<&str, CallError> {
    match &args[index] {
        Some(Value::String(s)) => Ok(s),
        None => Err(CallError::Type(
            index,
            "invalid value; expected string".to_owned(),
        )),
        Some(other) => Err(CallError::Type(
            index,
            format!(
                "wrong type for value; expected string; got {}",
                go_type(other)
            ),
        )),
    }
}

/// Argument `index` as an int, as Go checks an `int` parameter.
fn int_arg(args: &[Val], index: usize) -> Result<i64, CallError> {
    match &args[index] {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        None => Err(CallError::Type(
            index,
            "invalid value; expected int".to_owned(),
        )),
        Some(other) => Err(CallError::Type(
            index,
            format!("wrong type for value; expected int; got {}", go_type(other)),
        )),
    }
}

/// Docker's header functions: a title passes through `json`, `lower`, … as is.
fn header_function(name: &str, args: &[Val]) -> Option<Result<Val, CallError>> {
    let arity = match name {
        "json" | "title" | "lower" | "upper" => 1,
        "split" | "join" | "truncate" => 2,
        _ => return None,
    };
    Some(
        want_args(name, args, arity)
            .and_then(|()| string_arg(args, 0).map(|s| Some(Value::String(s.to_owned())))),
    )
}

fn function(name: &str, args: &[Val]) -> Result<Val, CallError> {
    let string = |s: String| Ok(Some(Value::String(s)));
    match name {
        "not" => {
            want_args(name, args, 1)?;
            Ok(Some(Value::Bool(!truth(&args[0]))))
        }
        "len" => {
            want_args(name, args, 1)?;
            let len = match &args[0] {
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(items)) => items.len(),
                Some(Value::Object(map)) => map.len(),
                None | Some(Value::Null) => {
                    return Err(CallError::Failed("len of nil pointer".to_owned()));
                }
                Some(other) => {
                    return Err(CallError::Failed(format!("len of type {}", go_type(other))));
                }
            };
            Ok(Some(Value::from(len)))
        }
        "index" => {
            want_at_least(name, args, 1)?;
            let mut item = args[0].clone().unwrap_or(Value::Null);
            for index in &args[1..] {
                item = index_one(item, index)?;
            }
            Ok(Some(item))
        }
        "print" => string(go_sprint(args)),
        "println" => {
            let line: Vec<String> = args.iter().map(print_arg).collect();
            string(format!("{}\n", line.join(" ")))
        }
        "printf" => {
            want_at_least(name, args, 1)?;
            string(go_sprintf(string_arg(args, 0)?, &args[1..]))
        }
        "eq" => {
            want_at_least(name, args, 1)?;
            if args.len() < 2 {
                return Err(CallError::Failed(
                    "missing argument for comparison".to_owned(),
                ));
            }
            for other in &args[1..] {
                if equal(&args[0], other)? {
                    return Ok(Some(Value::Bool(true)));
                }
            }
            Ok(Some(Value::Bool(false)))
        }
        "ne" => {
            want_args(name, args, 2)?;
            Ok(Some(Value::Bool(!equal(&args[0], &args[1])?)))
        }
        "lt" | "le" | "gt" | "ge" => {
            want_args(name, args, 2)?;
            let ordering = compare(&args[0], &args[1])?;
            let result = match name {
                "lt" => ordering.is_lt(),
                "le" => ordering.is_le(),
                "gt" => ordering.is_gt(),
                _ => ordering.is_ge(),
            };
            Ok(Some(Value::Bool(result)))
        }
        "json" => {
            want_args(name, args, 1)?;
            let mut out = String::new();
            go_json(args[0].as_ref().unwrap_or(&Value::Null), &mut out);
            string(out)
        }
        "split" => {
            want_args(name, args, 2)?;
            let (text, separator) = (string_arg(args, 0)?, string_arg(args, 1)?);
            let parts: Vec<Value> = if separator.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(separator)
                    .map(|p| Value::String(p.to_owned()))
                    .collect()
            };
            Ok(Some(Value::Array(parts)))
        }
        "join" => {
            want_args(name, args, 2)?;
            let separator = string_arg(args, 1)?;
            match &args[0] {
                None | Some(Value::Null) => string(String::new()),
                Some(Value::Array(items)) => string(
                    items
                        .iter()
                        .map(|item| print_value(&Some(item.clone())))
                        .collect::<Vec<_>>()
                        .join(separator),
                ),
                Some(Value::Object(map)) => {
                    let mut values: Vec<String> = map
                        .values()
                        .map(|v| print_value(&Some(v.clone())))
                        .collect();
                    values.sort();
                    string(values.join(separator))
                }
                Some(other) => Err(CallError::Failed(format!(
                    "expected slice, got {}",
                    go_type(other)
                ))),
            }
        }
        "title" => {
            want_args(name, args, 1)?;
            string(go_title(string_arg(args, 0)?))
        }
        "lower" => {
            want_args(name, args, 1)?;
            string(string_arg(args, 0)?.to_lowercase())
        }
        "upper" => {
            want_args(name, args, 1)?;
            string(string_arg(args, 0)?.to_uppercase())
        }
        "pad" => {
            want_args(name, args, 3)?;
            let text = string_arg(args, 0)?;
            let (prefix, suffix) = (int_arg(args, 1)?, int_arg(args, 2)?);
            if text.is_empty() {
                return string(String::new());
            }
            let spaces = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0));
            string(format!("{}{text}{}", spaces(prefix), spaces(suffix)))
        }
        "truncate" => {
            want_args(name, args, 2)?;
            let text = string_arg(args, 0)?;
            let length = usize::try_from(int_arg(args, 1)?).unwrap_or(0);
            if text.len() < length {
                return string(text.to_owned());
            }
            let mut end = length;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            string(text[..end].to_owned())
        }
        other => Err(CallError::Args(format!("function {other:?} not defined"))),
    }
}

fn index_one(item: Value, index: &Val) -> Result<Value, CallError> {
    match (item, index) {
        (Value::Array(items), Some(Value::Number(n))) => {
            let i = n.as_i64().ok_or_else(|| {
                CallError::Failed(format!(
                    "cannot index slice/array with type {}",
                    go_type(&Value::Number(n.clone()))
                ))
            })?;
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .ok_or_else(|| CallError::Failed(format!("index out of range: {i}")))
        }
        (Value::Array(_), Some(other)) => Err(CallError::Failed(format!(
            "cannot index slice/array with type {}",
            go_type(other)
        ))),
        // A string indexes to its byte, as Go's `index` does.
        (Value::String(s), Some(Value::Number(n))) => {
            let i = n.as_i64().unwrap_or(-1);
            usize::try_from(i)
                .ok()
                .and_then(|i| s.as_bytes().get(i))
                .map(|b| Value::from(*b))
                .ok_or_else(|| CallError::Failed(format!("index out of range: {i}")))
        }
        (Value::Object(mut map), Some(Value::String(key))) => {
            // A missing key gives Go's zero value of Docker's
            // map[string]string (labels): the empty string.
            Ok(map
                .remove(key)
                .unwrap_or_else(|| Value::String(String::new())))
        }
        (Value::Object(_), Some(other)) => Err(CallError::Failed(format!(
            "value has type {}; should be string",
            go_type(other)
        ))),
        (Value::Null, _) => Err(CallError::Failed("index of untyped nil".to_owned())),
        (_, None) => Err(CallError::Failed("index of untyped nil".to_owned())),
        (other, _) => Err(CallError::Failed(format!(
            "can't index item of type {}",
            go_type(&other)
        ))),
    }
}

/// The kinds Go's `eq`/`lt` compare.
#[derive(PartialEq, Eq)]
enum Kind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn kind(value: &Val) -> Kind {
    match value {
        None | Some(Value::Null) => Kind::Nil,
        Some(Value::Bool(_)) => Kind::Bool,
        Some(Value::Number(n)) if n.is_f64() => Kind::Float,
        Some(Value::Number(_)) => Kind::Int,
        Some(Value::String(_)) => Kind::String,
        Some(_) => Kind::Other,
    }
}

fn equal(a: &Val, b: &Val) -> Result<bool, CallError> {
    let (ka, kb) = (kind(a), kind(b));
    if ka == Kind::Nil || kb == Kind::Nil {
        return Ok(ka == kb);
    }
    if ka != kb {
        return Err(CallError::Failed(
            "incompatible types for comparison".to_owned(),
        ));
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) if ka == Kind::Int => {
            Ok(x.as_i128() == y.as_i128())
        }
        (Some(Value::Number(x)), Some(Value::Number(y))) => Ok(x.as_f64() == y.as_f64()),
        (Some(Value::Array(_) | Value::Object(_)), Some(other)) => Err(CallError::Failed(format!(
            "non-comparable type {}: {}",
            print_value(&Some(other.clone())),
            go_type(other)
        ))),
        _ => Ok(a == b),
    }
}

fn compare(a: &Val, b: &Val) -> Result<std::cmp::Ordering, CallError> {
    let (ka, kb) = (kind(a), kind(b));
    if matches!(ka, Kind::Nil | Kind::Bool | Kind::Other)
        || matches!(kb, Kind::Nil | Kind::Bool | Kind::Other)
    {
        return Err(CallError::Failed("invalid type for comparison".to_owned()));
    }
    if ka != kb {
        return Err(CallError::Failed(
            "incompatible types for comparison".to_owned(),
        ));
    }
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x.cmp(y)),
        (Some(Value::Number(x)), Some(Value::Number(y))) if ka == Kind::Int => {
            Ok(x.as_i128().cmp(&y.as_i128()))
        }
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .ok_or_else(|| CallError::Failed("invalid type for comparison".to_owned())),
        _ => Err(CallError::Failed("invalid type for comparison".to_owned())),
    }
}

/// Go's truth: false, 0, "", empty lists and maps, nil and missing values are false.
fn truth(value: &Val) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
    }
}

/// Go's name of a decoded JSON value's type, for messages.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        // Docker's integer fields are int64.
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// What an action prints: Go's `fmt.Print` of the value, `<no value>` for a missing one.
fn print_value(value: &Val) -> String {
    match value {
        None => "<no value>".to_owned(),
        Some(value) => {
            let mut out = String::new();
            go_print(value, &mut out);
            out
        }
    }
}

/// A function argument as Go's `fmt` prints it: a missing value reaches
/// functions as nil.
fn print_arg(value: &Val) -> String {
    print_value(&Some(value.clone().unwrap_or(Value::Null)))
}

/// A map's entries in key order, as Go prints and ranges over maps
/// (whatever order the `Value` keeps, e.g. with serde_json's
/// `preserve_order`).
fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Go's `%v` of a value decoded from JSON into `interface{}`.
fn go_print(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                match item {
                    // An empty object inside a map is Docker's struct{}
                    // (`ExposedPorts`, `Volumes`): Go prints it `{}`.
                    Value::Object(inner) if inner.is_empty() => out.push_str("{}"),
                    _ => go_print(item, out),
                }
            }
            out.push(']');
        }
    }
}

fn go_number(n: &Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (None, Some(u), _) => u.to_string(),
        (None, None, Some(f)) => go_float(f),
        _ => n.to_string(),
    }
}

/// Go's `%v` of a float64: the shortest digits that round-trip, in
/// exponent form when the exponent is below -4 or at least 6 (`1e+06`).
fn go_float(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_owned()
        } else if value > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let mut text = format!("{value}");
        if text.contains('.') {
            text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
        }
        text
    }
}

/// Go's `fmt.Sprint`: a space between two operands when neither is a string.
fn go_sprint(args: &[Val]) -> String {
    let mut out = String::new();
    let mut previous_string = true;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Some(Value::String(_)));
        if i > 0 && !is_string && !previous_string {
            out.push(' ');
        }
        out.push_str(&print_arg(arg));
        previous_string = is_string;
    }
    out
}

/// One `%` directive of a `printf` format.
#[derive(Default, Clone)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %x %X %t
/// %f %e %g %%`, flags `-+0 #`, width and precision; a wrong verb prints
/// `%!d(string=x)`, a missing argument `%!s(MISSING)`, extra ones
/// `%!(EXTRA int=5)` as Go does.
fn go_sprintf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                // Bounded: a width is never worth more than a MiB of spaces.
                n = Some((n.unwrap_or(0) * 10 + d as usize).min(1 << 20));
                chars.next();
            }
            n
        };
        spec.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        spec.verb = verb;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next_arg) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(arg) => {
                let value = arg.clone().unwrap_or(Value::Null);
                out.push_str(&format_verb(&spec, &value));
            }
        }
        next_arg += 1;
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|arg| match arg.clone().unwrap_or(Value::Null) {
                Value::Null => "<nil>".to_owned(),
                value => format!("{}={}", go_type(&value), print_value(&Some(value.clone()))),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn format_verb(spec: &Spec, value: &Value) -> String {
    let bad = || match value {
        Value::Null => format!("%!{}(<nil>)", spec.verb),
        other => format!(
            "%!{}({}={})",
            spec.verb,
            go_type(other),
            print_value(&Some(other.clone()))
        ),
    };
    // Go applies the verb to each element of a list or map.
    match value {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|item| format_verb(spec, item)).collect();
            return format!("[{}]", parts.join(" "));
        }
        Value::Object(map) => {
            let parts: Vec<String> = sorted(map)
                .into_iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        format_verb(spec, &Value::String(k.clone())),
                        format_verb(spec, v)
                    )
                })
                .collect();
            return format!("map[{}]", parts.join(" "));
        }
        _ => {}
    }
    let int = value.as_i64();
    let body = match (spec.verb, value) {
        ('v', Value::Number(_)) | ('d', Value::Number(_)) if int.is_some() || spec.verb == 'v' => {
            if let Some(i) = int {
                signed(spec, i.unsigned_abs().to_string(), i < 0)
            } else {
                print_value(&Some(value.clone()))
            }
        }
        ('v', _) => {
            let text = print_value(&Some(value.clone()));
            truncate_chars(&text, spec.precision)
        }
        ('s', Value::String(s)) => truncate_chars(s, spec.precision),
        ('q', Value::String(s)) => go_quote(s),
        ('q', Value::Number(_)) if int.is_some() => {
            let c = int
                .and_then(|i| u32::try_from(i).ok())
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            format!("'{c}'")
        }
        ('x' | 'X', Value::String(s)) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if spec.verb == 'X' {
                hex.to_uppercase()
            } else {
                hex
            }
        }
        ('x' | 'X', Value::Number(_)) if int.is_some() => {
            let i = int.unwrap_or(0);
            let hex = format!("{:x}", i.unsigned_abs());
            let hex = if spec.verb == 'X' {
                hex.to_uppercase()
            } else {
                hex
            };
            signed(spec, hex, i < 0)
        }
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F' | 'e' | 'g', Value::Number(n)) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            let text = match spec.verb {
                'f' | 'F' => format!("{:.*}", spec.precision.unwrap_or(6), f.abs()),
                'e' => {
                    let text = format!("{:.*e}", spec.precision.unwrap_or(6), f.abs());
                    match text.split_once('e') {
                        Some((m, e)) => {
                            let e: i32 = e.parse().unwrap_or(0);
                            let sign = if e < 0 { '-' } else { '+' };
                            format!("{m}e{sign}{:02}", e.unsigned_abs())
                        }
                        None => text,
                    }
                }
                _ => go_float(f.abs()),
            };
            signed(spec, text, f.is_sign_negative())
        }
        _ => return bad(),
    };
    pad(spec, body)
}

/// A number's digits with its sign (`-`, or `+` with the `+` flag), zero-padded with `0`.
fn signed(spec: &Spec, digits: String, negative: bool) -> String {
    let sign = if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    match spec.width {
        Some(width) if spec.zero && !spec.minus => {
            let len = sign.len() + digits.chars().count();
            format!("{sign}{}{digits}", "0".repeat(width.saturating_sub(len)))
        }
        _ => format!("{sign}{digits}"),
    }
}

fn truncate_chars(text: &str, precision: Option<usize>) -> String {
    match precision {
        Some(n) => text.chars().take(n).collect(),
        None => text.to_owned(),
    }
}

fn pad(spec: &Spec, text: String) -> String {
    let len = text.chars().count();
    match spec.width {
        Some(width) if width > len => {
            let fill = " ".repeat(width - len);
            if spec.minus {
                text + &fill
            } else {
                fill + &text
            }
        }
        _ => text,
    }
}

/// Go's `strconv.Quote`.
fn go_quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's deprecated `strings.Title`: the first letter of each word in upper case.
fn go_title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous_separates = true;
    for c in text.chars() {
        if previous_separates {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous_separates = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !(c.is_alphanumeric()) && c.is_whitespace()
        };
    }
    out
}

/// Go's `encoding/json` with HTML escaping off, as Docker's `json`
/// function writes: compact, `\u00XX` for control characters other than
/// `\n`, `\r`, `\t`, and `\u2028`/`\u2029` escaped. Inside one of
/// Docker's row objects ([`is_row_context`]) `<`, `>` and `&` are escaped
/// too, as the rows' own `MarshalJSON` (`json.Marshal`) writes them:
/// `docker images --format '{{json .}}'` prints `"\u003cnone\u003e"`.
fn go_json(value: &Value, out: &mut String) {
    go_json_escaping(value, false, out);
}

fn go_json_escaping(value: &Value, escape_html: bool, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => go_json_string(s, escape_html, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_escaping(item, escape_html, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let escape_html = escape_html || is_row_context(map);
            out.push('{');
            for (i, key) in go_key_order(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(key, escape_html, out);
                out.push(':');
                go_json_escaping(&map[key], escape_html, out);
            }
            out.push('}');
        }
    }
}

/// The Go structs Docker's inspect object and `system df -v` object are
/// made of, each as its fields in the order Go's `json` writes them:
/// `types.ImageInspect`, `container.Config`, `types.RootFS`,
/// `container.HealthConfig`, `formatter.diskUsageContext`.
const GO_STRUCT_FIELDS: &[&[&str]] = &[
    &[
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Container",
        "ContainerConfig",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Variant",
        "Os",
        "OsVersion",
        "Size",
        "VirtualSize",
        "GraphDriver",
        "RootFS",
        "Metadata",
    ],
    &[
        "Hostname",
        "Domainname",
        "User",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "ExposedPorts",
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "Env",
        "Cmd",
        "Healthcheck",
        "ArgsEscaped",
        "Image",
        "Volumes",
        "WorkingDir",
        "Entrypoint",
        "NetworkDisabled",
        "MacAddress",
        "OnBuild",
        "Labels",
        "StopSignal",
        "StopTimeout",
        "Shell",
    ],
    &["Type", "Layers", "BaseLayer"],
    &["Test", "Interval", "Timeout", "StartPeriod", "Retries"],
    &["Images", "Containers", "Volumes", "BuildCache"],
];

/// The order Go's `json` writes an object's keys in: a map's sorted; an
/// object that is one of [`GO_STRUCT_FIELDS`] (it has the struct's first
/// field and no key the struct lacks) in the struct's field order, as
/// `{{json .Config}}` prints in `docker inspect -f`.
fn go_key_order(map: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let is_struct = |fields: &&&[&str]| {
        map.contains_key(fields[0]) && keys.iter().all(|key| fields.contains(&key.as_str()))
    };
    if let Some(fields) = GO_STRUCT_FIELDS.iter().find(is_struct) {
        keys.sort_by_key(|key| fields.iter().position(|field| field == key));
    }
    keys
}

/// The keys of the rows Docker's formatter marshals itself (`images`,
/// `history`, `system df` and its `-v` images): `formatter.imageContext`,
/// `image.historyContext`, `formatter.diskUsage*Context`.
const ROW_CONTEXT_KEYS: &[&[&str]] = &[
    &[
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    ],
    &[
        "Comment",
        "CreatedAt",
        "CreatedBy",
        "CreatedSince",
        "ID",
        "Size",
    ],
    &["Active", "Reclaimable", "Size", "TotalCount", "Type"],
];

/// Whether an object is one of Docker's rows: it has exactly the keys of
/// one of [`ROW_CONTEXT_KEYS`].
fn is_row_context(map: &serde_json::Map<String, Value>) -> bool {
    ROW_CONTEXT_KEYS
        .iter()
        .any(|keys| keys.len() == map.len() && keys.iter().all(|key| map.contains_key(*key)))
}

fn go_json_string(text: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || matches!(c, '\u{2028}' | '\u{2029}')
                || (escape_html && matches!(c, '<' | '>' | '&')) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
