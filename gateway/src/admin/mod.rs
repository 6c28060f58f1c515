//! The admin API; the `tessera admin` commands that use it are in the tessera crate.
//!
//! The API lives under `/tessera-admin/v1/` on the S3 port. Requests are signed with SigV4
//! like S3 requests and verified by s3s; only the root credentials are accepted. Answers are
//! JSON.
//!
//! | method | path            | does                                              |
//! |--------|-----------------|---------------------------------------------------|
//! | GET    | `info`          | disks, layout, usage, counters, heal state          |
//! | GET    | `heal`          | progress of the current or last full heal pass    |
//! | POST   | `heal`          | starts a full heal pass (after one already running) |
//! | POST   | `check?repair=` | verifies manifests, refcounts and shards          |
//! | GET    | `locate?bucket=&key=[&versionId=]` | each chunk's shards: disk and state |
//! | GET    | `users`         | users, policies, access keys (no secrets)         |
//! | POST   | `users?name=&policy=[&bucket=...]` | creates a user; answers its key and secret |
//! | DELETE | `users?name=`   | removes a user (its buckets pass to root)         |
//! | POST   | `users/disable?name=`, `users/enable?name=` | refuses / accepts its keys again |
//! | POST   | `users/keys?name=` | adds an access key; answers it and its secret  |
//! | DELETE | `users/keys?name=&access_key=` | removes an access key              |
//! | POST, DELETE | `users/policies?name=&policy=` | attaches / detaches a named policy |
//! | GET    | `policies`      | named identity policies, with who has them        |
//! | POST   | `policies?name=&document=` | stores (replaces) a policy, validated  |
//! | DELETE | `policies?name=` | removes a policy attached to no one              |
//! | GET    | `groups`        | groups, their members and policies                |
//! | POST, DELETE | `groups?name=` | adds / removes a group                       |
//! | POST, DELETE | `groups/members?name=&user=` | adds / removes a member        |
//! | POST, DELETE | `groups/policies?name=&policy=` | attaches / detaches a policy |
//! | GET    | `kms/keys`      | the key store's keys (names, state; never bytes)  |
//! | POST   | `kms/keys?name=` | makes a key                                      |
//! | POST   | `kms/keys/disable?name=`, `kms/keys/enable?name=` | stops / resumes a key |
//! | POST   | `kms/rotate-master` | re-seals keys under the current master key    |
//! | GET    | `pools`         | every pool: state, layout, space, what it holds   |
//! | POST   | `pools?disk=...[&parity=]` | adds a pool of new disks while running  |
//! | GET    | `rebalance`     | the current or last rebalance or decommission     |
//! | POST   | `rebalance[?bandwidth_mib=]` | starts moving chunks until pools are even |
//! | DELETE | `rebalance`     | stops it (a decommission is cancelled)            |
//! | POST   | `decommission?pool=[&bandwidth_mib=]` | drains a pool, then retires it |

mod kms;
mod locate;
mod pools;
mod route;
mod users;

pub use route::{ADMIN_PREFIX, AdminApi};

/// A query parameter the admin request cannot do without.
fn required_param(uri: &hyper::Uri, name: &str) -> s3s::S3Result<String> {
    crate::http::query_param(uri.query(), name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            s3s::S3Error::with_message(
                s3s::S3ErrorCode::InvalidArgument,
                format!("the request needs the {name} query parameter"),
            )
        })
}
