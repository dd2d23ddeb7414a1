//! Product images: sniffing, decoding and thumbnails (CPU work, run on a blocking thread by the
//! caller), and the SQL of `product_images` with the mapping of its rows to the views that the
//! business API and the storefront show.
//!
//! An upload's type is judged from its bytes alone (`image::guess_format`), never from its file
//! name or declared content type. Decoding is bounded by `image::Limits` and by the domain's
//! dimension rule, checked on the header before any pixel is decoded, so a small file claiming
//! a huge image (a decompression bomb) is refused cheaply. Thumbnails are JPEG, or PNG when the
//! image has an alpha channel, and never wider than the original.

use std::collections::HashMap;
use std::io::Cursor;

use chrono::{DateTime, Utc};
use fleetfront_domain::api::catalog::ProductView;
use fleetfront_domain::api::media::{ImageSize, ProductImageView, PublicImage};
use fleetfront_domain::api::storefront::PublicProduct;
use fleetfront_domain::media::{self, ImageKind};
use fleetfront_domain::{BusinessId, ErrorCode, ProductId, ProductImageId};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::FromRow;
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{Error, Result};

/// JPEG quality of thumbnails.
const JPEG_QUALITY: u8 = 82;

/// Encoded image bytes with their type and size.
#[derive(Debug)]
pub struct Encoded {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their type.
    pub kind: ImageKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// An accepted upload: the original bytes as sent, and the thumbnails made from them.
#[derive(Debug)]
pub struct Processed {
    /// The original (its width and height after the EXIF orientation is applied, as a browser
    /// shows it).
    pub original: Encoded,
    /// Thumbnails, smallest first.
    pub thumbnails: Vec<Encoded>,
}

fn unsupported() -> Error {
    Error::new(
        ErrorCode::UnsupportedImageType,
        "the file is not a JPEG, PNG or WebP image",
    )
}

fn undecodable(e: &ImageError) -> Error {
    match e {
        ImageError::Limits(_) => too_large(),
        _ => Error::new(
            ErrorCode::InvalidImage,
            "the image could not be decoded: it is truncated or corrupt",
        ),
    }
}

fn too_large() -> Error {
    Error::new(
        ErrorCode::InvalidImage,
        format!(
            "the image is too large: at most {0}×{0} pixels",
            media::MAX_IMAGE_SIDE
        ),
    )
}

/// Sniffs, decodes and thumbnails an upload. CPU-bound: call it from `spawn_blocking`.
///
/// # Errors
/// `unsupported_image_type` when the bytes are not JPEG, PNG or WebP; `invalid_image` when they
/// do not decode or exceed the size limits.
pub fn process(bytes: Vec<u8>) -> Result<Processed> {
    let format = image::guess_format(&bytes).map_err(|_| unsupported())?;
    let kind = match format {
        ImageFormat::Jpeg => ImageKind::Jpeg,
        ImageFormat::Png => ImageKind::Png,
        ImageFormat::WebP => ImageKind::Webp,
        _ => return Err(unsupported()),
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(media::MAX_IMAGE_SIDE);
    limits.max_image_height = Some(media::MAX_IMAGE_SIDE);
    limits.max_alloc = Some(media::MAX_DECODED_BYTES + 16 * 1024 * 1024);
    let mut reader = ImageReader::with_format(Cursor::new(&bytes[..]), format);
    reader.limits(limits);
    // The header alone: dimensions are checked before any pixel is decoded.
    let mut decoder = reader.into_decoder().map_err(|e| undecodable(&e))?;
    let (width, height) = decoder.dimensions();
    let bytes_per_pixel = u64::from(decoder.color_type().bytes_per_pixel());
    media::check_dimensions(width, height, bytes_per_pixel).map_err(|e| {
        if e.code == "too_large" {
            too_large()
        } else {
            Error::new(ErrorCode::InvalidImage, e.message)
        }
    })?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut decoded = DynamicImage::from_decoder(decoder).map_err(|e| undecodable(&e))?;
    decoded.apply_orientation(orientation);
    let (width, height) = (decoded.width(), decoded.height());
    let alpha = decoded.color().has_alpha();
    let thumbnails = media::thumbnail_sizes(width, height)
        .into_iter()
        .map(|(w, h)| encode(&decoded.thumbnail_exact(w, h), alpha))
        .collect::<Result<Vec<_>>>()?;
    Ok(Processed {
        original: Encoded {
            bytes,
            kind,
            width,
            height,
        },
        thumbnails,
    })
}

/// Encodes a thumbnail: PNG when the source has alpha (transparency survives), JPEG otherwise.
fn encode(image: &DynamicImage, alpha: bool) -> Result<Encoded> {
    let mut bytes = Vec::new();
    let (width, height) = (image.width(), image.height());
    let kind = if alpha {
        let rgba = image.to_rgba8();
        PngEncoder::new(&mut bytes)
            .write_image(
                rgba.as_raw(),
                width,
                height,
                image::ExtendedColorType::Rgba8,
            )
            .map_err(Error::unexpected)?;
        ImageKind::Png
    } else {
        let rgb = image.to_rgb8();
        JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
            .write_image(rgb.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .map_err(Error::unexpected)?;
        ImageKind::Jpeg
    };
    Ok(Encoded {
        bytes,
        kind,
        width,
        height,
    })
}

/// A stored thumbnail, as kept in `product_images.thumbnails`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Thumbnail {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Its blob's hash.
    pub hash: String,
    /// Its type.
    pub content_type: String,
    /// Its size in bytes.
    pub byte_size: u64,
}

/// A `product_images` row.
#[derive(Debug, FromRow)]
pub struct ImageRow {
    id: Uuid,
    product_id: Uuid,
    content_hash: String,
    content_type: String,
    width: i32,
    height: i32,
    byte_size: i64,
    thumbnails: Json<Vec<Thumbnail>>,
    display_order: i32,
    is_primary: bool,
    alt_text: Option<String>,
    created_at: DateTime<Utc>,
}

const IMAGE_COLUMNS: &str =
    "id, product_id, content_hash, content_type, width, height, byte_size, \
    thumbnails, display_order, is_primary, alt_text, created_at";

/// The order images are shown in: the primary first, then by display order.
const IMAGE_ORDER: &str = "is_primary DESC, display_order, created_at, id";

/// Where a blob is served.
pub fn url_of(hash: &str) -> String {
    format!("/api/v1/images/{hash}")
}

fn dimension(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn sizes(thumbnails: &[Thumbnail]) -> Vec<ImageSize> {
    thumbnails
        .iter()
        .map(|t| ImageSize {
            width: t.width,
            height: t.height,
            url: url_of(&t.hash),
            content_type: t.content_type.clone(),
        })
        .collect()
}

impl ImageRow {
    /// The business's view.
    pub fn view(self) -> ProductImageView {
        ProductImageView {
            id: ProductImageId(self.id),
            product_id: ProductId(self.product_id),
            url: url_of(&self.content_hash),
            hash: self.content_hash,
            content_type: self.content_type,
            width: dimension(self.width),
            height: dimension(self.height),
            byte_size: u64::try_from(self.byte_size).unwrap_or(0),
            alt: self.alt_text,
            is_primary: self.is_primary,
            display_order: self.display_order,
            sizes: sizes(&self.thumbnails.0),
            created_at: self.created_at,
        }
    }

    /// The storefront's view.
    pub fn public(self) -> PublicImage {
        PublicImage {
            url: url_of(&self.content_hash),
            width: dimension(self.width),
            height: dimension(self.height),
            alt: self.alt_text,
            sizes: sizes(&self.thumbnails.0),
        }
    }
}

/// The images of `products`, by product, primary first then in display order. One query for
/// a whole page.
///
/// # Errors
/// Database errors.
pub async fn images_of(
    tx: &mut Tx,
    business: BusinessId,
    products: &[Uuid],
) -> Result<HashMap<Uuid, Vec<ImageRow>>> {
    let rows: Vec<ImageRow> = sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM product_images WHERE business_id = $1 AND product_id = ANY($2) \
         ORDER BY product_id, {IMAGE_ORDER}"
    ))
    .bind(business.0)
    .bind(products)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_product: HashMap<Uuid, Vec<ImageRow>> = HashMap::new();
    for row in rows {
        by_product.entry(row.product_id).or_default().push(row);
    }
    Ok(by_product)
}

/// One image of a product.
///
/// # Errors
/// Database errors.
pub async fn image(
    tx: &mut Tx,
    business: BusinessId,
    product: Uuid,
    id: Uuid,
) -> Result<Option<ImageRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM product_images WHERE business_id = $1 AND product_id = $2 AND id = $3"
    ))
    .bind(business.0)
    .bind(product)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The image of a product with these bytes, if it has one.
