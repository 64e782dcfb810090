//! `ferry.v1.Auth` (logging in, with REST's lockout after failed logins) and
//! `ferry.v1.Users` (accounts and permissions for admins; API keys for everyone), over the
//! rules shared with REST in `crate::ops::users`.

use super::auth::caller;
use super::convert;
use crate::api::AppState;
use crate::ops::users as ops;
use ferry_proto::v1 as pb;
use tonic::{Request, Response, Status};

type Reply<T> = Result<Response<T>, Status>;

/// `ferry.v1.Auth`: the one service that needs no token.
pub(crate) struct AuthService(pub(crate) AppState);

#[tonic::async_trait]
impl pb::auth_server::Auth for AuthService {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::Token> {
        let r = request.into_inner();
        let (access_token, expires_in) = ops::login(&self.0, r.username, r.password).await?;
        Ok(Response::new(pb::Token { access_token, expires_in }))
    }
}

/// `ferry.v1.Users`.
pub(crate) struct UsersService(pub(crate) AppState);

#[tonic::async_trait]
impl pb::users_server::Users for UsersService {
    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Reply<pb::ListUsersResponse> {
        let caller = caller(&request)?;
        let users = ops::list(&self.0, &caller)?.into_iter().map(convert::user).collect();
        Ok(Response::new(pb::ListUsersResponse { users }))
    }

    async fn get_user(&self, request: Request<pb::UserRef>) -> Reply<pb::User> {
        let caller = caller(&request)?;
        Ok(Response::new(convert::user(ops::get(&self.0, &caller, &request.get_ref().name)?)))
    }

    async fn put_user(&self, request: Request<pb::PutUserRequest>) -> Reply<pb::User> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let role = convert::role(r.role)?;
        let permissions = convert::permissions(r.permissions);
        let (user, _created) = ops::put(&self.0, &caller, &r.name, r.password, role, permissions).await?;
        Ok(Response::new(convert::user(user)))
    }

    async fn delete_user(&self, request: Request<pb::UserRef>) -> Reply<pb::Empty> {
        let caller = caller(&request)?;
        ops::delete(&self.0, &caller, &request.get_ref().name)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn get_permissions(&self, request: Request<pb::UserRef>) -> Reply<pb::Permissions> {
        let caller = caller(&request)?;
        let p = ops::permissions(&self.0, &caller, &request.get_ref().name)?;
        Ok(Response::new(convert::permissions_out(p)))
    }

    async fn set_permissions(&self, request: Request<pb::SetPermissionsRequest>) -> Reply<pb::Permissions> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let p = ops::set_permissions(&self.0, &caller, &r.name, convert::permissions(r.permissions))?;
        Ok(Response::new(convert::permissions_out(p)))
    }

    async fn list_api_keys(&self, request: Request<pb::ListApiKeysRequest>) -> Reply<pb::ListApiKeysResponse> {
        let caller = caller(&request)?;
        let keys = ops::keys(&self.0, &caller).into_iter().map(convert::api_key).collect();
        Ok(Response::new(pb::ListApiKeysResponse { keys }))
    }

    async fn create_api_key(&self, request: Request<pb::CreateApiKeyRequest>) -> Reply<pb::CreatedApiKey> {
        let caller = caller(&request)?;
        let (info, key) = ops::create_key(&self.0, &caller, &request.get_ref().label)?;
        Ok(Response::new(pb::CreatedApiKey { key, info: Some(convert::api_key(info)) }))
    }

    async fn delete_api_key(&self, request: Request<pb::ApiKeyRef>) -> Reply<pb::Empty> {
        let caller = caller(&request)?;
        ops::delete_key(&self.0, &caller, &request.get_ref().id)?;
        Ok(Response::new(pb::Empty {}))
    }
}
