//! The console's files, compiled into the binary: nothing is fetched at run time.

/// A file of the console: its name under `/console/`, content type and bytes.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../console/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/app.js"),
    },
    Asset {
        name: "ui.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/ui.js"),
    },
    Asset {
        name: "s3.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/s3.js"),
    },
    Asset {
        name: "browser.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/browser.js"),
    },
    Asset {
        name: "object.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/object.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/admin.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../console/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../console/favicon.svg"),
    },
];

/// The file served at `/console/{name}` (`index.html` is also the directory's page).
pub fn find(name: &str) -> Option<&'static Asset> {
    let name = if name == "index.html" { "" } else { name };
    ASSETS.iter().find(|a| a.name == name)
}
