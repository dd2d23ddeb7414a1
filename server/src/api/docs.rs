//! The OpenAPI document (`/api/v1/openapi.json`) and a readable docs page (`/api/v1/docs`)
//! rendered on the server from the same document: no scripts, nothing from a CDN.

use std::fmt::Write;
use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use fleetfront_domain::ErrorCode;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::OpenApi;

use crate::app::App;
use crate::error::status_of;

pub(crate) fn routes(openapi: Arc<OpenApi>) -> Router<App> {
    let json = Arc::new(
        openapi
            .to_pretty_json()
            .expect("the OpenAPI document serializes"),
    );
    let html = Arc::new(render(&openapi));
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.as_str().to_owned(),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/api/v1/docs",
            get(move || {
                let html = html.clone();
                async move { Html(html.as_str().to_owned()) }
            }),
        )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Head => "HEAD",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Trace => "TRACE",
    }
}

fn render(openapi: &OpenApi) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — reference</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\
         code,pre{{font-family:ui-monospace,monospace;background:#f3f3f3;padding:.1rem .3rem}}h2{{border-bottom:1px solid #ddd}}\
         .m{{display:inline-block;min-width:4.5rem;font-weight:700}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}}</style></head><body>\
         <h1>{title}</h1><p>{description}</p><p>Machine-readable: <a href=\"/api/v1/openapi.json\">openapi.json</a> (OpenAPI 3.1).</p>\
         <p>Authenticate with <code>Authorization: Bearer &lt;access token&gt;</code> from <code>POST /api/v1/auth/login</code>. \
         Sensitive actions also need <code>X-Fleetfront-Elevation</code> from <code>POST /api/v1/auth/pin/verify</code>.</p><h2>Endpoints</h2>",
        title = escape(&openapi.info.title),
        description = escape(openapi.info.description.as_deref().unwrap_or("")),
    );
    for (path, item) in &openapi.paths.paths {
        let ops = [
            (HttpMethod::Get, &item.get),
            (HttpMethod::Post, &item.post),
            (HttpMethod::Put, &item.put),
            (HttpMethod::Patch, &item.patch),
            (HttpMethod::Delete, &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let summary = op
                .summary
                .as_deref()
                .or(op.description.as_deref())
                .unwrap_or("");
            let _ = write!(
                body,
                "<section><h3><span class=\"m\">{}</span> <code>{}</code></h3><p>{}</p>",
                method_name(&method),
                escape(path),
                escape(summary)
            );
            let mut statuses: Vec<&String> = op.responses.responses.keys().collect();
            statuses.sort();
            let _ = write!(
                body,
                "<p>Responses: {}</p></section>",
                statuses
                    .iter()
                    .map(|s| escape(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    body.push_str("<h2 id=\"errors\">Error codes</h2><table><thead><tr><th>code</th><th>HTTP status</th><th>retry?</th></tr></thead><tbody>");
    for code in ErrorCode::ALL {
        let _ = write!(
            body,
            "<tr id=\"error-{c}\"><td><code>{c}</code></td><td>{s}</td><td>{r}</td></tr>",
            c = code.as_str(),
            s = status_of(*code).as_u16(),
            r = if code.is_retryable() { "yes" } else { "no" }
        );
    }
    body.push_str("</tbody></table></body></html>");
    body
}
