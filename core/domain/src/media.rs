//! Rules for uploaded media (product images now, delivery proof photos later): which image
//! types are accepted, how large an upload and a decoded image may be, the content hash that
//! addresses a stored blob, alt text, and the thumbnail sizes made from an image.
//!
//! Pure: the server sniffs, decodes and hashes; this module only says what is allowed.

use serde::{Deserialize, Serialize};

use crate::value::ValueError;

/// The largest upload, in bytes (10 MiB).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The largest chunk of a resumable upload (`PUT /api/v1/uploads/{sha256}`), in bytes (1 MiB).
pub const MAX_UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;

/// The widest and tallest image accepted, in pixels; larger headers are refused before any
/// pixel is decoded (a "decompression bomb" is a small file that claims a huge image).
pub const MAX_IMAGE_SIDE: u32 = 8000;

/// The most memory one decoded image may take, in bytes (an 8000×8000 RGBA image).
pub const MAX_DECODED_BYTES: u64 = 8000 * 8000 * 4;

/// The thumbnail widths made from every image, smallest first; never wider than the original.
pub const THUMBNAIL_WIDTHS: [u32; 3] = [160, 480, 1024];

/// The most images one product may have.
pub const MAX_IMAGES_PER_PRODUCT: usize = 20;

/// The longest alt text, in characters.
pub const MAX_ALT_CHARS: usize = 300;

/// The highest display position of an image.
pub const MAX_DISPLAY_ORDER: i64 = 10_000;

fn invalid(code: &'static str, message: impl Into<String>) -> ValueError {
    ValueError {
        code,
        message: message.into(),
    }
}

/// An accepted image type, as sniffed from the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
}

impl ImageKind {
    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// The kind of a stored media type.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type {
            "image/jpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            "image/webp" => Some(Self::Webp),
            _ => None,
        }
    }
}

/// The SHA-256 of a blob's bytes as 64 lower-case hex digits: the address of a stored blob.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ContentHash(String);

impl ContentHash {
    /// Parses a hash.
    ///
    /// # Errors
    /// When it is not exactly 64 lower-case hex digits.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        if raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(invalid(
                "invalid_hash",
                "a content hash is 64 lower-case hexadecimal digits (SHA-256)",
            ))
        }
    }

    /// The hash as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        ContentHash::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image's alt text: trimmed, 1–300 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AltText(String);

impl AltText {
    /// Parses alt text.
    ///
    /// # Errors
    /// When empty, too long or containing control characters.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(invalid(
                "required",
                "alt text must not be empty; send null to remove it",
            ));
        }
        if text.chars().count() > MAX_ALT_CHARS {
            return Err(invalid(
                "too_long",
                format!("alt text must be at most {MAX_ALT_CHARS} characters"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid(
                "invalid_characters",
                "alt text must not contain control characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses an image's display position (0 to [`MAX_DISPLAY_ORDER`]).
///
/// # Errors
/// When out of range.
pub fn parse_display_order(raw: i64) -> Result<i32, ValueError> {
    if (0..=MAX_DISPLAY_ORDER).contains(&raw) {
        Ok(i32::try_from(raw).map_err(|_| invalid("out_of_range", "out of range"))?)
    } else {
        Err(invalid(
            "out_of_range",
            format!("display order must be between 0 and {MAX_DISPLAY_ORDER}"),
        ))
    }
}

/// Checks decoded dimensions against the limits.
///
/// # Errors
/// `too_large` when a side exceeds [`MAX_IMAGE_SIDE`] or the pixels exceed
/// [`MAX_DECODED_BYTES`] at `bytes_per_pixel`; `empty` for a zero side.
pub fn check_dimensions(width: u32, height: u32, bytes_per_pixel: u64) -> Result<(), ValueError> {
    if width == 0 || height == 0 {
        return Err(invalid("empty", "the image has no pixels"));
    }
    let too_large = width > MAX_IMAGE_SIDE
        || height > MAX_IMAGE_SIDE
        || u64::from(width) * u64::from(height) * bytes_per_pixel > MAX_DECODED_BYTES;
    if too_large {
        return Err(invalid(
            "too_large",
            format!("images may be at most {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} pixels"),
        ));
    }
    Ok(())
}

/// The thumbnail sizes of a `width`×`height` image: one per [`THUMBNAIL_WIDTHS`] entry smaller
/// than the image (never upscaled), the height keeping the aspect ratio (at least 1 pixel).
pub fn thumbnail_sizes(width: u32, height: u32) -> Vec<(u32, u32)> {
    THUMBNAIL_WIDTHS
        .iter()
        .copied()
        .filter(|w| *w < width)
        .map(|w| {
            let h = (u64::from(height) * u64::from(w) + u64::from(width) / 2) / u64::from(width);
            (w, u32::try_from(h.max(1)).unwrap_or(u32::MAX))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_64_lower_case_hex_digits() {
        let ok = "a".repeat(64);
        assert_eq!(ContentHash::parse(&ok).expect("valid").as_str(), ok);
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(
                ContentHash::parse(bad).expect_err("invalid").code,
                "invalid_hash"
            );
        }
    }

    #[test]
    fn thumbnails_are_never_upscaled() {
        assert_eq!(
            thumbnail_sizes(2000, 1000),
            vec![(160, 80), (480, 240), (1024, 512)]
        );
        assert_eq!(thumbnail_sizes(480, 480), vec![(160, 160)]);
        assert!(thumbnail_sizes(160, 90).is_empty());
        assert_eq!(
            thumbnail_sizes(5000, 1),
            vec![(160, 1), (480, 1), (1024, 1)]
        );
    }

    #[test]
    fn dimension_limits() {
        assert!(check_dimensions(8000, 8000, 4).is_ok());
        assert_eq!(
            check_dimensions(100_000, 100_000, 4)
                .expect_err("bomb")
                .code,
            "too_large"
        );
        assert_eq!(
            check_dimensions(8000, 8000, 8).expect_err("16-bit").code,
            "too_large"
        );
        assert_eq!(check_dimensions(0, 5, 4).expect_err("empty").code, "empty");
    }

    #[test]
    fn alt_text_and_order() {
        assert_eq!(
            AltText::parse("  A pizza ").expect("valid").as_str(),
            "A pizza"
        );
        assert_eq!(AltText::parse(" ").expect_err("empty").code, "required");
        assert_eq!(
            AltText::parse("a\nb").expect_err("control").code,
            "invalid_characters"
        );
        assert_eq!(
            AltText::parse(&"x".repeat(301)).expect_err("long").code,
            "too_long"
        );
        assert_eq!(parse_display_order(3).expect("valid"), 3);
        assert!(parse_display_order(-1).is_err());
        assert!(parse_display_order(10_001).is_err());
    }
}
