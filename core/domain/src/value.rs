//! Validated value types: parse, don't validate. Each `parse` returns the typed value or a
//! [`ValueError`] that names the rule broken; the typed value is what travels afterwards.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a value was refused. The message is safe to show to the person who typed it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ValueError {
    /// A stable code for the rule that was broken, e.g. `too_short`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ValueError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

macro_rules! string_value {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned string.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_value! {
    /// An email address, trimmed and lowercased. Deliberately permissive (one `@`, a dot in
    /// the domain, no spaces, at most 254 characters): the confirmation mail is the real check.
    Email
}

impl Email {
    /// Parses and normalises an email address.
    ///
    /// # Errors
    /// When the text cannot be an email address.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(ValueError::new("required", "email is required"));
        }
        if email.len() > 254 {
            return Err(ValueError::new(
                "too_long",
                "email must be at most 254 characters",
            ));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(ValueError::new("invalid_email", "email must contain @"));
        };
        let valid = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && email.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if !valid {
            return Err(ValueError::new(
                "invalid_email",
                "email is not a valid address",
            ));
        }
        Ok(Self(email))
    }
}

/// Words that can never be a storefront subdomain: platform hosts and look-alikes.
pub const RESERVED_SUBDOMAINS: &[&str] = &[
    "www",
    "api",
    "admin",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "dashboard",
    "dev",
    "docs",
    "driver",
    "drivers",
    "help",
    "login",
    "mail",
    "ftp",
    "smtp",
    "imap",
    "pop",
    "ns1",
    "ns2",
    "platform",
    "pos",
    "root",
    "shop",
    "static",
    "status",
    "staging",
    "store",
    "support",
    "test",
    "fleetfront",
    "localhost",
    "webmail",
    "security",
    "account",
    "accounts",
];

string_value! {
    /// A storefront subdomain: 3–63 of lowercase ASCII letters, digits and hyphens, not starting
    /// or ending with a hyphen, and not a reserved word.
    Subdomain
}

