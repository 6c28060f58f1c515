//! Credentials lookup for SigV4 verification (done by s3s) and the access check after it.
//! Today there is one root key pair; the users-and-policies issue replaces this with a user
//! store.

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Error, S3ErrorCode, S3Result};

#[derive(Debug)]
pub struct RootAuth {
    access_key: String,
    secret_key: SecretKey,
}

impl RootAuth {
    pub fn new(access_key: String, secret_key: String) -> Self {
        RootAuth {
            access_key,
            secret_key: SecretKey::from(secret_key),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret_key.clone())
        } else {
            // What AWS answers for an unknown key (s3s' SimpleAuth says NotSignedUp).
            Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            ))
        }
    }
}

/// The access check s3s runs after a request's signature is verified and its operation
/// resolved: it names the operation for the metrics and, like s3s' default, refuses anonymous
/// requests.
#[derive(Debug)]
pub struct AccessCheck;

#[async_trait::async_trait]
impl s3s::access::S3Access for AccessCheck {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        let name = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<crate::access::OperationSlot>() {
            slot.set(&name);
        }
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Signature is required",
            )),
        }
    }
}
