//! The console's files, compiled into the binary: nothing is fetched at run time.

/// A file of the console: its name under `/console/`, content type and bytes.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One entry of [`ASSETS`]: `name` served from `gateway/console/{file}`.
macro_rules! asset {
    ($name:literal, $file:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../console/", $file)),
        }
    };
}

pub const ASSETS: &[Asset] = &[
    asset!("", "index.html", HTML),
    asset!("app.js", "app.js", JS),
    asset!("ui.js", "ui.js", JS),
    asset!("s3.js", "s3.js", JS),
    asset!("browser.js", "browser.js", JS),
    asset!("object.js", "object.js", JS),
    asset!("admin.js", "admin.js", JS),
    asset!("app.css", "app.css", CSS),
    asset!("favicon.svg", "favicon.svg", SVG),
];

/// The file served at `/console/{name}` (`index.html` is also the directory's page).
pub fn find(name: &str) -> Option<&'static Asset> {
    let name = if name == "index.html" { "" } else { name };
    ASSETS.iter().find(|a| a.name == name)
}
