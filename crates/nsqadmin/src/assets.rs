//! The UI's files, compiled into the binary (see `build.rs`).

static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// An embedded file by its path under `assets/` (`index.html`, `static/app.js`).
pub fn get(name: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Every embedded file name.
pub fn names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(n, _)| *n)
}

/// The content type served for a file name, by extension.
pub fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff" => "application/font-woff",
        "woff2" => "application/font-woff2",
        "ttf" => "application/font-sfnt",
        "eot" => "application/vnd.ms-fontobject",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shell_is_embedded() {
        let shell = super::get("index.html").expect("index.html embedded");
        let text = String::from_utf8_lossy(shell);
        assert!(text.contains("%CONFIG%"));
        assert_eq!(
            super::content_type("app.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(super::content_type("x.unknown"), None);
    }
}
