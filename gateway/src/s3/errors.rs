//! The one place where tessera errors (the object service's, the identities', and the
//! metastore's and erasure layer's within them) become S3 error codes.

use objects::Error;
use s3s::{S3Error, S3ErrorCode};

fn from_meta(m: &metastore::Error) -> S3Error {
    use S3ErrorCode as C;
    let (code, message) = match m {
        metastore::Error::NoSuchBucket => (
            C::NoSuchBucket,
            "The specified bucket does not exist".to_string(),
        ),
        metastore::Error::BucketExists => (
            C::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it"
                .to_string(),
        ),
        metastore::Error::BucketNotEmpty => (
            C::BucketNotEmpty,
            "The bucket you tried to delete is not empty".to_string(),
        ),
        metastore::Error::NoSuchUpload => (
            C::NoSuchUpload,
            "The specified multipart upload does not exist".to_string(),
        ),
        metastore::Error::NoSuchVersion => (
            C::NoSuchVersion,
            "The specified version does not exist.".to_string(),
        ),
        metastore::Error::NoSuchObject => (
            C::NoSuchKey,
            "The specified key does not exist.".to_string(),
        ),
        metastore::Error::PreconditionFailed => (
            C::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold".to_string(),
        ),
        metastore::Error::PartChanged(n) => (
            C::InvalidPart,
            format!("Part {n} was replaced during completion"),
        ),
        // RocksDB reports a full disk only in its message.
        metastore::Error::Backend(m) if m.contains("No space left") => return storage_full(m),
        metastore::Error::Unavailable(_) => {
            tracing::error!(error = %m, "metadata store unavailable");
            (
                C::ServiceUnavailable,
                "The metadata store cannot be reached; please retry later".to_string(),
            )
        }
        metastore::Error::ChunkGone(_) => (
            C::SlowDown,
            "Data this request relied on was removed concurrently; please send it again"
                .to_string(),
        ),
        metastore::Error::Busy => (
            C::SlowDown,
            "Too many concurrent changes to the same metadata; please retry".to_string(),
        ),
        metastore::Error::MetadataFull(detail) => {
            tracing::error!(detail, "write refused: metadata store full");
            return with_status(
                C::Custom("XTesseraMetadataFull".into()),
                "The metadata store has no space left. The operator must compact it or raise \
                 its quota."
                    .to_owned(),
                http::StatusCode::INSUFFICIENT_STORAGE,
            );
        }
        metastore::Error::TooLarge(detail) => (C::EntityTooLarge, detail.clone()),
        other => return internal(other),
    };
    S3Error::with_message(code, message)
}

/// `?` from the object service's and the identities' results into s3s' (the orphan rule
/// forbids `From` impls between two foreign types): `service.call().await.s3()?`.
pub trait IntoS3<T> {
    fn s3(self) -> s3s::S3Result<T>;
}

/// An error type of ours that has an S3 meaning.
pub trait S3Meaning {
    fn into_s3(self) -> S3Error;
}

impl S3Meaning for Error {
    fn into_s3(self) -> S3Error {
        object_error(self)
    }
}

impl S3Meaning for iam::Error {
    fn into_s3(self) -> S3Error {
        iam_error(self)
    }
}

impl S3Meaning for metastore::Error {
    fn into_s3(self) -> S3Error {
        from_meta(&self)
    }
}

impl<T, E: S3Meaning> IntoS3<T> for Result<T, E> {
    fn s3(self) -> s3s::S3Result<T> {
        self.map_err(S3Meaning::into_s3)
    }
}

