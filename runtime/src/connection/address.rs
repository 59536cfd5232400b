//! Where a [`Listener`](super::Listener) listens and a
//! [`Client`](super::Client) connects.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The longest Unix socket path Linux accepts (`sun_path` is 108 bytes,
/// NUL included).
pub(crate) const MAX_UNIX_PATH: usize = 107;

/// A listener's address: TCP, a Unix socket path, or a Linux abstract
/// socket name.
///
/// Written as text, as [`Display`](fmt::Display) shows it and
/// [`FromStr`] reads it: `127.0.0.1:5000` (or `localhost:5000`, resolved),
/// `/run/app.sock` (anything with a `/`), `@name` (abstract).
///
/// ```
/// use multiproc::connection::Address;
///
/// let tcp: Address = "127.0.0.1:5000".parse().unwrap();
/// assert_eq!(tcp.to_string(), "127.0.0.1:5000");
/// let path: Address = "/tmp/app.sock".parse().unwrap();
/// assert!(matches!(path, Address::Unix(_)));
/// let abstract_: Address = "@app".parse().unwrap();
/// assert_eq!(abstract_, Address::Abstract(b"app".to_vec()));
/// ```
///
/// An `Address` can be passed to a remote fn, so that a child knows where
/// to connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Address {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket at this path.
    Unix(PathBuf),
    /// A Linux abstract Unix socket: these name bytes, with no file.
    Abstract(Vec<u8>),
}

impl Address {
    /// True for Unix sockets (paths and abstract names), which can carry
    /// handles; TCP cannot.
    pub fn is_local(&self) -> bool {
        !matches!(self, Address::Tcp(_))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(name) = s.strip_prefix('@') {
            return Ok(Address::Abstract(name.as_bytes().to_vec()));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Address::Tcp(addr));
        }
        if s.contains('/') {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        if let Some((_, port)) = s.rsplit_once(':')
            && port.parse::<u16>().is_ok()
        {
            let resolved = s.to_socket_addrs().map_err(|e| bad_address(s, &e.to_string()))?;
            // IPv4 first, as Python's AF_INET listener would use.
            let mut all: Vec<SocketAddr> = resolved.collect();
            all.sort_by_key(|a| !a.is_ipv4());
            return all
                .into_iter()
                .next()
                .map(Address::Tcp)
                .ok_or_else(|| bad_address(s, "it resolves to nothing"));
        }
        Err(bad_address(s, "use host:port, a path containing '/', or @name for an abstract socket"))
    }
}

fn bad_address(s: &str, why: &str) -> Error {
    Error::invalid_input(format!("`{s}` is not a usable address: {why}"))
}

/// Checks that a Unix socket path fits `sun_path`, with an error that says
/// what to do (CPython fails later and less clearly, P9).
pub(crate) fn check_unix_path(path: &Path) -> Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_UNIX_PATH {
        return Err(Error::invalid_input(format!(
            "the Unix socket path {} is {len} bytes long, over Linux's limit of {MAX_UNIX_PATH}; \
             use a shorter path or an abstract socket (@name)",
            path.display()
        )));
    }
    Ok(())
}

/// Anything that names an address: `&str`, `String`, [`Address`],
/// `&Address`, `SocketAddr`, `&Path`, `PathBuf`.
pub trait IntoAddress {
    /// The address, or an error saying why this is not one.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) for text that is not an address.
    fn into_address(self) -> Result<Address>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address> {
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address> {
        Ok(self.clone())
    }
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address> {
        self.parse()
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address> {
        self.parse()
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Result<Address> {
        self.parse()
    }
}

impl IntoAddress for SocketAddr {
    fn into_address(self) -> Result<Address> {
        Ok(Address::Tcp(self))
    }
}

impl IntoAddress for &Path {
    fn into_address(self) -> Result<Address> {
        Ok(Address::Unix(self.to_path_buf()))
    }
}

impl IntoAddress for PathBuf {
    fn into_address(self) -> Result<Address> {
        Ok(Address::Unix(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_parse_and_display_back() {
        for text in ["127.0.0.1:80", "[::1]:8080", "/tmp/x.sock", "./rel/x.sock", "@name"] {
            assert_eq!(text.parse::<Address>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn host_names_resolve_ipv4_first() {
        match "localhost:0".parse::<Address>().unwrap() {
            Address::Tcp(addr) => assert!(addr.ip().is_loopback()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nonsense_is_an_error_that_says_what_to_write() {
        let err = "not an address".parse::<Address>().unwrap_err().to_string();
        assert!(err.contains("host:port"), "{err}");
    }

    #[test]
    fn long_unix_paths_are_refused_clearly() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        let err = check_unix_path(&long).unwrap_err().to_string();
        assert!(err.contains("107") && err.contains("@name"), "{err}");
        assert!(check_unix_path(Path::new("/tmp/short")).is_ok());
    }
}
