//! Money is integer minor units with a currency; never floats.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// ISO 4217 code, stored lowercase as payment providers send it ("usd").
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"usd");

    pub fn parse(s: &str) -> Result<Self, InvalidMoney> {
        let b = s.as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_alphabetic) {
            return Err(InvalidMoney("currency must be a three-letter ISO 4217 code"));
        }
        Ok(Currency([b[0].to_ascii_lowercase(), b[1].to_ascii_lowercase(), b[2].to_ascii_lowercase()]))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("usd")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::USD
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A non-negative price in minor units (cents), bounded so sums can never overflow.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Cents(i64);

impl Cents {
    /// One hundred million dollars: far above any inspection, far below i64 overflow when summed.
    pub const MAX_PRICE: i64 = 10_000_000_000;
    pub const ZERO: Cents = Cents(0);

    pub fn price(value: i64) -> Result<Self, InvalidMoney> {
        if !(0..=Self::MAX_PRICE).contains(&value) {
            return Err(InvalidMoney("price_cents must be a whole number from 0 to 10000000000"));
        }
        Ok(Cents(value))
    }

    /// Any amount, possibly negative (balances, ledger deltas).
    pub fn signed(value: i64) -> Self {
        Cents(value)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn saturating_add(self, other: Cents) -> Cents {
        Cents(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Cents) -> Cents {
        Cents(self.0.saturating_sub(other.0))
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Cents(i64::deserialize(d)?))
    }
}

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(iter: I) -> Cents {
        iter.fold(Cents::ZERO, Cents::saturating_add)
    }
}

/// For people: "$1,234.50" in US dollars, "1,234.50 CAD" otherwise.
pub fn format(amount: Cents, currency: Currency) -> String {
    let v = amount.get();
    let sign = if v < 0 { "-" } else { "" };
    let abs = v.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3);
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let cents = abs % 100;
    if currency == Currency::USD {
        format!("{sign}${grouped}.{cents:02}")
    } else {
        format!("{sign}{grouped}.{cents:02} {}", currency.as_str().to_ascii_uppercase())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidMoney(&'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_bounded_and_non_negative() {
        assert!(Cents::price(-1).is_err());
        assert!(Cents::price(Cents::MAX_PRICE + 1).is_err());
        assert_eq!(Cents::price(0).unwrap().get(), 0);
        assert_eq!(Cents::price(45_000).unwrap().get(), 45_000);
    }

    #[test]
    fn amounts_format_for_people() {
        assert_eq!(format(Cents::signed(45_000), Currency::USD), "$450.00");
        assert_eq!(format(Cents::signed(123_456_789), Currency::USD), "$1,234,567.89");
        assert_eq!(format(Cents::signed(5), Currency::USD), "$0.05");
        assert_eq!(format(Cents::signed(-100_050), Currency::parse("cad").unwrap()), "-1,000.50 CAD");
    }

    #[test]
    fn currencies_are_three_letters_stored_lowercase() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "usd");
        assert!(Currency::parse("us").is_err());
        assert!(Currency::parse("u5d").is_err());
        assert_eq!(serde_json::to_string(&Currency::parse("Cad").unwrap()).unwrap(), "\"cad\"");
    }

    #[test]
    fn sums_saturate_instead_of_overflowing() {
        let total: Cents = [Cents::signed(i64::MAX), Cents::signed(1)].into_iter().sum();
        assert_eq!(total.get(), i64::MAX);
    }
}
