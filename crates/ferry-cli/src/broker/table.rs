//! Aligned text tables for people: a header row, then one row per item, columns two spaces
//! apart, numbers right-aligned. Cells never contain line breaks or other control
//! characters ([`one_line`]), so a row is always one line.

use std::fmt::Write as _;

/// Right-align the column (numbers).
pub(crate) const RIGHT: bool = true;
/// Left-align the column (names, text).
pub(crate) const LEFT: bool = false;

pub(crate) struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns: `(title, alignment)`.
    pub(crate) fn new(columns: &[(&str, bool)]) -> Table {
        Table {
            header: columns.iter().map(|(t, _)| t.to_string()).collect(),
            right: columns.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| one_line(&c)).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(crate) fn render(&self) -> String {
        let width =
            |c: usize| std::iter::once(&self.header).chain(&self.rows).map(|r| r[c].chars().count()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        std::iter::once(&self.header).chain(&self.rows).map(|row| line(row, &widths, &self.right)).collect()
    }

    /// Turns the table into one whose rows are printed as they come.
    pub(crate) fn streamed(self, min_widths: &[usize]) -> Streamed {
        let widths = self
            .header
            .iter()
            .enumerate()
            .map(|(c, h)| h.chars().count().max(min_widths.get(c).copied().unwrap_or(0)))
            .collect();
        Streamed { table: self, widths, started: false }
    }
}

/// A table printed row by row, for rows that arrive over time: each column is as wide as
/// its header or a minimum, and widens for good when a cell needs more.
pub(crate) struct Streamed {
    table: Table,
    widths: Vec<usize>,
    started: bool,
}

impl Streamed {
    /// The text for one more row: with the header before the first.
    pub(crate) fn row(&mut self, cells: Vec<String>) -> String {
        let mut cells: Vec<String> = cells.into_iter().map(|c| one_line(&c)).collect();
        cells.resize(self.widths.len(), String::new());
        for (w, c) in self.widths.iter_mut().zip(&cells) {
            *w = (*w).max(c.chars().count());
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            out.push_str(&line(&self.table.header, &self.widths, &self.table.right));
        }
        out.push_str(&line(&cells, &self.widths, &self.table.right));
        out
    }
}

/// One row, padded to `widths`, with its line break.
fn line(row: &[String], widths: &[usize], right: &[bool]) -> String {
    let mut text = String::new();
    for (c, cell) in row.iter().enumerate() {
        let pad = " ".repeat(widths[c].saturating_sub(cell.chars().count()));
        if right[c] {
            let _ = write!(text, "{pad}{cell}  ");
        } else {
            let _ = write!(text, "{cell}{pad}  ");
        }
    }
    let mut out = text.trim_end().to_string();
    out.push('\n');
    out
}

/// `name  value` lines with the values aligned, for describing one thing.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "{k:<width$}  {}", one_line(v));
    }
    out
}

/// Text on one line: control characters (line breaks, tabs, escapes) are shown escaped,
/// as `\n`, `\t`, `\u{1b}`, so that nothing a message contains can break the layout or
/// drive the terminal.
pub(crate) fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&[("name", LEFT), ("depth", RIGHT)]);
        t.row(vec!["jobs".into(), "12".into()]);
        t.row(vec!["a-long-name".into(), "3".into()]);
        assert_eq!(t.render(), "name         depth\njobs            12\na-long-name      3\n");
    }

    #[test]
    fn streamed_rows_keep_their_columns() {
        let mut t = Table::new(&[("id", RIGHT), ("body", LEFT)]).streamed(&[4]);
        assert_eq!(t.row(vec!["1".into(), "a".into()]), "  id  body\n   1  a\n");
        assert_eq!(t.row(vec!["22".into(), "b\nc".into()]), "  22  b\\nc\n");
        assert_eq!(t.row(vec!["123456".into(), "d".into()]), "123456  d\n");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\u{1b}[31m");
        assert_eq!(one_line("plain é"), "plain é");
    }
}
