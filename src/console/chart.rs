//! Charts of the console, drawn on the server as inline SVG (no script, nothing fetched: the page's CSP allows
//! neither). Pure functions from numbers to markup; every label is escaped.
use std::fmt::Write;

/// Text escaped for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The smallest "round" number (1, 2, 5 × 10ⁿ) at least `max`, so that axis ticks are readable; at least 1.
pub fn nice_ceiling(max: u64) -> u64 {
    if max <= 1 {
        return 1;
    }
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= max {
                return v;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// How many steps the y axis of a [`nice_ceiling`] top has, so that every tick is a whole number (at most 5).
pub fn tick_count(max: u64) -> u64 {
    [4, 5, 2, 1]
        .into_iter()
        .find(|n| max.is_multiple_of(*n) && max >= *n)
        .unwrap_or(1)
}

/// One day of the daily chart: its label (`MM-DD`), all verifications, and those that passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayBar {
    pub label: String,
    pub total: u64,
    pub passed: u64,
}

const W: f64 = 760.0;
const H: f64 = 240.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 28.0;

/// Verifications (light bars) and passes (dark bars inside them) per day, oldest left, with a legend, a y axis
/// of four ticks and every fifth day labelled. Each bar carries a `<title>` with its numbers.
pub fn daily_bars(days: &[DayBar], aria_label: &str) -> String {
    let max = nice_ceiling(
        days.iter()
            .map(|d| d.total.max(d.passed))
            .max()
            .unwrap_or(0),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(aria_label)
    );
    // Legend.
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="6" width="12" height="12" class="bar-total"/><text x="{}" y="16" class="legend">verifications 认证</text><rect x="{}" y="6" width="12" height="12" class="bar-pass"/><text x="{}" y="16" class="legend">passed 通过</text>"##,
        LEFT + 16.0,
        LEFT + 150.0,
        LEFT + 166.0
    );
    // Y axis: gridlines and whole-number tick labels from 0 to the top.
    let ticks = tick_count(max);
    for i in 0..=ticks {
        let v = max / ticks * i;
        let y = TOP + plot_h - plot_h * i as f64 / ticks as f64;
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{v}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let n = days.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).max(1.0);
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let h_total = plot_h * d.total as f64 / max as f64;
        let h_pass = plot_h * d.passed.min(d.total.max(d.passed)) as f64 / max as f64;
        let label = escape(&d.label);
        let _ = write!(
            s,
            r#"<g><title>{label}: {} verifications, {} passed</title><rect x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{h_total:.1}" class="bar-total"/><rect x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{h_pass:.1}" class="bar-pass"/></g>"#,
            d.total,
            d.passed,
            TOP + plot_h - h_total,
            TOP + plot_h - h_pass,
        );
        if i % 5 == 0 || i + 1 == days.len() {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{label}</text>"#,
                x + bar_w / 2.0,
                H - 8.0
            );
        }
    }
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" class="axis"/></svg>"#,
        TOP + plot_h,
        W - RIGHT,
        TOP + plot_h
    );
    s
}

/// Horizontal bars, one per (label, count), largest first as given, with the count at the bar's end. An empty
/// list draws a short note instead.
pub fn horizontal_bars(items: &[(String, u64)], aria_label: &str, empty_note: &str) -> String {
    const ROW: f64 = 26.0;
    const LABEL_W: f64 = 250.0;
    let h = (items.len().max(1) as f64) * ROW + 12.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(aria_label)
    );
    if items.is_empty() {
        let _ = write!(
            s,
            r#"<text x="8" y="22" class="note">{}</text></svg>"#,
            escape(empty_note)
        );
        return s;
    }
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let bar_max = W - LABEL_W - 70.0;
    for (i, (label, n)) in items.iter().enumerate() {
        let y = 6.0 + ROW * i as f64;
        let w = (bar_max * *n as f64 / max).max(2.0);
        let label = escape(label);
        let _ = write!(
            s,
            r#"<g><title>{label}: {n}</title><text x="{:.1}" y="{:.1}" class="label" text-anchor="end">{label}</text><rect x="{LABEL_W}" y="{:.1}" width="{w:.1}" height="{:.1}" class="bar-fail"/><text x="{:.1}" y="{:.1}" class="value">{n}</text></g>"#,
            LABEL_W - 8.0,
            y + 15.0,
            y + 2.0,
            ROW - 8.0,
            LABEL_W + w + 6.0,
            y + 15.0,
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(200), 200);
        assert_eq!(nice_ceiling(201), 500);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn ticks_are_whole_numbers() {
        for (max, n) in [
            (1, 1),
            (2, 2),
            (5, 5),
            (10, 5),
            (20, 4),
            (50, 5),
            (100, 4),
            (200, 4),
        ] {
            assert_eq!(tick_count(max), n, "{max}");
        }
        let svg = daily_bars(
            &[DayBar {
                label: "a".into(),
                total: 2,
                passed: 1,
            }],
            "two",
        );
        for t in [">0</text>", ">1</text>", ">2</text>"] {
            assert_eq!(svg.matches(t).count(), 1, "{t} once: {svg}");
        }
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn daily_bars_draw_one_group_per_day_scaled_to_the_largest() {
        let days: Vec<DayBar> = (0..30)
            .map(|i| DayBar {
                label: format!("11-{:02}", i + 1),
                total: i,
                passed: i / 2,
            })
            .collect();
        let svg = daily_bars(&days, "30 days");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(count(&svg, "<g>"), 30);
        assert_eq!(
            count(&svg, r#"class="bar-pass""#),
            31,
            "30 bars and the legend"
        );
        // Largest total is 29 → axis top 50; the tallest bar is 29/50 of the plot height.
        assert!(svg.contains(">50</text>"));
        let plot_h = H - TOP - BOTTOM;
        assert!(svg.contains(&format!(r#"height="{:.1}""#, plot_h * 29.0 / 50.0)));
        assert!(svg.contains("11-30: 29 verifications, 14 passed"));
        // Day labels: every fifth and the last.
        assert!(svg.contains(">11-01</text>") && svg.contains(">11-30</text>"));
        assert!(!svg.contains(">11-02</text>"));
    }

    #[test]
    fn empty_days_still_draw_an_axis() {
        let svg = daily_bars(&[], "none");
        assert!(svg.contains(">1</text>") && svg.ends_with("</svg>"));
        let zero = daily_bars(
            &[DayBar {
                label: "x".into(),
                total: 0,
                passed: 0,
            }],
            "z",
        );
        assert!(zero.contains(r#"height="0.0""#));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = horizontal_bars(&[("<script>&\"".into(), 3)], "a\"b", "none");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&amp;&quot;"));
        assert!(svg.contains(r#"aria-label="a&quot;b""#));
    }

    #[test]
    fn horizontal_bars_scale_and_note_when_empty() {
        let svg = horizontal_bars(&[("A".into(), 10), ("B".into(), 5)], "reasons", "none");
        let bar_max = W - 250.0 - 70.0;
        assert!(svg.contains(&format!(r#"width="{bar_max:.1}""#)));
        assert!(svg.contains(&format!(r#"width="{:.1}""#, bar_max / 2.0)));
        assert!(svg.contains(">10</text>") && svg.contains(">5</text>"));
        let empty = horizontal_bars(&[], "reasons", "no failures");
        assert!(empty.contains("no failures") && !empty.contains("<rect"));
    }
}