///
/// # Errors
/// Database errors.
pub async fn image_by_hash(
    tx: &mut Tx,
    business: BusinessId,
    product: Uuid,
    hash: &str,
) -> Result<Option<ImageRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM product_images WHERE business_id = $1 AND product_id = $2 AND content_hash = $3"
    ))
    .bind(business.0)
    .bind(product)
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?)
}

/// A product view (the business's or the storefront's) that shows the product's images.
pub trait WithImages {
    /// The product.
    fn product_id(&self) -> Uuid;
    /// Sets the images, already in display order.
    fn set_images(&mut self, rows: Vec<ImageRow>);
}

impl WithImages for ProductView {
    fn product_id(&self) -> Uuid {
        self.id.0
    }

    fn set_images(&mut self, rows: Vec<ImageRow>) {
        self.images = rows.into_iter().map(ImageRow::view).collect();
    }
}

impl WithImages for PublicProduct {
    fn product_id(&self) -> Uuid {
        self.id.0
    }

    fn set_images(&mut self, rows: Vec<ImageRow>) {
        self.images = rows.into_iter().map(ImageRow::public).collect();
    }
}

/// Fills in the images of every product in `items` with one query. Row level security decides
/// what the storefront sees (images of published products only).
///
/// # Errors
/// Database errors.
pub async fn attach<T: WithImages>(
    tx: &mut Tx,
    business: BusinessId,
    items: &mut [T],
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = items.iter().map(WithImages::product_id).collect();
    let mut images = images_of(tx, business, &ids).await?;
    for item in items.iter_mut() {
        let own = images.remove(&item.product_id()).unwrap_or_default();
        item.set_images(own);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, alpha: bool) -> Vec<u8> {
        let image = if alpha {
            DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
                width,
                height,
                image::Rgba([10, 20, 30, 128]),
            ))
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
                width,
                height,
                image::Rgb([10, 20, 30]),
            ))
        };
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .expect("encode");
        bytes
    }

    #[test]
    fn thumbnails_keep_alpha_as_png_and_are_never_upscaled() {
        let processed = process(png(600, 300, true)).expect("valid");
        assert_eq!(processed.original.kind, ImageKind::Png);
        let sizes: Vec<_> = processed
            .thumbnails
            .iter()
            .map(|t| (t.width, t.height, t.kind))
            .collect();
        assert_eq!(
            sizes,
            [(160, 80, ImageKind::Png), (480, 240, ImageKind::Png)]
        );
        let processed = process(png(200, 100, false)).expect("valid");
        assert_eq!(processed.thumbnails.len(), 1);
        assert_eq!(processed.thumbnails[0].kind, ImageKind::Jpeg);
    }

    #[test]
    fn garbage_and_other_formats_are_refused() {
        let code = |bytes: &[u8]| process(bytes.to_vec()).expect_err("refused").code();
        assert_eq!(code(b"hello, world"), ErrorCode::UnsupportedImageType);
        assert_eq!(
            code(b"GIF89a\x01\x00\x01\x00"),
            ErrorCode::UnsupportedImageType
        );
        let whole = png(50, 50, false);
        assert_eq!(code(&whole[..whole.len() / 2]), ErrorCode::InvalidImage);
    }
}
