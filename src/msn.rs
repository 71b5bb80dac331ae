//! The merchant serial number.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use http::HeaderValue;

/// A merchant serial number (MSN): the number of one sales unit.
///
/// Validated on construction: 1 to 10 ASCII digits, no sign, no whitespace. It is
/// what goes into the `Merchant-Serial-Number` header, digit for digit: a leading
/// zero is kept (`0123` stays `0123`), since the ePayment specification allows any
/// digits (`^[0-9]{4,6}$`, `docs/epayment.v1.yml` `#/components/schemas/MSN`) and
/// the partner docs give MSNs of five to seven digits.
///
/// ```
/// use tower_vipps::Msn;
///
/// let msn: Msn = "123456".parse()?;
/// assert_eq!(msn.get(), 123456);
/// assert_eq!(msn.to_string(), "123456");
/// assert!("12 3456".parse::<Msn>().is_err());
/// assert_eq!("0123".parse::<Msn>()?.to_string(), "0123");
/// # Ok::<(), tower_vipps::MsnError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msn {
    /// The number (high bits) and the number of digits written, leading zeros
    /// included (low [`DIGIT_BITS`] bits, never 0): one word, so an `Option<Msn>`
    /// is one word too, and ordered as (number, digits).
    packed: NonZeroU64,
}

/// The bits of [`Msn::packed`] that hold the number of digits (at most 10).
const DIGIT_BITS: u32 = 4;

/// Why a string is not a valid [`Msn`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsnError {
    /// The string was empty.
    #[error("the merchant serial number is empty")]
    Empty,
    /// A character other than an ASCII digit, at this byte offset.
    #[error(
        "the merchant serial number must be digits only; found a non-digit at position {position}"
    )]
    NotDigits {
        /// Byte offset of the first offending character.
        position: usize,
    },
    /// More than 10 digits.
    #[error("the merchant serial number is {len} digits long; at most 10 are allowed")]
    TooLong {
        /// The length found.
        len: usize,
    },
    /// The number 0 (only [`Msn::new`]: a written MSN may start with `0`).
    #[error("the merchant serial number must not be 0")]
    LeadingZero,
}

impl Msn {
    /// The largest number of digits accepted.
    pub const MAX_DIGITS: usize = 10;

    /// Makes an MSN from its number (no leading zeros). Fails for `0` and numbers
    /// over 10 digits.
    pub fn new(value: u64) -> Result<Msn, MsnError> {
        if value == 0 {
            return Err(MsnError::LeadingZero);
        }
        if value > 9_999_999_999 {
            return Err(MsnError::TooLong {
                len: value.to_string().len(),
            });
        }
        Ok(Msn::pack(value, digits_of(value)))
    }

    /// Parses an MSN from bytes, as found in a header value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Msn, MsnError> {
        if bytes.is_empty() {
            return Err(MsnError::Empty);
        }
        // One pass: every byte a digit (the first that is not is the error, however
        // long the value), then the length. The wrapping sum is kept only for at
        // most MAX_DIGITS (10) digits, where it does not wrap.
        let mut value = 0u64;
        for (position, b) in bytes.iter().enumerate() {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return Err(MsnError::NotDigits { position });
            }
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        }
        if bytes.len() > Self::MAX_DIGITS {
            return Err(MsnError::TooLong { len: bytes.len() });
        }
        Ok(Msn::pack(value, bytes.len() as u8))
    }

    /// Parses the value of a `Merchant-Serial-Number` header.
    pub fn from_header(value: &HeaderValue) -> Result<Msn, MsnError> {
        Msn::from_bytes(value.as_bytes())
    }

    /// `digits` is 1 to [`Msn::MAX_DIGITS`], `value` below 10^10.
    fn pack(value: u64, digits: u8) -> Msn {
        let packed = (value << DIGIT_BITS) | u64::from(digits.max(1));
        Msn {
            packed: NonZeroU64::new(packed).unwrap_or(NonZeroU64::MIN),
        }
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.packed.get() >> DIGIT_BITS
    }

    /// The number of digits written, leading zeros included.
    fn digits(self) -> u8 {
        (self.packed.get() & ((1 << DIGIT_BITS) - 1)) as u8
    }

    /// One number per MSN as written (`0123` and `123` differ), below 2^38: what
    /// maps keyed by MSN use, so they keep apart what the [`Keyring`](crate::Keyring)
    /// keeps apart.
    pub(crate) const fn key(self) -> u64 {
        self.packed.get()
    }

    /// The MSN as a header value, leading zeros kept.
    pub fn to_header_value(self) -> HeaderValue {
        let (value, digits) = (self.get(), self.digits());
        if digits == digits_of(value) {
            return HeaderValue::from(value);
        }
        let mut buf = [b'0'; Self::MAX_DIGITS];
        let n = usize::from(digits).min(Self::MAX_DIGITS);
        let mut v = value;
        for slot in buf[..n].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        HeaderValue::from_bytes(&buf[..n]).unwrap_or_else(|_| HeaderValue::from(value))
    }
}

/// The number of digits of a number written without leading zeros.
fn digits_of(value: u64) -> u8 {
    let mut n = 1;
    let mut v = value / 10;
    while v > 0 {
        n += 1;
        v /= 10;
    }
    n
}

impl FromStr for Msn {
    type Err = MsnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Msn::from_bytes(s.as_bytes())
    }
}

impl TryFrom<u64> for Msn {
    type Error = MsnError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Msn::new(value)
    }
}

impl fmt::Display for Msn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:0width$}",
            self.get(),
            width = usize::from(self.digits())
        )
    }
}

impl fmt::Debug for Msn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msn({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        for s in ["1", "123456", "9999999999", "212121", "0123", "0000", "007"] {
            let msn: Msn = s.parse().unwrap();
            assert_eq!(msn.to_string(), s);
            assert_eq!(Msn::from_header(&msn.to_header_value()).unwrap(), msn);
        }
    }

    #[test]
    fn invalid() {
        assert_eq!("".parse::<Msn>(), Err(MsnError::Empty));
        assert_eq!(
            " 123".parse::<Msn>(),
            Err(MsnError::NotDigits { position: 0 })
        );
        assert_eq!(
            "12a".parse::<Msn>(),
            Err(MsnError::NotDigits { position: 2 })
        );
        assert_eq!(
            "-12".parse::<Msn>(),
            Err(MsnError::NotDigits { position: 0 })
        );
        assert_ne!("0123".parse::<Msn>(), "123".parse::<Msn>());
        assert_eq!(
            "12345678901".parse::<Msn>(),
            Err(MsnError::TooLong { len: 11 })
        );
        assert_eq!(
            "99999999999999999999999999".parse::<Msn>(),
            Err(MsnError::TooLong { len: 26 })
        );
        assert!(Msn::new(0).is_err());
        assert!(Msn::new(10_000_000_000).is_err());
    }

    #[test]
    fn one_word_ordered_by_number_then_digits() {
        assert_eq!(std::mem::size_of::<Option<Msn>>(), 8);
        let m = |s: &str| s.parse::<Msn>().unwrap();
        assert!(m("123") < m("0123"));
        assert!(m("0123") < m("124"));
        assert!(m("9") < m("10"));
        assert_ne!(m("0123").key(), m("123").key());
        assert_eq!(m("9999999999").get(), 9_999_999_999);
        assert_eq!(m("0000").get(), 0);
        assert_eq!(m("0000").to_string(), "0000");
        assert!(m("9999999999").key() < 1 << 38);
    }
}