fn object_error(e: Error) -> S3Error {
    {
        use S3ErrorCode as C;
        let (code, message) = match &e {
            Error::Meta(m) => return from_meta(m),
            Error::Storage(s) => match s {
                erasure::Error::WriteQuorum { .. } | erasure::Error::ReadQuorum { .. } => {
                    tracing::error!(error = %s, "storage quorum lost");
                    (
                        C::ServiceUnavailable,
                        "Not enough disks are available; please retry later".to_string(),
                    )
                }
                erasure::Error::StorageFull { detail } => return storage_full(detail),
                other => return internal(other),
            },
            Error::NoSuchVersion => (
                C::NoSuchVersion,
                "The specified version does not exist.".to_string(),
            ),
            Error::DeleteMarker {
                version_id,
                requested,
            } => return delete_marker(version_id.as_deref(), *requested),
            Error::NoSuchKey => (
                C::NoSuchKey,
                "The specified key does not exist.".to_string(),
            ),
            Error::BodySignature => (
                C::SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided."
                    .to_string(),
            ),
            Error::Body(m) => (
                C::IncompleteBody,
                format!("The request body could not be read: {m}"),
            ),
            Error::IncompleteBody { .. } => (C::IncompleteBody, e.to_string()),
            Error::EntityTooLarge { .. } => (C::EntityTooLarge, e.to_string()),
            Error::BadDigest => (
                C::BadDigest,
                "The Content-MD5 you specified did not match what we received.".to_string(),
            ),
            Error::BadChecksum(m) => (C::BadDigest, m.clone()),
            Error::InvalidTag(m) => (C::InvalidTag, m.clone()),
            Error::EntityTooSmall(_) => (C::EntityTooSmall, e.to_string()),
            Error::InvalidPart(m) => (C::InvalidPart, m.clone()),
            Error::InvalidPartOrder => (
                C::InvalidPartOrder,
                "The list of parts was not in ascending order.".to_string(),
            ),
            Error::InvalidArgument(m) => (C::InvalidArgument, m.clone()),
            Error::Internal(_) => return internal(&e),
            Error::EncryptionNotConfigured => (
                C::NotImplemented,
                "Server-side encryption needs a master key: start tessera with \
                 --kms-secret-key NAME:BASE64 (TESSERA_KMS_SECRET_KEY, or a key file with \
                 --kms-secret-key-file); `openssl rand -base64 32` makes one. Nothing was stored."
                    .to_string(),
            ),
            Error::MasterKeyMissing(m) => {
                tracing::error!(error = %m, "an encrypted object cannot be opened");
                (
                    C::ServiceUnavailable,
                    format!("{m}: start the server with that master key"),
                )
            }
            Error::ObjectLocked => (
                C::AccessDenied,
                "Access Denied because object protected by object lock.".to_string(),
            ),
            Error::AccessDenied(m) => (C::AccessDenied, m.clone()),
            Error::InvalidRequest(m) => (C::InvalidRequest, m.clone()),
            Error::InvalidBucketState(m) => (C::InvalidBucketState, m.clone()),
            // S3 passes KMS's own error codes on, with 400.
            Error::KmsKeyNotFound(name) => {
                return custom(
                    "KMS.NotFoundException",
                    format!(
                        "Key {name:?} does not exist in the key store (tessera admin kms key create)"
                    ),
                    http::StatusCode::BAD_REQUEST,
                );
            }
            Error::KmsKeyDisabled(name) => {
                return custom(
                    "KMS.DisabledException",
                    format!("Key {name:?} is disabled."),
                    http::StatusCode::BAD_REQUEST,
                );
            }
            Error::KmsKeyExists(name) => {
                return with_status(
                    C::Custom("KMS.AlreadyExistsException".into()),
                    format!("Key {name:?} exists already."),
                    http::StatusCode::CONFLICT,
                );
            }
            Error::CustomerKeyRequired => (
                C::InvalidRequest,
                "The object was stored using a form of Server Side Encryption. The correct \
                 parameters must be provided to retrieve the object."
                    .to_string(),
            ),
            // S3 answers a wrong SSE-C key with a bare 403.
            Error::CustomerKeyWrong => (C::AccessDenied, "Access Denied".to_string()),
            Error::CustomerKeyNotApplicable => (
                C::InvalidRequest,
                "The encryption parameters are not applicable to this object.".to_string(),
            ),
        };
        S3Error::with_message(code, message)
    }
}

/// The admin API's user errors, with IAM's codes.
fn iam_error(e: iam::Error) -> S3Error {
    {
        use S3ErrorCode as C;
        match &e {
            iam::Error::Meta(m) => from_meta(m),
            iam::Error::InvalidArgument(m) => S3Error::with_message(C::InvalidArgument, m.clone()),
            iam::Error::NoSuchUser(_)
            | iam::Error::NoSuchAccessKey { .. }
            | iam::Error::NoSuchEntity(_) => with_status(
                C::Custom("NoSuchEntity".into()),
                e.to_string(),
                http::StatusCode::NOT_FOUND,
            ),
            iam::Error::InUse(_) => with_status(
                C::Custom("DeleteConflict".into()),
                e.to_string(),
                http::StatusCode::CONFLICT,
            ),
            iam::Error::MalformedPolicy(m) => with_status(
                C::Custom("MalformedPolicyDocument".into()),
                m.clone(),
                http::StatusCode::BAD_REQUEST,
            ),
            iam::Error::UserExists(_) | iam::Error::EntityExists(_) => with_status(
                C::Custom("EntityAlreadyExists".into()),
                e.to_string(),
                http::StatusCode::CONFLICT,
            ),
            iam::Error::UsersLocked(_) => {
                S3Error::with_message(C::ServiceUnavailable, e.to_string())
            }
        }
    }
}

/// GET/HEAD that lands on a delete marker: 404 when it is the current version, 405 when asked
/// for by id; both say so in `x-amz-delete-marker`.
fn delete_marker(version_id: Option<&str>, requested: bool) -> S3Error {
    let mut e = if requested {
        S3Error::with_message(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    } else {
        S3Error::with_message(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    headers.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Ok(v) = http::HeaderValue::from_str(version_id.unwrap_or(metastore::NULL_VERSION)) {
        headers.insert("x-amz-version-id", v);
    }
    e.set_headers(headers);
    e
}

/// No space for the data: 507, as MinIO answers (S3 itself never runs out).
fn storage_full(detail: &str) -> S3Error {
    tracing::error!(detail, "write refused: storage full");
    with_status(
        S3ErrorCode::Custom("XTesseraStorageFull".into()),
        "Storage backend has no free space left for this object. Delete objects or add \
         capacity, then retry."
            .to_owned(),
        http::StatusCode::INSUFFICIENT_STORAGE,
    )
}

/// An S3 error with its HTTP status (for codes s3s has no status for, `Custom` ones).
pub(crate) fn with_status(
    code: S3ErrorCode,
    message: impl Into<String>,
    status: http::StatusCode,
) -> S3Error {
    let mut e = S3Error::with_message(code, message.into());
    e.set_status_code(status);
    e
}

/// An S3 error whose code s3s does not name, with its HTTP status.
pub(crate) fn custom(
    code: &'static str,
    message: impl Into<String>,
    status: http::StatusCode,
) -> S3Error {
    with_status(S3ErrorCode::Custom(code.into()), message, status)
}

fn internal(e: &dyn std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "internal error");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}
