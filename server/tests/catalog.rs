//! The catalog, end to end through the real router: the business side (products with variants,
//! categories, validation, plan limits, SKU clashes, archive-on-delete, audit, permissions,
//! cross-tenant ids) and the public storefront (store page, filters, sorts, search, keyset
//! pagination, visibility rules, `open_now`).

#![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::collections::{BTreeSet, HashSet};

use axum::http::{Method, StatusCode};
use chrono::{TimeZone, Utc};
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};
use uuid::Uuid;

const PRODUCTS: &str = "/api/v1/business/products";
const CATEGORIES: &str = "/api/v1/business/categories";

/// A test app with one published store on `plan`; returns (app, admin, business id, owner).
async fn store(subdomain: &str, plan: &str) -> (TestApp, String, Uuid, String) {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let (business, owner) = t.business(&admin, subdomain, plan).await;
    publish(&t, &owner).await;
    (t, admin, business, owner)
}

async fn publish(t: &TestApp, owner: &str) {
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(owner),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
}

#[track_caller]
fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn create(t: &TestApp, token: &str, body: Value) -> Value {
    t.send(Method::POST, PRODUCTS, Some(token), Some(body))
        .await
        .expect(StatusCode::CREATED)
}

async fn category(t: &TestApp, token: &str, body: Value) -> Value {
    t.send(Method::POST, CATEGORIES, Some(token), Some(body))
        .await
        .expect(StatusCode::CREATED)
}

/// A published product with no variants.
fn simple(sku: &str, name: &str, price: i64) -> Value {
    json!({"sku": sku, "name": name, "price_minor": price, "is_published": true})
}

/// The `(field, code)` pairs of a problem's field errors.
fn field_errors(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn audit_actions(t: &TestApp, business: Uuid, resource: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE business_id = $1 AND resource_id = $2 AND outcome = 'ok' ORDER BY occurred_at, id",
    )
    .bind(business)
    .bind(resource)
    .fetch_all(&t.db.pools.owner)
    .await
    .unwrap()
}

