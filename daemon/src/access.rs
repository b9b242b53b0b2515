//! Access control: which caller may call which method.
//!
//! Root may do everything. The owner of a container (a unix uid kept in `icu.hoody:owner` on
//! its datasets) may read its snapshots, create them and restore them. Everything else is asked
//! of polkit, one action per kind of operation, with the caller's bus name as the subject, so
//! polkit itself finds the caller's uid and process. The actions are shipped in
//! `config/polkit/icu.hoody.snapd1.policy`; their default for anyone but root is
//! `auth_admin_keep`.
//!
//! When polkit does not reply (it is not running, or the bus cannot start it), only root is
//! allowed.

use std::collections::HashMap;
use std::sync::OnceLock;

use hoody_snapd_contract::{Caller, Error};
use zbus::zvariant::Value;

/// The polkit actions of the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// List and show containers, snapshots, jobs and expiry.
    Read,
    CreateSnapshot,
    RestoreSnapshot,
    DeleteSnapshot,
    /// Alias, expiry and pin of a snapshot.
    ChangeSnapshot,
    /// Create, delete, copy and give away containers.
    ManageContainers,
    /// Change the daemon's own settings.
    Configure,
}

/// Every action, in the order of the policy file.
#[cfg(test)]
pub const ACTIONS: [Action; 7] = [
    Action::Read,
    Action::CreateSnapshot,
    Action::RestoreSnapshot,
    Action::DeleteSnapshot,
    Action::ChangeSnapshot,
    Action::ManageContainers,
    Action::Configure,
];

impl Action {
    /// Returns the polkit action id.
    pub fn id(self) -> &'static str {
        match self {
            Action::Read => "icu.hoody.snapd1.read",
            Action::CreateSnapshot => "icu.hoody.snapd1.create-snapshot",
            Action::RestoreSnapshot => "icu.hoody.snapd1.restore-snapshot",
            Action::DeleteSnapshot => "icu.hoody.snapd1.delete-snapshot",
            Action::ChangeSnapshot => "icu.hoody.snapd1.change-snapshot",
            Action::ManageContainers => "icu.hoody.snapd1.manage-containers",
            Action::Configure => "icu.hoody.snapd1.configure",
        }
    }

    /// Returns whether a container's owner may do this to it without asking polkit.
    pub fn allowed_to_owner(self) -> bool {
        matches!(
            self,
            Action::Read | Action::CreateSnapshot | Action::RestoreSnapshot
        )
    }
}

/// polkit's decision for one caller and action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// polkit denied the action, or requires an authentication that the caller did not allow.
    Denied {
        challenge: bool,
    },
    /// polkit did not reply, for the reason in the text.
    Unavailable(String),
}

/// `AllowUserInteraction` in polkit's `CheckAuthorizationFlags`.
const ALLOW_USER_INTERACTION: u32 = 1;

/// The polkit authority on the system bus.
#[derive(Default)]
pub struct Authority {
    connection: OnceLock<zbus::Connection>,
}

impl Authority {
    /// Gives the authority the daemon's bus connection; until then, polkit counts as absent.
    pub fn set_connection(&self, connection: zbus::Connection) {
        let _ = self.connection.set(connection);
    }

    /// Checks whether polkit runs now or can be started by the bus.
    pub async fn available(&self) -> Result<(), String> {
        let connection = self
            .connection
            .get()
            .ok_or("no bus connection".to_string())?;
        let bus = zbus::fdo::DBusProxy::new(connection)
            .await
            .map_err(|e| e.to_string())?;
        let name = zbus::names::BusName::try_from(POLKIT_NAME).map_err(|e| e.to_string())?;
        if bus.name_has_owner(name).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        let activatable = bus
            .list_activatable_names()
            .await
            .map_err(|e| e.to_string())?;
        if activatable.iter().any(|name| name.as_str() == POLKIT_NAME) {
            return Ok(());
        }
        Err(format!(
            "{POLKIT_NAME} has no owner and cannot be activated"
        ))
    }

