//! The HTML report of `compare`: one file, no scripts, no network, with horizontal bar
//! charts drawn as inline SVG (size, packages, vulnerabilities, audit findings per image),
//! and the table the text report prints.

use std::fmt::Write;

use bareboat_inspect::Severity;

use bareboat_inspect::compare::Column;

use super::{rows, severity_summary, vulnerability_cell};
use crate::output::human_bytes;

/// Colours of the charts; the report's test looks for them in a screenshot.
pub const COMPRESSED: &str = "#2563eb";
pub const UNCOMPRESSED: &str = "#93c5fd";
pub const PACKAGES: &str = "#059669";

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#7f1d1d",
        Severity::High => "#dc2626",
        Severity::Medium => "#f59e0b",
        Severity::Low => "#facc15",
        Severity::Negligible => "#a3a3a3",
        Severity::Unknown => "#d4d4d4",
    }
}

/// One bar: coloured segments end to end, and the text after it.
struct Bar {
    segments: Vec<(u64, &'static str)>,
    text: String,
}

impl Bar {
    fn single(value: u64, colour: &'static str, text: String) -> Bar {
        Bar {
            segments: vec![(value, colour)],
            text,
        }
    }

    fn by_severity(counts: &std::collections::BTreeMap<&'static str, usize>) -> Bar {
        let segments = Severity::ALL
            .iter()
            .map(|s| {
                let n = counts.get(s.name()).copied().unwrap_or_default();
                (n as u64, severity_colour(*s))
            })
            .collect();
        Bar {
            segments,
            text: severity_summary(counts),
        }
    }

    fn total(&self) -> u64 {
        self.segments.iter().map(|(v, _)| v).sum()
    }
}

const LABEL_WIDTH: u32 = 240;
const BAR_AREA: u32 = 480;
const TEXT_WIDTH: u32 = 260;
const BAR_HEIGHT: u32 = 20;
const BAR_GAP: u32 = 4;
const GROUP_GAP: u32 = 14;

/// A horizontal bar chart: per image, its label and one or more bars.
fn chart(title: &str, groups: &[(String, Vec<Bar>)], legend: &[(&str, &str)]) -> String {
    let max = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(Bar::total))
        .max()
        .unwrap_or(0)
        .max(1);
    let width = LABEL_WIDTH + BAR_AREA + TEXT_WIDTH;
    let mut body = String::new();
    let mut y = 0;
    for (label, bars) in groups {
        let group_height = bars.len() as u32 * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
        let _ = write!(
            body,
            r#"<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            LABEL_WIDTH - 10,
            y + group_height / 2,
            escape(&ellipsis(label, 32))
        );
        for bar in bars {
            let mut x = LABEL_WIDTH as f64;
            for (value, colour) in bar.segments.iter().filter(|(v, _)| *v > 0) {
                let w = *value as f64 / max as f64 * BAR_AREA as f64;
                let _ = write!(
                    body,
                    r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="{BAR_HEIGHT}" fill="{colour}"/>"#
                );
                x += w;
            }
            let _ = write!(
                body,
                r#"<text x="{:.1}" y="{}" dominant-baseline="middle">{}</text>"#,
                x + 6.0,
                y + BAR_HEIGHT / 2,
                escape(&bar.text)
            );
            y += BAR_HEIGHT + BAR_GAP;
        }
        y += GROUP_GAP - BAR_GAP;
    }
    let mut keys = String::new();
    for (name, colour) in legend {
        let _ = write!(
            keys,
            r#"<span class="key"><span class="swatch" style="background:{colour}"></span>{}</span>"#,
            escape(name)
        );
    }
    format!(
        r#"<section><h2>{}</h2><div class="legend">{keys}</div><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" role="img" aria-label="{}">{body}</svg></section>"#,
        escape(title),
        escape(title)
    )
}