async fn row_count(t: &TestApp, table: &str, business: Uuid) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE business_id = $1"
    ))
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap()
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test]
async fn products_with_variants_are_created_read_changed_and_audited() {
    let (t, _, business, owner) = store("crud-shop", "growth").await;
    let mains = t
        .send(Method::GET, CATEGORIES, Some(&owner), None)
        .await
        .expect(StatusCode::OK)[0]
        .clone();
    assert_eq!(mains["slug"], "mains");
    let created = create(
        &t,
        &owner,
        json!({
            "sku": "pz-1", "name": "Margherita", "description": "Tomato, mozzarella, basil",
            "price_minor": 1000, "cost_minor": 350, "category_id": mains["id"],
            "preparation_time_minutes": 12,
            "variants": [
                {"name": "Small", "sku": "pz-1-s", "price_adjustment_minor": -200, "options": {"size": "small"}, "stock_quantity": 0},
                {"name": "Large", "sku": "pz-1-l", "price_adjustment_minor": 300, "options": {"size": "large"}}
            ]
        }),
    )
    .await;
    let id = id_of(&created);
    assert_eq!(created["sku"], "PZ-1", "SKUs are stored in upper case");
    assert_eq!(created["price"], json!({"minor": 1000, "currency": "EUR"}));
    assert_eq!(created["cost"], json!({"minor": 350, "currency": "EUR"}));
    assert_eq!(created["category"]["slug"], "mains");
    assert_eq!(created["is_published"], false, "a new product is a draft");
    assert_eq!(created["preparation_time_minutes"], 12);
    assert_eq!(created["available"], true, "the large one is untracked");
    let variants = created["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["price"]["minor"], 800);
    assert_eq!(variants[0]["available"], false);
    assert_eq!(variants[1]["price"]["minor"], 1300);
    assert_eq!(variants[1]["stock_quantity"], Value::Null);
    let large_id = id_of(&variants[1]);

    let path = format!("{PRODUCTS}/{id}");
    let got = t
        .send(Method::GET, &path, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(got, created);
    let list = t
        .send(Method::GET, PRODUCTS, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&list), vec![id.clone()]);
    assert_eq!(list["next_cursor"], Value::Null);

    // A plain change: absent fields stay, null clears.
    let changed = t
        .send(
            Method::PATCH,
            &path,
            Some(&owner),
            Some(json!({"name": "Pizza Margherita", "price_minor": 1100, "description": null, "category_id": null, "is_published": true})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed["name"], "Pizza Margherita");
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["category"], Value::Null);
    assert_eq!(changed["cost"]["minor"], 350);
    assert_eq!(changed["variants"][1]["price"]["minor"], 1400);
    assert_eq!(changed["is_published"], true);

    // Replacing the variants: the large one keeps its id, small goes, family is new.
    let replaced = t
        .send(
            Method::PATCH,
            &path,
            Some(&owner),
            Some(json!({"variants": [
                {"name": "Family", "sku": "pz-1-f", "price_adjustment_minor": 900, "stock_quantity": 5},
                {"name": "Large", "sku": "PZ-1-L", "price_adjustment_minor": 400, "options": {"size": "large", "crust": "thin"}}
            ]})),
        )
        .await
        .expect(StatusCode::OK);
    let variants = replaced["variants"].as_array().unwrap();
    let skus: Vec<&str> = variants
        .iter()
        .map(|v| v["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["PZ-1-F", "PZ-1-L"]);
    assert_eq!(id_of(&variants[1]), large_id, "same SKU, same variant");
    assert_eq!(variants[1]["price"]["minor"], 1500);
    assert_eq!(variants[1]["options"]["crust"], "thin");
    assert_eq!(row_count(&t, "product_variants", business).await, 2);

    // A price that would make a variant negative is refused.
    let bad = t
        .send(
            Method::PATCH,
            &path,
            Some(&owner),
            Some(json!({"variants": [{"name": "Free", "sku": "pz-1-x", "price_adjustment_minor": -1101}]})),
        )
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&bad.body),
        [(
            "variants[0].price_adjustment_minor".to_owned(),
            "negative_price".to_owned()
        )]
    );
    // `[]` removes every variant.
    let bare = t
        .send(
            Method::PATCH,
            &path,
            Some(&owner),
            Some(json!({"variants": []})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(bare["variants"], json!([]));

    assert_eq!(
        audit_actions(&t, business, &id).await,
        [
            "product.create",
            "product.update",
            "product.update",
            "product.update"
        ]
    );
}

#[tokio::test]
async fn every_field_error_is_reported_at_once_and_nothing_is_written() {
    let (t, _, business, owner) = store("strict-catalog", "growth").await;
    let reply = t
        .send(
            Method::POST,
            PRODUCTS,
            Some(&owner),
            Some(json!({
                "sku": "has space", "name": "", "description": "   ", "price_minor": -5,
                "cost_minor": 100000001, "preparation_time_minutes": 601,
                "variants": [{"name": "", "sku": "-bad", "price_adjustment_minor": 200000000, "stock_quantity": -1}]
            })),
        )
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<String> = field_errors(&reply.body)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        fields,
        [
            "sku",
            "name",
            "description",
            "price_minor",
            "cost_minor",
            "preparation_time_minutes",
            "variants[0].name",
            "variants[0].sku",
            "variants[0].price_adjustment_minor",
            "variants[0].stock_quantity"
        ]
    );
    // Unknown or server-owned fields are refused by name.
    for field in ["business_id", "archived_at", "id"] {
        let mut body = simple("ok-1", "Fine", 100);
        body[field] = json!(null);
        let reply = t
            .send(Method::POST, PRODUCTS, Some(&owner), Some(body))
            .await;
        reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            field_errors(&reply.body),
            [(field.to_owned(), "unknown_field".to_owned())]
        );
    }
    // Category rules, all at once too.
    let reply = t
        .send(
            Method::POST,
            CATEGORIES,
            Some(&owner),
            Some(json!({"name": " ", "slug": "No Caps", "display_order": 5000000})),
        )
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&reply.body)
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>(),
        ["name", "slug", "display_order"]
    );
    // A list query's bad parameters, all at once.
    let reply = t
        .send(
            Method::GET,
            &format!("{PRODUCTS}?limit=0&sort=cheapest&min_price=x&cursor=zzz"),
            Some(&owner),
            None,
        )
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_errors(&reply.body).len(), 4, "{}", reply.body);
    assert_eq!(row_count(&t, "products", business).await, 0);
    assert_eq!(row_count(&t, "product_variants", business).await, 0);
}

