//! The routes the fake answers: exactly the Application API calls the client makes (plus
//! `PUT/PATCH .../conversations/{id}`, to show it ignores `status`). Anything else is 404,
//! as in Rails, where a path with the wrong verb matches no route.

use http::Method;

/// A route of the fake, named like the client's metric `endpoint` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST .../conversations/{id}/messages`
    CreateMessage,
    /// `GET .../conversations` (`status`, `assignee_type`, `page`; 25 per page, most recent
    /// activity first)
    ListConversations,
    /// `GET .../conversations/{id}/messages`
    ListMessages,
    /// `GET .../conversations/{id}`
    GetConversation,
    /// `PUT` or `PATCH .../conversations/{id}`
    UpdateConversation,
    /// `POST .../conversations/{id}/toggle_status`
    ToggleStatus,
    /// `POST .../conversations/{id}/toggle_priority`
    TogglePriority,
    /// `POST .../conversations/{id}/assignments`
    Assign,
    /// `GET .../agents`
    ListAgents,
    /// `GET .../teams`
    ListTeams,
    /// `GET .../teams/{id}/team_members`
    ListTeamMembers,
    /// `GET /api/v1/profile` (the token's own user; not under an account).
    Profile,
    /// `GET .../dashboard_apps`
    ListDashboardApps,
    /// `POST .../dashboard_apps`
    CreateDashboardApp,
}

impl Endpoint {
    /// The name, equal to the client's `endpoint` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateMessage => "create_message",
            Self::ListConversations => "list_conversations",
            Self::ListMessages => "list_messages",
            Self::GetConversation => "get_conversation",
            Self::UpdateConversation => "update_conversation",
            Self::ToggleStatus => "toggle_status",
            Self::TogglePriority => "toggle_priority",
            Self::Assign => "assign",
            Self::ListAgents => "list_agents",
            Self::ListTeams => "list_teams",
            Self::ListTeamMembers => "list_team_members",
            Self::Profile => "profile",
            Self::ListDashboardApps => "list_dashboard_apps",
            Self::CreateDashboardApp => "create_dashboard_app",
        }
    }
}

/// A matched route with its path parameters. Ids that are not integers stay `None`: Rails
/// routes them anyway and the lookup then fails with 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) endpoint: Endpoint,
    pub(crate) account_id: Option<i64>,
    /// Conversation display id or team id.
    pub(crate) id: Option<i64>,
}

/// Matches `method path` (path without query) to a route.
pub(crate) fn match_route(method: &Method, path: &str) -> Option<Route> {
    if method == Method::GET && path.trim_end_matches('/') == "/api/v1/profile" {
        return Some(Route {
            endpoint: Endpoint::Profile,
            account_id: None,
            id: None,
        });
    }
    let rest = path
        .trim_end_matches('/')
        .strip_prefix("/api/v1/accounts/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let (account, tail) = segments.split_first()?;
    let account_id = account.parse().ok();
    let route = |endpoint, id: Option<&&str>| {
        Some(Route {
            endpoint,
            account_id,
            id: id.and_then(|s| s.parse().ok()),
        })
    };
    match (method, tail) {
        (&Method::GET, ["agents"]) => route(Endpoint::ListAgents, None),
        (&Method::GET, ["dashboard_apps"]) => route(Endpoint::ListDashboardApps, None),
        (&Method::POST, ["dashboard_apps"]) => route(Endpoint::CreateDashboardApp, None),
        (&Method::GET, ["teams"]) => route(Endpoint::ListTeams, None),
        (&Method::GET, ["teams", id, "team_members"]) => route(Endpoint::ListTeamMembers, Some(id)),
        (&Method::GET, ["conversations"]) => route(Endpoint::ListConversations, None),
        (&Method::GET, ["conversations", id]) if *id != "meta" => {
            route(Endpoint::GetConversation, Some(id))
        }
        (&Method::PUT | &Method::PATCH, ["conversations", id]) => {
            route(Endpoint::UpdateConversation, Some(id))
        }
        (&Method::GET, ["conversations", id, "messages"]) => {
            route(Endpoint::ListMessages, Some(id))
        }
        (&Method::POST, ["conversations", id, "messages"]) => {
            route(Endpoint::CreateMessage, Some(id))
        }
        (&Method::POST, ["conversations", id, "toggle_status"]) => {
            route(Endpoint::ToggleStatus, Some(id))
        }
        (&Method::POST, ["conversations", id, "toggle_priority"]) => {
            route(Endpoint::TogglePriority, Some(id))
        }
        (&Method::POST, ["conversations", id, "assignments"]) => route(Endpoint::Assign, Some(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_routes_match_with_their_ids() {
        let r = match_route(
            &Method::POST,
            "/api/v1/accounts/1/conversations/101/messages",
        )
        .expect("route");
        assert_eq!(
            (r.endpoint, r.account_id, r.id),
            (Endpoint::CreateMessage, Some(1), Some(101))
        );
        let r =
            match_route(&Method::GET, "/api/v1/accounts/1/teams/3/team_members/").expect("route");
        assert_eq!((r.endpoint, r.id), (Endpoint::ListTeamMembers, Some(3)));
        let r = match_route(&Method::GET, "/api/v1/accounts/x/conversations/abc").expect("route");
        assert_eq!((r.account_id, r.id), (None, None));
    }

    #[test]
    fn wrong_methods_and_unknown_paths_do_not_match() {
        assert!(match_route(&Method::DELETE, "/api/v1/accounts/1/conversations/101").is_none());
        assert!(match_route(
            &Method::GET,
            "/api/v1/accounts/1/conversations/101/toggle_status"
        )
        .is_none());
        assert!(match_route(&Method::POST, "/api/v1/accounts/1/agents").is_none());
        assert!(match_route(&Method::GET, "/api/v1/accounts/1/conversations/101/labels").is_none());
        assert!(match_route(&Method::GET, "/api/v2/accounts/1/agents").is_none());
    }
}
