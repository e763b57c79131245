//! JSON responses: every answer of the ingress carries a JSON body (the fleet's one helper,
//! shared with the health answers).

pub use copydesk::health::json;
