//! The product catalogue (`design.md` §1): what each product code asks of the user and the merchant, how its
//! verdict is reached and how it is billed. Pure data; the front doors and the decision read it.

/// A product code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// Hosted liveness + authority identity check, via the Alipay-style gateway (billed per pass).
    Face,
    /// Hosted liveness + authority identity check, via the cloud API.
    IdPro,
    /// ID-card photo + liveness: needs card OCR, which this server does not offer.
    IdPlus,
    /// Server only: name + ID number + a face photo.
    IdMin,
    /// Server only: name + ID number + a short face video.
    IdMinVideo,
    /// Hosted liveness compared with a photo the merchant supplies.
    PvFv,
    /// Hosted liveness alone.
    LrFr,
    /// Server-side liveness of a single photo (`LivenessFaceVerify`).
    LrFrMin,
    /// Server only: two photos compared.
    PvFc,
}

/// Where the face the live person is compared with comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// The authority's photo of the named person (or the merchant's picture when it sends one).
    Authority,
    /// Only the merchant's picture; no identity is named.
    MerchantPicture,
    /// No comparison: liveness alone.
    None,
}

impl Product {
    pub const ALL: [Product; 9] = [
        Product::Face,
        Product::IdPro,
        Product::IdPlus,
        Product::IdMin,
        Product::IdMinVideo,
        Product::PvFv,
        Product::LrFr,
        Product::LrFrMin,
        Product::PvFc,
    ];

    /// Every product's code, in catalogue order.
    pub fn codes() -> Vec<&'static str> {
        Product::ALL.iter().map(|p| p.code()).collect()
    }

    pub fn code(self) -> &'static str {
        match self {
            Product::Face => "FACE",
            Product::IdPro => "ID_PRO",
            Product::IdPlus => "ID_PLUS",
            Product::IdMin => "ID_MIN",
            Product::IdMinVideo => "ID_MIN_VIDEO",
            Product::PvFv => "PV_FV",
            Product::LrFr => "LR_FR",
            Product::LrFrMin => "LR_FR_MIN",
            Product::PvFc => "PV_FC",
        }
    }

    pub fn parse(code: &str) -> Option<Product> {
        Product::ALL.into_iter().find(|p| p.code() == code)
    }

    /// Whether the user verifies on the hosted page (the H5 products).
    pub fn hosted(self) -> bool {
        matches!(
            self,
            Product::Face | Product::IdPro | Product::PvFv | Product::LrFr
        )
    }

    /// Whether this server offers the product at all.
    pub fn offered(self) -> bool {
        self != Product::IdPlus
    }

    /// What the live face is compared with.
    pub fn reference(self) -> Reference {
        match self {
            Product::Face
            | Product::IdPro
            | Product::IdPlus
            | Product::IdMin
            | Product::IdMinVideo => Reference::Authority,
            Product::PvFv | Product::PvFc => Reference::MerchantPicture,
            Product::LrFr | Product::LrFrMin => Reference::None,
        }
    }

    /// Whether the merchant must name the person (`CertName`, `CertNo`).
    pub fn needs_identity(self) -> bool {
        self.reference() == Reference::Authority
    }

    /// Whether the product is billed per passed verification (else per call that reached a verdict).
    pub fn billed_per_pass(self) -> bool {
        self == Product::Face
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_scene_products_are_known() {
        for p in Product::ALL {
            assert_eq!(Product::parse(p.code()), Some(p));
        }
        assert_eq!(Product::parse("face"), None);
    }

    #[test]
    fn only_named_people_need_an_identity() {
        assert!(Product::IdPro.needs_identity());
        assert!(Product::IdMin.needs_identity());
        assert!(!Product::PvFv.needs_identity());
        assert!(!Product::LrFr.needs_identity());
        assert!(!Product::PvFc.needs_identity());
        assert!(Product::PvFv.hosted() && !Product::PvFc.hosted());
        assert!(Product::Face.billed_per_pass() && !Product::IdPro.billed_per_pass());
    }
}
