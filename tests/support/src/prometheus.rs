//! A strict check of the Prometheus text format (0.0.4), for tests of
//! `/metrics`: parsers such as prometheus-parse skip lines they do not
//! understand, so a malformed line would pass unnoticed.

use std::collections::HashMap;

/// Every line of the Prometheus text format (0.0.4) is a `# HELP`, a
/// `# TYPE` or a sample of a family whose type was declared; names and
/// label names are legal, values are numbers. (prometheus-parse skips
/// what it does not understand; this does not.)
pub fn check_exposition(body: &str) {
    let name_ok = |n: &str| {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed: HashMap<String, String> = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(name_ok(name), "bad name in {line:?}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(name_ok(name), "bad name in {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type in {line:?}"
            );
            assert!(
                typed.insert(name.into(), kind.into()).is_none(),
                "{name} typed twice"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value in {line:?}"
        );
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, Some(l.strip_suffix('}').expect("labels close"))),
            None => (series, None),
        };
        assert!(name_ok(name), "bad name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "{name} sampled before its TYPE");
        if let Some(labels) = labels {
            // name="value" pairs; values escape \\, \" and \n only.
            let mut rest = labels;
            while !rest.is_empty() {
                let (label, after) = rest.split_once("=\"").expect("label=\"value\"");
                assert!(name_ok(label), "bad label name in {line:?}");
                let mut end = None;
                let mut escaped = false;
                for (i, c) in after.char_indices() {
                    match (escaped, c) {
                        (true, '\\' | '"' | 'n') => escaped = false,
                        (true, _) => panic!("bad escape in {line:?}"),
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(i);
                            break;
                        }
                        (false, _) => {}
                    }
                }
                let end = end.expect("label value closes");
                rest = after[end + 1..]
                    .strip_prefix(',')
                    .unwrap_or(&after[end + 1..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_exposition;

    const GOOD: &str = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 3\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n";

    #[test]
    fn a_well_formed_scrape_passes() {
        check_exposition(GOOD);
    }

    #[test]
    #[should_panic(expected = "sampled before its TYPE")]
    fn a_sample_without_its_type_fails() {
        check_exposition("b 1\n");
    }

    #[test]
    #[should_panic(expected = "bad value")]
    fn a_value_that_is_not_a_number_fails() {
        check_exposition("# TYPE b gauge\nb one\n");
    }

    #[test]
    #[should_panic(expected = "label value closes")]
    fn an_unclosed_label_fails() {
        check_exposition("# TYPE b gauge\nb{x=\"1} 2\n");
    }
}
