//! Authorities (权威数据源): who confirms that a name and ID number belong together, and holds the reference photo.
//! A local registry (imported by `shiren identity import`) or an external authority over HTTP. Both answer in the
//! same shape whether or not the person exists.
pub mod http;
pub mod import;
pub mod local;

use crate::domain::sensitive::Sensitive;

/// The reference face an authority holds.
#[derive(Clone)]
pub enum ReferenceFace {
    /// A photo to analyse.
    Photo(Sensitive<Vec<u8>>),
    /// A stored embedding, with the recogniser that produced it.
    Embedding { model: String, vector: Vec<f32> },
}

/// What an authority says about a name + ID number.
#[derive(Clone)]
pub enum Lookup {
    /// Known, the name matches; with the reference face.
    Match(ReferenceFace),
    /// Known under another name.
    NameMismatch,
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// The authority cannot answer now (timeout, network, 5xx): not a verdict about the person.
    #[error("authority unavailable: {0}")]
    Unavailable(String),
    /// The authority answered something that cannot be trusted or parsed.
    #[error("authority answer rejected: {0}")]
    BadAnswer(String),
    /// The authority's settings cannot work (found at start).
    #[error("authority misconfigured: {0}")]
    Misconfigured(String),
}

#[async_trait::async_trait]
pub trait Authority: Send + Sync {
    /// Looks a person up. `cert_no` is already validated (GB 11643).
    async fn lookup(&self, cert_no: &str, cert_name: &str) -> Result<Lookup, AuthorityError>;
    /// A short name for records (`local`, `http`).
    fn kind(&self) -> &'static str;
}

/// Names are compared after trimming and removing inner spaces and the middle dot variants used in transliterated
/// names (·, •, ・), which people and systems write inconsistently.
pub fn same_name(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '・' | '.'))
            .flat_map(char::to_lowercase)
            .collect()
    }
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn names_compare_loosely_on_separators_only() {
        assert!(same_name("张三", " 张三 "));
        assert!(same_name("阿卜杜拉·艾力", "阿卜杜拉•艾力"));
        assert!(same_name("Li Lei", "li  lei"));
        assert!(!same_name("张三", "张三丰"));
        assert!(!same_name("", ""));
    }
}
