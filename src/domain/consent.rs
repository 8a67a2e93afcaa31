//! What the hosted page asks a person to agree to before the camera starts: one text per kind of product, each with
//! a version that is recorded with the verification when the person agrees. A product that collects no name or ID
//! number (LR_FR, PV_FV) has a text that does not mention them.
use super::product::{Product, Reference};

/// The date of the current texts; part of every version, so a changed text is a new version.
pub const TEXTS_OF: &str = "2026-12-07";

/// Which consent text a product shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentText {
    /// The face, compared with the authority's photo of the named person: name and ID number are collected.
    Identity,
    /// The face, compared with a photo the merchant sent: no name, no ID number.
    Picture,
    /// The face, for liveness only: no name, no ID number, no comparison.
    Liveness,
}

impl ConsentText {
    pub fn of(product: Product) -> ConsentText {
        match product.reference() {
            Reference::Authority => ConsentText::Identity,
            Reference::MerchantPicture => ConsentText::Picture,
            Reference::None => ConsentText::Liveness,
        }
    }

    /// The name the page's texts are keyed by.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentText::Identity => "identity",
            ConsentText::Picture => "picture",
            ConsentText::Liveness => "liveness",
        }
    }

    /// The version recorded when a person agrees, e.g. `2026-12-07.identity`.
    pub fn version(self) -> String {
        format!("{TEXTS_OF}.{}", self.as_str())
    }

    /// Whether the text says that a name and an ID number are collected.
    pub fn collects_identity(self) -> bool {
        self == ConsentText::Identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hosted_product_has_the_text_of_what_it_collects() {
        for code in Product::codes() {
            let p = Product::parse(code).unwrap();
            let text = ConsentText::of(p);
            assert_eq!(text.collects_identity(), p.needs_identity(), "{code}");
        }
        assert_eq!(ConsentText::of(Product::LrFr), ConsentText::Liveness);
        assert_eq!(ConsentText::of(Product::PvFv), ConsentText::Picture);
        assert_eq!(
            ConsentText::of(Product::IdPro).version(),
            "2026-12-07.identity"
        );
        assert_ne!(
            ConsentText::of(Product::LrFr).version(),
            ConsentText::of(Product::PvFv).version()
        );
    }
}
