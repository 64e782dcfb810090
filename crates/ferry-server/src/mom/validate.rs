//! The reference's request models (pydantic v2) and their validation errors, reproduced:
//! `QueueTopic {name, type}`, `MessageQueueTopic {name, type, message}` and
//! `UserDto {username, password}`, plus the `mom_type` query parameter. Each failing field
//! gives one error, fields in model order, with pydantic's `type`, `loc`, `msg`, `input` and
//! `ctx`; unknown fields are ignored, as pydantic ignores them.

use super::errors::MomError;
use super::request::Body;
use ferry_broker::Kind;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// Queue, topic and user names: `^[a-zA-Z0-9_-]+$`.
pub(crate) const NAME_PATTERN: &str = "^[a-zA-Z0-9_-]+$";

/// Whether `s` matches [`NAME_PATTERN`].
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `{name, type}`.
pub(crate) struct QueueTopic {
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

/// `{name, type, message}`.
pub(crate) struct MessageQueueTopic {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

/// `{username, password}`.
pub(crate) struct UserDto {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// The length and pattern limits of a string field.
#[derive(Clone, Copy, Default)]
struct Rules {
    min: Option<usize>,
    max: Option<usize>,
    name_pattern: bool,
}

const NAME: Rules = Rules { min: None, max: None, name_pattern: true };
const USERNAME: Rules = Rules { min: Some(5), max: Some(20), name_pattern: true };
const ANY: Rules = Rules { min: None, max: None, name_pattern: false };

/// Reads the fields of one body, collecting the errors.
struct Fields<'a> {
    whole: &'a Value,
    object: &'a Map<String, Value>,
    errors: Vec<Value>,
}

impl<'a> Fields<'a> {
    /// The body's fields, or the error that it has none: missing, or not an object.
    fn of(body: &'a Body) -> Result<Fields<'a>, MomError> {
        let not_object = |input: Value| {
            MomError::Invalid(vec![json!({
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": input,
            })])
        };
        match body {
            Body::Missing => Err(MomError::Invalid(vec![missing(json!(["body"]), Value::Null)])),
            Body::Raw(text) => Err(not_object(Value::String(text.clone()))),
            Body::Json(whole @ Value::Object(object)) => Ok(Fields { whole, object, errors: Vec::new() }),
            Body::Json(other) => Err(not_object(other.clone())),
        }
    }

    fn get(&mut self, field: &str) -> Option<&'a Value> {
        let got = self.object.get(field);
        if got.is_none() {
            self.errors.push(missing(json!(["body", field]), self.whole.clone()));
        }
        got
    }

    fn string(&mut self, field: &str, rules: Rules) -> Option<String> {
        let value = self.get(field)?;
        match check_string(value, rules) {
            Ok(s) => Some(s),
            Err(mut e) => {
                e["loc"] = json!(["body", field]);
                self.errors.push(e);
                None
            }
        }
    }

