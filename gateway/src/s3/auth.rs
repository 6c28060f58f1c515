//! Credentials lookup for SigV4 verification (done by s3s). Today there is one root key pair;
//! the users-and-policies issue replaces this with a user store.

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
