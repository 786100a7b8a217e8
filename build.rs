//! Fetches GraphiQL and React from pinned npm packages (`npm pack`), checks
//! each tarball against its pinned sha512 integrity, and unpacks the files
//! that `src/http/graphiql.rs` embeds. npm's cache makes later builds work
//! offline.
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha512};

struct Package {
    name: &'static str,
    version: &'static str,
    integrity: &'static str,
    /// (path inside the tarball, name under OUT_DIR/graphiql)
    files: &'static [(&'static str, &'static str)],
}

const PACKAGES: &[Package] = &[
    Package {
        name: "graphiql",
        version: "3.8.3",
        integrity: "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        files: &[
            ("package/graphiql.min.js", "graphiql.min.js"),
            ("package/graphiql.min.css", "graphiql.min.css"),
        ],
    },
    Package {
        name: "react",
        version: "18.3.1",
        integrity: "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
        files: &[(
            "package/umd/react.production.min.js",
            "react.production.min.js",
        )],
    },
    Package {
        name: "react-dom",
        version: "18.3.1",
        integrity: "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
        files: &[(
            "package/umd/react-dom.production.min.js",
            "react-dom.production.min.js",
        )],
    },
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set")));
    let assets = out.join("graphiql");
    fs::create_dir_all(&assets).unwrap_or_else(|e| fail(&format!("cannot create {assets:?}: {e}")));
    for package in PACKAGES {
        let tarball = fetch(package, &out);
        for (inside, name) in package.files {
            unpack(&tarball, inside, &assets.join(name));
        }
    }
}

fn fail(message: &str) -> ! {
    panic!("roster build: {message}");
}

/// The package's tarball in OUT_DIR, packed by npm unless already there,
/// and always checked against the pinned integrity.
fn fetch(package: &Package, out: &Path) -> PathBuf {
    let tarball = out.join(format!("{}-{}.tgz", package.name, package.version));
    if !tarball.exists() {
        let spec = format!("{}@{}", package.name, package.version);
        let status = Command::new("npm")
            .args(["pack", &spec, "--silent", "--pack-destination"])
            .arg(out)
            .status()
            .unwrap_or_else(|e| fail(&format!("npm is needed to fetch {spec}: {e}")));
        if !status.success() {
            fail(&format!("`npm pack {spec}` failed"));
        }
    }
    let bytes =
        fs::read(&tarball).unwrap_or_else(|e| fail(&format!("cannot read {tarball:?}: {e}")));
    let integrity = format!("sha512-{}", STANDARD.encode(Sha512::digest(&bytes)));
    if integrity != package.integrity {
        let _ = fs::remove_file(&tarball);
        fail(&format!(
            "{}@{} does not match its pinned integrity (got {integrity})",
            package.name, package.version
        ));
    }
    tarball
}

fn unpack(tarball: &Path, inside: &str, to: &Path) {
    let output = Command::new("tar")
        .arg("-xzOf")
        .arg(tarball)
        .arg(inside)
        .output()
        .unwrap_or_else(|e| fail(&format!("tar is needed to unpack {tarball:?}: {e}")));
    if !output.status.success() || output.stdout.is_empty() {
        fail(&format!("{inside} is missing from {tarball:?}"));
    }
    fs::write(to, output.stdout).unwrap_or_else(|e| fail(&format!("cannot write {to:?}: {e}")));
}
