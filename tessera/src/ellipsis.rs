//! MinIO-style ranges in disk and node arguments: `/data{1...4}`, `http://10.0.0.{1...6}:9100`.

/// Expands every `{a...b}` range in `arg` (numbers, optionally zero-padded) into the list of
/// paths it names; arguments without a range come back unchanged.
pub fn expand_ellipsis(arg: &str) -> Result<Vec<String>, String> {
    let Some(open) = arg.find('{') else {
        return Ok(vec![arg.to_string()]);
    };
    let close = arg[open..]
        .find('}')
        .map(|c| open + c)
        .ok_or_else(|| format!("unclosed '{{' in {arg:?}"))?;
    let inner = &arg[open + 1..close];
    let (from, to) = inner
        .split_once("...")
        .ok_or_else(|| format!("expected {{N...M}} in {arg:?}"))?;
    let parse = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} in {arg:?} is not a number"))
    };
    let (a, b) = (parse(from)?, parse(to)?);
    if a > b {
        return Err(format!("range {{{inner}}} in {arg:?} counts down"));
    }
    if b - a >= 4096 {
        return Err(format!("range {{{inner}}} in {arg:?} is too large"));
    }
    let width = if from.len() > 1 && from.starts_with('0') {
        from.len()
    } else {
        0
    };
    let mut out = Vec::new();
    for n in a..=b {
        let head = format!("{}{:0width$}", &arg[..open], n, width = width);
        for tail in expand_ellipsis(&arg[close + 1..])? {
            out.push(format!("{head}{tail}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis() {
        assert_eq!(expand_ellipsis("/data").unwrap(), ["/data"]);
        assert_eq!(expand_ellipsis("/d{1...3}").unwrap(), ["/d1", "/d2", "/d3"]);
        assert_eq!(
            expand_ellipsis("/d{08...10}").unwrap(),
            ["/d08", "/d09", "/d10"]
        );
        assert_eq!(
            expand_ellipsis("/m{1...2}/d{1...2}").unwrap(),
            ["/m1/d1", "/m1/d2", "/m2/d1", "/m2/d2"]
        );
        assert!(expand_ellipsis("/d{3...1}").is_err());
        assert!(expand_ellipsis("/d{1..3}").is_err());
        assert!(expand_ellipsis("/d{1...3").is_err());
        assert!(expand_ellipsis("/d{a...c}").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any argument: a bounded expansion or an error, never a panic.
        #[test]
        fn ellipsis_never_panics(arg in "[-a-z0-9/{}.]{0,30}") {
            if let Ok(paths) = expand_ellipsis(&arg) {
                proptest::prop_assert!(!paths.is_empty() && paths.len() <= 4096 * 4096);
            }
        }

        #[test]
        fn ellipsis_ranges(a in 0u64..5000, b in 0u64..5000, pad in proptest::prelude::any::<bool>()) {
            let arg = if pad { format!("/d{{{a:04}...{b:04}}}") } else { format!("/d{{{a}...{b}}}") };
            match expand_ellipsis(&arg) {
                Ok(paths) => proptest::prop_assert_eq!(paths.len() as u64, b - a + 1),
                Err(e) => proptest::prop_assert!(a > b || b - a >= 4096, "{}", e),
            }
        }
    }
}