    fn mom_type(&mut self) -> Option<Kind> {
        let value = self.get("type")?;
        match check_mom_type(value) {
            Ok(k) => Some(k),
            Err(mut e) => {
                e["loc"] = json!(["body", "type"]);
                self.errors.push(e);
                None
            }
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, MomError> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(MomError::Invalid(self.errors)),
        }
    }
}

fn missing(loc: Value, input: Value) -> Value {
    json!({ "type": "missing", "loc": loc, "msg": "Field required", "input": input })
}

/// pydantic's checks for a constrained `str`: the type, then the length, then the pattern;
/// the first that fails is the error (its `loc` is left for the caller).
fn check_string(value: &Value, rules: Rules) -> Result<String, Value> {
    let Value::String(s) = value else {
        return Err(json!({ "type": "string_type", "msg": "Input should be a valid string", "input": value }));
    };
    let len = s.chars().count();
    if let Some(min) = rules.min.filter(|&m| len < m) {
        return Err(json!({
            "type": "string_too_short",
            "msg": format!("String should have at least {min} characters"),
            "input": s,
            "ctx": { "min_length": min },
        }));
    }
    if let Some(max) = rules.max.filter(|&m| len > m) {
        return Err(json!({
            "type": "string_too_long",
            "msg": format!("String should have at most {max} characters"),
            "input": s,
            "ctx": { "max_length": max },
        }));
    }
    if rules.name_pattern && !is_name(s) {
        return Err(json!({
            "type": "string_pattern_mismatch",
            "msg": format!("String should match pattern '{NAME_PATTERN}'"),
            "input": s,
            "ctx": { "pattern": NAME_PATTERN },
        }));
    }
    Ok(s.clone())
}

/// The `MomType` enum: `"queue"` or `"topic"`.
fn check_mom_type(value: &Value) -> Result<Kind, Value> {
    match value.as_str() {
        Some("queue") => Ok(Kind::Queue),
        Some("topic") => Ok(Kind::Topic),
        _ => Err(json!({
            "type": "enum",
            "msg": "Input should be 'queue' or 'topic'",
            "input": value,
            "ctx": { "expected": "'queue' or 'topic'" },
        })),
    }
}

/// The body of subscribe, unsubscribe, receive and create.
pub(crate) fn queue_topic(body: &Body) -> Result<QueueTopic, MomError> {
    let mut f = Fields::of(body)?;
    let name = f.string("name", NAME);
    let kind = f.mom_type();
    let both = name.zip(kind).map(|(name, kind)| QueueTopic { name, kind });
    f.finish(both)
}

/// The body of send.
pub(crate) fn message_queue_topic(body: &Body) -> Result<MessageQueueTopic, MomError> {
    let mut f = Fields::of(body)?;
    let name = f.string("name", NAME);
    let kind = f.mom_type();
    let message = f.string("message", ANY);
    let all = name.zip(kind).zip(message).map(|((name, kind), message)| MessageQueueTopic { name, kind, message });
    f.finish(all)
}

/// The body of login and of user creation.
pub(crate) fn user_dto(body: &Body) -> Result<UserDto, MomError> {
    let mut f = Fields::of(body)?;
    let username = f.string("username", USERNAME);
    let password = f.string("password", ANY);
    let both = username.zip(password).map(|(username, password)| UserDto { username, password });
    f.finish(both)
}

/// The required `mom_type` query parameter of delete.
pub(crate) fn mom_type_query(value: Option<String>) -> Result<Kind, MomError> {
    let Some(value) = value else {
        return Err(MomError::Invalid(vec![missing(json!(["query", "mom_type"]), Value::Null)]));
    };
    check_mom_type(&Value::String(value)).map_err(|mut e| {
        e["loc"] = json!(["query", "mom_type"]);
        MomError::Invalid(vec![e])
    })
}

/// The reference builds `QueueTopic(name=<path name>, ...)` inside the delete handler, so a
/// bad name there is not a 422 but a `ValueError` (pydantic's `ValidationError` is one),
/// which the handler answers with 403 and the error's text. This is that text.
pub(crate) fn path_name_error(name: &str) -> Option<String> {
    if is_name(name) {
        return None;
    }
    let input = truncated(&python_repr(name));
    Some(format!(
        "1 validation error for QueueTopic\nname\n  String should match pattern '{NAME_PATTERN}' \
         [type=string_pattern_mismatch, input_value={input}, input_type=str]\n    \
         For further information visit https://errors.pydantic.dev/2.11/v/string_pattern_mismatch"
    ))
}

/// Python's `repr` of a string.
fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// pydantic shortens an input's repr of over 50 bytes to its first 25 and last 24 bytes
/// (on character boundaries) around `...`.
fn truncated(repr: &str) -> String {
    if repr.len() <= 50 {
        return repr.to_string();
    }
    let mut head = 25;
    while !repr.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = repr.len() - 24;
    while !repr.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}...{}", &repr[..head], &repr[tail..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(r: Result<impl Sized, MomError>) -> Value {
        match r {
            Err(MomError::Invalid(e)) => Value::Array(e),
            Err(other) => panic!("not a validation error: {other:?}"),
            Ok(_) => panic!("valid"),
        }
    }

