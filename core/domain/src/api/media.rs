//! Wire types of product images: what the business uploads and changes, how the business and
//! the storefront see an image and its sizes.
//!
//! Every size of an image is its own blob, addressed by its SHA-256, so each `url` is immutable
//! and may be cached forever.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{patch, FieldErrors};
use crate::id::{ProductId, ProductImageId};
use crate::media::{self, AltText};

/// One stored size of an image (the original or a thumbnail).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Where the bytes are served (`/api/v1/images/{hash}`).
    pub url: String,
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub content_type: String,
}

/// A product image, as the business sees it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductImageView {
    /// Id.
    pub id: ProductImageId,
    /// The product.
    pub product_id: ProductId,
    /// SHA-256 of the uploaded bytes (lower-case hex).
    pub hash: String,
    /// The original, as uploaded.
    pub url: String,
    /// The original's type, sniffed from its bytes.
    pub content_type: String,
    /// The original's width in pixels.
    pub width: u32,
    /// The original's height in pixels.
    pub height: u32,
    /// The original's size in bytes.
    pub byte_size: u64,
    /// Alt text.
    pub alt: Option<String>,
    /// The product's main image (at most one per product).
    pub is_primary: bool,
    /// Position among the product's images.
    pub display_order: i32,
    /// Thumbnails, smallest first (widths 160, 480 and 1024 where the original is wider).
    pub sizes: Vec<ImageSize>,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
}

/// A product image on the storefront.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicImage {
    /// The original.
    pub url: String,
    /// The original's width in pixels.
    pub width: u32,
    /// The original's height in pixels.
    pub height: u32,
    /// Alt text.
    pub alt: Option<String>,
    /// Thumbnails, smallest first.
    pub sizes: Vec<ImageSize>,
}

/// `POST /api/v1/business/products/{id}/images`, as `multipart/form-data`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadImageForm {
    /// The image: JPEG, PNG or WebP (judged from its bytes), at most 10 MiB and 8000×8000
    /// pixels.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Binary))]
    pub file: Vec<u8>,
    /// Alt text, at most 300 characters.
    pub alt: Option<String>,
}

/// `PATCH /api/v1/business/products/{id}/images/{image_id}`. Absent fields stay; `alt: null`
/// removes the alt text.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProductImageRequest {
    /// `true` makes this the product's primary image (the previous one stops being primary);
    /// `false` leaves the product without one when this was it.
    #[serde(default)]
    pub is_primary: Option<bool>,
    /// New position, 0 to 10,000.
    #[serde(default)]
    pub display_order: Option<i64>,
    /// New alt text; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub alt: Option<Option<String>>,
}

/// A parsed image change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductImageChange {
    /// Primary or not.
    pub is_primary: Option<bool>,
    /// Position.
    pub display_order: Option<i32>,
    /// Alt text (outer: change?, inner: value).
    pub alt: Option<Option<AltText>>,
}

impl UpdateProductImageRequest {
    /// Parses every present field.
    ///
    /// # Errors
    /// The field errors, all at once.
    pub fn parse(&self) -> Result<ProductImageChange, FieldErrors> {
        let mut e = FieldErrors::default();
        let change = ProductImageChange {
            is_primary: self.is_primary,
            display_order: self
                .display_order
                .and_then(|o| e.check("display_order", media::parse_display_order(o))),
            alt: match &self.alt {
                None => None,
                Some(None) => Some(None),
                Some(Some(raw)) => e.check("alt", AltText::parse(raw)).map(Some),
            },
        };
        e.finish(|| Some(change))
    }
}

/// The header of a resumable upload's chunk (and of its status) naming the bytes already
/// received: a chunk is appended at this offset.
pub const UPLOAD_OFFSET_HEADER: &str = "upload-offset";

/// The header of a resumable upload's chunk (and of its status) naming the whole file's length.
pub const UPLOAD_LENGTH_HEADER: &str = "upload-length";

/// What a purpose-bound upload is for: `?purpose=delivery_proof&owner=<delivery id>` attaches the
/// completed photo as that delivery's proof.
pub const PURPOSE_DELIVERY_PROOF: &str = "delivery_proof";

/// How far a resumable, content-addressed upload (`PUT`/`GET /api/v1/uploads/{sha256}`) has got.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadView {
    /// The SHA-256 of the whole file, in hex: the upload's address.
    pub sha256: String,
    /// The whole file's length in bytes.
    pub size: u64,
    /// The bytes received so far: the next chunk starts here.
    pub offset: u64,
    /// Whether every byte arrived and the file was verified and stored.
    pub complete: bool,
    /// The file's type, judged from its bytes once complete (declared until then).
    pub content_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_changes_parse_all_errors_at_once() {
        let req: UpdateProductImageRequest =
            serde_json::from_str(r#"{"display_order": -1, "alt": " "}"#).expect("shape");
        let errors = req.parse().expect_err("invalid");
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["display_order", "alt"]);
        let req: UpdateProductImageRequest =
            serde_json::from_str(r#"{"alt": null, "is_primary": true}"#).expect("shape");
        let change = req.parse().expect("valid");
        assert_eq!(change.alt, Some(None));
        assert_eq!(change.is_primary, Some(true));
        assert!(serde_json::from_str::<UpdateProductImageRequest>(r#"{"hash": "x"}"#).is_err());
    }
}
