//! Platforms (`linux/amd64`, `linux/arm64/v8`) and how an index entry is matched against the
//! one wanted, normalized as containerd's `platforms` package does (arm64's default variant
//! is v8, amd64's is v1: both are "no variant").

use std::fmt;

use super::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Reads `OS/ARCH[/VARIANT]` as `--platform` takes it.
    pub fn parse(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(Error::BadPlatform(text.to_string()));
        }
        Ok(Platform::new(
            &parts[0].to_ascii_lowercase(),
            &parts[1].to_ascii_lowercase(),
            parts.get(2).map(|v| v.to_ascii_lowercase()).as_deref(),
        ))
    }

    /// A platform with its architecture and variant normalized (`aarch64` = `arm64`,
    /// `x86_64` = `amd64`, `arm64/v8` = `arm64`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let (architecture, variant) = normalize(architecture, variant.filter(|v| !v.is_empty()));
        Platform {
            os: os.to_string(),
            architecture,
            variant,
        }
    }

    /// The platform of this machine, as Go names it.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            // Without probing the CPU, v7 is what every current 32-bit ARM Linux runs.
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Whether an index entry for `candidate` runs here. A wanted platform without a variant
    /// takes any variant (docker's behaviour for `--platform linux/arm`).
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || self.variant == candidate.variant)
    }
}

fn normalize(architecture: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = match architecture {
        "x86_64" | "x86-64" => "amd64",
        "i386" => "386",
        "aarch64" => "arm64",
        "armhf" => return ("arm".into(), Some("v7".into())),
        "armel" => return ("arm".into(), Some("v6".into())),
        other => other,
    };
    let variant = match (arch, variant) {
        ("arm64", Some("v8" | "8")) | ("amd64", Some("v1")) => None,
        ("arm", Some(v @ ("5" | "6" | "7" | "8"))) => Some(format!("v{v}")),
        (_, v) => v.map(str::to_string),
    };
    (arch.to_string(), variant)
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalize() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm/7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("Linux/ARM/v6").unwrap().to_string(),
            "linux/arm/v6"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64", ""] {
            assert!(
                matches!(Platform::parse(bad), Err(Error::BadPlatform(s)) if s == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn matching() {
        let arm = Platform::parse("linux/arm").unwrap();
        let armv7 = Platform::new("linux", "arm", Some("v7"));
        assert!(arm.matches(&armv7));
        assert!(!Platform::parse("linux/arm/v6").unwrap().matches(&armv7));
        assert!(
            Platform::parse("linux/arm64")
                .unwrap()
                .matches(&Platform::new("linux", "arm64", Some("v8")))
        );
        assert!(
            !Platform::parse("linux/amd64")
                .unwrap()
                .matches(&Platform::new("windows", "amd64", None))
        );
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert!(host.matches(&host));
    }
}
