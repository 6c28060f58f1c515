//! IAM-style wildcard patterns: `*` matches any run of characters (including `/` and the
//! empty run), `?` exactly one character; everything else is literal.
//!
//! Matching must stay cheap on hostile patterns (a policy is user input and is evaluated on
//! every request), so both functions are polynomial: no recursive backtracking.

/// Whether `pattern` matches all of `text`. `ignore_case` folds ASCII only (IAM action names).
pub(crate) fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (pat, txt) = (pattern.as_bytes(), text.as_bytes());
    let same = |a: u8, b: u8| a == b || (ignore_case && a.eq_ignore_ascii_case(&b));
    let (mut p, mut t) = (0, 0);
    // The most recent `*`: pattern index just after it, and the text index where its run ends
    // so far. On a mismatch the run grows by one character and matching resumes; earlier stars
    // never need revisiting, which keeps this O(|pattern| * |text|).
    let mut star: Option<(usize, usize)> = None;
    while t < txt.len() {
        match pat.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(b'?') => {
                p += 1;
                t += char_len(txt[t]);
            }
            Some(&c) if same(c, txt[t]) => {
                p += 1;
                t += 1;
            }
            _ => {
                let Some((after_star, run_end)) = star else {
                    return false;
                };
                let next = run_end + char_len(txt[run_end]);
                star = Some((after_star, next));
                p = after_star;
                t = next;
            }
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Byte length of the UTF-8 character starting with `lead`, so that `?` and a growing `*`
/// step over whole characters of object keys rather than single bytes.
fn char_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xFF => 4,
        _ => 1,
    }
}

/// Whether some string starting with `prefix` matches `pattern` (case-sensitive).
///
/// Runs the pattern as an NFA over `prefix`: if any state survives, the rest of the pattern
/// can always be completed by some suffix, since every pattern matches at least one string.
pub(crate) fn can_match_with_prefix(pattern: &str, prefix: &str) -> bool {
    let pat: Vec<char> = pattern.chars().collect();
    // states[i]: the first i pattern characters can have consumed the prefix read so far.
    let mut states = vec![false; pat.len() + 1];
    states[0] = true;
    close_over_stars(&pat, &mut states);
    for c in prefix.chars() {
        let mut next = vec![false; pat.len() + 1];
        for (i, &p) in pat.iter().enumerate() {
            if !states[i] {
                continue;
            }
            match p {
                '*' => next[i] = true,
                '?' => next[i + 1] = true,
                _ if p == c => next[i + 1] = true,
                _ => {}
            }
        }
        close_over_stars(&pat, &mut next);
        if !next.contains(&true) {
            return false;
        }
        states = next;
    }
    true
}

/// A `*` may match the empty run, so being before it also means being after it.
fn close_over_stars(pat: &[char], states: &mut [bool]) {
    for (i, &p) in pat.iter().enumerate() {
        if p == '*' && states[i] {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{can_match_with_prefix, matches};

    #[test]
    fn literal_star_and_question_mark() {
        assert!(matches("abc", "abc", false));
        assert!(!matches("abc", "abcd", false));
        assert!(!matches("abcd", "abc", false));
        assert!(matches("*", "", false));
        assert!(matches("*", "a/b/c", false));
        assert!(matches("a*c", "ac", false));
        assert!(matches("a*c", "a/b/c", false));
        assert!(!matches("a*c", "a/b/cd", false));
        assert!(matches("a*b*c", "axxbyyc", false));
        assert!(matches("a*b*c", "abcbc", false));
        assert!(!matches("a*b*c", "acb", false));
        assert!(matches("a?c", "abc", false));
        assert!(!matches("a?c", "ac", false));
        assert!(!matches("a?c", "abbc", false));
        assert!(matches("**", "x", false));
        assert!(!matches("", "x", false));
        assert!(matches("", "", false));
    }

    #[test]
    fn case_folding_is_optional_and_ascii_only() {
        assert!(matches("S3:get*", "s3:GetObject", true));
        assert!(!matches("S3:get*", "s3:GetObject", false));
        assert!(!matches("é", "É", true));
    }

    #[test]
    fn question_mark_takes_a_whole_utf8_character() {
        assert!(matches("f?.txt", "fé.txt", false));
        assert!(matches("f?.txt", "f😀.txt", false));
        assert!(!matches("f??.txt", "fé.txt", false));
        assert!(matches("*é", "aéé", false));
        assert!(matches("a*?", "aé", false));
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let text = "a".repeat(5000);
        let pattern = format!("{}b", "a*".repeat(200));
        assert!(!matches(&pattern, &text, false));
        // A leading `*` keeps one NFA state alive through any prefix.
        assert!(can_match_with_prefix(
            &format!("{}b", "*a".repeat(200)),
            &format!("{text}c")
        ));
        assert!(!can_match_with_prefix(
            &format!("{}b", "a?".repeat(200)),
            &format!("{text}c")
        ));
    }

    #[test]
    fn prefix_completion() {
        assert!(can_match_with_prefix("*", "arn:aws:s3:::b/"));
        assert!(can_match_with_prefix("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(can_match_with_prefix(
            "arn:aws:s3:::b/logs/*",
            "arn:aws:s3:::b/"
        ));
        assert!(can_match_with_prefix("arn:aws:s3:::b*", "arn:aws:s3:::bx/"));
        assert!(can_match_with_prefix("arn:aws:s3:::*/x", "arn:aws:s3:::b/"));
        assert!(can_match_with_prefix("arn:aws:s3:::?/x", "arn:aws:s3:::b/"));
        assert!(!can_match_with_prefix(
            "arn:aws:s3:::?/x",
            "arn:aws:s3:::bb/"
        ));
        assert!(!can_match_with_prefix("arn:aws:s3:::b", "arn:aws:s3:::b/"));
        assert!(!can_match_with_prefix(
            "arn:aws:s3:::other/*",
            "arn:aws:s3:::b/"
        ));
        assert!(!can_match_with_prefix(
            "arn:aws:s3:::B/*",
            "arn:aws:s3:::b/"
        ));
        assert!(can_match_with_prefix("", ""));
    }
}
