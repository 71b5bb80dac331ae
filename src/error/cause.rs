//! The cause catalog: every known cause of failure as one declarative table, each
//! with its stable code, summary, numbered steps, docs link and whether it is
//! transient.

use std::fmt;

const FAQ: &str = "https://developer.vippsmobilepay.com/docs/knowledge-base/common-errors/";
const ACCESS_TOKEN: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/access-token-api/#get-an-access-token";
const API_KEYS: &str =
    "https://developer.vippsmobilepay.com/docs/knowledge-base/api-keys/#how-to-use-the-api-keys";
const HTTP_HEADERS: &str = "https://developer.vippsmobilepay.com/docs/knowledge-base/http-headers/";
const PARTNER_KEYS: &str = "https://developer.vippsmobilepay.com/docs/partner/partner-keys/";
const TEST_ENV: &str = "https://developer.vippsmobilepay.com/docs/test-environment/";
const EPAYMENT_ERRORS: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/epayment-api/faq/#what-do-all-the-errors-mean";
const EPAYMENT_CREATE: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide/operations/create/";
const EPAYMENT_ADJUST: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide/operations/capture/";
const ECOM_ERRORS: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/ecom-api/vipps-ecom-api-faq/#common-errors";
const IDEMPOTENCY: &str =
    "https://developer.vippsmobilepay.com/docs/knowledge-base/http-headers/#idempotency";
const RATE_LIMITS: &str = "https://developer.vippsmobilepay.com/docs/knowledge-base/rate-limiting/";
const API_PRODUCTS: &str = "https://developer.vippsmobilepay.com/docs/APIs/";
const LOGIN: &str = "https://developer.vippsmobilepay.com/docs/APIs/login-api/";
const RECURRING: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-guide/";
const RECURRING_PROBLEMS: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems/";
const CHECKOUT: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/checkout-api/checkout-api-quick-start/";
const STATUS_PAGE: &str = "https://developer.vippsmobilepay.com/docs/knowledge-base/status-page/";
const WEBHOOK_AUTH: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/webhooks-api/request-authentication/";
const TLS_DOCS: &str =
    "https://developer.vippsmobilepay.com/docs/knowledge-base/api-keys/#how-to-use-the-api-keys";

const STEP_BEARER: &str = "Send the token as `Authorization: Bearer <access token>`: the scheme `Bearer` with a capital B, one space, then the token (header values are case-sensitive).";
const STEP_TOKEN_VALID: &str = "Make sure the access token is valid: fetched from `POST /accesstoken/get` with the keys of this MSN, in this environment, and not expired (1 hour in test, 24 hours in production).";
const STEP_KEYS_FOR_MSN: &str = "Check that `client_id`, `client_secret` and `Ocp-Apim-Subscription-Key` are the keys of the MSN in the `Merchant-Serial-Number` header (portal.vipps.no > sales unit > API keys).";
const STEP_SAME_SUB_KEY: &str = "Use the same `Ocp-Apim-Subscription-Key` for the access token call and for the API call; if you cache tokens, key the cache by subscription key and MSN too.";
const STEP_ENVIRONMENT: &str = "Check the environment: test keys and MSNs only work on apitest.vipps.no, production keys only on api.vipps.no.";
const STEP_PARTNER: &str = "With partner keys, send the `Merchant-Serial-Number` header with the MSN of a sales unit connected to your partner account.";
const STEP_HEADER_VS_BODY: &str = "Do not mix up `Merchant-Serial-Number` (the HTTP header) and `merchantSerialNumber` (a field in some request bodies): they must name the same sales unit.";
const STEP_READ_BODY: &str =
    "Read the response body and headers: for most errors they say what went wrong.";
const STEP_TLS_ROOTS: &str = "Trust the certificate authority that issued it: the default roots (webpki-roots) know every public CA; for a private CA add it with `HttpsClient::builder().add_root_certificate(der)`.";
const STEP_TLS_PROXY: &str = "If a corporate proxy or antivirus inspects TLS, add its root certificate, or let traffic to *.vipps.no through untouched.";
const STEP_TLS_HOST: &str = "Check the host in the request URL: apitest.vipps.no (test) or api.vipps.no (production), over `https://` on port 443.";
const STEP_RETRY_SAME_KEY: &str = "Retry later with the same idempotency key (`Idempotency-Key`; eCom: `X-Request-Id`), or read the payment back before trying again.";
const STEP_WEBHOOK_RAW: &str = "Verify the webhook on the raw body bytes as received, before any framework parses or re-serializes the JSON (put `WebhookLayer` in front of the body extractor).";
const STEP_WEBHOOK_SECRET: &str = "Use the `secret` returned by `POST /webhooks/v1/webhooks` for this registration (one per registration; keep the old and the new one during a rotation; list them with `GET /webhooks/v1/webhooks`).";
const STEP_WEBHOOK_URL: &str = "Give the verifier the URL exactly as registered with the Webhooks API (scheme, host, port, path and query), not the one a proxy forwards to.";