impl Subdomain {
    /// Parses a subdomain. Uppercase input is refused rather than folded, so what the owner
    /// typed is exactly the address customers will use.
    ///
    /// # Errors
    /// When a rule is broken; the error says which.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let len = raw.chars().count();
        if !(3..=63).contains(&len) {
            return Err(ValueError::new(
                "invalid_length",
                "subdomain must be 3 to 63 characters",
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ValueError::new(
                "invalid_characters",
                "subdomain may contain only lowercase letters, digits and hyphens",
            ));
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(ValueError::new(
                "invalid_hyphen",
                "subdomain must not start or end with a hyphen",
            ));
        }
        if raw.contains("--") {
            return Err(ValueError::new(
                "invalid_hyphen",
                "subdomain must not contain two hyphens in a row",
            ));
        }
        if RESERVED_SUBDOMAINS.contains(&raw) {
            return Err(ValueError::new(
                "reserved",
                format!("subdomain {raw:?} is reserved"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_value! {
    /// A custom domain a business points at its storefront, e.g. `shop.example.com`: lowercase
    /// labels of letters, digits and hyphens, at least two labels, at most 253 characters.
    CustomDomain
}

impl CustomDomain {
    /// Parses a fully qualified domain name (a trailing dot is removed, case is folded).
    ///
    /// # Errors
    /// When it is not a valid host name.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let invalid =
            || ValueError::new("invalid_domain", "custom domain is not a valid host name");
        if domain.is_empty() || domain.len() > 253 {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid());
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(invalid());
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid());
        }
        Ok(Self(domain))
    }
}

string_value! {
    /// A person's or business's display name: trimmed, 1–120 characters, no control characters.
    DisplayName
}

impl DisplayName {
    /// Parses a display name.
    ///
    /// # Errors
    /// When empty, too long, or containing control characters.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValueError::new("required", "name is required"));
        }
        if name.chars().count() > 120 {
            return Err(ValueError::new(
                "too_long",
                "name must be at most 120 characters",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValueError::new(
                "invalid_characters",
                "name must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }
}

string_value! {
    /// A URL-safe identifier inside one business (category slugs, role keys): 1–64 of lowercase
    /// letters, digits, `-` and `_`, starting with a letter or digit.
    Slug
}

impl Slug {
    /// Parses a slug.
    ///
    /// # Errors
    /// When a rule is broken.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && raw
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::new(
                "invalid_slug",
                "must be 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            ))
        }
    }

    /// Derives a slug from a display name ("Hot Drinks" → "hot-drinks").
    ///
    /// # Errors
    /// When the name has no letters or digits at all.
    pub fn from_name(name: &str) -> Result<Self, ValueError> {
        let mut slug = String::new();
        for c in name.trim().to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug: String = slug.trim_end_matches('-').chars().take(64).collect();
        Self::parse(slug.trim_end_matches('-'))
    }
}

string_value! {
    /// A phone number in E.164 form: `+` then 8–15 digits (spaces, dashes and parentheses in
    /// the input are removed).
    Phone
}

impl Phone {
    /// Parses a phone number.
    ///
    /// # Errors
    /// When it is not an international number.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        if (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0')
        {
            Ok(Self(compact))
        } else {
            Err(ValueError::new(
                "invalid_phone",
                "phone must be an international number such as +358401234567",
            ))
        }
    }
}

string_value! {
    /// An IANA time zone name such as `Europe/Helsinki`.
    TimeZoneName
}

impl TimeZoneName {
    /// Parses an IANA time zone name.
    ///
    /// # Errors
    /// When the name is not in the IANA database.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        raw.parse::<chrono_tz::Tz>()
            .map(|tz| Self(tz.name().to_owned()))
            .map_err(|_| {
                ValueError::new(
                    "invalid_time_zone",
                    format!("{raw:?} is not an IANA time zone such as Europe/Helsinki"),
                )
            })
    }

    /// The zone, for local-time computations.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.0.parse().expect("validated at construction")
    }
}

string_value! {
    /// A theme colour as `#rrggbb` (lowercased).
    HexColor
}

impl HexColor {
    /// Parses `#rrggbb`.
    ///
    /// # Errors
    /// When the text is not a six-digit hex colour.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok = raw.len() == 7
            && raw.starts_with('#')
            && raw[1..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(ValueError::new(
                "invalid_color",
                "colour must be written as #rrggbb",
            ))
        }
    }

    /// Relative luminance per WCAG 2.1, in 0..=1000 (thousandths) to stay integer.
    pub fn luminance_milli(&self) -> u32 {
        let channel = |i: usize| {
            let v = u8::from_str_radix(&self.0[i..i + 2], 16).expect("validated hex");
            // sRGB to linear, tabulated in integer thousandths via the WCAG formula.
            let c = f64::from(v) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let l = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
        (l * 1000.0).round() as u32
    }
}

string_value! {
    /// An https URL to an image (logo, banner). Only `https://` (or `http://localhost` for
    /// development) is accepted, at most 2048 characters, with no spaces or quotes.
    ImageUrl
}

impl ImageUrl {
    /// Parses an image URL.
    ///
    /// # Errors
    /// When the URL is not https or contains characters that do not belong in a URL.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok = raw.len() <= 2048
            && (raw.starts_with("https://") || raw.starts_with("http://localhost"))
            && raw.len() > "https://".len()
            && raw
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::new(
                "invalid_url",
                "image URL must be an https:// address",
            ))
        }
    }
}

