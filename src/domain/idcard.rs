//! Resident identity card numbers (GB 11643-1999): 17 digits, a check character, a real birth date.
use chrono::NaiveDate;

/// Why an ID number is not well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("must be 18 characters: 17 digits and a digit or X")]
    Shape,
    #[error("the region code is not valid")]
    Region,
    #[error("the birth date is not a real date")]
    BirthDate,
    #[error("the check character does not match")]
    CheckDigit,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// The check character for the first 17 digits.
pub fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// Validates an 18-character ID number and returns it normalised (upper-case `X`).
/// `today` bounds the birth date (no one is born in the future or before 1900).
pub fn validate(cert_no: &str, today: NaiveDate) -> Result<String, IdNumberError> {
    let normalised = cert_no.trim().to_ascii_uppercase();
    let b = normalised.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X')
    {
        return Err(IdNumberError::Shape);
    }
    if !(b'1'..=b'9').contains(&b[0]) || &b[..2] == b"00" {
        return Err(IdNumberError::Region);
    }
    let date = std::str::from_utf8(&b[6..14]).map_err(|_| IdNumberError::Shape)?;
    let birth = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| IdNumberError::BirthDate)?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).ok_or(IdNumberError::BirthDate)?;
    if birth < earliest || birth > today {
        return Err(IdNumberError::BirthDate);
    }
    if check_char(&b[..17]) != b[17] {
        return Err(IdNumberError::CheckDigit);
    }
    Ok(normalised)
}

/// Completes 17 digits with their check character (tests and fixtures).
pub fn with_check_char(first17: &str) -> String {
    format!("{first17}{}", check_char(first17.as_bytes()) as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    #[test]
    fn known_valid_numbers() {
        // The standard's published example and a number ending in X.
        assert_eq!(
            validate("11010519491231002X", today()).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            validate("11010519491231002x", today()).unwrap(),
            "11010519491231002X"
        );
        assert!(validate("440524188001010014", today()).is_err()); // born 1880
        let n = with_check_char("33010219900307123");
        assert_eq!(validate(&n, today()).unwrap(), n);
    }

    #[test]
    fn every_wrong_check_char_is_rejected() {
        let good = with_check_char("33010219900307123");
        for c in "0123456789X".chars() {
            let candidate = format!("{}{c}", &good[..17]);
            assert_eq!(
                validate(&candidate, today()).is_ok(),
                candidate == good,
                "{candidate}"
            );
        }
    }

    #[test]
    fn shapes_dates_and_regions() {
        assert_eq!(validate("1234", today()), Err(IdNumberError::Shape));
        assert_eq!(
            validate("3301021990030712 3", today()),
            Err(IdNumberError::Shape)
        );
        assert_eq!(
            validate("33010219900307123Y", today()),
            Err(IdNumberError::Shape)
        );
        assert_eq!(validate("实人实人实人", today()), Err(IdNumberError::Shape));
        assert_eq!(
            validate(&with_check_char("33010219900230123"), today()),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            validate(&with_check_char("33010220300101123"), today()),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            validate(&with_check_char("03010219900307123"), today()),
            Err(IdNumberError::Region)
        );
        assert!(validate(&with_check_char("33010220000229123"), today()).is_ok());
    }
}
