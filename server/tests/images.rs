//! Product images end to end through the real router: multipart upload with the type sniffed
//! from the bytes, blobs stored by SHA-256 on disk with their thumbnails, primary image and
//! order, deletion, every kind of bad upload refused with nothing stored, permissions and
//! cross-tenant ids, public serving headers, and images in the business and storefront JSON.
//!
//! Every image is generated here with the `image` crate; no binary file is committed.

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::io::Cursor;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use common::{Reply, TestApp, PASSWORD};
use http_body_util::BodyExt;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const PRODUCTS: &str = "/api/v1/business/products";
const BOUNDARY: &str = "fleetfront-test-boundary-7d1c";

fn rgb(width: u32, height: u32, color: [u8; 3], format: ImageFormat) -> Vec<u8> {
    let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, Rgb(color)));
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn png(width: u32, height: u32, color: [u8; 3]) -> Vec<u8> {
    rgb(width, height, color, ImageFormat::Png)
}

fn transparent_png(width: u32, height: u32) -> Vec<u8> {
    let image = DynamicImage::ImageRgba8(RgbaImage::from_pixel(
        width,
        height,
        Rgba([200, 10, 10, 100]),
    ));
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

/// CRC-32 (ISO-HDLC), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A tiny, well-formed PNG whose header claims 100000×100000 RGB pixels (30 GB decoded).
fn bomb_png() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000_u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000_u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(chunk(b"IHDR", &ihdr));
    bytes.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    bytes.extend(chunk(b"IEND", &[]));
    bytes
}

/// One part of a multipart body: (field name, file name, declared content type, bytes).
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(filename) = filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(format!("{disposition}\r\n").as_bytes());
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn images_path(product: &str) -> String {
    format!("{PRODUCTS}/{product}/images")
}

async fn send_multipart(t: &TestApp, token: &str, product: &str, parts: &[Part<'_>]) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(images_path(product))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(multipart(parts)))
        .unwrap();
    t.raw(request).await
}

/// Uploads `bytes` as `file` under a harmless name and type.
async fn upload(t: &TestApp, token: &str, product: &str, bytes: &[u8]) -> Reply {
    send_multipart(
        t,
        token,
        product,
        &[("file", Some("photo.jpg"), Some("image/jpeg"), bytes)],
    )
    .await
}

/// GET without a token, keeping headers and raw bytes.
async fn fetch(
    t: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = t
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes().to_vec(),
    )
}

/// A store with a published storefront; returns (app, business, owner token).
async fn store(subdomain: &str) -> (TestApp, Uuid, String) {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (business, owner) = t.business(&admin, subdomain, "growth").await;
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(&owner),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
    (t, business, owner)
}

async fn product(t: &TestApp, token: &str, sku: &str, published: bool) -> String {
    let body = json!({"sku": sku, "name": format!("Product {sku}"), "price_minor": 1000, "is_published": published});
    t.send(Method::POST, PRODUCTS, Some(token), Some(body))
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every file under the test's blob folder (temporary files included).
fn stored_files(t: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&common::blob_dir(&t.db.name), &mut files);
    files
}

fn blob_path(t: &TestApp, hash: &str) -> std::path::PathBuf {
    common::blob_dir(&t.db.name)
        .join(&hash[0..2])
        .join(&hash[2..4])
        .join(hash)
}

async fn image_rows(t: &TestApp, business: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM product_images WHERE business_id = $1")
        .bind(business)
        .fetch_one(&t.db.pools.owner)
        .await
        .unwrap()
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap()
}

