//! The console's sessions: which identity a browser acts as, kept in this gateway's memory.
//!
//! A login puts a random 256-bit token into an HttpOnly cookie; the server keeps only the
//! token's SHA-256, the access key it stands for and a CSRF token the page sends back in a
//! header. A session ends at logout, after [`IDLE`] without a request, or [`MAX_AGE`] after
//! login, whichever comes first. The secret key is never kept: each request the console makes
//! on the user's behalf looks it up again, so a removed key or a disabled user ends the
//! session's use at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A session without requests for this long is over.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session is over this long after its login, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; past it a login ends the least recently used one.
const MAX_SESSIONS: usize = 10_000;

/// What a valid session token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub access_key: String,
    /// Sent back by the page in `x-tessera-csrf` with every request that changes something.
    pub csrf: String,
}

struct Entry {
    session: Session,
    created: Instant,
    last_seen: Instant,
}

pub struct Sessions {
    by_token_hash: Mutex<HashMap<[u8; 32], Entry>>,
    idle: Duration,
    max_age: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(IDLE, MAX_AGE)
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(idle: Duration, max_age: Duration) -> Self {
        Sessions {
            by_token_hash: Mutex::default(),
            idle,
            max_age,
        }
    }

    fn live(&self, e: &Entry, now: Instant) -> bool {
        now.duration_since(e.last_seen) < self.idle && now.duration_since(e.created) < self.max_age
    }

    /// Starts a session for `access_key`: its token (for the cookie) and the session.
    pub fn create(&self, access_key: &str) -> (String, Session) {
        let token = random_token();
        let session = Session {
            access_key: access_key.to_owned(),
            csrf: random_token(),
        };
        let now = Instant::now();
        let mut map = self.by_token_hash.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, e| self.live(e, now));
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            token_hash(&token),
            Entry {
                session: session.clone(),
                created: now,
                last_seen: now,
            },
        );
        (token, session)
    }

    /// The session of `token` if it is live, marking it used now; an expired one is removed.
    pub fn touch(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let hash = token_hash(token);
        let mut map = self.by_token_hash.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(&hash)?;
        if !self.live(entry, now) {
            map.remove(&hash);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    /// Ends the session of `token` (logout, or its key no longer works).
    pub fn remove(&self, token: &str) {
        self.by_token_hash
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token_hash(token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_logout() {
        let s = Sessions::default();
        let (token, session) = s.create("AK");
        assert_eq!(session.access_key, "AK");
        assert_eq!(session.csrf.len(), 64);
        assert_eq!(s.touch(&token), Some(session));
        assert_eq!(s.touch("not-a-token"), None);
        s.remove(&token);
        assert_eq!(s.touch(&token), None);
    }

    #[test]
    fn tokens_and_csrf_tokens_differ_every_time() {
        let s = Sessions::default();
        let (t1, s1) = s.create("AK");
        let (t2, s2) = s.create("AK");
        assert_ne!(t1, t2);
        assert_ne!(s1.csrf, s2.csrf);
        assert_ne!(t1, s1.csrf);
    }

    #[test]
    fn idle_sessions_expire_and_use_keeps_them_alive() {
        let s = Sessions::new(Duration::from_millis(300), Duration::from_secs(60));
        let (token, _) = s.create("AK");
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(150));
            assert!(s.touch(&token).is_some(), "used within the idle time");
        }
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(s.touch(&token), None);
    }

    #[test]
    fn sessions_end_at_their_maximum_age_even_when_used() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_millis(300));
        let (token, _) = s.create("AK");
        std::thread::sleep(Duration::from_millis(150));
        assert!(s.touch(&token).is_some());
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(s.touch(&token), None);
    }
}
