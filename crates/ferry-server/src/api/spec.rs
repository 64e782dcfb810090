//! The `/v1` route table and the OpenAPI document made from it. Each route is declared
//! once, with its handler and the types of its request and response bodies; the router and
//! `GET /v1/openapi.json` are both built from that one list, so the document cannot
//! describe a route that is not served, or miss one that is.

use super::AppState;
use axum::handler::Handler;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ComponentsBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr};
use utoipa::openapi::{Required, ResponseBuilder};
use utoipa::ToSchema;

/// Schemas met while describing bodies, to be put under `components`.
type Found = Vec<(String, RefOr<Schema>)>;
/// Describes a body type: registers its schemas and returns how to refer to it.
type Describe = fn(&mut Found) -> RefOr<Schema>;

fn named<T: ToSchema>(found: &mut Found) -> RefOr<Schema> {
    found.push((T::name().into_owned(), T::schema()));
    T::schemas(found);
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn list_of<T: ToSchema>(found: &mut Found) -> RefOr<Schema> {
    ArrayBuilder::new().items(named::<T>(found)).build().into()
}

/// An HTTP method, as the router and the document both need it.
#[derive(Clone, Copy)]
pub(super) enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    fn http(self) -> HttpMethod {
        match self {
            Verb::Get => HttpMethod::Get,
            Verb::Post => HttpMethod::Post,
            Verb::Put => HttpMethod::Put,
            Verb::Patch => HttpMethod::Patch,
            Verb::Delete => HttpMethod::Delete,
        }
    }
}

/// What a successful answer carries.
enum Answer {
    Json(Describe),
    Nothing,
    /// A stream that is not JSON: Server-Sent Events, or a WebSocket after a 101.
    Stream(&'static str),
}

/// A query parameter: name, JSON type, what it does.
pub(super) type QueryParam = (&'static str, Type, &'static str);

/// One route: where, what it does, which handler, and its bodies.
pub(super) struct Route {
    verb: Verb,
    path: String,
    tag: &'static str,
    summary: &'static str,
    handler: MethodRouter<AppState>,
    request: Option<Describe>,
    status: u16,
    answer: Answer,
    query: &'static [QueryParam],
    public: bool,
}

impl Route {
    /// A route answering 200 with nothing described yet; `path` is relative to `/v1`.
    pub(super) fn new<H, T>(verb: Verb, path: impl Into<String>, summary: &'static str, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let path = path.into();
        let tag = path.split('/').nth(1).unwrap_or("v1");
        let tag = match tag {
            "queues" => "queues",
            "topics" => "topics",
            "users" => "users",
            "apikeys" => "apikeys",
            _ => "auth",
        };
        Route {
            verb,
            path,
            tag,
            summary,
            handler: on(verb.filter(), handler),
            request: None,
            status: 200,
            answer: Answer::Nothing,
            query: &[],
            public: false,
        }
    }

    /// Served without a token.
    pub(super) fn public(mut self) -> Route {
        self.public = true;
        self
    }

    /// The JSON request body.
    pub(super) fn takes<B: ToSchema>(mut self) -> Route {
        self.request = Some(named::<B>);
        self
    }

    /// Answers `status` with a JSON `R`.
    pub(super) fn gives<R: ToSchema>(mut self, status: u16) -> Route {
        (self.status, self.answer) = (status, Answer::Json(named::<R>));
        self
    }

    /// Answers `status` with a JSON array of `R`.
    pub(super) fn gives_list<R: ToSchema>(mut self, status: u16) -> Route {
        (self.status, self.answer) = (status, Answer::Json(list_of::<R>));
        self
    }

    /// Answers `status` with no body.
    pub(super) fn gives_nothing(mut self, status: u16) -> Route {
        (self.status, self.answer) = (status, Answer::Nothing);
        self
    }

    /// Answers `status` with a stream of `content_type`.
    pub(super) fn streams(mut self, status: u16, content_type: &'static str) -> Route {
        (self.status, self.answer) = (status, Answer::Stream(content_type));
        self
    }

