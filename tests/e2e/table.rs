//! The table: every FAQ failure as a row (keys, setup, call, expected answer, counts).

use super::*;

pub(crate) const REFERENCE: &str = "acme-order-0001";
pub(crate) const MSN: u64 = emulator::TEST_MSN;
pub(crate) const LOGIN_ONLY_MSN: u64 = emulator::TEST_LOGIN_ONLY_MSN;
pub(crate) const PROD_MSN: u64 = emulator::PRODUCTION_MSN;
pub(crate) const PARTNER_MSN: u64 = 400_000;
pub(crate) const NOT_CONNECTED_MSN: u64 = 999_999;
/// A well-formed subscription key the emulator does not know.
pub(crate) const WRONG_SUB_KEY: &str = "0badbadbadbadbadbadbadbadbadbad0";

/// Setup steps, run through the row's own client before the counts are reset.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    /// Create a 499.00 NOK payment [`REFERENCE`] for [`READY_USER`] as MSN
    /// [`MSN`] (it is `AUTHORIZED` at once); this caches the token.
    Create,
    /// Capture it in full.
    CaptureAll,
    /// The user fetches their own token with these keys (own-token stacks).
    OwnToken(Credentials),
    /// The emulator's clock moves 2 hours: every token minted so far has expired
    /// for the emulator (not for the client's cache).
    ExpireTokens,
    /// Queue faults.
    Faults(fn(&emulator::Faults)),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Refused unsent: origin `Refused`, this cause.
    Refused(Cause),
    /// An error response: origin `Response`, this cause and status.
    Response(Cause, u16),
    /// The token call failed: origin `Token` with the token endpoint's answer.
    Token(Cause, u16),
    /// The call succeeds with this status (the stack fixed or retried it).
    Ok(u16),
}

pub(crate) struct Row {
    /// The mistake, in the FAQ's words where it has them.
    pub(crate) name: &'static str,
    pub(crate) stack: Stack,
    /// The key sets in the user's keyring.
    pub(crate) keys: fn() -> Vec<KeySet>,
    pub(crate) setup: &'static [Step],
    pub(crate) call: fn(&Ctx) -> Call,
    pub(crate) expect: Expect,
    /// The requests the emulator sees for the call (after setup), per endpoint;
    /// every endpoint not listed must see none.
    pub(crate) counts: &'static [(Endpoint, usize)],
}

pub(crate) struct Ctx {
    /// The user's own token (own-token stacks).
    pub(crate) token: String,
}

pub(crate) fn merchant() -> Vec<KeySet> {
    vec![TEST_MERCHANT.key_set()]
}

pub(crate) fn create_body(phone: &str) -> Value {
    json!({
        "amount": {"value": 49900, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": phone},
        "reference": REFERENCE,
        "returnUrl": "https://acme.example/orders/return",
        "userFlow": "PUSH_MESSAGE",
        "paymentDescription": "Two bags of coffee"
    })
}

pub(crate) fn create(phone: &str) -> Call {
    Call::post(Test, "/epayment/v1/payments", create_body(phone))
}

pub(crate) fn create_with(edit: fn(&mut Value)) -> Call {
    let mut body = create_body(READY_USER);
    edit(&mut body);
    Call::post(Test, "/epayment/v1/payments", body)
}

pub(crate) fn get_payment(env: Environment) -> Call {
    Call::get(env, format!("/epayment/v1/payments/{REFERENCE}"))
}

pub(crate) fn modify(op: &str, value: u64) -> Call {
    Call::post(
        Test,
        format!("/epayment/v1/payments/{REFERENCE}/{op}"),
        json!({"modificationAmount": {"value": value, "currency": "NOK"}}),
    )
}

/// A JWT-shaped token whose `exp` is an hour in the past (what a cached token looks
/// like the day after).
pub(crate) fn expired_jwt() -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&format!(r#"{{"exp":{exp},"msn":123456}}"#)),
        b64("not-a-real-signature")
    )
}