/// The report for `columns`; `have_data` says whether vulnerabilities were counted.
pub fn report(columns: &[Column], have_data: bool) -> String {
    let sizes: Vec<(String, Vec<Bar>)> = columns
        .iter()
        .map(|c| {
            let bars = vec![
                Bar::single(c.size, COMPRESSED, human_bytes(c.size)),
                Bar::single(
                    c.uncompressed_size,
                    UNCOMPRESSED,
                    human_bytes(c.uncompressed_size),
                ),
            ];
            (c.label.clone(), bars)
        })
        .collect();
    let packages: Vec<(String, Vec<Bar>)> = columns
        .iter()
        .map(|c| {
            let bar = Bar::single(c.packages as u64, PACKAGES, c.packages.to_string());
            (c.label.clone(), vec![bar])
        })
        .collect();
    let severities: Vec<(&str, &str)> = Severity::ALL
        .iter()
        .map(|s| (s.name(), severity_colour(*s)))
        .collect();
    let vulnerabilities: Vec<(String, Vec<Bar>)> = columns
        .iter()
        .map(|c| {
            let bar = match &c.vulnerabilities {
                Some(counts) => Bar::by_severity(counts),
                None => Bar {
                    segments: Vec::new(),
                    text: vulnerability_cell(c),
                },
            };
            (c.label.clone(), vec![bar])
        })
        .collect();
    let findings: Vec<(String, Vec<Bar>)> = columns
        .iter()
        .map(|c| (c.label.clone(), vec![Bar::by_severity(&c.findings)]))
        .collect();

    let mut page = String::from(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bareboat compare</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111827; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 24px 0 4px; }
svg text { font: 13px system-ui, sans-serif; fill: #111827; }
.legend { margin: 4px 0 8px; } .key { margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
table { border-collapse: collapse; margin-top: 8px; }
th, td { border: 1px solid #d1d5db; padding: 4px 10px; text-align: left; }
th { background: #f3f4f6; } .note { color: #6b7280; }
</style></head><body>
<h1>Images side by side</h1>
"#,
    );
    page.push_str(&chart(
        "Size",
        &sizes,
        &[("compressed", COMPRESSED), ("uncompressed", UNCOMPRESSED)],
    ));
    page.push_str(&chart("Packages", &packages, &[("packages", PACKAGES)]));
    page.push_str(&chart("Vulnerabilities", &vulnerabilities, &severities));
    if !have_data {
        page.push_str(r#"<p class="note">No vulnerability data: run <code>bareboat db update</code>, or pass <code>--db FILE</code>.</p>"#);
    }
    page.push_str(&chart("Audit findings", &findings, &severities));
    page.push_str(&table(columns));
    page.push_str("</body></html>\n");
    page
}

fn table(columns: &[Column]) -> String {
    let mut out = String::from("<h2>Figures</h2><table><tr><th></th>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", escape(&c.label));
    }
    out.push_str("</tr>");
    for (name, cells) in rows(columns) {
        let _ = write!(out, "<tr><th>{name}</th>");
        for cell in cells {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
    out
}

fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(max - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale_to_the_largest() {
        let column = |label: &str, size: u64| Column {
            label: label.into(),
            image: "sha256:00".into(),
            size,
            uncompressed_size: size * 2,
            layers: 1,
            packages: 3,
            files: 1,
            file_bytes: 1,
            wasted_bytes: 0,
            findings: Default::default(),
            vulnerabilities: None,
            not_scanned: Some("no vulnerability data"),
        };
        let page = report(&[column("<big>", 100), column("small", 25)], false);
        assert!(page.contains("&lt;big&gt;") && !page.contains("<big>"));
        // The largest bar, the first image's uncompressed size, fills the bar area; the
        // second image's compressed size is an eighth of it.
        assert!(page.contains(&format!(r#"width="{BAR_AREA}.0""#)), "{page}");
        assert!(page.contains(&format!(r#"width="{:.1}""#, BAR_AREA as f64 / 8.0)));
        assert!(page.contains("No vulnerability data"));
        // Nothing is loaded from elsewhere.
        assert!(!page.contains("src=") && !page.contains("href="));
    }
}
