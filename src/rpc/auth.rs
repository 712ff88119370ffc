//! Credentials carried by a call: AUTH_NONE and AUTH_SYS (RFC 5531 appendix A) decoded into a
//! [`Cred`]. Squashing (exports(5) root_squash, all_squash) is an export decision and happens in
//! the programs, not here.

use xdr::Xdr;
use xdr::rpc::{AuthFlavor, AuthStat, AuthSysParams, OpaqueAuth};

/// The identity a call claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub flavor: AuthFlavor,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, at most 16.
    pub gids: Vec<u32>,
    /// The AUTH_SYS machine name, lossily decoded, for logs.
    pub machine: String,
}

/// The uid and gid an AUTH_NONE call is given (exports(5) default anonuid/anongid).
pub const NOBODY: u32 = 65534;

impl Cred {
    /// The credential of an AUTH_NONE call.
    pub fn none() -> Self {
        Cred { flavor: AuthFlavor::None, uid: NOBODY, gid: NOBODY, gids: Vec::new(), machine: String::new() }
    }

    /// An AUTH_SYS credential, as a test client or a trusted caller would present it.
    pub fn sys(uid: u32, gid: u32, gids: Vec<u32>) -> Self {
        Cred { flavor: AuthFlavor::Sys, uid, gid, gids, machine: String::new() }
    }

    /// Decodes a call's credential and verifier. A malformed AUTH_SYS body is AUTH_BADCRED, an
    /// unsupported flavor is AUTH_BADCRED (as Linux sunrpc answers), and a verifier that is not
    /// AUTH_NONE for these flavors is AUTH_BADVERF.
    pub fn from_call(cred: &OpaqueAuth, verf: &OpaqueAuth) -> Result<Cred, AuthStat> {
        match AuthFlavor::from_u32(cred.flavor) {
            Some(AuthFlavor::None) => {
                if verf.flavor != AuthFlavor::None as u32 {
                    return Err(AuthStat::BadVerf);
                }
                Ok(Cred::none())
            }
            Some(AuthFlavor::Sys) => {
                if verf.flavor != AuthFlavor::None as u32 {
                    return Err(AuthStat::BadVerf);
                }
                let p = AuthSysParams::from_bytes(&cred.body).map_err(|_| AuthStat::BadCred)?;
                Ok(Cred {
                    flavor: AuthFlavor::Sys,
                    uid: p.uid,
                    gid: p.gid,
                    gids: p.gids,
                    machine: String::from_utf8_lossy(&p.machine_name).into_owned(),
                })
            }
            _ => Err(AuthStat::BadCred),
        }
    }
}
