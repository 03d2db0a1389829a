//! A served role: its refresher's handle, and the documents of its current credentials,
//! rendered once per set.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::refresh::{self, Handle};

/// What a role is serving now; replaced as a whole on reload.
pub struct RoleState {
    /// The name IMDS lists: the last component of the role ARN, as EC2 and the official
    /// helper give it.
    pub imds_name: String,
    pub role_arn: String,
    pub handle: Handle,
    /// The documents of the current credentials, rendered once per set rather than once
    /// per request (JSON and date formatting were a tenth of the serving cost).
    rendered: std::sync::Mutex<Option<Arc<Documents>>>,
}

/// The IMDS and ECS documents of one set of credentials.
pub struct Documents {
    credentials: Arc<crate::credentials::Credentials>,
    /// When these credentials stop being worth handing out (see `refresh::serve_until`),
    /// on the clock every request reads: checking it costs one comparison.
    serve_until: SystemTime,
    pub imds: bytes::Bytes,
    pub ecs: bytes::Bytes,
    /// The `credential_process` output, for the daemon socket.
    pub process: bytes::Bytes,
}

impl RoleState {
    pub(crate) fn new(imds_name: String, role_arn: String, handle: Handle) -> Self {
        Self {
            imds_name,
            role_arn,
            handle,
            rendered: std::sync::Mutex::new(None),
        }
    }

    /// The documents to serve now, if the credentials are still worth handing out.
    pub fn documents(
        &self,
        now: SystemTime,
    ) -> std::result::Result<Arc<Documents>, refresh::Unavailable> {
        let mut cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(documents) = cache.as_ref()
            && now < documents.serve_until
            && self.handle.holds(&documents.credentials)
        {
            return Ok(documents.clone());
        }
        let (credentials, received) = self.handle.current_with_receipt(now.into())?;
        let documents = Arc::new(Documents {
            serve_until: refresh::serve_until(&credentials, received).into(),
            imds: credentials.imds_json(received).into(),
            ecs: credentials.ecs_json().into(),
            process: credentials.process_json().into(),
            credentials,
        });
        *cache = Some(documents.clone());
        Ok(documents)
    }
}

/// A role as the listeners see it.
pub struct ServedRole {
    /// The configured name: the ECS path and the log field.
    pub name: String,
    state: RwLock<Arc<RoleState>>,
}

impl ServedRole {
    pub(crate) fn new(name: String, state: RoleState) -> Self {
        Self {
            name,
            state: RwLock::new(Arc::new(state)),
        }
    }

    /// The current state (a cheap clone; readers never wait for a reload).
    pub fn state(&self) -> Arc<RoleState> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in a new refresher's state; readers see either the old or the new one.
    pub(crate) fn replace(&self, state: RoleState) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use crate::secret::Secret;
    use refresh::{State, Unavailable};

    fn ready(received: time::OffsetDateTime, lifetime: time::Duration) -> RoleState {
        let expiration = received + lifetime;
        let credentials = Credentials {
            access_key_id: "ASIAEXAMPLE".to_owned(),
            secret_access_key: Secret::from("secret".to_owned()),
            session_token: Secret::from("token".to_owned()),
            expiration,
            expiration_text: crate::identity::rfc3339(expiration),
            role_arn: "arn:aws:iam::111122223333:role/app".to_owned(),
        };
        let handle = Handle::fixed(State::Ready {
            credentials: Arc::new(credentials),
            received,
            last_error: None,
        });
        RoleState::new(
            "app".to_owned(),
            "arn:aws:iam::111122223333:role/app".to_owned(),
            handle,
        )
    }

    #[test]
    fn rendered_documents_are_served_until_the_floor_and_never_past_it() {
        let received = time::OffsetDateTime::now_utc();
        // One hour: handed out until five minutes before expiry.
        let state = ready(received, time::Duration::hours(1));
        let at = |offset: time::Duration| SystemTime::from(received + offset);
        let first = state.documents(at(time::Duration::minutes(1))).unwrap();
        let cached = state.documents(at(time::Duration::minutes(54))).unwrap();
        assert!(
            Arc::ptr_eq(&first, &cached),
            "rendered once per set of credentials"
        );
        assert!(
            state
                .documents(at(time::Duration::seconds(55 * 60 - 1)))
                .is_ok()
        );
        for late in [55, 60, 61] {
            assert!(
                matches!(
                    state.documents(at(time::Duration::minutes(late))),
                    Err(Unavailable::Stale(_))
                ),
                "{late} minutes after receipt"
            );
        }
    }
}