#[tokio::test]
async fn the_plan_limits_products_and_archived_ones_do_not_count() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    // The starter plan allows 100 products; lower it to 2 before the business subscribes
    // (limits are copied into a subscription when it starts).
    let starter = "00000000-0000-7000-8000-0000000000a1";
    let plan = t
        .send(
            Method::PATCH,
            &format!("/api/v1/admin/plans/{starter}"),
            Some(&admin),
            Some(json!({"limits": {"staff_seats": 3, "products": 2, "custom_roles": 0, "dedicated_drivers": 2}})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(plan["limits"]["products"], 2);
    let (business, owner) = t.business(&admin, "small-shop", "starter").await;
    let first = create(&t, &owner, simple("a", "A", 100)).await;
    create(&t, &owner, simple("b", "B", 100)).await;
    let third = t
        .send(
            Method::POST,
            PRODUCTS,
            Some(&owner),
            Some(simple("c", "C", 100)),
        )
        .await;
    third.expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
    assert!(
        third.body["detail"]
            .as_str()
            .unwrap()
            .contains("2 products"),
        "{}",
        third.body
    );
    assert_eq!(row_count(&t, "products", business).await, 2);
    // Archiving frees a slot.
    t.send(
        Method::DELETE,
        &format!("{PRODUCTS}/{}", id_of(&first)),
        Some(&owner),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    create(&t, &owner, simple("c", "C", 100)).await;
    // Moving to a plan that allows fewer products than the business has is refused.
    t.send(
        Method::PATCH,
        &format!("/api/v1/admin/plans/{starter}"),
        Some(&admin),
        Some(json!({"limits": {"staff_seats": 3, "products": 1}})),
    )
    .await
    .expect(StatusCode::OK);
    t.send(
        Method::PATCH,
        &format!("/api/v1/admin/businesses/{business}"),
        Some(&admin),
        Some(json!({"plan": "starter"})),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "plan_limit_reached");
}

#[tokio::test]
async fn duplicate_skus_are_conflicts_on_the_exact_field() {
    let (t, _, business, owner) = store("sku-shop", "growth").await;
    let first = create(
        &t,
        &owner,
        json!({"sku": "cola", "name": "Cola", "price_minor": 250,
               "variants": [{"name": "Can", "sku": "cola-can"}, {"name": "Bottle", "sku": "cola-btl"}]}),
    )
    .await;
    // The same SKU in another case is the same SKU.
    let reply = t
        .send(
            Method::POST,
            PRODUCTS,
            Some(&owner),
            Some(simple("COLA", "Cola again", 250)),
        )
        .await;
    reply.expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        field_errors(&reply.body),
        [("sku".to_owned(), "taken".to_owned())]
    );
    let reply = t
        .send(
            Method::POST,
            PRODUCTS,
            Some(&owner),
            Some(json!({"sku": "fanta", "name": "Fanta", "price_minor": 250,
                        "variants": [{"name": "Glass", "sku": "fanta-glass"}, {"name": "Can", "sku": "COLA-CAN"}]})),
        )
        .await;
    reply.expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        field_errors(&reply.body),
        [("variants[1].sku".to_owned(), "taken".to_owned())]
    );
    // Renaming another product to a taken SKU is refused the same way.
    let second = create(&t, &owner, simple("sprite", "Sprite", 250)).await;
    let reply = t
        .send(
            Method::PATCH,
            &format!("{PRODUCTS}/{}", id_of(&second)),
            Some(&owner),
            Some(json!({"sku": "cola"})),
        )
        .await;
    reply.expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        field_errors(&reply.body),
        [("sku".to_owned(), "taken".to_owned())]
    );
    // A product keeps its own SKU and its variants' SKUs on an edit.
    t.send(
        Method::PATCH,
        &format!("{PRODUCTS}/{}", id_of(&first)),
        Some(&owner),
        Some(json!({"sku": "COLA", "variants": [{"name": "Can", "sku": "cola-can"}]})),
    )
    .await
    .expect(StatusCode::OK);
    // Twice in one request is a validation error, not a conflict.
    let reply = t
        .send(
            Method::POST,
            PRODUCTS,
            Some(&owner),
            Some(json!({"sku": "tea", "name": "Tea", "price_minor": 250,
                        "variants": [{"name": "Hot", "sku": "tea-1"}, {"name": "Iced", "sku": "TEA-1"}]})),
        )
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&reply.body),
        [("variants[1].sku".to_owned(), "duplicate".to_owned())]
    );
    assert_eq!(row_count(&t, "products", business).await, 2);
    // The unique constraint is the last word (a write racing past the check): it maps to the
    // same conflict by constraint name.
    let mut su = t.db.superuser().await;
    let raced = sqlx::query(
        "INSERT INTO products (business_id, id, sku, name, price_minor) VALUES ($1, $2, 'COLA', 'x', 1)",
    )
    .bind(business)
    .bind(Uuid::now_v7())
    .execute(&mut su)
    .await
    .unwrap_err();
    let error = fleetfront_server::Error::from(raced);
    assert_eq!(error.code(), fleetfront_domain::ErrorCode::Conflict);
    assert_eq!(error.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn categories_form_a_tree_without_cycles_and_delete_only_when_unused() {
    let (t, admin, business, owner) = store("tree-shop", "growth").await;
    let (_, other_owner) = t.business(&admin, "other-tree", "growth").await;
    let foreign = category(&t, &other_owner, json!({"name": "Foreign"})).await;

    let food = category(&t, &owner, json!({"name": "Food", "display_order": -1})).await;
    assert_eq!(food["slug"], "food");
    let pizza = category(
        &t,
        &owner,
        json!({"name": "Pizza", "parent_id": food["id"], "display_order": 2}),
    )
    .await;
    let pasta = category(
        &t,
        &owner,
        json!({"name": "Pasta", "parent_id": food["id"], "display_order": 1}),
    )
    .await;
    let vegan = category(
        &t,
        &owner,
        json!({"name": "Vegan pizza", "slug": "vegan", "parent_id": pizza["id"]}),
    )
    .await;
    let list = t
        .send(Method::GET, CATEGORIES, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    let tree: Vec<(String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["slug"].as_str().unwrap().to_owned(),
                c["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("food", 0),
        ("pasta", 1),
        ("pizza", 1),
        ("vegan", 2),
        ("mains", 0),
        ("drinks", 0),
    ];
    assert_eq!(
        tree,
        expected
            .iter()
            .map(|(s, d)| (s.to_string(), *d))
            .collect::<Vec<_>>()
    );

    // A parent of another business does not exist here; cycles are refused.
    for (path, body, code) in [
        (
            CATEGORIES.to_owned(),
            json!({"name": "Sneaky", "parent_id": foreign["id"]}),
            "unknown_category",
        ),
        (
            format!("{CATEGORIES}/{}", id_of(&food)),
            json!({"parent_id": vegan["id"]}),
            "cycle",
        ),
        (
            format!("{CATEGORIES}/{}", id_of(&pizza)),
            json!({"parent_id": pizza["id"]}),
            "cycle",
        ),
    ] {
        let method = if path == CATEGORIES {
            Method::POST
        } else {
            Method::PATCH
        };
        let reply = t.send(method, &path, Some(&owner), Some(body)).await;
        reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            field_errors(&reply.body),
            [("parent_id".to_owned(), code.to_owned())]
        );
    }
    // A taken slug is a conflict.
    let reply = t
        .send(
            Method::PATCH,
            &format!("{CATEGORIES}/{}", id_of(&pasta)),
            Some(&owner),
            Some(json!({"slug": "pizza"})),
        )
        .await;
    reply.expect_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        field_errors(&reply.body),
        [("slug".to_owned(), "taken".to_owned())]
    );
    // Moving a subtree and back to the top.
    let moved = t
        .send(
            Method::PATCH,
            &format!("{CATEGORIES}/{}", id_of(&pizza)),
            Some(&owner),
            Some(json!({"parent_id": pasta["id"], "name": "Pizzas"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(moved["depth"], 2);
    assert_eq!(moved["name"], "Pizzas");
    let top = t
        .send(
            Method::PATCH,
            &format!("{CATEGORIES}/{}", id_of(&pizza)),
            Some(&owner),
            Some(json!({"parent_id": null})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(top["parent_id"], Value::Null);
    assert_eq!(top["depth"], 0);

    // Delete is refused while a subcategory or a product uses the category.
    let pizza_path = format!("{CATEGORIES}/{}", id_of(&pizza));
    t.send(Method::DELETE, &pizza_path, Some(&owner), None)
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
    let vegan_path = format!("{CATEGORIES}/{}", id_of(&vegan));
    let product = create(
        &t,
        &owner,
        json!({"sku": "v-1", "name": "Vegan", "price_minor": 900, "category_id": vegan["id"]}),
    )
    .await;
    let counted = t
        .send(Method::GET, CATEGORIES, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    let vegan_count = counted
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == vegan["id"])
        .unwrap()["product_count"]
        .clone();
    assert_eq!(vegan_count, 1);
    t.send(Method::DELETE, &vegan_path, Some(&owner), None)
        .await
        .expect_problem(StatusCode::CONFLICT, "conflict");
    // Archived products do not hold a category: they lose it.
    let product_path = format!("{PRODUCTS}/{}", id_of(&product));
    t.send(Method::DELETE, &product_path, Some(&owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    t.send(Method::DELETE, &vegan_path, Some(&owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    t.send(Method::DELETE, &pizza_path, Some(&owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let archived = t
        .send(Method::GET, &product_path, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(archived["category"], Value::Null);
    assert_eq!(
        audit_actions(&t, business, &id_of(&pizza)).await,
        [
            "category.create",
            "category.update",
            "category.update",
            "category.delete"
        ]
    );
}

#[tokio::test]
async fn deleting_a_product_archives_it() {
    let (t, _, business, owner) = store("archive-shop", "growth").await;
    let product = create(
        &t,
        &owner,
        json!({"sku": "old-1", "name": "Old", "price_minor": 500, "is_published": true,
               "variants": [{"name": "One", "sku": "old-1-a"}]}),
    )
    .await;
    let path = format!("{PRODUCTS}/{}", id_of(&product));
    let public_path = format!(
        "/api/v1/storefronts/archive-shop/products/{}",
        id_of(&product)
    );
    t.send(Method::GET, &public_path, None, None)
        .await
        .expect(StatusCode::OK);
    t.send(Method::DELETE, &path, Some(&owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let archived = t
        .send(Method::GET, &path, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    assert!(archived["archived_at"].is_string());
    assert_eq!(archived["is_published"], false);
    assert_eq!(archived["variants"].as_array().unwrap().len(), 1, "kept");
    let list = t
        .send(Method::GET, PRODUCTS, Some(&owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list["items"], json!([]));
    t.send(Method::GET, &public_path, None, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    let edit = t
        .send(
            Method::PATCH,
            &path,
            Some(&owner),
            Some(json!({"is_published": true})),
        )
        .await;
    edit.expect_problem(StatusCode::CONFLICT, "conflict");
    // Archiving again changes nothing; the row is still there.
    t.send(Method::DELETE, &path, Some(&owner), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(row_count(&t, "products", business).await, 1);
    assert_eq!(
        audit_actions(&t, business, &id_of(&product)).await,
        ["product.create", "product.archive"]
    );
    // The runtime role cannot delete products at all.
    let mut tx = t.db.pools.app.begin().await.unwrap();
    fleetfront_server::db::set_principal(&mut tx, "staff", None, None, Some(business))
        .await
        .unwrap();
    let refused = sqlx::query("DELETE FROM products WHERE business_id = $1")
        .bind(business)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
}

#[tokio::test]
async fn permissions_decide_who_reads_and_who_writes() {
    let (t, _, business, owner) = store("perm-shop", "growth").await;
    let mut tokens = Vec::new();
    for (role, who) in [("staff", "counter"), ("dispatcher", "dispatch")] {
        let email = format!("{who}@perm-shop.test");
        t.send(
            Method::POST,
            "/api/v1/business/staff",
            Some(&owner),
            Some(json!({"email": email, "full_name": who, "role": role, "password": PASSWORD})),
        )
        .await
        .expect(StatusCode::CREATED);
        tokens.push(
            t.login(&email, PASSWORD).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (counter, dispatcher) = (&tokens[0], &tokens[1]);
    let product = create(&t, &owner, simple("p-1", "P", 100)).await;
    let path = format!("{PRODUCTS}/{}", id_of(&product));
    // The counter role reads the catalog but cannot change it.
    for path in [PRODUCTS, CATEGORIES, path.as_str()] {
        t.send(Method::GET, path, Some(counter), None)
            .await
            .expect(StatusCode::OK);
        t.send(Method::GET, path, Some(dispatcher), None)
            .await
            .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let writes = [
        (
            Method::POST,
            PRODUCTS.to_owned(),
            Some(simple("p-2", "Q", 1)),
        ),
        (Method::PATCH, path.clone(), Some(json!({"name": "R"}))),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            CATEGORIES.to_owned(),
            Some(json!({"name": "C"})),
        ),
    ];
    for (method, path, body) in writes {
        t.send(method, &path, Some(counter), body)
            .await
            .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied'",
    )
    .bind(business)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert!(denied >= 7, "every refusal is audited, found {denied}");
    // Customers and anonymous callers have no business catalog.
    let customer = t
        .send(
            Method::POST,
            "/api/v1/auth/customer/register",
            None,
            Some(json!({"store": "perm-shop", "email": "c@perm.test", "password": PASSWORD, "full_name": "C"})),
        )
        .await
        .expect(StatusCode::CREATED)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(Method::GET, PRODUCTS, Some(&customer), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "forbidden");
    t.send(Method::GET, PRODUCTS, None, None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn denied_rows(t: &TestApp, business: Uuid, path: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND outcome = 'denied' AND action LIKE '%' || $2",
    )
    .bind(business)
    .bind(path)
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn another_businesss_ids_are_404_audited_and_untouched() {
    let (t, admin, a, a_owner) = store("tenant-a", "growth").await;
    let (b, b_owner) = t.business(&admin, "tenant-b", "growth").await;
    let b_category = category(&t, &b_owner, json!({"name": "B only"})).await;
    let b_product = create(
        &t,
        &b_owner,
        json!({"sku": "b-1", "name": "B product", "price_minor": 100, "category_id": b_category["id"],
               "variants": [{"name": "V", "sku": "b-1-v"}]}),
    )
    .await;
    let (b_product_id, b_category_id) = (id_of(&b_product), id_of(&b_category));
    // A's lists show none of B's catalog.
    for path in [PRODUCTS, CATEGORIES] {
        let body = t
            .send(Method::GET, path, Some(&a_owner), None)
            .await
            .expect(StatusCode::OK)
            .to_string();
        assert!(!body.contains(&b_product_id) && !body.contains(&b_category_id));
    }
    let product = format!("{PRODUCTS}/{b_product_id}");
    let category_path = format!("{CATEGORIES}/{b_category_id}");
    let cases = [
        (Method::GET, product.clone(), None),
        (
            Method::PATCH,
            product.clone(),
            Some(json!({"name": "Mine now"})),
        ),
        (Method::DELETE, product.clone(), None),
        (
            Method::PATCH,
            category_path.clone(),
            Some(json!({"name": "Mine now"})),
        ),
        (Method::DELETE, category_path.clone(), None),
    ];
    for (method, path, body) in cases {
        let before = denied_rows(&t, a, &path).await;
        t.send(method.clone(), &path, Some(&a_owner), body)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            denied_rows(&t, a, &path).await,
            before + 1,
            "{method} {path} was not audited"
        );
    }
    // B's ids in a body of A are unknown too.
    let reply = t
        .send(
            Method::POST,
            PRODUCTS,
            Some(&a_owner),
            Some(
                json!({"sku": "a-1", "name": "A", "price_minor": 1, "category_id": b_category_id}),
            ),
        )
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&reply.body),
        [("category_id".to_owned(), "unknown_category".to_owned())]
    );
    // A's SKUs are its own: B's SKU is free in A.
    create(&t, &a_owner, simple("b-1", "Also B-1", 100)).await;
    // B is untouched.
    let still = t
        .send(Method::GET, &product, Some(&b_owner), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(still["name"], "B product");
    assert_eq!(still["archived_at"], Value::Null);
    assert_eq!(row_count(&t, "product_categories", b).await, 3);
    // A's storefront does not show B's product either.
    t.send(
        Method::GET,
        &format!("/api/v1/storefronts/tenant-a/products/{b_product_id}"),
        None,
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_storefront_shows_a_published_active_store_and_nothing_private() {
    let (t, admin, business, owner) = store("public-shop", "growth").await;
    let page = t
        .send(Method::GET, "/api/v1/storefronts/public-shop", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(page["name"], "Store public-shop");
    assert_eq!(page["currency"], "EUR");
    assert_eq!(page["time_zone"], "Europe/Helsinki");
    assert_eq!(page["delivery_radius_m"], 4000);
    assert_eq!(page["theme_colors"]["primary"], "#0b5fff");
    assert_eq!(page["operating_hours"]["monday"][0]["open"], "08:00");
    let text = page.to_string();
    for private in [
        "hello@public-shop.test",
        "owner@",
        "60.17",
        "business_id",
        "growth",
    ] {
        assert!(
            !text.contains(private),
            "the storefront shows {private}: {text}"
        );
    }
    // A token is not needed, and one that is sent does not change what is shown.
    let with_token = t
        .send(
            Method::GET,
            "/api/v1/storefronts/public-shop",
            Some(&owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(with_token["name"], page["name"]);

    // open_now follows the hours in the store's time zone (08:00–20:00 Helsinki, UTC+2 in
    // January). The clock is moved to fixed instants; only public calls follow.
    let set_clock = |at: chrono::DateTime<Utc>| {
        let offset = (at - t.app.clock.now()).num_seconds();
        t.app.clock.advance(offset);
    };
    let open_now = || async {
        t.send(Method::GET, "/api/v1/storefronts/public-shop", None, None)
            .await
            .expect(StatusCode::OK)["open_now"]
            .clone()
    };
    set_clock(Utc.with_ymd_and_hms(2031, 1, 15, 10, 0, 0).unwrap()); // 12:00 local
    assert_eq!(open_now().await, true);
    set_clock(Utc.with_ymd_and_hms(2031, 1, 15, 18, 30, 0).unwrap()); // 20:30 local
    assert_eq!(open_now().await, false);
    set_clock(Utc.with_ymd_and_hms(2031, 1, 15, 5, 59, 0).unwrap()); // 07:59 local
    assert_eq!(open_now().await, false);
    set_clock(Utc::now());

    // Unknown, unpublished and suspended stores are all simply not found.
    t.send(Method::GET, "/api/v1/storefronts/no-such-shop", None, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    t.send(
        Method::PATCH,
        "/api/v1/business/storefront",
        Some(&owner),
        Some(json!({"is_published": false})),
    )
    .await
    .expect(StatusCode::OK);
    for path in [
        "/api/v1/storefronts/public-shop",
        "/api/v1/storefronts/public-shop/products",
        "/api/v1/storefronts/public-shop/categories",
    ] {
        t.send(Method::GET, path, None, None)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
    }
    publish(&t, &owner).await;
    t.send(
        Method::PATCH,
        &format!("/api/v1/admin/businesses/{business}"),
        Some(&admin),
        Some(json!({"status": "suspended"})),
    )
    .await
    .expect(StatusCode::OK);
    for path in [
        "/api/v1/storefronts/public-shop",
        "/api/v1/storefronts/public-shop/products",
    ] {
        t.send(Method::GET, path, None, None)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "not_found");
    }
    // Anonymous misses are not written to any audit log.
    let anonymous: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_log WHERE action LIKE '%/storefronts/%'",
    )
    .fetch_one(&t.db.pools.owner)
    .await
    .unwrap();
    assert_eq!(anonymous, 0);
}

/// A store with a small catalog for the listing tests. Returns (app, owner, product ids by SKU).
async fn shop_with_catalog() -> (TestApp, String, std::collections::HashMap<String, String>) {
    let (t, _, _, owner) = store("list-shop", "growth").await;
    let food = category(&t, &owner, json!({"name": "Food", "display_order": 0})).await;
    let pizza = category(
        &t,
        &owner,
        json!({"name": "Pizza", "parent_id": food["id"]}),
    )
    .await;
    let drinks = t
        .send(Method::GET, CATEGORIES, Some(&owner), None)
        .await
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slug"] == "drinks")
        .unwrap()
        .clone();
    let hidden = category(&t, &owner, json!({"name": "Secret", "is_active": false})).await;
    let mut ids = std::collections::HashMap::new();
    let products = [
        json!({"sku": "marg", "name": "Margherita pizza", "description": "Tomato and mozzarella", "price_minor": 900, "category_id": pizza["id"], "is_published": true}),
        json!({"sku": "pepp", "name": "pepperoni pizza", "description": "Spicy salami, tomato", "price_minor": 1100, "category_id": pizza["id"], "is_published": true,
               "variants": [{"name": "Small", "sku": "pepp-s", "price_adjustment_minor": -200, "stock_quantity": 0},
                            {"name": "Large", "sku": "pepp-l", "price_adjustment_minor": 300, "stock_quantity": 0}]}),
        json!({"sku": "bread", "name": "Garlic bread", "description": "Oven bread with garlic butter, goes with pizza", "price_minor": 450, "category_id": food["id"], "is_published": true,
               "variants": [{"name": "Half", "sku": "bread-h", "stock_quantity": 0}, {"name": "Whole", "sku": "bread-w", "stock_quantity": 4}]}),
        json!({"sku": "cola", "name": "Cola", "description": "Cold drink", "price_minor": 250, "category_id": drinks["id"], "is_published": true, "cost_minor": 40}),
        json!({"sku": "water", "name": "Water", "price_minor": 250, "category_id": drinks["id"], "is_published": true}),
        json!({"sku": "draft", "name": "Draft pizza", "description": "pizza of tomorrow", "price_minor": 500, "is_published": false}),
        json!({"sku": "secret", "name": "Secret pizza", "description": "pizza", "price_minor": 700, "category_id": hidden["id"], "is_published": true}),
        json!({"sku": "gone", "name": "Gone pizza", "description": "pizza", "price_minor": 800, "is_published": true}),
    ];
    for body in products {
        let sku = body["sku"].as_str().unwrap().to_owned();
        let created = create(&t, &owner, body).await;
        ids.insert(sku, id_of(&created));
    }
    t.send(
        Method::DELETE,
        &format!("{PRODUCTS}/{}", ids["gone"]),
        Some(&owner),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    (t, owner, ids)
}

async fn public_list(t: &TestApp, query: &str) -> Value {
    t.send(
        Method::GET,
        &format!("/api/v1/storefronts/list-shop/products{query}"),
        None,
        None,
    )
    .await
    .expect(StatusCode::OK)
}

#[tokio::test]
async fn the_storefront_lists_filters_sorts_and_searches_published_products() {
    let (t, owner, ids) = shop_with_catalog().await;
    // Default: by name, case-insensitive; drafts and archived products are absent; a product in
    // an inactive category stays listed, without its category.
    let all = public_list(&t, "").await;
    assert_eq!(
        names(&all),
        [
            "Cola",
            "Garlic bread",
            "Margherita pizza",
            "pepperoni pizza",
            "Secret pizza",
            "Water"
        ]
    );
    let secret = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Secret pizza")
        .unwrap();
    assert_eq!(secret["category"], Value::Null);
    // Nothing private travels.
    let text = all.to_string();
    for private in [
        "cost",
        "sku",
        "stock_quantity",
        "is_published",
        "archived_at",
        "\"COLA\"",
    ] {
        assert!(!text.contains(private), "the storefront shows {private}");
    }
    let by = |sort: &str| format!("?sort={sort}");
    assert_eq!(
        names(&public_list(&t, &by("price_asc")).await),
        [
            "Cola",
            "Water",
            "Garlic bread",
            "Secret pizza",
            "Margherita pizza",
            "pepperoni pizza"
        ],
        "price ascending, ties by id (Cola was created first)"
    );
    let desc = names(&public_list(&t, &by("price_desc")).await);
    assert_eq!(desc[0], "pepperoni pizza");
    assert_eq!(desc[4], "Water", "ties by id, descending");
    assert_eq!(desc[5], "Cola");
    let newest = names(&public_list(&t, &by("newest")).await);
    assert_eq!(
        newest,
        [
            "Secret pizza",
            "Water",
            "Cola",
            "Garlic bread",
            "pepperoni pizza",
            "Margherita pizza"
        ]
    );

    // Filters: category with its subcategories, by slug or id; prices; availability.
    assert_eq!(
        names(&public_list(&t, "?category=food").await),
        ["Garlic bread", "Margherita pizza", "pepperoni pizza"]
    );
    assert_eq!(
        names(&public_list(&t, "?category=pizza&sort=price_desc").await),
        ["pepperoni pizza", "Margherita pizza"]
    );
    let pizza_id = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Margherita pizza")
        .unwrap()["category"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        names(&public_list(&t, &format!("?category_id={pizza_id}")).await),
        ["Margherita pizza", "pepperoni pizza"]
    );
    assert_eq!(
        public_list(&t, "?category=secret").await["items"],
        json!([]),
        "an inactive category lists nothing on the storefront"
    );
    assert_eq!(
        public_list(&t, "?category=nothing-here").await["items"],
        json!([])
    );
    assert_eq!(
        names(&public_list(&t, "?min_price=450&max_price=900").await),
        ["Garlic bread", "Margherita pizza", "Secret pizza"]
    );
    let available = names(&public_list(&t, "?available_only=true").await);
    assert!(
        !available.contains(&"pepperoni pizza".to_owned()),
        "sold out"
    );
    assert!(
        available.contains(&"Garlic bread".to_owned()),
        "one variant in stock"
    );
    assert!(available.contains(&"Cola".to_owned()), "no variants");
    let pepperoni = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pepperoni pizza")
        .unwrap();
    assert_eq!(pepperoni["available"], false);
    assert_eq!(pepperoni["variants"][1]["price"]["minor"], 1400);

    // Full-text search: stemming, ranking (name over description), web-search syntax.
    let found = names(&public_list(&t, "?q=pizzas").await);
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(
        found.last().map(String::as_str),
        Some("Garlic bread"),
        "a match in the description ranks below matches in names"
    );
    assert!(!found.contains(&"Draft pizza".to_owned()));
    // The team's search finds drafts too; archived products stay out of both.
    let staff = t
        .send(
            Method::GET,
            &format!("{PRODUCTS}?q=pizzas"),
            Some(&owner),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let staff_found = names(&staff);
    assert!(
        staff_found.contains(&"Draft pizza".to_owned()),
        "{staff_found:?}"
    );
    assert_eq!(staff_found.len(), found.len() + 1, "{staff_found:?}");
    assert_eq!(
        names(&public_list(&t, "?q=tomato%20-spicy").await),
        ["Margherita pizza"]
    );
    assert_eq!(
        names(&public_list(&t, "?q=%22cold%20drink%22&sort=name").await),
        ["Cola"]
    );
    assert_eq!(public_list(&t, "?q=sushi").await["items"], json!([]));

    // One product; drafts, archived ones and other stores' ids are not found.
    let one = t
        .send(
            Method::GET,
            &format!("/api/v1/storefronts/list-shop/products/{}", ids["bread"]),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(one["name"], "Garlic bread");
    assert_eq!(one["price"], json!({"minor": 450, "currency": "EUR"}));
    assert_eq!(one["variants"][0]["available"], false);
    assert_eq!(one["variants"][1]["available"], true);
    for sku in ["draft", "gone"] {
        t.send(
            Method::GET,
            &format!("/api/v1/storefronts/list-shop/products/{}", ids[sku]),
            None,
            None,
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "not_found");
    }
    t.send(
        Method::GET,
        &format!("/api/v1/storefronts/list-shop/products/{}", Uuid::now_v7()),
        None,
        None,
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "not_found");

    // Categories in tree order, inactive ones hidden.
    let categories = t
        .send(
            Method::GET,
            "/api/v1/storefronts/list-shop/categories",
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    let tree: Vec<(String, u64)> = categories
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["slug"].as_str().unwrap().to_owned(),
                c["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tree,
        [
            ("mains".to_owned(), 0),
            ("food".to_owned(), 0),
            ("pizza".to_owned(), 1),
            ("drinks".to_owned(), 0)
        ],
        "roots by display order, then by id (Mains came with the store)"
    );
    // Publishing the draft makes it appear.
    t.send(
        Method::PATCH,
        &format!("{PRODUCTS}/{}", ids["draft"]),
        Some(&owner),
        Some(json!({"is_published": true})),
    )
    .await
    .expect(StatusCode::OK);
    assert!(names(&public_list(&t, "").await).contains(&"Draft pizza".to_owned()));
    // Bad parameters are field errors; a cursor of one sort is refused by another.
    let page = public_list(&t, "?sort=price_asc&limit=2").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let reply = t
        .send(
            Method::GET,
            &format!("/api/v1/storefronts/list-shop/products?sort=newest&cursor={cursor}"),
            None,
            None,
        )
        .await;
    reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_errors(&reply.body),
        [("cursor".to_owned(), "sort_mismatch".to_owned())]
    );
}

/// Every page of a list, following `next_cursor`; `between` runs after each page.
async fn all_pages(
    t: &TestApp,
    base: &str,
    mut between: impl FnMut(usize) -> Option<Value>,
    owner: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page_number in 0.. {
        assert!(page_number < 100, "pagination does not end");
        let sep = if base.contains('?') { '&' } else { '?' };
        let path = match &cursor {
            Some(c) => format!("{base}{sep}cursor={c}"),
            None => base.to_owned(),
        };
        let page = t
            .send(Method::GET, &path, None, None)
            .await
            .expect(StatusCode::OK);
        seen.extend(ids(&page));
        if let Some(body) = between(page_number) {
            create(t, owner, body).await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    seen
}

#[tokio::test]
async fn cursor_pagination_has_no_duplicates_or_gaps_even_with_inserts_between_pages() {
    let (t, _, _, owner) = store("page-shop", "growth").await;
    // 23 products with repeated prices and names that share words, so ties and ranks matter.
    for i in 0..23 {
        let name = match i % 3 {
            0 => format!("Pizza special {i}"),
            1 => format!("pizza pizza {i}"),
            _ => format!("Salad {i}"),
        };
        create(
            &t,
            &owner,
            json!({"sku": format!("p-{i}"), "name": name, "description": if i % 2 == 0 { "with pizza dough" } else { "plain" },
                   "price_minor": 100 * (i % 5), "is_published": true}),
        )
        .await;
    }
    let base = "/api/v1/storefronts/page-shop/products";
    for query in [
        "?sort=name",
        "?sort=price_asc",
        "?sort=price_desc",
        "?sort=newest",
        "?q=pizza",
        "?q=pizza&sort=price_desc",
    ] {
        let whole = t
            .send(Method::GET, &format!("{base}{query}&limit=100"), None, None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(whole["next_cursor"], Value::Null);
        let expected = ids(&whole);
        for limit in [1, 4, 7] {
            let paged = all_pages(
                &t,
                &format!("{base}{query}&limit={limit}"),
                |_| None,
                &owner,
            )
            .await;
            assert_eq!(paged, expected, "{query} in pages of {limit}");
        }
    }

    // Products added while a client pages through: none that existed is skipped or repeated,
    // whatever sort position the new ones take.
    for query in ["?sort=name", "?sort=price_asc", "?sort=newest", "?q=pizza"] {
        let before: Vec<String> = ids(&t
            .send(Method::GET, &format!("{base}{query}&limit=100"), None, None)
            .await
            .expect(StatusCode::OK));
        let tag = Uuid::new_v4().simple().to_string();
        let paged = all_pages(
            &t,
            &format!("{base}{query}&limit=5"),
            |page| {
                (page < 3).then(|| {
                    // One that sorts first and one that sorts last in every order.
                    let (name, price) = if page % 2 == 0 {
                        ("AAA pizza pizza pizza", 0)
                    } else {
                        ("zzz pizza", 400)
                    };
                    json!({"sku": format!("n-{tag}-{page}"), "name": name, "price_minor": price, "is_published": true})
                })
            },
            &owner,
        )
        .await;
        let unique: HashSet<&String> = paged.iter().collect();
        assert_eq!(unique.len(), paged.len(), "{query}: a product was repeated");
        let missing: BTreeSet<&String> = before.iter().filter(|id| !unique.contains(id)).collect();
        assert!(missing.is_empty(), "{query}: skipped {missing:?}");
        // The ones seen keep the list's order.
        let positions: Vec<usize> = before
            .iter()
            .map(|id| paged.iter().position(|p| p == id).unwrap())
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{query}: order changed"
        );
    }
}
