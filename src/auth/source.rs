//! Where `Auth` sends its token requests: the inner service or a [`TokenClient`].

use super::*;

/// Fetch tokens through the same inner service as the API calls (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct InnerTokenService;

/// Where [`Auth`] sends its token requests: [`InnerTokenService`] or a
/// [`TokenClient`], or an `Option<TokenClient>` choosing between the two.
pub trait TokenSource<S, B>: Clone + Send + Sync + 'static {
    /// The token client for this inner service.
    fn token_client(&self, inner: &S) -> TokenClient;
}

impl<S, B, RB> TokenSource<S, B> for InnerTokenService
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Default + Send + 'static,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    fn token_client(&self, inner: &S) -> TokenClient {
        TokenClient::new(inner.clone())
    }
}

impl<S, B> TokenSource<S, B> for TokenClient {
    fn token_client(&self, _inner: &S) -> TokenClient {
        self.clone()
    }
}

/// `Some(client)`: that client; `None`: the inner service, as [`InnerTokenService`].
impl<S, B> TokenSource<S, B> for Option<TokenClient>
where
    InnerTokenService: TokenSource<S, B>,
{
    fn token_client(&self, inner: &S) -> TokenClient {
        match self {
            Some(client) => client.clone(),
            None => InnerTokenService.token_client(inner),
        }
    }
}
