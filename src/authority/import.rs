//! Importing the local registry from a CSV of `cert_no,cert_name,photo` (photo paths relative to the CSV). Each
//! row's reference embedding is computed at import; a bad row is reported with its line number and skipped.
use std::path::Path;

use sea_orm::DatabaseConnection;

use super::local::photo_key;
use crate::db::identities::{self, Identity};
use crate::domain::idcard;
use crate::face::engine::{single_face, FaceEngine};
use crate::face::image::DecodeLimits;
use crate::storage::ObjectStore;

/// One data row of the CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub cert_no: String,
    pub cert_name: String,
    pub photo: String,
}

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: usize,
    pub reason: String,
}

/// Splits one CSV line into fields (RFC 4180 quoting; no line breaks inside fields).
pub fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(field);
    Ok(out.into_iter().map(|f| f.trim().to_string()).collect())
}

/// Parses the CSV text: the header must name `cert_no`, `cert_name` and `photo` (any order, other columns
/// ignored). Returns the good rows and the rejected ones.
pub fn parse(text: &str) -> Result<(Vec<Row>, Vec<Rejected>), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let header = loop {
        match lines.next() {
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((_, l)) => break split_line(l)?,
            None => return Err("the file is empty".into()),
        }
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!("the header has no `{name}` column (expected cert_no,cert_name,photo)")
            })
    };
    let (no, name, photo) = (col("cert_no")?, col("cert_name")?, col("photo")?);
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    for (i, l) in lines {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let fields = match split_line(l) {
            Ok(f) => f,
            Err(reason) => {
                rejected.push(Rejected { line, reason });
                continue;
            }
        };
        let get = |k: usize| fields.get(k).cloned().unwrap_or_default();
        rows.push(Row {
            line,
            cert_no: get(no),
            cert_name: get(name),
            photo: get(photo),
        });
    }
    Ok((rows, rejected))
}

/// Checks a row's fields (not its photo).
pub fn validate(row: &Row, today: chrono::NaiveDate) -> Result<String, String> {
    let cert_no = idcard::validate(&row.cert_no, today).map_err(|e| format!("cert_no: {e}"))?;
    let n = row.cert_name.chars().count();
    if n == 0 || n > 64 || row.cert_name.chars().any(char::is_control) {
        return Err("cert_name must be 1–64 printable characters".into());
    }
    if row.photo.is_empty() {
        return Err("photo is empty".into());
    }
    Ok(cert_no)
}

/// The result of an import.
#[derive(Debug, Default)]
pub struct Report {
    pub imported: usize,
    pub rejected: Vec<Rejected>,
}

/// Imports every good row of `csv`; `progress(done, total)` is called after each row.
pub async fn import_csv(
    db: &DatabaseConnection,
    store: &ObjectStore,
    engine: &dyn FaceEngine,
    csv: &Path,
    now: i64,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(csv)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", csv.display()))?;
    let (rows, mut rejected) =
        parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", csv.display()))?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let today = chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let recogniser = engine.recogniser_id();
    let mut imported = 0;
    let total = rows.len();
    for (i, row) in rows.iter().enumerate() {
        let result: Result<(), String> = async {
            let cert_no = validate(row, today)?;
            let path = base.join(&row.photo);
            let bytes = std::fs::read(&path).map_err(|e| format!("photo {}: {e}", row.photo))?;
            let (_, face) = single_face(engine, &bytes, DecodeLimits::LOCAL_FILE)
                .map_err(|e| format!("photo {}: {e}", row.photo))?;
            let ring = store.keys().ring();
            let key = photo_key(&ring, &cert_no);
            store
                .put(&key, &bytes)
                .await
                .map_err(|e| format!("cannot store the photo: {e}"))?;
            let replaced = identities::upsert(
                db,
                &ring,
                &Identity {
                    cert_no,
                    cert_name: row.cert_name.clone(),
                    photo_key: key.clone(),
                    embedding: face.embedding,
                    embedding_model: recogniser.clone(),
                    created_at: now,
                    updated_at: now,
                },
            )
            .await
            .map_err(|e| format!("database: {e}"))?;
            // A photo stored under another key (before a key rotation) is the replaced identity's: it goes.
            if let Some(old) = replaced.filter(|old| *old != key) {
                if let Err(e) = store.delete(&old).await {
                    tracing::warn!(error = %e, "the replaced identity's photo could not be removed");
                }
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => imported += 1,
            Err(reason) => rejected.push(Rejected {
                line: row.line,
                reason,
            }),
        }
        progress(i + 1, total);
    }
    rejected.sort_by_key(|r| r.line);
    Ok(Report { imported, rejected })
}

/// Shows an ID number with its middle hidden (`110101********0015`).
pub fn mask_cert_no(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    if c.len() <= 10 {
        return "*".repeat(c.len());
    }
    c.iter()
        .enumerate()
        .map(|(i, ch)| if i < 6 || i >= c.len() - 4 { *ch } else { '*' })
        .collect()
}

/// Shows a name with all but its first character hidden.
pub fn mask_name(s: &str) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(split_line("a, b ,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_line(r#""x, y",z"#).unwrap(), ["x, y", "z"]);
        assert_eq!(
            split_line(r#""say ""hi""",,"#).unwrap(),
            ["say \"hi\"", "", ""]
        );
        assert!(split_line(r#""open"#).is_err());
    }

    #[test]
    fn header_columns_any_order_and_line_numbers() {
        let (rows, rej) =
            parse("\u{feff}photo,cert_name,cert_no\na.jpg,张三,110101199003070015\n\n\"bad,x\n")
                .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].cert_no, "110101199003070015");
        assert_eq!(
            rej,
            [Rejected {
                line: 4,
                reason: "unterminated quoted field".into()
            }]
        );
        assert!(parse("cert_no,name,photo\n")
            .unwrap_err()
            .contains("cert_name"));
        assert!(parse("").is_err());
    }

    #[test]
    fn rows_are_validated() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let row = |no: &str, name: &str, photo: &str| Row {
            line: 2,
            cert_no: no.into(),
            cert_name: name.into(),
            photo: photo.into(),
        };
        let good = idcard::with_check_char("11010119900307001");
        assert!(validate(&row(&good, "张三", "a.jpg"), today).is_ok());
        assert!(validate(&row("110101199003070010", "张三", "a.jpg"), today)
            .unwrap_err()
            .starts_with("cert_no"));
        assert!(validate(&row(&good, "", "a.jpg"), today).is_err());
        assert!(validate(&row(&good, "张三", ""), today).is_err());
    }

    #[test]
    fn masking() {
        assert_eq!(mask_cert_no("110101199003070015"), "110101********0015");
        assert_eq!(mask_name("张三丰"), "张**");
    }
}