macro_rules! causes {
    ($(
        $(#[$doc:meta])*
        $variant:ident => {
            code: $code:literal,
            summary: $summary:literal,
            steps: [$($step:expr),* $(,)?],
            docs: $docs:expr,
            transient: $transient:literal $(,)?
        }
    ),* $(,)?) => {
        /// A known cause of failure. Each has a stable [code](Cause::code), a
        /// one-line [summary](Cause::summary), [steps](Cause::steps) to fix it and a
        /// [docs link](Cause::docs_url).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Cause {
            $( $(#[$doc])* $variant, )*
        }

        impl Cause {
            /// Every cause, in declaration order.
            pub const ALL: &'static [Cause] = &[$(Cause::$variant),*];

            /// The stable code, `vipps::<snake_case>`. Part of the public API.
            pub const fn code(self) -> &'static str {
                match self { $(Cause::$variant => $code,)* }
            }

            /// One sentence saying what went wrong.
            pub const fn summary(self) -> &'static str {
                match self { $(Cause::$variant => $summary,)* }
            }

            /// The steps to fix it, most likely first.
            pub const fn steps(self) -> &'static [&'static str] {
                match self { $(Cause::$variant => &[$($step),*],)* }
            }

            /// The page of the Vipps MobilePay docs that explains it.
            pub const fn docs_url(self) -> &'static str {
                match self { $(Cause::$variant => $docs,)* }
            }

            /// Whether the same request may succeed later unchanged (rate limits,
            /// server errors, timeouts, concurrent operations).
            pub const fn is_transient(self) -> bool {
                match self { $(Cause::$variant => $transient,)* }
            }
        }
    };
}

