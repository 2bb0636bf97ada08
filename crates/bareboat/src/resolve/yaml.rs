//! Where image references are in YAML, by byte span, from a parser that keeps positions:
//! replacing them there leaves every other byte as it was, comments, anchors and flow style
//! included.

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// The prefix of a reference that bareboat builds.
pub const BAREBOAT: &str = "bareboat://";

/// A scalar worth replacing: its value, and the byte span of its text inside any quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The scalar's value.
    pub value: String,
    /// Where its text is in the source, quotes left out.
    pub span: Range<usize>,
    /// Whether it is the value of an `image` key (and so an image reference to pin).
    pub image_key: bool,
}

/// The containers the parser is in: a mapping expects a key or a value next.
enum Container {
    Mapping {
        expect_key: bool,
        key: Option<String>,
    },
    Sequence {
        key: Option<String>,
    },
}

/// Every scalar of `source` (all its documents) that is a `bareboat://` reference, or the
/// value of an `image` key; an error says where the YAML does not parse.
pub fn scan(source: &str) -> Result<Vec<Found>, String> {
    // The parser counts characters; replacements need bytes.
    let bytes_at: Vec<usize> = source
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(source.len()))
        .collect();
    let mut stack: Vec<Container> = Vec::new();
    let mut found = Vec::new();
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| e.to_string())?;
        match event {
            Event::MappingStart(..) => {
                // A mapping's own keys say what its values are; the key it is under does not.
                parent_key(&mut stack);
                stack.push(Container::Mapping {
                    expect_key: true,
                    key: None,
                });
            }
            Event::SequenceStart(..) => {
                let key = parent_key(&mut stack);
                stack.push(Container::Sequence { key });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(value, style, ..) => {
                let under = match stack.last_mut() {
                    Some(Container::Mapping { expect_key, key }) => {
                        if *expect_key {
                            if value.starts_with(BAREBOAT) {
                                return Err(format!(
                                    "line {}: {value:?} is a mapping's key: bareboat replaces references only where they are values",
                                    span.start.line()
                                ));
                            }
                            *key = Some(value.to_string());
                            *expect_key = false;
                            continue;
                        }
                        *expect_key = true;
                        key.take()
                    }
                    Some(Container::Sequence { key }) => key.clone(),
                    None => None,
                };
                let image_key = under.as_deref() == Some("image");
                if !(value.starts_with(BAREBOAT) || image_key) {
                    continue;
                }
                let (start, end) = (bytes_at[span.start.index()], bytes_at[span.end.index()]);
                let text = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => start + 1..end - 1,
                    _ => start..end,
                };
                // Only a reference written as it reads is replaced: one folded, escaped or
                // spread over lines is refused rather than rewritten wrongly.
                if source.get(text.clone()) != Some(value.as_ref()) {
                    return Err(format!(
                        "line {}: {value:?} is written in a way bareboat does not rewrite; write it on one line, unescaped",
                        span.start.line()
                    ));
                }
                found.push(Found {
                    value: value.to_string(),
                    span: text,
                    image_key,
                });
            }
            Event::Alias(..) => {
                if let Some(Container::Mapping { expect_key, key }) = stack.last_mut() {
                    if !*expect_key {
                        key.take();
                    }
                    *expect_key = !*expect_key;
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The key a container opening now is the value of (none when it is itself a key, as
/// `? [a, b]` makes it); its mapping then expects the other of key and value.
fn parent_key(stack: &mut [Container]) -> Option<String> {
    match stack.last_mut() {
        Some(Container::Mapping { expect_key, key }) => {
            let is_value = !*expect_key;
            *expect_key = is_value;
            if is_value { key.take() } else { None }
        }
        Some(Container::Sequence { key }) => key.clone(),
        None => None,
    }
}

/// `source` with each span replaced by its text.
pub fn replace(source: &str, mut replacements: Vec<(Range<usize>, String)>) -> String {
    replacements.sort_by_key(|(span, _)| span.start);
    let mut out = String::with_capacity(source.len());
    let mut at = 0;
    for (span, text) in replacements {
        out.push_str(&source[at..span.start]);
        out.push_str(&text);
        at = span.end;
    }
    out.push_str(&source[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"# a comment stays
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app   # and this one
          image: bareboat://catalog:static
        - {name: side, image: "bareboat://catalog:cc"}
        - name: pinned
          image: 'registry.example/app:1'
defaults: &d
  image: bareboat://catalog:static
other:
  <<: *d
  note: bareboat://catalog:base
---
image: ünïcode-before/x:1
"#;

    #[test]
    fn references_are_found_by_span_in_every_style_and_document() {
        let found = scan(SOURCE).unwrap();
        let values: Vec<(&str, bool)> = found
            .iter()
            .map(|f| (f.value.as_str(), f.image_key))
            .collect();
        assert_eq!(
            values,
            [
                ("bareboat://catalog:static", true),
                ("bareboat://catalog:cc", true),
                ("registry.example/app:1", true),
                ("bareboat://catalog:static", true),
                ("bareboat://catalog:base", false),
                ("ünïcode-before/x:1", true),
            ]
        );
        for f in &found {
            assert_eq!(&SOURCE[f.span.clone()], f.value);
        }
        let replaced = replace(
            SOURCE,
            found
                .iter()
                .map(|f| (f.span.clone(), "X".to_string()))
                .collect(),
        );
        assert!(
            replaced.contains("image: \"X\"}") && replaced.contains("image: 'X'"),
            "{replaced}"
        );
        assert!(replaced.starts_with("# a comment stays\n"));
        assert!(replaced.contains("- name: app   # and this one\n"));
    }

    #[test]
    fn a_container_as_a_key_keeps_keys_and_values_apart() {
        let source = "? [a, b]\n: bareboat://catalog:static\nimage: bareboat://catalog:cc\n";
        let found = scan(source).unwrap();
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(
            values,
            ["bareboat://catalog:static", "bareboat://catalog:cc"]
        );
        assert!(
            scan("bareboat://catalog:static: x\n").is_err(),
            "a reference as a key"
        );
    }

    #[test]
    fn a_reference_written_over_lines_is_refused() {
        let folded = "image: >-\n  bareboat://catalog:static\n";
        let err = scan(folded).unwrap_err();
        assert!(
            err.contains("is written in a way bareboat does not rewrite"),
            "{err}"
        );
        let err = scan("a: [b\n").unwrap_err();
        assert!(err.contains("expected ',' or ']'"), "{err}");
    }
}