#[tokio::test]
async fn uploads_are_sniffed_stored_by_hash_and_thumbnailed() {
    let (t, business, owner) = store("pics-shop").await;
    let id = product(&t, &owner, "PIZZA", true).await;

    // A PNG sent as "photo.jpg" with a JPEG content type: the bytes decide.
    let bytes = png(1200, 600, [200, 30, 30]);
    let image = upload(&t, &owner, &id, &bytes)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(image["content_type"], "image/png");
    assert_eq!(
        (image["width"].as_u64(), image["height"].as_u64()),
        (Some(1200), Some(600))
    );
    assert_eq!(image["byte_size"], bytes.len());
    assert_eq!(image["is_primary"], true);
    assert_eq!(image["product_id"], id.as_str());
    let hash = str_of(&image, "hash").to_owned();
    assert_eq!(hash.len(), 64);
    assert_eq!(image["url"], format!("/api/v1/images/{hash}"));
    assert_eq!(std::fs::read(blob_path(&t, &hash)).unwrap(), bytes);

    let sizes: Vec<(u64, u64)> = image["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap()))
        .collect();
    assert_eq!(sizes, [(160, 80), (480, 240), (1024, 512)]);
    for size in image["sizes"].as_array().unwrap() {
        assert_eq!(size["content_type"], "image/jpeg", "no alpha: JPEG");
        let (status, headers, body) = fetch(&t, str_of(size, "url"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
        let decoded = image::load_from_memory(&body).unwrap();
        assert_eq!(
            (u64::from(decoded.width()), u64::from(decoded.height())),
            (
                size["width"].as_u64().unwrap(),
                size["height"].as_u64().unwrap()
            )
        );
        let thumb_hash = str_of(size, "url").rsplit('/').next().unwrap();
        assert!(
            blob_path(&t, thumb_hash).is_file(),
            "stored by its own hash"
        );
    }

    // The same bytes again: the existing image, not a duplicate.
    let again = upload(&t, &owner, &id, &bytes).await.expect(StatusCode::OK);
    assert_eq!(again["id"], image["id"]);
    assert_eq!(image_rows(&t, business).await, 1);

    // A JPEG declared as text/plain "notes.txt", with alt text; never upscaled.
    let jpeg = rgb(300, 200, [10, 200, 10], ImageFormat::Jpeg);
    let second = send_multipart(
        &t,
        &owner,
        &id,
        &[
            ("alt", None, None, "  Green pizza ".as_bytes()),
            ("file", Some("notes.txt"), Some("text/plain"), &jpeg),
        ],
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(second["content_type"], "image/jpeg");
    assert_eq!(second["alt"], "Green pizza");
    assert_eq!(
        second["is_primary"], false,
        "only the first image is primary"
    );
    assert_eq!(second["display_order"], 1);
    let widths: Vec<u64> = second["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["width"].as_u64().unwrap())
        .collect();
    assert_eq!(widths, [160]);

    // Transparency survives: PNG thumbnails.
    let third = upload(&t, &owner, &id, &transparent_png(500, 500))
        .await
        .expect(StatusCode::CREATED);
    for size in third["sizes"].as_array().unwrap() {
        assert_eq!(size["content_type"], "image/png");
    }

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE business_id = $1 AND action LIKE 'product_image.%' AND outcome = 'ok'",
    )
    .bind(business)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(
        actions.len(),
        3,
        "one audit row per stored image: {actions:?}"
    );
}

/// The product's images as (id, is_primary), in the order the API lists them.
async fn listed(t: &TestApp, owner: &str, product: &str) -> Vec<(String, bool)> {
    let body = t
        .send(Method::GET, &images_path(product), Some(owner), None)
        .await
        .expect(StatusCode::OK);
    body.as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                str_of(i, "id").to_owned(),
                i["is_primary"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn primary_image_order_and_delete() {
    let (t, business, owner) = store("order-shop").await;
    let id = product(&t, &owner, "CAKE", true).await;
    let mut ids = Vec::new();
    let mut hashes = Vec::new();
    for color in [[1, 1, 1], [2, 2, 2], [3, 3, 3]] {
        let image = upload(&t, &owner, &id, &png(40, 40, color))
            .await
            .expect(StatusCode::CREATED);
        ids.push(str_of(&image, "id").to_owned());
        hashes.push(str_of(&image, "hash").to_owned());
    }
    assert_eq!(
        listed(&t, &owner, &id).await,
        [
            (ids[0].clone(), true),
            (ids[1].clone(), false),
            (ids[2].clone(), false)
        ]
    );

    // Make the third primary: exactly one primary, shown first.
    let path = |image: &str| format!("{}/{image}", images_path(&id));
    let changed = t
        .send(
            Method::PATCH,
            &path(&ids[2]),
            Some(&owner),
            Some(json!({"is_primary": true, "alt": "Side view"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["is_primary"], true);
    assert_eq!(changed["alt"], "Side view");
    assert_eq!(
        listed(&t, &owner, &id).await,
        [
            (ids[2].clone(), true),
            (ids[0].clone(), false),
            (ids[1].clone(), false)
        ]
    );
    let primaries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM product_images WHERE business_id = $1 AND is_primary",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(primaries, 1);

    // Reorder: the second before the first.
    t.send(
        Method::PATCH,
        &path(&ids[1]),
        Some(&owner),
        Some(json!({"display_order": 0})),
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::PATCH,
        &path(&ids[0]),
        Some(&owner),
        Some(json!({"display_order": 5, "alt": null})),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        listed(&t, &owner, &id).await,
        [
            (ids[2].clone(), true),
            (ids[1].clone(), false),
            (ids[0].clone(), false)
        ]
    );

    // Bad changes: every field error at once; unknown fields refused; unknown image 404.
    let bad = t
        .send(
            Method::PATCH,
            &path(&ids[0]),
            Some(&owner),
            Some(json!({"display_order": -1, "alt": ""})),
        )
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"].as_array().unwrap().len(), 2);
    t.send(
        Method::PATCH,
        &path(&ids[0]),
        Some(&owner),
        Some(json!({"hash": hashes[1]})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    t.send(
        Method::PATCH,
        &path(&Uuid::new_v4().to_string()),
        Some(&owner),
        Some(json!({"is_primary": true})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");

    // Deleting the primary promotes the next one; its bytes are no longer served.
    t.send(Method::DELETE, &path(&ids[2]), Some(&owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(
        listed(&t, &owner, &id).await,
        [(ids[1].clone(), true), (ids[0].clone(), false)]
    );
    let (status, _, _) = fetch(&t, &format!("/api/v1/images/{}", hashes[2]), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.send(Method::DELETE, &path(&ids[2]), Some(&owner), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let deleted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action = 'product_image.delete'",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(deleted, 1);

    // An archived product's images cannot change.
    t.send(
        Method::DELETE,
        &format!("{PRODUCTS}/{id}"),
        Some(&owner),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    upload(&t, &owner, &id, &png(10, 10, [9, 9, 9]))
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_stored() {
    let (t, business, owner) = store("bad-shop").await;
    let id = product(&t, &owner, "SOUP", true).await;
    let whole = png(64, 64, [5, 6, 7]);
    let oversized = vec![0_u8; 10 * 1024 * 1024 + 1];
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "an 11 MiB file",
            oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "a text file",
            b"just some notes\n".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image_type",
        ),
        (
            "garbage",
            (0..2048_u32).map(|i| (i * 7919 % 251) as u8).collect(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image_type",
        ),
        (
            "a GIF",
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image_type",
        ),
        (
            "a truncated PNG",
            whole[..whole.len() / 2].to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "a JPEG with nothing after its header",
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "a decompression bomb",
            bomb_png(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
    ];
    for (what, bytes, status, code) in cases {
        let reply = upload(&t, &owner, &id, &bytes).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert_eq!(reply.code(), code, "{what}: {}", reply.body);
        assert_eq!(reply.content_type, "application/problem+json", "{what}");
    }

    // Malformed forms.
    send_multipart(&t, &owner, &id, &[("alt", None, None, b"no file")])
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    send_multipart(
        &t,
        &owner,
        &id,
        &[("file", None, None, &whole), ("zzz", None, None, b"1")],
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    send_multipart(&t, &owner, &id, &[("file", None, None, b"")])
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let long_alt = "x".repeat(301);
    send_multipart(
        &t,
        &owner,
        &id,
        &[
            ("file", None, None, &whole),
            ("alt", None, None, long_alt.as_bytes()),
        ],
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    t.send(
        Method::POST,
        &images_path(&id),
        Some(&owner),
        Some(json!({"file": "x"})),
    )
    .await
    .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let request = Request::builder()
        .method(Method::POST)
        .uri(images_path(&id))
        .header(header::AUTHORIZATION, format!("Bearer {owner}"))
        .header(header::CONTENT_TYPE, "multipart/form-data")
        .body(Body::from("garbage"))
        .unwrap();
    t.raw(request)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    let request = Request::builder()
        .method(Method::POST)
        .uri(images_path(&id))
        .header(header::AUTHORIZATION, format!("Bearer {owner}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from("not a multipart body at all"))
        .unwrap();
    let reply = t.raw(request).await;
    assert!(reply.status.is_client_error(), "{reply:?}");
    assert_eq!(reply.content_type, "application/problem+json");

    assert_eq!(stored_files(&t), Vec::<std::path::PathBuf>::new());
    assert_eq!(image_rows(&t, business).await, 0);
}

#[tokio::test]
async fn other_businesses_products_are_404_and_roles_without_catalog_manage_are_403() {
    let (t, _, owner) = store("a-shop").await;
    let admin = t.admin_token().await;
    let (_, other) = t.business(&admin, "b-shop", "growth").await;
    let theirs = product(&t, &other, "THEIRS", true).await;
    let their_image = upload(&t, &other, &theirs, &png(20, 20, [1, 2, 3]))
        .await
        .expect(StatusCode::CREATED);
    let their_image = str_of(&their_image, "id").to_owned();
    let before = stored_files(&t).len();

    upload(&t, &owner, &theirs, &png(20, 20, [4, 5, 6]))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(stored_files(&t).len(), before, "nothing stored for a 404");
    t.send(Method::GET, &images_path(&theirs), Some(&owner), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let path = format!("{}/{their_image}", images_path(&theirs));
    t.send(
        Method::PATCH,
        &path,
        Some(&owner),
        Some(json!({"is_primary": true})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send(Method::DELETE, &path, Some(&owner), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND action LIKE '%/images%'",
    )
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert!(denied >= 4, "cross-tenant attempts are audited ({denied})");

    // A cashier may read the catalog but not change it.
    let ours = product(&t, &owner, "OURS", true).await;
    t.send(
        Method::POST,
        "/api/v1/business/roles",
        Some(&owner),
        Some(json!({"key": "cashier", "name": "Cashier", "permissions": ["orders.read", "catalog.read"]})),
    )
    .await
    .expect(StatusCode::CREATED);
    t.send(
        Method::POST,
        "/api/v1/business/staff",
        Some(&owner),
        Some(json!({"email": "till@a-shop.test", "full_name": "Till", "role": "cashier", "password": PASSWORD})),
    )
    .await
    .expect(StatusCode::CREATED);
    let cashier = t.login("till@a-shop.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    upload(&t, &cashier, &ours, &png(20, 20, [7, 8, 9]))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    t.send(Method::GET, &images_path(&ours), Some(&cashier), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(stored_files(&t).len(), before);
}

#[tokio::test]
async fn images_are_served_by_hash_with_immutable_caching() {
    let (t, _, owner) = store("serve-shop").await;
    let id = product(&t, &owner, "TEA", false).await;
    let bytes = png(30, 20, [90, 80, 70]);
    let image = upload(&t, &owner, &id, &bytes)
        .await
        .expect(StatusCode::CREATED);
    let hash = str_of(&image, "hash");
    let url = format!("/api/v1/images/{hash}");

    let (status, headers, body) = fetch(&t, &url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(headers[header::ETAG], format!("\"{hash}\""));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    let etag = format!("\"{hash}\"");
    let (status, headers, body) = fetch(&t, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers[header::ETAG], etag);

    for bad in [
        "xyz",
        &hash.to_uppercase(),
        &format!("{hash}0"),
        "../../etc/passwd",
    ] {
        let reply = t
            .send(Method::GET, &format!("/api/v1/images/{bad}"), None, None)
            .await;
        assert!(reply.status.is_client_error(), "{bad}: {reply:?}");
        assert_eq!(reply.content_type, "application/problem+json", "{bad}");
    }
    t.send(Method::GET, "/api/v1/images/abc", None, None)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "malformed_request");
    let unknown = "0".repeat(64);
    t.send(
        Method::GET,
        &format!("/api/v1/images/{unknown}"),
        None,
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn images_appear_in_product_json_and_on_the_storefront_only_when_published() {
    let (t, _, owner) = store("front-shop").await;
    let id = product(&t, &owner, "BREAD", false).await;
    let first = upload(&t, &owner, &id, &png(600, 400, [1, 50, 100]))
        .await
        .expect(StatusCode::CREATED);
    let second = send_multipart(
        &t,
        &owner,
        &id,
        &[
            ("file", Some("b.png"), None, &png(200, 100, [100, 50, 1])),
            ("alt", None, None, b"Sliced"),
        ],
    )
    .await
    .expect(StatusCode::CREATED);
    t.send(
        Method::PATCH,
        &format!("{}/{}", images_path(&id), str_of(&second, "id")),
        Some(&owner),
        Some(json!({"is_primary": true})),
    )
    .await
    .expect(StatusCode::OK);

    // The business sees them on the product and in the list, primary first.
    let view = t
        .send(Method::GET, &format!("{PRODUCTS}/{id}"), Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    let hashes: Vec<&str> = view["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| str_of(i, "hash"))
        .collect();
    assert_eq!(hashes, [str_of(&second, "hash"), str_of(&first, "hash")]);
    let page = t
        .send(Method::GET, PRODUCTS, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(page["items"][0]["images"].as_array().unwrap().len(), 2);

    // A draft is not on the storefront, images included.
    let storefront = format!("/api/v1/storefronts/front-shop/products/{id}");
    t.send(Method::GET, &storefront, None, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let listed = t
        .send(
            Method::GET,
            "/api/v1/storefronts/front-shop/products",
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["items"], json!([]));

    t.send(
        Method::PATCH,
        &format!("{PRODUCTS}/{id}"),
        Some(&owner),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
    let public = t
        .send(Method::GET, &storefront, None, None)
        .await
        .expect(StatusCode::OK);
    let images = public["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["url"], second["url"]);
    assert_eq!(images[0]["alt"], "Sliced");
    assert_eq!(
        (images[0]["width"].as_u64(), images[0]["height"].as_u64()),
        (Some(200), Some(100))
    );
    assert_eq!(images[1]["url"], first["url"]);
    assert_eq!(images[1]["sizes"].as_array().unwrap().len(), 2);
    assert!(images[0].get("hash").is_none() && images[0].get("id").is_none());
    let listed = t
        .send(
            Method::GET,
            "/api/v1/storefronts/front-shop/products",
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["items"][0]["images"], public["images"]);
}
