//! Plain-text tables for stdout (and, pasted as they are, for
//! BENCHMARKS.md: they are valid Markdown pipe tables), and the number
//! formats they use.

use std::fmt;

/// A titled table: headers, rows, and notes printed under it.
pub struct TextTable {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
    /// Columns aligned left (text); the others are right-aligned (numbers).
    left: Vec<usize>,
}

impl TextTable {
    /// An empty table with these column headers.
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        TextTable {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
            left: vec![0],
        }
    }

    /// Aligns column `col` left (for text); the first column always is.
    pub fn left(mut self, col: usize) -> Self {
        self.left.push(col);
        self
    }

    /// Adds a row (missing cells print empty, extra ones are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Adds a note line under the table.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }
}

impl fmt::Display for TextTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        writeln!(f, "### {}", self.title)?;
        writeln!(f)?;
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            write!(f, "|")?;
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if self.left.contains(&i) {
                    write!(f, " {cell:<w$} |")?;
                } else {
                    write!(f, " {cell:>w$} |")?;
                }
            }
            writeln!(f)
        };
        line(f, &self.headers)?;
        write!(f, "|")?;
        for (i, w) in widths.iter().enumerate() {
            let dashes = "-".repeat(*w);
            if self.left.contains(&i) {
                write!(f, " {dashes} |")?;
            } else {
                // Markdown right alignment marker.
                write!(f, " {}: |", &dashes[..w.saturating_sub(1)])?;
            }
        }
        writeln!(f)?;
        for row in &self.rows {
            line(f, row)?;
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
            for note in &self.notes {
                writeln!(f, "{note}")?;
            }
        }
        Ok(())
    }
}

/// A time in microseconds with a sensible unit and three significant
/// figures or so.
pub fn time(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else if us >= 10.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.2} µs")
    }
}

/// A ratio, `1.23×`; `n/a` when there is none.
pub fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.2}×"),
        None => "n/a".into(),
    }
}

/// Bytes as MiB with two decimals.
pub fn mib(bytes: f64) -> String {
    format!("{:.2} MiB", bytes / (1024.0 * 1024.0))
}

/// A count with thousands separators, e.g. `100,000`.
pub fn count(n: usize) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    groups.join(",")
}

/// `met` / `MISSED` for a target check.
pub fn verdict(met: bool) -> String {
    if met { "met" } else { "MISSED" }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(10), "10");
        assert_eq!(time(1500.0), "1.50 ms");
        assert_eq!(time(5.0), "5.00 µs");
        assert_eq!(ratio(Some(1.234)), "1.23×");
        assert_eq!(ratio(None), "n/a");
        let mut t = TextTable::new("t", &["a", "b"]);
        t.row(vec!["x".into(), "1".into()]);
        let text = t.to_string();
        assert!(text.contains("| x |"), "{text}");
    }
}
