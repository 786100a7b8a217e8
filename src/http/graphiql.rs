//! GraphiQL at `/`, with every asset served by roster itself, so it works
//! with no internet access. The assets come from pinned npm packages,
//! fetched and integrity-checked by `build.rs`.
use axum::{
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>roster · GraphiQL</title>
<link rel="stylesheet" href="/graphiql/graphiql.min.css">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script src="/graphiql/init.js"></script>
</body>
</html>
"#;

/// Starts GraphiQL against this server's `/graphql`.
const INIT_JS: &str = r#"(function () {
  var fetcher = GraphiQL.createFetcher({ url: new URL('/graphql', window.location.href).toString() });
  // `/?query=...` opens GraphiQL with that document, as GraphiQL's own examples do.
  var query = new URLSearchParams(window.location.search).get('query');
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    query: query || undefined,
    defaultQuery: '# Welcome to roster. Log in: paste this mutation, fill in your\n# username and password, and run it (the ▶ button):\n#\n#   mutation {\n#     login(input: {username: "admin", password: "..."}) {\n#       accessToken\n#     }\n#   }\n#\n# then put {"Authorization": "Bearer <accessToken>"} in Headers below\n# and run this query. No user yet? On the server:\n#   roster create-superuser --username admin --email admin@example.com\n{\n  me {\n    id\n    username\n  }\n}\n'
  }));
})();
"#;

/// Nothing but this server may be reached by the page.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! vendored {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("OUT_DIR"), "/graphiql/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    vendored!("graphiql.min.js", "text/javascript; charset=utf-8"),
    vendored!("graphiql.min.css", "text/css; charset=utf-8"),
    vendored!("react.production.min.js", "text/javascript; charset=utf-8"),
    vendored!(
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: INIT_JS.as_bytes(),
    },
];

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