    /// Asks polkit whether the caller may do `action`, with `details` shown to polkit rules
    /// (for example `container`).
    pub async fn check(
        &self,
        caller: &Caller,
        action: Action,
        details: &[(&str, &str)],
    ) -> Decision {
        let Some(connection) = self.connection.get() else {
            return Decision::Unavailable("the daemon has no bus connection".into());
        };
        let subject_details: HashMap<&str, Value<'_>> =
            HashMap::from([("name", Value::from(caller.bus_name.as_str()))]);
        let subject = ("system-bus-name", subject_details);
        let details: HashMap<&str, &str> = details.iter().copied().collect();
        let flags = if caller.interactive {
            ALLOW_USER_INTERACTION
        } else {
            0
        };
        let reply = connection
            .call_method(
                Some(POLKIT_NAME),
                "/org/freedesktop/PolicyKit1/Authority",
                Some("org.freedesktop.PolicyKit1.Authority"),
                "CheckAuthorization",
                &(subject, action.id(), details, flags, ""),
            )
            .await;
        let body = match reply {
            Ok(message) => message.body(),
            Err(error) => return Decision::Unavailable(error.to_string()),
        };
        match body.deserialize::<(bool, bool, HashMap<String, String>)>() {
            Ok((true, _, _)) => Decision::Allowed,
            Ok((false, challenge, _)) => Decision::Denied { challenge },
            Err(error) => Decision::Unavailable(format!("unexpected reply from polkit: {error}")),
        }
    }
}

const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";

/// Builds the AccessDenied error of a denied call, naming the method, the container, the uid
/// and the action.
pub fn denied_error(
    method: &str,
    caller: &Caller,
    action: Action,
    container: &str,
    decision: &Decision,
) -> Error {
    let target = if container.is_empty() {
        String::new()
    } else {
        format!(" on container \"{}\"", container.escape_debug())
    };
    let reason = match decision {
        Decision::Unavailable(reason) => {
            format!("polkit is not available ({reason}), so only root may call hoody-snapd")
        }
        Decision::Denied { challenge: true } => format!(
            "polkit wants an administrator's authentication for action {}; run the command as \
             root, or allow interactive authentication",
            action.id()
        ),
        Decision::Denied { challenge: false } | Decision::Allowed => {
            format!(
                "polkit does not authorize action {} for this user",
                action.id()
            )
        }
    };
    Error::AccessDenied(format!(
        "{method}{target} is not allowed for uid {}: {reason}",
        caller.uid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_ids_match_the_policy_file() {
        let policy = include_str!("../../config/polkit/icu.hoody.snapd1.policy");
        let shipped: Vec<&str> = policy
            .match_indices("<action id=\"")
            .map(|(at, prefix)| {
                let rest = &policy[at + prefix.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        let ours: Vec<&str> = ACTIONS.iter().map(|action| action.id()).collect();
        assert_eq!(shipped, ours);
        assert_eq!(
            policy
                .matches("<allow_any>auth_admin_keep</allow_any>")
                .count(),
            ACTIONS.len()
        );
    }

    #[test]
    fn owner_may_read_create_and_restore_only() {
        let allowed: Vec<Action> = ACTIONS
            .into_iter()
            .filter(|action| action.allowed_to_owner())
            .collect();
        assert_eq!(
            allowed,
            [
                Action::Read,
                Action::CreateSnapshot,
                Action::RestoreSnapshot
            ]
        );
    }

    #[test]
    fn denial_names_method_container_and_action() {
        let caller = Caller {
            uid: 1000,
            bus_name: ":1.7".into(),
            interactive: false,
        };
        let error = denied_error(
            "DeleteSnapshot",
            &caller,
            Action::DeleteSnapshot,
            "web",
            &Decision::Denied { challenge: true },
        );
        let message = error.message();
        assert!(
            message.contains("DeleteSnapshot on container \"web\""),
            "{message}"
        );
        assert!(message.contains("uid 1000"), "{message}");
        assert!(
            message.contains("icu.hoody.snapd1.delete-snapshot"),
            "{message}"
        );
    }
}