    #[test]
    fn bodies_fail_as_pydantic_fails_them() {
        assert_eq!(
            errors(queue_topic(&Body::Missing)),
            json!([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}])
        );
        let body = Body::Json(json!({"name": "bad name", "colour": 1}));
        assert_eq!(
            errors(queue_topic(&body)),
            json!([
                {"type": "string_pattern_mismatch", "loc": ["body", "name"],
                 "msg": "String should match pattern '^[a-zA-Z0-9_-]+$'", "input": "bad name",
                 "ctx": {"pattern": "^[a-zA-Z0-9_-]+$"}},
                {"type": "missing", "loc": ["body", "type"], "msg": "Field required",
                 "input": {"name": "bad name", "colour": 1}},
            ])
        );
        let body = Body::Json(json!({"name": 5, "type": "stream", "message": ["x"]}));
        let e = errors(message_queue_topic(&body));
        assert_eq!(e[0]["type"], "string_type");
        assert_eq!(
            e[1],
            json!({"type": "enum", "loc": ["body", "type"], "msg": "Input should be 'queue' or 'topic'",
                                "input": "stream", "ctx": {"expected": "'queue' or 'topic'"}})
        );
        assert_eq!(e[2]["loc"], json!(["body", "message"]));
        assert_eq!(errors(queue_topic(&Body::Json(json!([1]))))[0]["type"], "model_attributes_type");
        assert_eq!(errors(queue_topic(&Body::Raw("name=x".into())))[0]["input"], "name=x");

        let e = errors(user_dto(&Body::Json(json!({"username": "abc", "password": "p"}))));
        assert_eq!(e[0]["type"], "string_too_short");
        assert_eq!(e[0]["ctx"], json!({"min_length": 5}));
        let e = errors(user_dto(&Body::Json(json!({"username": "a".repeat(21), "password": "p"}))));
        assert_eq!(e[0]["msg"], "String should have at most 20 characters");
        let e = errors(user_dto(&Body::Json(json!({"username": "bad user!"}))));
        assert_eq!((e[0]["type"].as_str(), e[1]["type"].as_str()), (Some("string_pattern_mismatch"), Some("missing")));

        let ok = message_queue_topic(&Body::Json(json!({"name": "q-1_A", "type": "topic", "message": ""}))).unwrap();
        assert_eq!((ok.name.as_str(), ok.kind, ok.message.as_str()), ("q-1_A", Kind::Topic, ""));
    }

    #[test]
    fn the_query_and_the_path_name() {
        assert_eq!(mom_type_query(Some("queue".into())).unwrap(), Kind::Queue);
        assert_eq!(errors(mom_type_query(None))[0]["loc"], json!(["query", "mom_type"]));
        assert_eq!(errors(mom_type_query(Some("x".into())))[0]["type"], "enum");
        assert_eq!(path_name_error("fine_name-1"), None);
        assert_eq!(
            path_name_error("bad name").unwrap(),
            "1 validation error for QueueTopic\nname\n  String should match pattern '^[a-zA-Z0-9_-]+$' \
             [type=string_pattern_mismatch, input_value='bad name', input_type=str]\n    \
             For further information visit https://errors.pydantic.dev/2.11/v/string_pattern_mismatch"
        );
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("a'\"\\\n\u{1}"), "'a\\'\"\\\\\\n\\x01'");
        let long = python_repr(&"x".repeat(60));
        assert_eq!(truncated(&long), format!("'{}...{}'", "x".repeat(24), "x".repeat(23)));
    }
}