pub(crate) fn rows() -> Vec<Row> {
    vec![
        // ---- Authorization header (FAQ 401, step 1 and 4) ----------------------
        Row {
            name: "`Authorization: bearer <token>` (lowercase scheme), own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", format!("bearer {}", c.token))
            },
            expect: Refused(Cause::BearerWrongCase),
            counts: &[],
        },
        Row {
            name: "`Authorization: bearer <token>`, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", format!("bearer {}", c.token))
            },
            // Vipps answers only "Something went wrong"; Diagnose saw the header
            // that was sent and names the mistake.
            expect: Response(Cause::BearerWrongCase, 401),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            // Auth sets `Authorization` itself: the user's header is replaced.
            name: "`Authorization: bearer <token>` set by the user, full stack",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create(READY_USER)
                    .msn(MSN)
                    .header("Authorization", "bearer not-my-token")
            },
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "`Authorization: <token>` without `Bearer`, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", c.token.clone())
            },
            expect: Refused(Cause::BearerMissing),
            counts: &[],
        },
        Row {
            name: "`Authorization: <token>` without `Bearer`, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", c.token.clone())
            },
            expect: Response(Cause::BearerMissing, 401),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            name: "`Authorization: <token>` without `Bearer` set by the user, full stack",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create(READY_USER)
                    .msn(MSN)
                    .header("Authorization", "eyJhbGciOiJub25lIn0.e30.c2ln")
            },
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "no `Authorization` header, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .without("Authorization")
            },
            expect: Refused(Cause::MissingAuthorization),
            counts: &[],
        },
        Row {
            name: "expired token (a JWT whose `exp` has passed), own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[],
            call: |_| get_payment(Test).own(TEST_MERCHANT, MSN, &expired_jwt()),
            expect: Refused(Cause::AccessTokenExpired),
            counts: &[],
        },
        Row {
            name: "expired token (expired for Vipps, not for the client's clock), own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT), ExpireTokens],
            call: |c| get_payment(Test).own(TEST_MERCHANT, MSN, &c.token),
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            // The cached token is expired for the emulator: 401, Auth drops it and
            // replays once with a fresh token.
            name: "expired token, full stack (the cache's clock disagrees with Vipps)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Create, ExpireTokens],
            call: |_| get_payment(Test).msn(MSN),
            expect: Succeeds(200),
            counts: &[(AccessToken, 1), (GetPayment, 2)],
        },
        // ---- Keys for the MSN (FAQ 401, step 2 and 3) ---------------------------
        Row {
            name: "token fetched for one MSN used for another, own token",
            stack: Stack::OwnTokens,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| get_payment(Test).own(TEST_MERCHANT, LOGIN_ONLY_MSN, &c.token),
            expect: Refused(Cause::TokenForOtherMsn),
            counts: &[],
        },
        Row {
            name: "token fetched for one MSN used for another, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| get_payment(Test).own(TEST_MERCHANT, LOGIN_ONLY_MSN, &c.token),
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            // The keyring files MSN 123456's keys under MSN 123457: the token is
            // minted for 123456, the call acts for 123457. Auth takes the 401 for a
            // stale token and replays once with a fresh one, which fails the same.
            name: "keys of one MSN configured for another MSN, full stack",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(LOGIN_ONLY_MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        TEST_MERCHANT.client_secret(),
                        TEST_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| get_payment(Test).msn(LOGIN_ONLY_MSN),
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(AccessToken, 2), (GetPayment, 2)],
        },
        Row {
            name: "subscription key differs between the token call and the API call, own token",
            stack: Stack::OwnTokens,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test).own(TEST_MERCHANT, MSN, &c.token).replace(
                    "Ocp-Apim-Subscription-Key",
                    TEST_LOGIN_ONLY.subscription_key(),
                )
            },
            expect: Refused(Cause::SubscriptionKeyMismatch),
            counts: &[],
        },
        Row {
            name: "subscription key differs between the token call and the API call, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test).own(TEST_MERCHANT, MSN, &c.token).replace(
                    "Ocp-Apim-Subscription-Key",
                    TEST_LOGIN_ONLY.subscription_key(),
                )
            },
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            // Auth sends the subscription key the token was fetched with.
            name: "another subscription key set by the user, full stack",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create(READY_USER).msn(MSN).header(
                    "Ocp-Apim-Subscription-Key",
                    TEST_LOGIN_ONLY.subscription_key(),
                )
            },
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "invalid API keys: wrong subscription key",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        TEST_MERCHANT.client_secret(),
                        WRONG_SUB_KEY,
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| create(READY_USER).msn(MSN),
            expect: Token(Cause::InvalidSubscriptionKey, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "invalid API keys: wrong client secret",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        "not-the-client-secret",
                        TEST_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| create(READY_USER).msn(MSN),
            expect: Token(Cause::InvalidClientCredentials, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "missing subscription key, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .without("Ocp-Apim-Subscription-Key")
            },
            expect: Refused(Cause::MissingSubscriptionKey),
            counts: &[],
        },
        Row {
            name: "missing subscription key, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .without("Ocp-Apim-Subscription-Key")
            },
            expect: Response(Cause::MissingSubscriptionKey, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            name: "subscription not found (keys without the ePayment product)",
            stack: Stack::Full,
            keys: || vec![TEST_UNSUBSCRIBED.key_set()],
            setup: &[],
            call: |_| create(READY_USER).msn(emulator::TEST_UNSUBSCRIBED_MSN),
            expect: Response(Cause::SubscriptionNotFound, 401),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        // ---- Environment (FAQ 401, step 5) -------------------------------------
        Row {
            name: "test keys sent to production",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| get_payment(Production).msn(MSN),
            expect: Refused(Cause::WrongEnvironment),
            counts: &[],
        },
        Row {
            name: "production keys sent to test",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_MERCHANT.key_set()],
            setup: &[],
            call: |_| get_payment(Test).msn(PROD_MSN),
            expect: Refused(Cause::WrongEnvironment),
            counts: &[],
        },
        Row {
            name: "test keys filed as production keys (sent to production)",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Production,
                        Msn::new(MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        TEST_MERCHANT.client_secret(),
                        TEST_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| get_payment(Production).msn(MSN),
            expect: Token(Cause::InvalidSubscriptionKey, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "production keys filed as test keys (sent to test)",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(PROD_MSN).unwrap(),
                        PRODUCTION_MERCHANT.client_id(),
                        PRODUCTION_MERCHANT.client_secret(),
                        PRODUCTION_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| get_payment(Test).msn(PROD_MSN),
            expect: Token(Cause::InvalidSubscriptionKey, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "a test token sent to production, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| get_payment(Production).own(TEST_MERCHANT, MSN, &c.token),
            expect: Refused(Cause::WrongEnvironment),
            counts: &[],
        },
        // ---- Partner keys (FAQ 403 and 401 step 7) -----------------------------
        Row {
            name: "partner keys without `Merchant-Serial-Number`",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| create(READY_USER).env(Production),
            expect: Refused(Cause::PartnerMissingMsnHeader),
            counts: &[],
        },
        Row {
            name: "partner keys without `Merchant-Serial-Number`, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[OwnToken(PRODUCTION_PARTNER)],
            call: |c| {
                create(READY_USER)
                    .env(Production)
                    .own(PRODUCTION_PARTNER, PARTNER_MSN, &c.token)
                    .without("Merchant-Serial-Number")
            },
            expect: Response(Cause::PartnerMissingMsnHeader, 403),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            name: "partner keys with `merchantSerialNumber` as the header name",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| {
                create(READY_USER)
                    .env(Production)
                    .header("merchantSerialNumber", PARTNER_MSN.to_string())
            },
            expect: Refused(Cause::MsnHeaderMisspelled),
            counts: &[],
        },
        Row {
            name: "partner keys with `merchantSerialNumber` as the header name, own token",
            stack: Stack::OwnTokens,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[OwnToken(PRODUCTION_PARTNER)],
            call: |c| {
                create(READY_USER)
                    .env(Production)
                    .own(PRODUCTION_PARTNER, PARTNER_MSN, &c.token)
                    .without("Merchant-Serial-Number")
                    .header("merchantSerialNumber", PARTNER_MSN.to_string())
            },
            expect: Refused(Cause::MsnHeaderMisspelled),
            counts: &[],
        },
        Row {
            name: "partner keys for an MSN not connected (keyring lists the MSNs)",
            stack: Stack::Full,
            keys: || {
                vec![
                    PRODUCTION_PARTNER
                        .key_set()
                        .connected_msns(PRODUCTION_PARTNER.connected_msns()),
                ]
            },
            setup: &[],
            call: |_| create(READY_USER).env(Production).msn(NOT_CONNECTED_MSN),
            expect: Refused(Cause::PartnerMsnNotConnected),
            counts: &[],
        },
        Row {
            // The keyring cannot know: the token call for that MSN answers 403.
            name: "partner keys for an MSN not connected (keyring does not list them)",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| create(READY_USER).env(Production).msn(NOT_CONNECTED_MSN),
            expect: Token(Cause::PartnerMsnNotConnected, 403),
            counts: &[(AccessToken, 1)],
        },
        Row {
            // Auth fetches the token before Preflight sees the body.
            name: "`merchantSerialNumber` in the body differs from the `Merchant-Serial-Number` header",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| {
                create_with(|b| b["merchantSerialNumber"] = json!((PARTNER_MSN + 1).to_string()))
                    .env(Production)
                    .msn(PARTNER_MSN)
            },
            expect: Refused(Cause::MsnHeaderBodyMismatch),
            counts: &[(AccessToken, 1)],
        },
        // ---- 403 Login-only ------------------------------------------------------
        Row {
            name: "Login-only merchant -> Merchant Not Allowed for Ecommerce Payment",
            stack: Stack::Full,
            keys: || vec![TEST_LOGIN_ONLY.key_set()],
            setup: &[],
            call: |_| create(READY_USER).msn(LOGIN_ONLY_MSN),
            expect: Response(Cause::MerchantNotAllowedForEcommerce, 403),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        // ---- 400 Bad Request -----------------------------------------------------
        Row {
            name: "invalid amount (decimals, not minor units)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create_with(|b| b["amount"]["value"] = json!(499.5)).msn(MSN),
            expect: Refused(Cause::InvalidAmount),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "invalid amount, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create_with(|b| b["amount"]["value"] = json!(-100)).own(
                    TEST_MERCHANT,
                    MSN,
                    &c.token,
                )
            },
            expect: Response(Cause::InvalidAmount, 400),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            name: "returnUrl invalid (not https)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create_with(|b| b["returnUrl"] = json!("http://acme.example/return")).msn(MSN)
            },
            expect: Refused(Cause::InvalidUrl),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "returnUrl invalid, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create_with(|b| b["returnUrl"] = json!("acme.example/return")).own(
                    TEST_MERCHANT,
                    MSN,
                    &c.token,
                )
            },
            expect: Response(Cause::InvalidUrl, 400),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            // eCom's callback: the emulator has no eCom API, and needs none here.
            name: "callbackUrl invalid (eCom `callbackPrefix` not https)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                Call::post(Test, "/ecomm/v2/payments", json!({
                    "merchantInfo": {
                        "merchantSerialNumber": MSN.to_string(),
                        "callbackPrefix": "http://acme.example/vipps/callbacks",
                        "fallBack": "https://acme.example/orders/return",
                    },
                    "customerInfo": {"mobileNumber": "91000001"},
                    "transaction": {"orderId": "acme-order-0001", "amount": 49900, "transactionText": "Coffee"}
                }))
                .msn(MSN)
            },
            expect: Refused(Cause::InvalidUrl),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "captured amount exceeds the reserved amount",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Create],
            call: |_| modify("capture", 100_000).msn(MSN),
            expect: Response(Cause::CaptureExceedsReserved, 400),
            counts: &[(Capture, 1)],
        },
        Row {
            name: "cannot refund more than captured amount",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Create, CaptureAll],
            call: |_| modify("refund", 50_000).msn(MSN),
            expect: Response(Cause::RefundExceedsCaptured, 400),
            counts: &[(Refund, 1)],
        },
        Row {
            name: "user unknown (not a Vipps MobilePay user)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create(UNKNOWN_USER).msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "user unknown (under 15, cannot pay businesses)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create(UNDER_15_USER).msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "user unknown (a non-Norwegian phone number)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create("46701234567").msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "phone number incorrectly formatted (`+47 91 00 00 01`)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create("+47 91 00 00 01").msn(MSN),
            expect: Refused(Cause::InvalidPhoneNumber),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "phone number incorrectly formatted, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| create("+4791000001").own(TEST_MERCHANT, MSN, &c.token),
            expect: Response(Cause::InvalidPhoneNumber, 400),
            counts: &[(CreatePayment, 1)],
        },
        // ---- The app-installed-and-15 error (test environment) ------------------
        Row {
            name: "new test user who has not logged in to the test app",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create(NOT_LOGGED_IN_USER).msn(MSN),
            expect: Response(Cause::TestUserNotReady, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            // The emulator, like the test environment, knows only its test users:
            // a real user's number is unknown there (7010). The diagnosis says to
            // use a test user in test (see `the_table_covers_the_faq`).
            name: "a real user's number in the test environment",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create("4748059999").msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        // ---- Rate limits and server errors --------------------------------------
        Row {
            name: "429 once on create: retried with the same Idempotency-Key",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.rate_limit_next(CreatePayment, 1, Duration::ZERO);
            })],
            call: |_| create(READY_USER).msn(MSN),
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 2)],
        },
        Row {
            name: "429 on every attempt: retries exhausted (1 + 3)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.rate_limit_next(CreatePayment, 10, Duration::ZERO);
            })],
            call: |_| create(READY_USER).msn(MSN),
            expect: Response(Cause::RateLimited, 429),
            counts: &[(AccessToken, 1), (CreatePayment, 4)],
        },
        Row {
            name: "502 once on capture: retried",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.bad_gateway_next(Capture, 1);
                }),
            ],
            call: |_| modify("capture", 49_900).msn(MSN),
            expect: Succeeds(200),
            counts: &[(Capture, 2)],
        },
        Row {
            name: "502 on every attempt: retries exhausted (1 + 3)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.bad_gateway_next(Capture, 10);
                }),
            ],
            call: |_| modify("capture", 49_900).msn(MSN),
            expect: Response(Cause::ServerError, 502),
            counts: &[(Capture, 4)],
        },
        Row {
            // A 500 may come from a malformed request: not retried.
            name: "500 on capture: not retried",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.fail_next(Capture, 1);
                }),
            ],
            call: |_| modify("capture", 49_900).msn(MSN),
            expect: Response(Cause::ServerError, 500),
            counts: &[(Capture, 1)],
        },
        Row {
            name: "connection dropped on a GET: retried",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.drop_next(GetPayment, 1);
                }),
            ],
            call: |_| get_payment(Test).msn(MSN),
            expect: Succeeds(200),
            counts: &[(GetPayment, 2)],
        },
        Row {
            // A token request is safe to repeat (it changes nothing): one 502 is
            // retried (on the tower path through the stack's Retry, on the reqwest
            // path through the token client's own), and the call reaches the API
            // (which knows no such payment).
            name: "502 once on the token endpoint",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.bad_gateway_next(AccessToken, 1);
            })],
            call: |_| get_payment(Test).msn(MSN),
            expect: Response(Cause::ReferenceNotFound, 404),
            counts: &[(AccessToken, 2), (GetPayment, 1)],
        },
        Row {
            name: "429 once on the token endpoint",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.rate_limit_next(AccessToken, 1, Duration::ZERO);
            })],
            call: |_| get_payment(Test).msn(MSN),
            expect: Response(Cause::ReferenceNotFound, 404),
            counts: &[(AccessToken, 2), (GetPayment, 1)],
        },
        Row {
            // The default policy gives up after 3 retries: 4 token requests, then
            // the diagnosed error of the last; the API is never called.
            name: "502 every time on the token endpoint",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.bad_gateway_next(AccessToken, 10);
            })],
            call: |_| get_payment(Test).msn(MSN),
            expect: Token(Cause::ServerError, 502),
            counts: &[(AccessToken, 4)],
        },
        Row {
            name: "unknown path (a typo in the URL)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| Call::get(Test, "/epayment/v1/payment/acme-order-0001").msn(MSN),
            expect: Response(Cause::Unknown, 404),
            counts: &[(AccessToken, 1), (Other, 1)],
        },
    ]
}
