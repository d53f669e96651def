//! Go's `path.Match`: shell patterns over slash-separated names, the
//! matching behind Docker's `--filter reference=PATTERN`
//! ([`familiar_match`](crate::reference::familiar_match)).
//!
//! `*` matches any run of characters except `/`, `?` one character except
//! `/`, `[abc]`, `[a-z]` and `[^a-z]` a class, `\c` the character `c`. A
//! pattern matches the whole name. A malformed pattern (an unclosed `[`, a
//! trailing `\`) is an error, as in Go, whenever the matcher reaches it.
//!
//! ```
//! use imgstore_refs::glob::path_match;
//!
//! assert_eq!(path_match("demo/*", "demo/base"), Ok(true));
//! assert_eq!(path_match("demo/*", "demo/a/b"), Ok(false));
//! assert_eq!(path_match("ba[r-t]e:v?", "base:v1"), Ok(true));
//! assert!(path_match("[a-", "a").is_err());
//! ```

/// A pattern `path_match` cannot read (Go's `path.ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {pattern:?}")]
pub struct BadPattern {
    /// The pattern, shortened to 150 characters.
    pub pattern: String,
}

/// Whether `name` matches the shell `pattern` (Go's `path.Match`).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let bad = || BadPattern {
        pattern: pattern.chars().take(150).collect(),
    };
    let pat: Vec<char> = pattern.chars().collect();
    let mut name: Vec<char> = name.chars().collect();
    let mut rest: &[char] = &pat;
    'pattern: while !rest.is_empty() {
        let (star, chunk, after) = scan_chunk(rest);
        rest = after;
        if star && chunk.is_empty() {
            // A trailing star matches the rest of the name but not a '/'.
            return Ok(!name.contains(&'/'));
        }
        match match_chunk(chunk, &name) {
            Some(Ok(left)) if left.is_empty() || !rest.is_empty() => {
                name = left.to_vec();
                continue;
            }
            Some(Err(())) => return Err(bad()),
            _ => {}
        }
        if star {
            // Look for a match skipping i+1 characters, never a '/'.
            let mut i = 0;
            while i < name.len() && name[i] != '/' {
                match match_chunk(chunk, &name[i + 1..]) {
                    Some(Ok(left)) => {
                        if rest.is_empty() && !left.is_empty() {
                            i += 1;
                            continue;
                        }
                        name = left.to_vec();
                        continue 'pattern;
                    }
                    Some(Err(())) => return Err(bad()),
                    None => {}
                }
                i += 1;
            }
        }
        // No match: the rest of the pattern must still be well formed.
        while !rest.is_empty() {
            let (_, chunk, after) = scan_chunk(rest);
            rest = after;
            if let Some(Err(())) = match_chunk(chunk, &[]) {
                return Err(bad());
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the chunk up to the next star outside a
/// class: (star seen, chunk, rest).
fn scan_chunk(pattern: &[char]) -> (bool, &[char], &[char]) {
    let mut star = false;
    let mut pattern = pattern;
    while let Some(('*', rest)) = pattern.split_first() {
        star = true;
        pattern = rest;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // An escape: skip the escaped character too.
            '\\' if i + 1 < pattern.len() => i += 1,
            '[' => in_range = true,
            ']' => in_range = false,
            '*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches `chunk` (no stars) against the start of `name`: `Some(Ok(rest))`
/// on a match, `None` on a mismatch, `Some(Err(()))` on a malformed chunk.
/// Like Go, keeps checking the chunk's syntax after a mismatch.
fn match_chunk<'n>(chunk: &[char], name: &'n [char]) -> Option<Result<&'n [char], ()>> {
    let mut chunk = chunk;
    let mut name = name;
    let mut failed = false;
    while let Some((&c, after)) = chunk.split_first() {
        if !failed && name.is_empty() {
            failed = true;
        }
        match c {
            '[' => {
                let mut current = '\0';
                if !failed {
                    current = name[0];
                    name = &name[1..];
                }
                chunk = after;
                let negated = chunk.first() == Some(&'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Ok((lo, rest)) = get_escaped(chunk) else {
                        return Some(Err(()));
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&'-') {
                        let Ok((h, rest)) = get_escaped(&chunk[1..]) else {
                            return Some(Err(()));
                        };
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= current && current <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    if name[0] == '/' {
                        failed = true;
                    }
                    name = &name[1..];
                }
                chunk = after;
            }
            '\\' => {
                let Some((&escaped, after)) = after.split_first() else {
                    return Some(Err(()));
                };
                if !failed {
                    if escaped != name[0] {
                        failed = true;
                    }
                    name = &name[1..];
                }
                chunk = after;
            }
            _ => {
                if !failed {
                    if c != name[0] {
                        failed = true;
                    }
                    name = &name[1..];
                }
                chunk = after;
            }
        }
    }
    if failed { None } else { Some(Ok(name)) }
}

/// One possibly escaped character of a class; `Err` at the end of the
/// chunk, on `-` or `]` where a character must be, or a trailing `\`.
fn get_escaped(chunk: &[char]) -> Result<(char, &[char]), ()> {
    match chunk.split_first() {
        None | Some(('-' | ']', _)) => Err(()),
        Some(('\\', rest)) => match rest.split_first() {
            Some((&c, rest)) => Ok((c, rest)),
            None => Err(()),
        },
        Some((&c, rest)) => Ok((c, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The table of Go's path/match_test.go.
    #[test]
    fn follows_go_path_match() {
        let cases: &[(&str, &str, Result<bool, ()>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(())),
            ("[-]", "-", Err(())),
            ("[x-]", "x", Err(())),
            ("[x-]", "-", Err(())),
            ("[x-]", "z", Err(())),
            ("[-x]", "x", Err(())),
            ("[-x]", "-", Err(())),
            ("[-x]", "a", Err(())),
            ("\\", "a", Err(())),
            ("[a-b-c]", "a", Err(())),
            ("[", "a", Err(())),
            ("[^", "a", Err(())),
            ("[^bc", "a", Err(())),
            ("a[", "a", Err(())),
            ("a[", "ab", Err(())),
            ("a[", "x", Err(())),
            ("a/b[", "x", Err(())),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            let got = path_match(pattern, name).map_err(|_| ());
            assert_eq!(&got, want, "path_match({pattern:?}, {name:?})");
        }
    }
}