    /// Its query parameters.
    pub(super) fn query(mut self, params: &'static [QueryParam]) -> Route {
        self.query = params;
        self
    }
}

/// The router of a route table, each path with `prefix` in front.
pub(super) fn router(routes: Vec<Route>, prefix: &str) -> Router<AppState> {
    routes.into_iter().fold(Router::new(), |r, route| r.route(&format!("{prefix}{}", route.path), route.handler))
}

/// The OpenAPI document of a route table mounted at `/v1`.
pub(super) fn document(routes: Vec<&Route>) -> OpenApi {
    let mut found = Found::new();
    let mut paths = PathsBuilder::new();
    for route in routes {
        let route: &Route = route;
        let mut op =
            OperationBuilder::new().tag(route.tag).summary(Some(route.summary)).operation_id(Some(operation_id(route)));
        if !route.public {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        for name in path_params(&route.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        for (name, kind, what) in route.query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*what))
                    .schema(Some(ObjectBuilder::new().schema_type(kind.clone()))),
            );
        }
        if let Some(describe) = route.request {
            let content = ContentBuilder::new().schema(Some(describe(&mut found))).build();
            op = op.request_body(Some(
                RequestBodyBuilder::new().content("application/json", content).required(Some(Required::True)).build(),
            ));
        }
        let ok = match &route.answer {
            Answer::Json(describe) => ResponseBuilder::new()
                .description("success")
                .content("application/json", ContentBuilder::new().schema(Some(describe(&mut found))).build()),
            Answer::Nothing => ResponseBuilder::new().description("success"),
            Answer::Stream(kind) => ResponseBuilder::new().description(*kind),
        };
        op = op.response(route.status.to_string(), ok.build());
        let error = named::<super::error::ErrorBody>(&mut found);
        for (status, why) in errors(route) {
            let content = ContentBuilder::new().schema(Some(error.clone())).build();
            op = op.response(
                status.to_string(),
                ResponseBuilder::new().description(why).content("application/json", content).build(),
            );
        }
        paths = paths.path(format!("/v1{}", route.path), PathItem::new(route.verb.http(), op));
    }
    let mut components =
        ComponentsBuilder::new().security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    for (name, schema) in found {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("ferry").version(env!("CARGO_PKG_VERSION")).description(Some(
            "ferry's broker API: queues, topics and subscriptions, users and API keys. Every route takes \
                     `Authorization: Bearer <token or API key>`; get a token from POST /v1/auth/token.",
        )))
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// `get /queues/{name}/peek` → `get_queues_name_peek`.
fn operation_id(route: &Route) -> String {
    let verb = match route.verb {
        Verb::Get => "get",
        Verb::Post => "post",
        Verb::Put => "put",
        Verb::Patch => "patch",
        Verb::Delete => "delete",
    };
    let path: Vec<&str> =
        route.path.split('/').filter(|s| !s.is_empty()).map(|s| s.trim_matches(|c| c == '{' || c == '}')).collect();
    format!("{verb}_{}", path.join("_"))
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The errors a route can answer with, from its shape: every route can be refused (401,
/// 403, 429); routes on a named resource can miss it (404); routes with a body can get a
/// bad one (400, 413, 422).
fn errors(route: &Route) -> Vec<(u16, &'static str)> {
    let mut e = if route.public { Vec::new() } else { vec![(401, "no valid token or API key"), (403, "not allowed")] };
    if route.path.contains('{') {
        e.push((404, "no such destination, subscription, user or key"));
    }
    if route.request.is_some() {
        e.extend([(400, "malformed JSON"), (413, "body too large"), (422, "invalid body")]);
    }
    if matches!(route.verb, Verb::Post) && route.request.is_some() && route.status == 201 {
        e.push((409, "already exists"));
    }
    e.push((429, "rate limited"));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_and_path_parameters_come_from_the_path() {
        let route = Route::new(Verb::Get, "/topics/{name}/subscriptions/{sub}/stream", "x", || async {});
        assert_eq!(operation_id(&route), "get_topics_name_subscriptions_sub_stream");
        assert_eq!(path_params(&route.path).collect::<Vec<_>>(), ["name", "sub"]);
        assert_eq!(route.tag, "topics");
    }
}