causes! {
    /// No `Authorization` header on an API call.
    MissingAuthorization => {
        code: "vipps::missing_authorization",
        summary: "The request has no `Authorization` header; every API call needs `Authorization: Bearer <access token>`.",
        steps: [STEP_BEARER, STEP_TOKEN_VALID],
        docs: ACCESS_TOKEN,
        transient: false,
    },
    /// `Authorization` without the `Bearer` scheme (a bare token, `Basic` credentials…).
    BearerMissing => {
        code: "vipps::bearer_missing",
        summary: "The `Authorization` header does not use the `Bearer` scheme; Vipps MobilePay answers such requests with 401.",
        steps: [STEP_BEARER, STEP_TOKEN_VALID],
        docs: ACCESS_TOKEN,
        transient: false,
    },
    /// `bearer`, `BEARER`: the scheme in the wrong case.
    BearerWrongCase => {
        code: "vipps::bearer_wrong_case",
        summary: "The `Authorization` scheme is not spelled `Bearer`; it is case-sensitive in practice and `bearer <token>` fails with 401.",
        steps: [STEP_BEARER],
        docs: FAQ,
        transient: false,
    },
    /// `Bearer` with a malformed token: empty, extra spaces, quotes, not a JWT.
    MalformedAuthorization => {
        code: "vipps::malformed_authorization",
        summary: "The `Authorization: Bearer` header is malformed: the token is empty, padded, quoted or not a JWT.",
        steps: [STEP_BEARER, "Send the `access_token` field of the token response as it is: no quotes, no extra spaces, no line breaks.", STEP_TOKEN_VALID],
        docs: ACCESS_TOKEN,
        transient: false,
    },
    /// The access token's `exp` is in the past.
    AccessTokenExpired => {
        code: "vipps::access_token_expired",
        summary: "The access token has expired.",
        steps: ["Fetch a new access token before the old one expires (1 hour in test, 24 hours in production); cache it with its expiry.", STEP_TOKEN_VALID],
        docs: ACCESS_TOKEN,
        transient: false,
    },
    /// 401 "Something went wrong": the access token is invalid.
    InvalidAccessToken => {
        code: "vipps::invalid_access_token",
        summary: "Vipps MobilePay rejected the access token: it is malformed, expired, or was fetched for another MSN, subscription key or environment.",
        steps: [STEP_TOKEN_VALID, STEP_BEARER, STEP_KEYS_FOR_MSN, STEP_SAME_SUB_KEY, STEP_ENVIRONMENT],
        docs: FAQ,
        transient: false,
    },
    /// A token minted for one MSN, sent for another.
    TokenForOtherMsn => {
        code: "vipps::token_for_other_msn",
        summary: "The access token was fetched for another merchant serial number (MSN) than the one this request acts for.",
        steps: ["Fetch the access token with the keys of the MSN in the `Merchant-Serial-Number` header; cache tokens per MSN.", STEP_KEYS_FOR_MSN, STEP_SAME_SUB_KEY],
        docs: FAQ,
        transient: false,
    },
    /// The subscription key differs from the one the token was fetched with.
    SubscriptionKeyMismatch => {
        code: "vipps::subscription_key_mismatch",
        summary: "The `Ocp-Apim-Subscription-Key` differs from the subscription key the access token was fetched with.",
        steps: [STEP_SAME_SUB_KEY, STEP_KEYS_FOR_MSN],
        docs: FAQ,
        transient: false,
    },
    /// Gateway: "Access denied due to invalid subscription key".
    InvalidSubscriptionKey => {
        code: "vipps::invalid_subscription_key",
        summary: "The API gateway does not know the subscription key: it is wrong, from the other environment, or its subscription is not active.",
        steps: [STEP_ENVIRONMENT, "Copy the `Ocp-Apim-Subscription-Key` of this sales unit again from portal.vipps.no (primary or secondary key) without spaces.", STEP_KEYS_FOR_MSN],
        docs: API_KEYS,
        transient: false,
    },
    /// Gateway: "Access denied due to missing subscription key".
    MissingSubscriptionKey => {
        code: "vipps::missing_subscription_key",
        summary: "The request has no `Ocp-Apim-Subscription-Key` header.",
        steps: ["Send the header `Ocp-Apim-Subscription-Key` with the subscription key of the sales unit on every call, the token call included.", STEP_SAME_SUB_KEY],
        docs: HTTP_HEADERS,
        transient: false,
    },
    /// The subscription key is empty or not a plausible key.
    MalformedSubscriptionKey => {
        code: "vipps::malformed_subscription_key",
        summary: "The `Ocp-Apim-Subscription-Key` header is empty or malformed (spaces, quotes or line breaks in it).",
        steps: ["Copy the subscription key again from portal.vipps.no and send it as it is, without quotes or whitespace.", STEP_SAME_SUB_KEY],
        docs: API_KEYS,
        transient: false,
    },
    /// Gateway: "Subscription not found".
    SubscriptionNotFound => {
        code: "vipps::subscription_not_found",
        summary: "The API gateway found no subscription for this key and API: the key is unknown, or the sales unit has no access to this API product.",
        steps: ["Check in portal.vipps.no that the sales unit has access to this API product.", STEP_ENVIRONMENT, STEP_KEYS_FOR_MSN],
        docs: API_PRODUCTS,
        transient: false,
    },
    /// Keys of one environment used on the other's host.
    WrongEnvironment => {
        code: "vipps::wrong_environment",
        summary: "The keys or token belong to one environment and the request goes to the other: test and production are completely separate.",
        steps: [STEP_ENVIRONMENT, "Use the base URL of the environment your keys belong to: https://apitest.vipps.no for test, https://api.vipps.no for production."],
        docs: TEST_ENV,
        transient: false,
    },
    /// The request's host belongs to no known environment.
    UnknownHost => {
        code: "vipps::unknown_host",
        summary: "The request goes to a host that belongs to no Vipps MobilePay environment, so no keys or token are sent to it.",
        steps: ["Send the request to https://apitest.vipps.no (test) or https://api.vipps.no (production).", "For an emulator or a proxy, register its host with `Keyring::builder().host(environment, \"host:port\")`."],
        docs: API_PRODUCTS,
        transient: false,
    },
    /// `client_id` / `client_secret` rejected (token endpoint, Login `invalid_client`).
    InvalidClientCredentials => {
        code: "vipps::invalid_client_credentials",
        summary: "The client credentials (`client_id` and `client_secret`) were rejected.",
        steps: ["Copy `client_id` and `client_secret` of this sales unit again from portal.vipps.no.", STEP_ENVIRONMENT, STEP_KEYS_FOR_MSN],
        docs: API_KEYS,
        transient: false,
    },
    /// No key set in the keyring for the request's MSN and environment.
    NoKeysForMsn => {
        code: "vipps::no_keys_for_msn",
        summary: "There are no API keys for this merchant serial number (MSN) in this environment.",
        steps: ["Add the keys of this MSN to the `Keyring`, or send the request for an MSN you have keys for.", STEP_ENVIRONMENT],
        docs: API_KEYS,
        transient: false,
    },
    /// The `Merchant-Serial-Number` header is not a valid MSN.
    MalformedMsn => {
        code: "vipps::malformed_msn",
        summary: "The `Merchant-Serial-Number` header is not a merchant serial number (digits only).",
        steps: ["Send the MSN of the sales unit as digits only, e.g. `Merchant-Serial-Number: 123456`."],
        docs: HTTP_HEADERS,
        transient: false,
    },
    /// `merchantSerialNumber` used as a header name.
    MsnHeaderMisspelled => {
        code: "vipps::msn_header_misspelled",
        summary: "The MSN is sent in a header named `merchantSerialNumber`; the header is `Merchant-Serial-Number` (`merchantSerialNumber` is a body field).",
        steps: [STEP_HEADER_VS_BODY, "Rename the header to `Merchant-Serial-Number`."],
        docs: PARTNER_KEYS,
        transient: false,
    },
    /// The body's `merchantSerialNumber` differs from the header.
    MsnHeaderBodyMismatch => {
        code: "vipps::msn_header_body_mismatch",
        summary: "The `merchantSerialNumber` in the request body differs from the `Merchant-Serial-Number` header.",
        steps: [STEP_HEADER_VS_BODY],
        docs: PARTNER_KEYS,
        transient: false,
    },
    /// Partner keys without a `Merchant-Serial-Number` header.
    PartnerMissingMsnHeader => {
        code: "vipps::partner_missing_msn_header",
        summary: "Partner keys are used without the `Merchant-Serial-Number` header; Vipps MobilePay answers 403.",
        steps: [STEP_PARTNER, STEP_HEADER_VS_BODY],
        docs: PARTNER_KEYS,
        transient: false,
    },
    /// Partner keys for an MSN not connected to the partner.
    PartnerMsnNotConnected => {
        code: "vipps::partner_msn_not_connected",
        summary: "The MSN in `Merchant-Serial-Number` is not connected to these partner keys; partner keys only work for connected sales units.",
        steps: [STEP_PARTNER, "Check in portal.vipps.no that the sales unit is connected to your partner account."],
        docs: PARTNER_KEYS,
        transient: false,
    },
    /// 403 "Merchant Not Allowed for Ecommerce Payment": a Login-only sales unit.
    MerchantNotAllowedForEcommerce => {
        code: "vipps::merchant_not_allowed_for_ecommerce",
        summary: "The sales unit is only approved for the Login API, not for payments.",
        steps: ["Order access to payments (\"Vipps på Nett\") for the sales unit on portal.vipps.no.", "Check that the MSN in `Merchant-Serial-Number` is the sales unit you meant."],
        docs: FAQ,
        transient: false,
    },
    /// Another 403: the keys may not use this API or sales unit.
    Forbidden => {
        code: "vipps::forbidden",
        summary: "Vipps MobilePay refused access (403): the sales unit lacks this API product, or partner keys act for an MSN they may not.",
        steps: ["Check in portal.vipps.no that the sales unit has access to this API product.", STEP_PARTNER],
        docs: FAQ,
        transient: false,
    },
    /// ePayment 4040, eCom `amount`: the amount is not a positive integer in minor units.
    InvalidAmount => {
        code: "vipps::invalid_amount",
        summary: "The amount is invalid: amounts are positive integers in minor units (øre, cent), without decimals.",
        steps: ["Send the amount in minor units as an integer: 100.50 NOK is `10050`.", STEP_READ_BODY],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment 6010: below the market's minimum.
    AmountTooSmall => {
        code: "vipps::amount_too_small",
        summary: "The amount is below the minimum for the market (amounts are in minor units: 100 = 1.00 NOK).",
        steps: ["Check that the amount is in minor units and at least the market's minimum."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment 5040: the currency is not one of the sales unit's.
    InvalidCurrency => {
        code: "vipps::invalid_currency",
        summary: "The currency is not valid for this sales unit (NOK, DKK or EUR, depending on the market).",
        steps: ["Use the currency of the sales unit's market: NOK for Norway, DKK for Denmark, EUR for Finland."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment 4070, eCom `Invalid MSISDN`: the phone number is not an MSISDN.
    InvalidPhoneNumber => {
        code: "vipps::invalid_phone_number",
        summary: "The phone number is not in MSISDN format: country code and number, digits only, no `+`, no leading `00`, no spaces (e.g. `4712345678`).",
        steps: ["Send the phone number as country code plus number, digits only: `4712345678`."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment 4090, eCom `callbackPrefix`: a URL is not valid.
    InvalidUrl => {
        code: "vipps::invalid_url",
        summary: "A URL in the request (`returnUrl`, `callbackUrl`, `callbackPrefix`…) is invalid: it must be an absolute `https://` URL.",
        steps: ["Send absolute `https://` URLs for `returnUrl` and callbacks (http is only accepted for localhost in test).", STEP_READ_BODY],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// The payment `reference` is not `^[a-zA-Z0-9-]{8,64}$`.
    InvalidReference => {
        code: "vipps::invalid_reference",
        summary: "The payment `reference` must be 8 to 64 characters of `a-z`, `A-Z`, `0-9` and `-`.",
        steps: ["Use a reference matching `^[a-zA-Z0-9-]{8,64}$`, unique per MSN."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// A field failed validation (problem details `extraDetails`, ePayment 4140…).
    InvalidField => {
        code: "vipps::invalid_field",
        summary: "A field of the request failed validation or a required one is missing; the response names it.",
        steps: [STEP_READ_BODY, "Compare the request with the API specification of this operation."],
        docs: EPAYMENT_ERRORS,
        transient: false,
    },
    /// A request that needs an `Idempotency-Key` has none, or one its API refuses.
    MissingIdempotencyKey => {
        code: "vipps::missing_idempotency_key",
        summary: "This request needs an `Idempotency-Key` header its API accepts: ePayment at most 50 characters; Recurring 1 to 40, without `#`, `?`, `/` or `\\`.",
        steps: ["Send a unique `Idempotency-Key` (a UUID) per logical operation, and reuse it when you retry the same operation.", "Or add `IdempotencyLayer` to the stack."],
        docs: IDEMPOTENCY,
        transient: false,
    },
    /// ePayment 409 / 4010 / 4020 / 4150: the idempotency key or reference was reused.
    IdempotencyConflict => {
        code: "vipps::idempotency_conflict",
        summary: "The `Idempotency-Key` (or the reference) was already used with another request body.",
        steps: ["Use a new `Idempotency-Key` for a new operation; reuse a key only to retry the same request with the same body.", "Use a new, unique reference for a new payment."],
        docs: IDEMPOTENCY,
        transient: false,
    },
    /// ePayment 5090: no payment with this reference for this MSN.
    ReferenceNotFound => {
        code: "vipps::reference_not_found",
        summary: "No payment with this reference exists for this MSN: the reference is wrong, or it belongs to another MSN.",
        steps: ["Check the reference, and that `Merchant-Serial-Number` is the MSN the payment was created with."],
        docs: EPAYMENT_ERRORS,
        transient: false,
    },
    /// ePayment 6090, eCom 61: capture exceeds the reserved amount.
    CaptureExceedsReserved => {
        code: "vipps::capture_exceeds_reserved",
        summary: "The capture exceeds the reserved amount: you cannot capture more than the user accepted.",
        steps: ["Read the payment (or its events) and capture at most the authorized amount minus what is already captured."],
        docs: EPAYMENT_ADJUST,
        transient: false,
    },
    /// ePayment 6150, eCom 71: refund exceeds what was captured.
    RefundExceedsCaptured => {
        code: "vipps::refund_exceeds_captured",
        summary: "The refund exceeds the captured amount minus what is already refunded.",
        steps: ["Read the payment's event log and refund at most captured minus refunded."],
        docs: EPAYMENT_ADJUST,
        transient: false,
    },
    /// ePayment 6080: capture before the user accepted.
    CaptureBeforeReservation => {
        code: "vipps::capture_before_reservation",
        summary: "The payment is not reserved yet: the user must accept it before it can be captured.",
        steps: ["Wait for the `AUTHORIZED` event (callback or polling) before capturing."],
        docs: EPAYMENT_ADJUST,
        transient: false,
    },
    /// ePayment 60xx–62xx: the operation does not fit the payment's state or period.
    InvalidPaymentState => {
        code: "vipps::invalid_payment_state",
        summary: "The operation does not fit the payment's state (already captured, cancelled, refunded, or past its period).",
        steps: ["Read the payment and its events, and only capture, refund or cancel what its state allows.", STEP_READ_BODY],
        docs: EPAYMENT_ERRORS,
        transient: false,
    },
    /// ePayment 50xx: the sales unit is not set up for this feature.
    NotAllowedForMerchant => {
        code: "vipps::not_allowed_for_merchant",
        summary: "The sales unit is not set up for what the request asks (express, long-living payments, a currency, push messages…).",
        steps: ["Check the sales unit's settings in portal.vipps.no, or leave that feature out of the request.", STEP_READ_BODY],
        docs: EPAYMENT_ERRORS,
        transient: false,
    },
    /// eCom 41–45: the user's card or bank refused the payment.
    PaymentDeclined => {
        code: "vipps::payment_declined",
        summary: "The user's card or bank refused the payment (no valid card, refused by the issuer, expired card, limit reached).",
        steps: ["Tell the user the payment was declined and let them try again with another card in the app; do not retry the same request.", STEP_READ_BODY],
        docs: ECOM_ERRORS,
        transient: false,
    },
    /// ePayment 7010, eCom 81: not a Vipps/MobilePay user, or cannot pay businesses.
    UserUnknown => {
        code: "vipps::user_unknown",
        summary: "The phone number is not a Vipps or MobilePay user who can pay businesses (unknown, under 15, or wrongly formatted); no more details are given.",
        steps: ["Check the phone number's format (MSISDN, e.g. `4712345678`); do not tell the customer more than that the payment could not start.", "In the test environment, use a test user from portal.vipps.no."],
        docs: FAQ,
        transient: false,
    },
    /// A test user that has not logged in to the test app, or a real user in test.
    TestUserNotReady => {
        code: "vipps::test_user_not_ready",
        summary: "The user cannot pay in the test environment: real users do not exist there, and a new test user must log in to the test app first.",
        steps: ["Use a test user from portal.vipps.no, and log in with it in the test app before paying."],
        docs: TEST_ENV,
        transient: false,
    },
    /// ePayment 423 / 6160: another operation on the payment is in progress.
    ConcurrentOperation => {
        code: "vipps::concurrent_operation",
        summary: "Another operation on this payment is in progress.",
        steps: ["Retry shortly with the same `Idempotency-Key`."],
        docs: EPAYMENT_ERRORS,
        transient: true,
    },
    /// 429: rate limited.
    RateLimited => {
        code: "vipps::rate_limited",
        summary: "Rate limited: too many requests (create, capture, cancel and refund are limited per reference and MSN).",
        steps: ["Wait for `Retry-After` (or back off) and retry with the same `Idempotency-Key`.", "Do not poll a payment more than needed; prefer callbacks."],
        docs: RATE_LIMITS,
        transient: true,
    },
    /// 5xx: a server-side failure.
    ServerError => {
        code: "vipps::server_error",
        summary: "Vipps MobilePay failed to handle the request (5xx); an internal error may also come from a malformed request.",
        steps: [STEP_RETRY_SAME_KEY, "Check the request against the API specification.", "Check the status page."],
        docs: STATUS_PAGE,
        transient: true,
    },
    /// A deadline passed before the answer came.
    Timeout => {
        code: "vipps::timeout",
        summary: "No answer came before the deadline; the request may or may not have been carried out.",
        steps: [STEP_RETRY_SAME_KEY],
        docs: EPAYMENT_ERRORS,
        transient: true,
    },
    /// The inner service failed: connection refused, reset, DNS, TLS.
    Transport => {
        code: "vipps::transport",
        summary: "The request could not be carried to Vipps MobilePay or its answer could not be read (connection, DNS, TLS).",
        steps: [STEP_RETRY_SAME_KEY, "Check network access to the API host."],
        docs: STATUS_PAGE,
        transient: true,
    },
    /// The token endpoint answered 2xx with something that is not a token.
    InvalidTokenResponse => {
        code: "vipps::invalid_token_response",
        summary: "The access token endpoint answered with something that is not a token response.",
        steps: ["Check that the token request goes to `POST /accesstoken/get` on the right host, not through a proxy that rewrites it.", STEP_ENVIRONMENT],
        docs: ACCESS_TOKEN,
        transient: true,
    },
    /// The token endpoint answered with a redirect, which is never followed.
    UnexpectedRedirect => {
        code: "vipps::unexpected_redirect",
        summary: "The endpoint answered with a redirect; credentials are never sent after a redirect.",
        steps: ["Send requests to the API host directly: https://apitest.vipps.no or https://api.vipps.no."],
        docs: ACCESS_TOKEN,
        transient: false,
    },
    /// `Vipps-System-*` headers missing or too long.
    SystemHeaders => {
        code: "vipps::system_headers",
        summary: "The `Vipps-System-*` headers are missing or too long; they help support find your requests.",
        steps: ["Send `Vipps-System-Name` and `Vipps-System-Version` (and the plugin headers for a plugin), short strings, on every call."],
        docs: HTTP_HEADERS,
        transient: false,
    },
    /// Login API OAuth error other than `invalid_client`.
    LoginError => {
        code: "vipps::login_error",
        summary: "The Login API rejected the OAuth request (`invalid_grant`, `invalid_request`, `unauthorized_client`…).",
        steps: ["Read `error` and `error_description`, and check the redirect URI, scopes and code of the OAuth flow."],
        docs: LOGIN,
        transient: false,
    },
    /// The request has so many headers that the ones Vipps MobilePay needs do not
    /// fit in an `http::HeaderMap` (24,576 names at most).
    TooManyHeaders => {
        code: "vipps::too_many_headers",
        summary: "The request has too many headers: the Vipps MobilePay headers (`Authorization`, `Ocp-Apim-Subscription-Key`, `Idempotency-Key`, …) no longer fit in it.",
        steps: ["Send only the headers the API needs; a request close to 24,576 header names is built wrongly (a header added in a loop, say)."],
        docs: HTTP_HEADERS,
        transient: false,
    },
    /// Nothing matched; the status, headers and body are kept.
    Unknown => {
        code: "vipps::unknown",
        summary: "An error no rule recognises; the status, headers and body are kept in the error.",
        steps: [STEP_READ_BODY, "Follow the checklist of the common-errors FAQ: Bearer prefix, keys for this MSN, the same subscription key, the environment, partner headers."],
        docs: FAQ,
        transient: false,
    },
    /// A webhook without `x-ms-date`, `x-ms-content-sha256` or `Authorization` (or
    /// one malformed), or not a POST.
    WebhookHeaderMissing => {
        code: "vipps::webhook_header_missing",
        summary: "The webhook request lacks a signing header (`x-ms-date`, `x-ms-content-sha256`, `Authorization: HMAC-SHA256 …`), has one malformed, or is not a POST: it was not sent by Vipps MobilePay, or a proxy dropped the headers.",
        steps: ["Check that proxies in front of the receiver pass `x-ms-date`, `x-ms-content-sha256`, `Authorization` and `Host` through unchanged.", STEP_WEBHOOK_URL],
        docs: WEBHOOK_AUTH,
        transient: false,
    },
    /// The body's SHA-256 differs from `x-ms-content-sha256`.
    WebhookBodyAltered => {
        code: "vipps::webhook_body_altered",
        summary: "The webhook body was altered after it was signed: its SHA-256 differs from `x-ms-content-sha256` (often a JSON body parsed and re-serialized before verification: keys reordered, whitespace or escapes changed).",
        steps: [STEP_WEBHOOK_RAW, "Check that no proxy or middleware rewrites, re-encodes or decompresses the body."],
        docs: WEBHOOK_AUTH,
        transient: false,
    },
    /// The signature matches none of the configured secrets.
    WebhookWrongSecret => {
        code: "vipps::webhook_wrong_secret",
        summary: "The webhook signature matches none of the configured secrets: it was signed with the secret of another registration (another MSN, environment or an old registration), or not by Vipps MobilePay.",
        steps: [STEP_WEBHOOK_SECRET, "With several registrations or MSNs, configure each one's secret (chosen by the event's `msn`)."],
        docs: WEBHOOK_AUTH,
        transient: false,
    },
    /// The signature was made for another host or path than the registered URL.
    WebhookUrlMismatch => {
        code: "vipps::webhook_url_mismatch",
        summary: "The webhook was signed for another host or path than the registered URL the verifier was given.",
        steps: [STEP_WEBHOOK_URL, "If several URLs are registered, verify each route with its own registered URL."],
        docs: WEBHOOK_AUTH,
        transient: false,
    },
    /// `x-ms-date` is further from now than the tolerance.
    WebhookDateOutsideTolerance => {
        code: "vipps::webhook_date_outside_tolerance",
        summary: "The webhook's `x-ms-date` is further from the receiver's clock than the tolerance: a replayed old request, or a clock that drifts.",
        steps: ["Synchronise the receiver's clock (NTP).", "If deliveries queue up behind a slow receiver, answer faster or widen the tolerance with `WebhookLayer::tolerance`."],
        docs: WEBHOOK_AUTH,
        transient: false,
    },
    /// `x-ms-date` is not the date that was signed.
    WebhookDateAltered => {
        code: "vipps::webhook_date_altered",
        summary: "The webhook's `x-ms-date` is not the date that was signed: a proxy rewrote it, or the request was tampered with.",
        steps: ["Check that proxies pass `x-ms-date` through unchanged.", STEP_WEBHOOK_SECRET],
        docs: WEBHOOK_AUTH,
        transient: false,
    },
    /// The webhook body could not be read within the caps.
    WebhookBodyUnreadable => {
        code: "vipps::webhook_body_unreadable",
        summary: "The webhook body could not be read: longer than the cap, in too many frames, too slow, or the connection broke.",
        steps: ["Raise `WebhookLayer::body_limit` or `WebhookLayer::read_timeout` if real events are refused.", "Check what sends requests of this size to the webhook URL."],
        docs: WEBHOOK_AUTH,
        transient: false,
    },
    /// Keys or a token would go over plain `http://` to an official host, or to a
    /// custom host not registered as plaintext.
    InsecureScheme => {
        code: "vipps::insecure_scheme",
        summary: "The request would carry a client secret, subscription key or access token over plain HTTP; it was not sent.",
        steps: ["Use `https://`: https://apitest.vipps.no for test, https://api.vipps.no for production (HTTP is never served there).", "For an emulator or test server on loopback, register its host as plaintext: `Keyring::builder().plaintext_host(environment, \"127.0.0.1:PORT\")`.", "Treat keys that did cross the network in plaintext as leaked: rotate them in portal.vipps.no."],
        docs: API_KEYS,
        transient: false,
    },
    /// The server's certificate chains to no trusted root (unknown issuer, self-signed).
    CertificateUntrusted => {
        code: "vipps::certificate_untrusted",
        summary: "The server's TLS certificate is not trusted: it was issued by a certificate authority the client does not know (a self-signed certificate, a private CA, or a TLS-inspecting proxy).",
        steps: [STEP_TLS_ROOTS, STEP_TLS_PROXY, STEP_TLS_HOST],
        docs: TLS_DOCS,
        transient: false,
    },
    /// The server's certificate (or one of its chain) has expired or is not yet valid.
    CertificateExpired => {
        code: "vipps::certificate_expired",
        summary: "The server's TLS certificate has expired or is not valid yet.",
        steps: ["Check this machine's clock: a clock far off makes every certificate look expired or not yet valid.", STEP_TLS_PROXY, STEP_TLS_HOST],
        docs: TLS_DOCS,
        transient: false,
    },
    /// The server's certificate names other hosts than the one asked for.
    CertificateNameMismatch => {
        code: "vipps::certificate_name_mismatch",
        summary: "The server's TLS certificate is for another host name than the one in the request URL.",
        steps: [STEP_TLS_HOST, STEP_TLS_PROXY],
        docs: TLS_DOCS,
        transient: false,
    },
    /// The TLS handshake failed for another reason (protocol, cipher, alert).
    TlsHandshake => {
        code: "vipps::tls_handshake",
        summary: "The TLS handshake with the server failed (no common protocol version or cipher, an alert from the server, or a server that does not speak TLS on this port).",
        steps: [STEP_TLS_HOST, "Check that the port speaks HTTPS: an `https://` URL to a plain-HTTP port fails the handshake.", STEP_TLS_PROXY],
        docs: TLS_DOCS,
        transient: false,
    },
    /// The inner client cannot make HTTPS connections (hyper's bare `HttpConnector`).
    HttpsNotSupported => {
        code: "vipps::https_not_supported",
        summary: "The HTTP client cannot make HTTPS connections (\"scheme is not http\"): it was built with a plain-HTTP connector, such as hyper-util's `build_http()`.",
        steps: ["Use the HTTPS client of the crate: `tower_vipps::client(keyring)`, or `tower_vipps::layer(keyring).layer(tower_vipps::HttpsClient::new())` (feature `https`, on by default).", "Or give your client an HTTPS connector, e.g. `hyper_rustls::HttpsConnectorBuilder`."],
        docs: TLS_DOCS,
        transient: false,
    },
    /// The host name could not be resolved.
    DnsFailure => {
        code: "vipps::dns_failure",
        summary: "The host name of the request could not be resolved (DNS); nothing was sent.",
        steps: ["Check the host name in the request URL: apitest.vipps.no (test) or api.vipps.no (production).", "Check this machine's DNS and network access (a resolver, a proxy or firewall); the request may be retried later unchanged."],
        docs: STATUS_PAGE,
        transient: true,
    },
    /// The server refused the connection.
    ConnectionRefused => {
        code: "vipps::connection_refused",
        summary: "The connection was refused: nothing listens on the host and port of the request, or a firewall rejects it; nothing was sent.",
        steps: ["Check the host and port of the request URL (no port for the official hosts: HTTPS is 443).", "Check network access to the API host (firewall, proxy); the request may be retried later unchanged."],
        docs: STATUS_PAGE,
        transient: true,
    },
    /// The connection was reset or closed before the request was sent.
    ResetBeforeSent => {
        code: "vipps::reset_before_sent",
        summary: "The connection was reset or closed before the request was sent; the server never saw it, so it may be sent again.",
        steps: ["Retry the request; check network access to the API host (a proxy or firewall) if it keeps happening."],
        docs: STATUS_PAGE,
        transient: true,
    },
    /// The connection was reset or closed after the request was sent.
    ResetAfterSent => {
        code: "vipps::reset_after_sent",
        summary: "The connection was reset or closed after the request was sent, before the whole answer came: the request may or may not have been carried out.",
        steps: [STEP_RETRY_SAME_KEY, "Check network access to the API host (a proxy or firewall) if it keeps happening."],
        docs: STATUS_PAGE,
        transient: true,
    },
    /// A request body that is not valid JSON.
    InvalidJsonBody => {
        code: "vipps::invalid_json_body",
        summary: "The request body is not valid JSON (a missing comma or quote, a trailing comma, a comment); the API answers 400 without reading it.",
        steps: ["Build the body with a JSON serializer instead of by hand, or validate it before sending.", STEP_READ_BODY],
        docs: API_PRODUCTS,
        transient: false,
    },
    /// A required `Merchant-Serial-Number` header is missing (ePayment, Checkout).
    MissingMsnHeader => {
        code: "vipps::missing_msn_header",
        summary: "The `Merchant-Serial-Number` header is missing; this API requires it on every call.",
        steps: ["Send `Merchant-Serial-Number: <MSN>` with the MSN of the sales unit on every call of this API.", STEP_HEADER_VS_BODY],
        docs: HTTP_HEADERS,
        transient: false,
    },
    /// A description text out of its length bounds (`paymentDescription`, `transactionText`, `productName`…).
    InvalidDescription => {
        code: "vipps::invalid_description",
        summary: "A description text (`paymentDescription`, `transactionText`, `productName`, `productDescription`) is too short, too long or not a string.",
        steps: ["Keep the text within the bounds of the API specification (ePayment `paymentDescription`: 3 to 100 characters)."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment `userFlow` missing or not one of the four flows.
    InvalidUserFlow => {
        code: "vipps::invalid_user_flow",
        summary: "The ePayment `userFlow` is missing or not one of `PUSH_MESSAGE`, `NATIVE_REDIRECT`, `WEB_REDIRECT`, `QR`.",
        steps: ["Send `userFlow` with one of `PUSH_MESSAGE`, `NATIVE_REDIRECT`, `WEB_REDIRECT`, `QR` (upper case)."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment `expiresAt` not an RFC 3339 date-time.
    InvalidExpiresAt => {
        code: "vipps::invalid_expires_at",
        summary: "The ePayment `expiresAt` is not an RFC 3339 date-time with a time zone (`2023-02-26T17:32:28Z`).",
        steps: ["Send `expiresAt` as an RFC 3339 date-time with `Z` or an offset, e.g. `2023-02-26T17:32:28Z`."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment `metadata` with more than 5 properties or a value that is not a string.
    InvalidMetadata => {
        code: "vipps::invalid_metadata",
        summary: "The ePayment `metadata` is not an object of at most 5 properties with string (or number) values.",
        steps: ["Send at most 5 `metadata` properties, each a string."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment `qrFormat` with an unknown format or a size outside 100..=2000.
    InvalidQrFormat => {
        code: "vipps::invalid_qr_format",
        summary: "The ePayment `qrFormat` is invalid: `format` must be `TEXT/TARGETURL`, `IMAGE/SVG+XML` or `IMAGE/PNG`, and `size` 100 to 2000.",
        steps: ["Send `qrFormat` as `{\"format\": \"IMAGE/SVG+XML\", \"size\": 1024}` (size 100 to 2000, or none)."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// ePayment `customer.personalQr` out of its length bounds.
    InvalidPersonalQr => {
        code: "vipps::invalid_personal_qr",
        summary: "The ePayment `customer.personalQr` is not the content of a personal QR code (5 to 255 characters).",
        steps: ["Send the complete content of the scanned personal QR code, unchanged."],
        docs: EPAYMENT_CREATE,
        transient: false,
    },
    /// A `Vipps-System-*` header longer than the 30 characters the specifications allow.
    SystemHeaderTooLong => {
        code: "vipps::system_header_too_long",
        summary: "A `Vipps-System-*` header is longer than 30 characters, the maximum of the API specifications.",
        steps: ["Shorten `Vipps-System-Name`, `Vipps-System-Version`, `Vipps-System-Plugin-Name` and `Vipps-System-Plugin-Version` to at most 30 characters."],
        docs: HTTP_HEADERS,
        transient: false,
    },
    /// eCom capture or refund without the required `X-Request-Id`.
    MissingRequestId => {
        code: "vipps::missing_request_id",
        summary: "The eCom capture or refund has no `X-Request-Id` header; the eCom API requires it to make the call idempotent.",
        steps: ["Send a unique `X-Request-Id` per capture or refund, and reuse it when you retry the same operation."],
        docs: IDEMPOTENCY,
        transient: false,
    },
    /// Recurring `interval` (or campaign period) out of bounds.
    InvalidInterval => {
        code: "vipps::invalid_interval",
        summary: "The Recurring agreement `interval` is invalid: `unit` is one of `YEAR`, `MONTH`, `WEEK`, `DAY` and `count` 1 to 31 (on an update, inside `period`).",
        steps: ["On a draft, send `interval` as `{\"unit\": \"MONTH\", \"count\": 1}` with a count of 1 to 31.", "On an update, send it as `{\"type\": \"RECURRING\", \"period\": {\"unit\": \"MONTH\", \"count\": 1}}`."],
        docs: RECURRING,
        transient: false,
    },
    /// Checkout without `client_id` / `client_secret` headers.
    MissingClientCredentials => {
        code: "vipps::missing_client_credentials",
        summary: "The Checkout call has no `client_id` or `client_secret` header; Checkout authenticates with them, not with an access token.",
        steps: ["Send `client_id`, `client_secret`, `Ocp-Apim-Subscription-Key` and `Merchant-Serial-Number` headers on Checkout calls."],
        docs: CHECKOUT,
        transient: false,
    },
    /// The `merchantSerialNumber` body field is not an MSN of the API's format.
    InvalidBodyMsn => {
        code: "vipps::invalid_body_msn",
        summary: "The `merchantSerialNumber` body field is not a merchant serial number of the format the API takes (eCom: 5 or 6 digits).",
        steps: ["Send the MSN of the sales unit as a string of digits in `merchantInfo.merchantSerialNumber`.", STEP_HEADER_VS_BODY],
        docs: ECOM_ERRORS,
        transient: false,
    },
    /// eCom 63: the capture failed for an unknown reason.
    CaptureFailed => {
        code: "vipps::capture_failed",
        summary: "The capture failed for an unknown reason (eCom 63, Recurring `charge-capture-failed`); the payment may or may not be captured.",
        steps: ["Read the payment back (eCom `GET /details`, Recurring `GET` charge) to learn its state before retrying with the same key."],
        docs: ECOM_ERRORS,
        transient: false,
    },
    /// eCom 74: the refund failed while debiting the merchant's account.
    RefundFailed => {
        code: "vipps::refund_failed",
        summary: "The refund failed while debiting the merchant's account (eCom 74): the settlement account lacks funds or refunds are blocked.",
        steps: ["Check the sales unit's settlement account and refund settings on portal.vippsmobilepay.com, then retry with the same key."],
        docs: ECOM_ERRORS,
        transient: false,
    },
    /// Recurring: the agreement is not active (pending, stopped or expired).
    AgreementNotActive => {
        code: "vipps::agreement_not_active",
        summary: "The Recurring agreement is not active (still pending, stopped or expired), so it cannot be charged or updated.",
        steps: ["Fetch the agreement and check its `status`; charge only `ACTIVE` agreements."],
        docs: RECURRING_PROBLEMS,
        transient: false,
    },
    /// Recurring `charge-amount-too-high`: above the agreement's price or maximum.
    ChargeAmountTooHigh => {
        code: "vipps::charge_amount_too_high",
        summary: "The Recurring charge amount is higher than the agreement allows (its price, or the user's maximum for variable amounts).",
        steps: ["Charge at most the agreement's `pricing.amount` (or the user's `maxAmount` for VARIABLE agreements); update the agreement first if the price changed."],
        docs: RECURRING_PROBLEMS,
        transient: false,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