/// A password as typed: 10–128 characters. Never stored or logged; only its hash is.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Applies the password policy to a new password.
    ///
    /// # Errors
    /// When too short or too long.
    pub fn parse_new(raw: &str) -> Result<Self, ValueError> {
        let len = raw.chars().count();
        if len < 10 {
            return Err(ValueError::new(
                "too_short",
                "password must be at least 10 characters",
            ));
        }
        if len > 128 {
            return Err(ValueError::new(
                "too_long",
                "password must be at most 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A PIN: 4–8 digits, and not a trivially guessable one (all the same digit, or a run).
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    /// Applies the PIN policy to a new PIN.
    ///
    /// # Errors
    /// When not 4–8 digits or trivially guessable.
    pub fn parse_new(raw: &str) -> Result<Self, ValueError> {
        Self::parse_attempt(raw)?;
        let digits: Vec<i32> = raw.bytes().map(|b| i32::from(b - b'0')).collect();
        let same = digits.windows(2).all(|w| w[0] == w[1]);
        let up = digits.windows(2).all(|w| w[1] - w[0] == 1);
        let down = digits.windows(2).all(|w| w[0] - w[1] == 1);
        if same || up || down {
            return Err(ValueError::new("weak_pin", "PIN is too easy to guess"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Checks only the shape of a PIN typed to confirm an action.
    ///
    /// # Errors
    /// When not 4–8 digits.
    pub fn parse_attempt(raw: &str) -> Result<Self, ValueError> {
        if (4..=8).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::new(
                "invalid_pin_format",
                "PIN must be 4 to 8 digits",
            ))
        }
    }

    /// The secret, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

/// A delivery radius in metres: 100 m to 100 km.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DeliveryRadius(u32);

impl DeliveryRadius {
    /// Parses a radius in metres.
    ///
    /// # Errors
    /// When outside 100..=100_000.
    pub fn parse(metres: i64) -> Result<Self, ValueError> {
        if (100..=100_000).contains(&metres) {
            Ok(Self(u32::try_from(metres).expect("range checked")))
        } else {
            Err(ValueError::new(
                "out_of_range",
                "delivery radius must be 100 to 100000 metres",
            ))
        }
    }

    /// The radius in metres.
    pub fn metres(&self) -> u32 {
        self.0
    }
}

/// A point on Earth in WGS84 degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coordinates {
    /// Latitude, −90..=90.
    pub latitude: f64,
    /// Longitude, −180..=180.
    pub longitude: f64,
}

impl Coordinates {
    /// Parses a coordinate pair.
    ///
    /// # Errors
    /// When out of range or not finite.
    pub fn parse(latitude: f64, longitude: f64) -> Result<Self, ValueError> {
        if latitude.is_finite()
            && longitude.is_finite()
            && (-90.0..=90.0).contains(&latitude)
            && (-180.0..=180.0).contains(&longitude)
        {
            Ok(Self {
                latitude,
                longitude,
            })
        } else {
            Err(ValueError::new(
                "out_of_range",
                "latitude must be -90..90 and longitude -180..180",
            ))
        }
    }
}

/// ISO 3166-1 alpha-2 country codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

string_value! {
    /// An ISO 3166-1 alpha-2 country code, uppercase (`FI`, `US`).
    CountryCode
}

impl CountryCode {
    /// Parses a country code; lowercase input is folded.
    ///
    /// # Errors
    /// When it is not an assigned ISO 3166-1 alpha-2 code.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code) {
            Ok(Self(code))
        } else {
            Err(ValueError::new(
                "invalid_country",
                "country must be an ISO 3166-1 code such as FI or US",
            ))
        }
    }
}

string_value! {
    /// A line of free text typed by a person (an address line, delivery instructions): trimmed,
    /// 1–500 characters, no control characters other than newlines.
    TextLine
}

impl TextLine {
    /// Parses a line of at most 500 characters.
    ///
    /// # Errors
    /// As [`TextLine::parse_max`].
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Self::parse_max(raw, 500)
    }

    /// Parses a line of at most `max` characters.
    ///
    /// # Errors
    /// When empty, too long, or containing control characters.
    pub fn parse_max(raw: &str, max: usize) -> Result<Self, ValueError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(ValueError::new("required", "this field is required"));
        }
        if text.chars().count() > max {
            return Err(ValueError::new(
                "too_long",
                format!("at most {max} characters"),
            ));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ValueError::new(
                "invalid_characters",
                "must not contain control characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomain_rules() {
        for ok in ["pizza", "joes-pizza-2", "abc", &"a".repeat(63)] {
            assert!(Subdomain::parse(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("ab", "invalid_length"),
            (&"a".repeat(64) as &str, "invalid_length"),
            ("Pizza", "invalid_characters"),
            ("piz_za", "invalid_characters"),
            ("pizza.shop", "invalid_characters"),
            ("-pizza", "invalid_hyphen"),
            ("pizza-", "invalid_hyphen"),
            ("pi--zza", "invalid_hyphen"),
            ("www", "reserved"),
            ("api", "reserved"),
            ("admin", "reserved"),
            ("piz za", "invalid_characters"),
            ("pïzza", "invalid_characters"),
        ];
        for (raw, code) in cases {
            assert_eq!(Subdomain::parse(raw).expect_err(raw).code, code, "{raw}");
        }
    }

    #[test]
    fn email_is_normalised() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").expect("valid").as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "a@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn custom_domain_rules() {
        assert_eq!(
            CustomDomain::parse("Shop.Example.com.")
                .expect("valid")
                .as_str(),
            "shop.example.com"
        );
        for bad in ["localhost", "-a.com", "a..com", "a_b.com", "1.2.3.4", ""] {
            assert!(CustomDomain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pin_policy() {
        assert!(Pin::parse_new("2580").is_ok());
        assert_eq!(
            Pin::parse_new("1111").expect_err("same digits").code,
            "weak_pin"
        );
        assert_eq!(Pin::parse_new("1234").expect_err("run").code, "weak_pin");
        assert_eq!(Pin::parse_new("4321").expect_err("run").code, "weak_pin");
        assert_eq!(
            Pin::parse_new("12a4").expect_err("letters").code,
            "invalid_pin_format"
        );
        assert_eq!(
            Pin::parse_new("123").expect_err("short").code,
            "invalid_pin_format"
        );
        assert!(Pin::parse_new("739164").is_ok());
    }

    #[test]
    fn password_policy_and_debug_hides_secret() {
        assert!(Password::parse_new("short").is_err());
        let p = Password::parse_new("long enough secret").expect("valid");
        assert_eq!(format!("{p:?}"), "Password(***)");
    }

    #[test]
    fn time_zones_and_colors_and_phones() {
        assert!(TimeZoneName::parse("Europe/Helsinki").is_ok());
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
        assert_eq!(
            HexColor::parse("#FF8800").expect("valid").as_str(),
            "#ff8800"
        );
        assert!(HexColor::parse("ff8800").is_err());
        assert_eq!(
            HexColor::parse("#ffffff").expect("valid").luminance_milli(),
            1000
        );
        assert_eq!(
            HexColor::parse("#000000").expect("valid").luminance_milli(),
            0
        );
        assert_eq!(
            Phone::parse("+358 40 123-4567").expect("valid").as_str(),
            "+358401234567"
        );
        assert!(Phone::parse("0401234567").is_err());
    }

    #[test]
    fn slugs_from_names() {
        assert_eq!(
            Slug::from_name("Hot Drinks & Tea").expect("valid").as_str(),
            "hot-drinks-tea"
        );
        assert!(Slug::from_name("!!!").is_err());
        assert!(Slug::parse("Upper").is_err());
    }

    #[test]
    fn countries_and_text_lines() {
        assert_eq!(CountryCode::parse("fi").expect("valid").as_str(), "FI");
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("FIN").is_err());
        assert_eq!(
            TextLine::parse_max("  Main St 1 ", 10)
                .expect("valid")
                .as_str(),
            "Main St 1"
        );
        assert_eq!(
            TextLine::parse_max("x".repeat(11).as_str(), 10)
                .expect_err("long")
                .code,
            "too_long"
        );
        assert_eq!(
            TextLine::parse_max("a\u{7}b", 10).expect_err("bell").code,
            "invalid_characters"
        );
        assert!(TextLine::parse_max("ring twice\nthen wait", 100).is_ok());
    }

    #[test]
    fn radius_and_coordinates() {
        assert!(DeliveryRadius::parse(99).is_err());
        assert_eq!(DeliveryRadius::parse(5000).expect("valid").metres(), 5000);
        assert!(Coordinates::parse(91.0, 0.0).is_err());
        assert!(Coordinates::parse(f64::NAN, 0.0).is_err());
    }
}
