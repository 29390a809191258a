//! Authenticated pulls and pushes against real registries: htpasswd Basic auth and the
//! Distribution token flow (a token issuer in this test process); credentials given directly
//! or read from an auth file; wrong or missing credentials give a clear 401 error.

mod support_registry;

use berth_image::progress::Silent;
use berth_image::registry::pull::{PullOptions, pull};
use berth_image::registry::push::{PushOptions, push};
use berth_image::registry::{Client, Credentials, Error, Options, authfile};
use berth_image::{Reference, Store};
use support_registry::{Auth, Images, PASSWORD, Registry, USER, registry_tools};

fn with_creds(user: &str, password: &str) -> PullOptions {
    PullOptions {
        registry: Options {
            creds: Some(Credentials {
                username: user.into(),
                password: password.into(),
            }),
            // Never the host's auth files.
            authfile: Some("/nonexistent/auth.json".into()),
            ..Options::default()
        },
        ..PullOptions::default()
    }
}

fn unauthorized(e: &Error) -> bool {
    match e {
        Error::Pull { source, .. } | Error::Push { source, .. } => unauthorized(source),
        Error::Unauthorized { .. } => true,
        _ => false,
    }
}

fn check(auth: Auth) {
    let images = Images::build();
    let reg = Registry::start(auth);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let r = Reference::parse(&format!("{}/t/bb:oci", reg.addr)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    let image = pull(&store, &r, &with_creds(USER, PASSWORD), &Silent).unwrap();
    assert_eq!(image.id.to_string(), images.config_digest("bb"));

    let other = tempfile::tempdir().unwrap();
    let store2 = Store::open(other.path()).unwrap();
    let e = pull(&store2, &r, &with_creds(USER, "wrong"), &Silent).unwrap_err();
    let text = e.to_string();
    assert!(unauthorized(&e), "{e:?}");
    assert!(
        text.contains(&r.to_string()) && text.contains("unauthorized"),
        "{text}"
    );
    if auth == Auth::Token {
        assert!(text.contains("incorrect username or password"), "{text}");
    }
    let anonymous = PullOptions {
        registry: Options {
            authfile: Some("/nonexistent/auth.json".into()),
            ..Options::default()
        },
        ..PullOptions::default()
    };
    let e = pull(&store2, &r, &anonymous, &Silent).unwrap_err();
    assert!(unauthorized(&e), "{e:?}");
    assert!(store2.list().unwrap().is_empty());

    // Credentials from an auth file, as `berth login` writes it.
    let auth_dir = tempfile::tempdir().unwrap();
    let file = auth_dir.path().join("auth.json");
    let creds = Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    authfile::store(&file, &reg.addr, &creds).unwrap();
    let from_file = PullOptions {
        registry: Options {
            authfile: Some(file.clone()),
            ..Options::default()
        },
        ..PullOptions::default()
    };
    pull(&store2, &r, &from_file, &Silent).unwrap();

    // login's check.
    let login = |password: &str| {
        let options = Options {
            creds: Some(Credentials {
                username: USER.into(),
                password: password.into(),
            }),
            ..Options::default()
        };
        Client::new(&reg.addr, None, &options)
            .unwrap()
            .check_login()
    };
    login(PASSWORD).unwrap();
    let e = login("nope").unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");

    // Push needs push rights: with the credentials it works, without it is refused.
    let dest = Reference::parse(&format!("{}/t/pushed:1", reg.addr)).unwrap();
    let push_opts = PushOptions {
        registry: from_file.registry.clone(),
        ..PushOptions::default()
    };
    push(&store2, &image, &dest, &push_opts, &Silent).unwrap();
    assert_eq!(
        reg.manifest("t/pushed:1"),
        store2.read_blob(&image.manifest_digest).unwrap()
    );
    let e = push(
        &store2,
        &image,
        &dest,
        &PushOptions {
            registry: anonymous.registry.clone(),
            ..PushOptions::default()
        },
        &Silent,
    )
    .unwrap_err();
    assert!(unauthorized(&e), "{e:?}");
}

#[test]
fn htpasswd_basic_auth() {
    if registry_tools() {
        check(Auth::Htpasswd);
    }
}

#[test]
fn token_auth() {
    if registry_tools() {
        check(Auth::Token);
    }
}
