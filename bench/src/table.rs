//! Figures (median, min, max over repeated runs), rows and tables, rendered
//! as markdown: the same text goes to the terminal and to the results file.

use std::fmt::Write as _;

/// One measured quantity: the median of repeated runs, with their min and max.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// Median of the runs.
    pub median: f64,
    /// Smallest run.
    pub min: f64,
    /// Largest run.
    pub max: f64,
}

impl Figure {
    /// Median, min and max of `samples`; `None` when there are none (or
    /// one is not a number).
    pub fn of(samples: &[f64]) -> Option<Figure> {
        if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Figure {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// A figure from a single measurement (min = median = max).
    pub fn single(x: f64) -> Figure {
        Figure {
            median: x,
            min: x,
            max: x,
        }
    }
}

/// What a table cell holds: a figure, a figure with extra text (such as a
/// breakdown), or the reason there is no figure.
#[derive(Clone, Debug)]
pub enum Cell {
    /// A measured figure.
    Fig(Figure),
    /// A measured figure and a short annotation printed after it.
    FigNote(Figure, String),
    /// Plain text that is not a figure (context rows; no ratio).
    Text(String),
    /// Not measured, and why ("n/a (why)").
    Na(String),
}

impl Cell {
    /// The figure, if this cell has one.
    pub fn figure(&self) -> Option<Figure> {
        match self {
            Cell::Fig(f) | Cell::FigNote(f, _) => Some(*f),
            Cell::Text(_) | Cell::Na(_) => None,
        }
    }
}

/// Whether smaller or larger values of a row are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Costs: time, CPU, memory, syscalls.
    Lower,
    /// Throughput.
    Higher,
    /// Context for reading the other rows (no ratio is printed).
    Info,
}

/// One row: a benchmark (or one metric of one benchmark cell) with a cell
/// per implementation, in the table's column order.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured.
    pub label: String,
    /// Unit of every figure in the row.
    pub unit: &'static str,
    /// Which direction is better.
    pub better: Better,
    /// One cell per implementation (same order as [`Table::columns`]).
    pub cells: Vec<Cell>,
}

/// A table: implementations as columns (greenlet first), rows of figures,
/// and notes printed under it.
#[derive(Clone, Debug)]
pub struct Table {
    /// Heading of the table.
    pub title: String,
    /// Implementation names; the first is greenlet, the rest are peers.
    pub columns: Vec<&'static str>,
    /// The rows.
    pub rows: Vec<Row>,
    /// Notes printed after the table (what each column used, caveats).
    pub notes: Vec<String>,
}

/// Formats a number with about four significant digits.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 10_000.0 {
        format!("{:.0}", x)
    } else if a >= 100.0 {
        format!("{:.1}", x)
    } else if a >= 10.0 {
        format!("{:.2}", x)
    } else if a >= 1.0 {
        format!("{:.3}", x)
    } else {
        format!("{:.4}", x)
    }
}

fn fig_text(f: &Figure) -> String {
    if f.min == f.max {
        num(f.median)
    } else {
        format!("{} ({}–{})", num(f.median), num(f.min), num(f.max))
    }
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Fig(f) => fig_text(f),
        Cell::FigNote(f, note) => format!("{} {}", fig_text(f), note),
        Cell::Text(t) => t.clone(),
        Cell::Na(why) => format!("n/a ({why})"),
    }
}

/// greenlet's median divided by the peer's, or why there is no ratio.
fn ratio_text(g: &Cell, peer: &Cell) -> String {
    match (g.figure(), peer.figure()) {
        (Some(g), Some(p)) if p.median != 0.0 => format!("{:.2}×", g.median / p.median),
        (Some(g), Some(_)) if g.median == 0.0 => "1.00×".into(),
        _ => "–".into(),
    }
}

impl Table {
    /// Renders the table as markdown, columns padded so it also reads as
    /// plain text: benchmark, unit, greenlet, then per peer its figure and
    /// the ratio greenlet/peer.
    pub fn markdown(&self) -> String {
        let mut header = vec!["benchmark".to_string(), "unit".to_string()];
        header.push(self.columns[0].to_string());
        for p in &self.columns[1..] {
            header.push(p.to_string());
            header.push(format!("{}/{}", self.columns[0], p));
        }
        let mut lines = vec![header];
        for r in &self.rows {
            let arrow = match r.better {
                Better::Lower => " ↓",
                Better::Higher => " ↑",
                Better::Info => "",
            };
            let mut line = vec![r.label.clone(), format!("{}{}", r.unit, arrow)];
            let g = r
                .cells
                .first()
                .cloned()
                .unwrap_or(Cell::Na("missing".into()));
            line.push(cell_text(&g));
            for i in 1..self.columns.len() {
                let c = r
                    .cells
                    .get(i)
                    .cloned()
                    .unwrap_or(Cell::Na("missing".into()));
                line.push(cell_text(&c));
                line.push(if r.better == Better::Info {
                    String::new()
                } else {
                    ratio_text(&g, &c)
                });
            }
            lines.push(line);
        }
        let ncol = lines[0].len();
        let widths: Vec<usize> = (0..ncol)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let row = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (c, w) in cells.iter().zip(&widths) {
                let pad = w - c.chars().count();
                let _ = write!(out, " {}{} |", c, " ".repeat(pad));
            }
            out.push('\n');
        };
        row(&mut out, &lines[0]);
        out.push('|');
        for w in &widths {
            let _ = write!(out, " {} |", "-".repeat(*w));
        }
        out.push('\n');
        for l in &lines[1..] {
            row(&mut out, l);
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let f = Figure::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((f.median, f.min, f.max), (2.0, 1.0, 3.0));
        let f = Figure::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(f.median, 2.5);
        assert!(Figure::of(&[]).is_none());
    }

    #[test]
    fn ratio_and_na() {
        let t = Table {
            title: "t".into(),
            columns: vec!["greenlet", "tokio", "may"],
            rows: vec![Row {
                label: "x".into(),
                unit: "ns",
                better: Better::Lower,
                cells: vec![
                    Cell::Fig(Figure::single(10.0)),
                    Cell::Fig(Figure::single(40.0)),
                    Cell::Na("no peer".into()),
                ],
            }],
            notes: vec![],
        };
        let md = t.markdown();
        assert!(md.contains("0.25×"), "{md}");
        assert!(md.contains("n/a (no peer)"), "{md}");
    }
}
